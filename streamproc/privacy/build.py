"""What redaction changes in a run: the full-range model by default, a detector that reports
weaker faces, and the redaction stage in front of the others."""

from __future__ import annotations

from pathlib import Path

from streamproc.config.settings import DetectorSettings, Settings
from streamproc.inference.blazeface_decode import SPECS
from streamproc.inference.tfjs.modeljson import is_model_json
from streamproc.privacy.stage import RedactionStage

REDACTING_MODEL = "full"  # faces up to ~5 m away: the short-range model misses small faces


def redacts(settings: Settings) -> bool:
    """Whether any output of the run is redacted."""
    return any(getattr(sink, "redact", None) is not None for sink in settings.sinks)


def reported_min_score(detector: DetectorSettings) -> float:
    """The least score of the faces a run reports: detector.min_score, or the model's default."""
    if detector.min_score is not None:
        return detector.min_score
    return SPECS["back" if is_model_json(Path(detector.model)) else detector.model].min_score


def redacting_model(detector: DetectorSettings) -> DetectorSettings:
    """The detector settings with the full-range model, unless a model was chosen."""
    if "model" in detector.model_fields_set:
        return detector
    return detector.model_copy(update={"model": REDACTING_MODEL})


def redacting_detector(settings: Settings) -> DetectorSettings:
    """The detector of a redacting run: faces down to redaction's threshold (the redaction stage
    passes on only those at the reported one)."""
    chosen = redacting_model(settings.detector)
    lowest = min(reported_min_score(chosen), settings.redact.min_score)
    return chosen.model_copy(update={"min_score": lowest})


def redaction_stage(settings: Settings) -> RedactionStage:
    """The stage that picks each frame's regions to cover (it runs first)."""
    keep = reported_min_score(redacting_model(settings.detector))
    return RedactionStage(settings.redact, settings.tracking, keep)
