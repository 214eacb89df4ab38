"""The driver of a distributed run: files as tasks or live sources as actors, one summary at the end."""

from __future__ import annotations

import logging
import threading

from streamproc.capture.factory import source_type
from streamproc.config.settings import Settings, SourceSettings
from streamproc.core.errors import ConfigError, StreamprocError
from streamproc.distributed.files import FilesReport
from streamproc.distributed.groups import with_absolute_paths
from streamproc.distributed.jobs import run_files
from streamproc.distributed.session import ray_session

log = logging.getLogger(__name__)


def is_live(source: SourceSettings) -> bool:
    """Cameras, and files replayed as cameras: they run until stopped, on actors (files and photo
    collections end: tasks)."""
    return source_type(source.url).live or source.realtime or source.loop


def run_distributed(settings: Settings, stop: threading.Event, resume: bool = False) -> None:
    """Run the configured sources on Ray until done or ``stop`` is set; raises StreamprocError
    (exit code 1) when any failed."""
    if not settings.sources:
        raise ConfigError("no input given: name video files or list sources")
    live = [source for source in settings.sources if is_live(source)]
    if live and len(live) != len(settings.sources):
        raise ConfigError(
            "a distributed run takes files or live sources (cameras, realtime/loop files), not both: "
            "files end, cameras run until stopped; start one run for each (on one --cluster they share it)"
        )
    if resume and live:
        raise ConfigError("--resume applies to files, not to live sources")
    _check_job(settings, bool(live))
    settings = with_absolute_paths(settings)
    with ray_session(settings) as ray:
        if live:
            from streamproc.distributed.cameras import run_cameras

            problems = run_cameras(ray, settings, stop)
        else:
            if settings.http.enabled:
                log.warning("--http is served by distributed camera runs, not by file runs")
            problems = summarize(run_files(ray, settings, stop, resume))
    if problems:
        raise StreamprocError("; ".join(problems))


def _check_job(settings: Settings, live: bool) -> None:
    """A named job keeps cameras running without their driver: only on a cluster that outlives it."""
    if settings.distributed.job is None:
        return
    if not live:
        raise ConfigError("--job applies to cameras (live sources), not to files: files use --resume")
    if settings.distributed.cluster is None:
        raise ConfigError(
            "--job keeps the cameras running when the driver stops, on a Ray cluster that outlives it: "
            "add --cluster ADDRESS (--workers N starts Ray inside the run, and ends it with the run)"
        )


def summarize(report: FilesReport) -> list[str]:
    """Log one line per file and one for the job; the problems that make the exit code non-zero."""
    for outcome in report.files:
        if outcome.skipped:
            continue
        state = f"failed: {outcome.error}" if outcome.error else "done"
        log.info("%s: %d frames processed, %s", outcome.source_id, outcome.frames, state)
    done = sum(1 for outcome in report.files if outcome.error is None)
    skipped = sum(1 for outcome in report.files if outcome.skipped)
    log.info(
        "processed %d frames of %d/%d files in %.1f s (%.1f fps)%s",
        report.frames_processed,
        done,
        len(report.files),
        report.seconds,
        report.fps,
        f", {skipped} skipped as complete" if skipped else "",
    )
    return report.problems()
