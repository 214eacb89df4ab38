"""streamproc: video stream processing with BlazeFace face detection and pluggable sinks.

The public names below load on first use, so ``import streamproc`` (and the CLI) stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "build_pipeline": "streamproc.pipeline.build",
    "run_pipeline": "streamproc.pipeline.build",
    "Pipeline": "streamproc.pipeline.run",
    "RunReport": "streamproc.pipeline.run",
    "Settings": "streamproc.config.settings",
    "load_settings": "streamproc.config.settings",
    "Sink": "streamproc.sinks.base",
    "Stage": "streamproc.stages.base",
    "PixelFormat": "streamproc.media.pixels",
    "PixelPlan": "streamproc.media.pixels",
    "Detector": "streamproc.inference.detector",
    "ModelInput": "streamproc.core.frames",
    "detect_image": "streamproc.inference.detector",
    "BlazeFaceDetector": "streamproc.inference.blazeface",
    "Detections": "streamproc.core.frames",
    "Frame": "streamproc.core.frames",
    "FrameResult": "streamproc.core.frames",
    "StatusEvent": "streamproc.core.frames",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'streamproc' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
