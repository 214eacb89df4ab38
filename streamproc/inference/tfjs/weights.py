"""TF.js weight decoding: the byte layout and dequantisation of tfjs-core's ``io_utils.decodeWeights``.

Weights are packed back to back in manifest order. Quantised weights store ``uint8``/``uint16`` codes
(value = code * scale + min, computed in double precision then stored as float32; int32 weights are
rounded half up) or IEEE ``float16`` halves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from streamproc.core.errors import ModelError

_PLAIN_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "int32": np.dtype("<i4"),
    "bool": np.dtype("u1"),
}
_CODE_DTYPES: dict[str, np.dtype] = {
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
    "float16": np.dtype("<f2"),
}


def decode_weights(data: bytes, specs: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Every weight of ``specs`` (manifest entries, in order) cut out of the concatenated shards."""
    out: dict[str, np.ndarray] = {}
    offset = 0
    for spec in specs:
        name = str(spec["name"])
        try:
            value, size = _decode_one(data, offset, spec)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"weight {name!r}: {exc}") from None
        out[name] = value
        offset += size
    if offset != len(data):
        raise ModelError(
            f"the weight files hold {len(data)} bytes but the manifest describes {offset}: "
            "a shard is missing, truncated or belongs to another model"
        )
    return out


def _decode_one(data: bytes, offset: int, spec: Mapping[str, Any]) -> tuple[np.ndarray, int]:
    shape = tuple(int(d) for d in spec["shape"])
    count = int(np.prod(shape, dtype=np.int64))
    dtype = spec["dtype"]
    quantization = spec.get("quantization")
    if quantization is not None:
        return _dequantise(data, offset, count, dtype, quantization, shape)
    if dtype == "string":
        raise ValueError("string weights are not supported (no image model uses them)")
    if dtype not in _PLAIN_DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}")
    stored = _PLAIN_DTYPES[dtype]
    size = count * stored.itemsize
    values = _view(data, offset, count, stored)
    if dtype == "bool":
        values = values.astype(bool)
    return values.reshape(shape), size


def _dequantise(
    data: bytes, offset: int, count: int, dtype: str, quantization: Mapping[str, Any], shape: tuple[int, ...]
) -> tuple[np.ndarray, int]:
    code = quantization.get("dtype")
    if code not in _CODE_DTYPES:
        raise ValueError(f"unknown quantization dtype {code!r} (TF.js writes uint8, uint16 or float16)")
    stored = _CODE_DTYPES[code]
    codes = _view(data, offset, count, stored)
    size = count * stored.itemsize
    if code == "float16":
        if dtype != "float32":
            raise ValueError(f"float16 quantization applies to float32 weights, not {dtype}")
        return codes.astype(np.float32).reshape(shape), size
    if "min" not in quantization or "scale" not in quantization:
        raise ValueError(f"{code} quantization without min and scale")
    real = codes.astype(np.float64) * float(quantization["scale"]) + float(quantization["min"])
    if dtype == "float32":
        return real.astype(np.float32).reshape(shape), size
    if dtype == "int32":
        return np.floor(real + 0.5).astype(np.int32).reshape(shape), size  # JavaScript's Math.round
    raise ValueError(f"quantized weights of dtype {dtype!r} are not supported")


def _view(data: bytes, offset: int, count: int, dtype: np.dtype) -> np.ndarray:
    end = offset + count * dtype.itemsize
    if end > len(data):
        raise ValueError(f"needs bytes {offset}..{end} but the weight files hold only {len(data)}")
    return np.frombuffer(data, dtype, count, offset)
