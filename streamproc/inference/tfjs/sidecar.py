"""The sidecar file that declares how a TF.js model wants its input: ``<name>.streamproc.toml``.

It sits beside ``<name>.json`` (``model.streamproc.toml`` for ``model.json``)::

    input_size = [64, 64]      # [height, width]; default: the model's own input shape
    resize = "bilinear"        # bilinear (TF.js resizeBilinear) | area (OpenCV INTER_AREA)
    color = "gray"             # rgb | gray (luma 0.2989 R + 0.5870 G + 0.1140 B)
    range = "minus1_1"         # raw (0..255) | zero_1 | minus1_1 | mean_std (with mean, std)
    output = "probabilities"   # probabilities | logits | sigmoid (one value p: classes [1 - p, p])
    output_name = "age_pred/Softmax"  # which output, for models with several (default: the only one)
    labels = "emotion.txt"     # one class name per line, relative to this file
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streamproc.core.errors import ModelError
from streamproc.inference.tfjs.preprocess import Color, Resize, ValueRange

SUFFIX = ".streamproc.toml"


class Sidecar(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    input_size: tuple[int, int] | None = Field(None, description="[height, width]")
    resize: Resize = "bilinear"
    color: Color = "rgb"
    value_range: ValueRange = Field("raw", alias="range")
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    output: Literal["probabilities", "logits", "sigmoid"] = "probabilities"
    output_name: str | None = None
    labels: Path | None = None
    label_offset: int = Field(0, ge=0)


def sidecar_path(model_json: Path) -> Path:
    model_json = Path(model_json)
    if model_json.is_dir():
        model_json = model_json / "model.json"
    return model_json.with_name(model_json.stem + SUFFIX)


def read_sidecar(model_json: Path) -> Sidecar | None:
    """The sidecar beside ``model_json``, None when there is none; labels resolved against its folder."""
    path = sidecar_path(model_json)
    if not path.is_file():
        return None
    try:
        sidecar = Sidecar.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ModelError(f"{path} cannot be read: {exc}") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        raise ModelError(f"{path}: {key}: {error['msg']}") from None
    if sidecar.value_range == "mean_std" and (
        sidecar.mean is None or sidecar.std is None or not all(sidecar.std)
    ):
        raise ModelError(f"{path}: range mean_std needs mean and non-zero std (3 values each)")
    if sidecar.labels is not None:
        sidecar = sidecar.model_copy(update={"labels": path.parent / sidecar.labels})
    return sidecar
