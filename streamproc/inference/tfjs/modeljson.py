"""Reading a TF.js ``model.json``: its format, topology, weight manifest and weight shards."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from streamproc.core.errors import ModelError

Format = Literal["graph-model", "layers-model"]


@dataclass(frozen=True)
class ModelJson:
    """One parsed ``model.json`` with the shard files its manifest names (in load order)."""

    path: Path
    format: Format
    topology: dict[str, Any]
    weight_specs: list[dict[str, Any]]
    shards: list[Path]
    signature: dict[str, Any] | None
    text: bytes

    def read_weights(self) -> bytes:
        """All shards of all groups concatenated, as TF.js hands them to ``decodeWeights``."""
        return b"".join(shard.read_bytes() for shard in self.shards)

    def content_hash(self) -> str:
        """sha256 over model.json and every shard: names a converted model in the cache."""
        digest = hashlib.sha256(self.text)
        for shard in self.shards:
            with open(shard, "rb") as stream:
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(chunk)
        return digest.hexdigest()


def is_model_json(path: Path) -> bool:
    """Whether a model path names a TF.js model: a ``.json`` file, or a folder with a model.json."""
    path = Path(path)
    return path.suffix == ".json" or (path.is_dir() and (path / "model.json").is_file())


def read_model_json(path: Path) -> ModelJson:
    """Parse ``path`` (a model.json, or a folder holding one); a one-line ModelError when it is not one."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.json"
    try:
        text = path.read_bytes()
        data = json.loads(text)
    except OSError as exc:
        raise ModelError(f"TF.js model {path} cannot be read: {exc.strerror}") from None
    except ValueError as exc:
        raise ModelError(f"TF.js model {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("modelTopology"), dict):
        raise ModelError(f"{path} is not a TF.js model.json (no modelTopology object)")
    topology = data["modelTopology"]
    groups = data.get("weightsManifest")
    if not isinstance(groups, list):
        raise ModelError(f"{path} has no weightsManifest list: weights saved separately are not supported")
    specs: list[dict[str, Any]] = []
    shards: list[Path] = []
    for group in groups:
        specs.extend(group.get("weights", []))
        shards.extend(_shard(path, name) for name in group.get("paths", []))
    signature = data.get("signature") or (data.get("userDefinedMetadata") or {}).get("signature")
    return ModelJson(path, _format(path, data, topology), topology, specs, shards, signature, text)


def _format(path: Path, data: dict[str, Any], topology: dict[str, Any]) -> Format:
    declared = data.get("format")
    if declared in ("graph-model", "layers-model"):
        return declared
    # Files from older converters have no (or another) format field: the topology tells.
    if "node" in topology:
        return "graph-model"
    if "class_name" in topology or "model_config" in topology:
        return "layers-model"
    raise ModelError(f"{path}: format {declared!r} is neither a TF.js graph model nor a layers model")


def _shard(model_json: Path, name: str) -> Path:
    folder = model_json.parent.resolve()
    shard = (folder / name).resolve()
    if not shard.is_relative_to(folder):
        raise ModelError(f"{model_json} names weight file {name!r} outside its folder: refused")
    if not shard.is_file():
        raise ModelError(f"weight file {shard} named by {model_json} is missing: copy it beside model.json")
    return shard
