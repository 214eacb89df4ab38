"""One validated settings object, from a YAML file, ``STREAMPROC_`` environment variables and CLI flags.

Precedence, highest first: command line, environment, config file, defaults. Nothing here reads
the environment at import time; :func:`load_settings` does it when called.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from streamproc.errors import ConfigError

ENV_PREFIX = "STREAMPROC_"
ENV_NESTED_DELIMITER = "__"


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class DetectorSettings(StrictModel):
    """BlazeFace face detection, run on every frame."""

    model: Literal["short", "full"] = Field(
        "short", description="short: faces within ~2 m (128x128 input); full: up to ~5 m (192x192)"
    )
    min_score: float = Field(0.5, ge=0.0, le=1.0, description="drop detections scoring below this")
    nms_iou: float = Field(0.3, gt=0.0, le=1.0, description="IoU above which overlapping boxes merge")
    threads: int = Field(1, ge=1, le=64, description="LiteRT CPU threads for the detector")


class SourceSettings(StrictModel):
    """One input: a video file (RTSP cameras and local cameras come later)."""

    url: str = Field(description="path of a video file")
    id: str | None = Field(None, description="name used in events and output paths; default: file stem")
    buffer_policy: Literal["auto", "block", "drop_oldest"] = Field(
        "auto", description="auto: block (lossless) for files, drop_oldest (freshest) for live sources"
    )
    buffer_size: int = Field(16, ge=1, le=10_000, description="frames held between decoder and inference")


class JsonlSinkSettings(StrictModel):
    """Append one JSON object per processed frame to a file."""

    type: Literal["jsonl"]
    path: Path = Field(description="output file; '{source}' is replaced by the source id")
    include_empty: bool = Field(True, description="also write frames in which no face was found")


class VideoSinkSettings(StrictModel):
    """Write annotated H.264 MP4: same size, frame rate and timing as the input."""

    type: Literal["video"]
    path: Path = Field(description="output file; '{source}' is replaced by the source id")
    crf: int = Field(23, ge=0, le=51, description="x264 constant rate factor: lower is better quality")
    preset: str = Field("veryfast", description="x264 preset: ultrafast .. veryslow")
    draw_keypoints: bool = Field(True, description="draw the six face keypoints (eyes, nose, mouth, ears)")
    draw_scores: bool = Field(True, description="label each box with its score")


SinkSettings = Annotated[JsonlSinkSettings | VideoSinkSettings, Field(discriminator="type")]


class HttpSettings(StrictModel):
    """The optional HTTP server: /metrics, /healthz, /readyz, /api/*, live view."""

    enabled: bool = Field(False, description="serve metrics, health, stats and the live view over HTTP")
    host: str = Field("127.0.0.1", description="address to listen on; 0.0.0.0 exposes it to the network")
    port: int = Field(8080, ge=0, le=65535, description="TCP port; 0 picks a free one (logged at start)")
    live_fps: float = Field(10.0, gt=0.0, le=120.0, description="most frames per second sent to a viewer")
    jpeg_quality: int = Field(80, ge=10, le=100, description="JPEG quality of the live view")


class Settings(BaseSettings):
    """Everything a run needs. See config/example.yaml for a documented example."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        nested_model_default_partial_update=True,
    )

    sources: list[SourceSettings] = Field(default_factory=list, description="inputs to process")
    detector: DetectorSettings = Field(default_factory=DetectorSettings)
    sinks: list[SinkSettings] = Field(default_factory=list, description="where results go")
    http: HttpSettings = Field(default_factory=HttpSettings)
    sink_queue_size: int = Field(
        64, ge=1, le=100_000, description="results queued per sink before inference waits for it"
    )
    progress: bool = Field(True, description="show a progress bar for files when attached to a terminal")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="streamproc's log detail when no -v/-q/--debug flag is given"
    )


class _YamlSource(PydanticBaseSettingsSource):
    """Feeds an already-parsed YAML mapping into pydantic-settings."""

    def __init__(self, settings_cls: type[BaseSettings], data: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = dict(data)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML config file into a mapping, with errors that name the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"config file {path} is not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings, not {type(data).__name__}")
    return data


def load_settings(config_path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Build the settings from file, environment and command-line overrides (highest precedence)."""
    file_data = read_config_file(config_path) if config_path else {}
    cli_data = dict(overrides or {})

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return init_settings, env_settings, _YamlSource(settings_cls, file_data)

    try:
        loaded = _Loaded(**cli_data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, config_path, cli_data)) from None
    return loaded


def _describe(exc: ValidationError, config_path: Path | None, cli_data: Mapping[str, Any]) -> str:
    """One line naming the first bad key, where it came from and what is wrong."""
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    # pydantic adds the union member's tag to the location of discriminated unions; drop it
    key = ".".join(part for part in loc if part not in ("jsonl", "video"))
    origin = _origin(error["loc"], config_path, cli_data)
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown setting (check the spelling; see config/example.yaml)"
    more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
    return f"invalid setting '{key}' {origin}: {message}{more}"


def _origin(loc: tuple[Any, ...], config_path: Path | None, cli_data: Mapping[str, Any]) -> str:
    top = str(loc[0]) if loc else ""
    if top in cli_data:
        return "on the command line"
    exact_env = ENV_PREFIX + ENV_NESTED_DELIMITER.join(str(part) for part in loc).upper()
    if exact_env in os.environ:
        return f"in environment variable {exact_env}"
    env_name = ENV_PREFIX + top.upper()
    if any(name.upper().startswith(env_name) for name in os.environ):
        return f"in environment variable {env_name}*"
    if config_path:
        return f"in {config_path}"
    return "in the settings"
