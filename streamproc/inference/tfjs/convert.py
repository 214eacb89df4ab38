"""TFLite conversion of a rebuilt TF.js model, cached on disk by the model's content hash.

A cached model loads without TensorFlow. The cache lives in ``STREAMPROC_CACHE_DIR/tfjs``, else
``$XDG_CACHE_HOME/streamproc/tfjs`` (``~/.cache/streamproc/tfjs``). A model that failed to convert
leaves a ``.failed`` note so later runs go straight to TensorFlow.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from streamproc.inference.tfjs.function import TfjsFunction

CACHE_ENV = "STREAMPROC_CACHE_DIR"
# Bumped when the rebuild or conversion changes, so older cached files are not reused.
CONVERSION_VERSION = "1"


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser() / "tfjs"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "streamproc" / "tfjs"


@dataclass(frozen=True)
class CacheEntry:
    """Where one model's converted file, output names and failure note live."""

    key: str

    @property
    def tflite(self) -> Path:
        return cache_dir() / f"{self.key}-v{CONVERSION_VERSION}.tflite"

    @property
    def meta(self) -> Path:
        return self.tflite.with_suffix(".json")

    @property
    def failed(self) -> Path:
        return self.tflite.with_suffix(".failed")

    def output_names(self) -> list[str] | None:
        """The outputs' names, in the converted file's order; None when nothing usable is cached."""
        if not self.tflite.is_file():
            return None
        try:
            return list(json.loads(self.meta.read_text(encoding="utf-8"))["outputs"])
        except (OSError, ValueError, KeyError):
            return None

    def failure(self) -> str | None:
        try:
            return self.failed.read_text(encoding="utf-8").strip() or "unknown error"
        except OSError:
            return None

    def store(self, data: bytes, outputs: list[str], seconds: float) -> None:
        _write(self.meta, json.dumps({"outputs": outputs, "conversion_seconds": round(seconds, 3)}).encode())
        _write(self.tflite, data)  # last: its presence means the entry is complete

    def store_failure(self, reason: str) -> None:
        _write(self.failed, reason.encode())


def _write(path: Path, data: bytes) -> None:
    """Atomic: concurrent processes converting the same model never read half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def to_tflite(function: TfjsFunction) -> bytes:
    """Float32 TFLite flatbuffer of ``function`` (builtin ops only, no quantisation). Imports TensorFlow."""
    import tensorflow as tf

    shape = [None if d is None or d < 0 else int(d) for d in function.input_shape]

    @tf.function(input_signature=[tf.TensorSpec(shape, function.dtype, name="input")])
    def serve(x: tf.Tensor) -> list[tf.Tensor]:
        return function.run(x)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], function.owner
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()
