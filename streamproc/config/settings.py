"""One validated settings object, from a YAML file, ``STREAMPROC_`` environment variables and CLI flags.

Precedence, highest first: command line, environment, config file, defaults. Nothing here reads
the environment at import time; :func:`load_settings` does it when called.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from streamproc.config.suggest import closest, keys_at
from streamproc.config.yaml_file import read_config_file, refuse_bool_for_number
from streamproc.core.errors import ConfigError

ENV_PREFIX = "STREAMPROC_"
SHUTDOWN_GRACE_S = 15.0  # once the run is stopping, a failing sink tries for this long at most
ENV_NESTED_DELIMITER = "__"
# queued results per sink that keeps whole frames (~50 MB at 1080p): more costs memory, not speed
PICTURE_QUEUE_LIMIT = 16


class NumbersAreNumbers(BaseModel):
    """YAML's true/false given for a number setting are errors (pydantic would take them as 1/0)."""

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        return refuse_bool_for_number(data, cls.model_fields)


class StrictModel(NumbersAreNumbers):
    """Base for every config section: unknown keys are errors, and so are infinities and booleans
    given for numbers."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# Where a model runs, apart from what it computes (MediaPipe's BaseOptions beside its task options):
# the CPU today; a GPU runtime or delegate adds its name here and its loader in inference/runtime.py.
Device = Literal["cpu"]
DEVICE_HELP = "where the model runs: cpu (LiteRT, or TensorFlow for Keras/SavedModel/TF.js)"


class DetectorSettings(StrictModel):
    """BlazeFace face detection, run on every frame."""

    model: str = Field(
        "short",
        pattern=r"^(short|full|.+\.json)$",
        description="short: faces within ~2 m (128x128 input); full: up to ~5 m (192x192, sparse model); "
        "or the path of a TF.js BlazeFace model.json (256x256, e.g. Human's blazeface.json)",
    )
    min_score: float | None = Field(
        None, ge=0.0, le=1.0, description="drop faces scoring below this (default 0.5 short, 0.6 full)"
    )
    nms_iou: float = Field(0.3, gt=0.0, le=1.0, description="IoU above which overlapping boxes merge")
    threads: int = Field(1, ge=1, le=64, description="LiteRT CPU threads for the detector")
    device: Device = Field("cpu", description=DEVICE_HELP)


class BackoffSettings(StrictModel):
    """Reconnect delays: initial * factor**attempt, capped, with random jitter so cameras that went
    down together do not reconnect in lockstep."""

    initial: float = Field(0.5, gt=0, le=3600, description="seconds before the first retry")
    factor: float = Field(2.0, ge=1, le=10, description="each failed attempt multiplies the delay by this")
    max: float = Field(30.0, gt=0, le=86_400, description="cap on the delay, seconds")
    jitter: float = Field(0.2, ge=0, le=1, description="delays vary randomly by +- this fraction")
    reset_after: float = Field(
        30.0,
        ge=0,
        description="seconds of healthy streaming after which a break is retried at once and the delay"
        " starts over",
    )
    max_attempts: int = Field(
        0,
        ge=0,
        description="failed attempts in a row before a source that never streamed fails; 0: retry forever",
    )


class LiveSettings(StrictModel):
    """Live sources (RTSP and local cameras): transport, timeouts and reconnection."""

    transport: Literal["auto", "tcp", "udp"] = Field(
        "auto",
        description="RTSP transport for the media (RTP): auto tries TCP, falls back to UDP when the server"
        " refuses TCP, switches to the other when no video packet arrives within connect_timeout (over UDP:"
        " a firewall or NAT dropping it), and keeps what worked; tcp or udp force one",
    )
    connect_timeout: float = Field(
        5.0,
        gt=0,
        le=600,
        description="seconds allowed for each step of connecting (handshake, probing: over UDP, the wait"
        " for the first video packet)",
    )
    read_timeout: float = Field(5.0, gt=0, le=600, description="seconds without any data before reconnecting")
    stall_timeout: float = Field(
        10.0, gt=0, le=3600, description="seconds without a new frame while connected before reconnecting"
    )
    reconnect: BackoffSettings = Field(
        default_factory=BackoffSettings, description="exponential backoff between connection attempts"
    )
    misconfig_attempts: int = Field(
        3,
        ge=1,
        le=1000,
        description="attempts in a row that fail for a reason retrying cannot fix (wrong password, path or"
        " transport; not a video stream) before the source is failed",
    )
    retry_forever_on_misconfig: bool = Field(
        False, description="keep retrying a misconfigured source at the longest backoff delay instead"
    )
    give_up_after: float = Field(
        30.0,
        ge=0,
        le=86_400,
        description="a source that never delivered a frame gives up (misconfig_attempts, max_attempts) only"
        " after trying this many seconds; one that has delivered a frame retries for the whole run",
    )


def _overrides_of(model: type[BaseModel]) -> type[BaseModel]:
    """The same fields, checks and nesting as ``model``, all optional: the keys a source overrides."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation: Any = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            annotation = _overrides_of(annotation)
        optional = copy.copy(info)
        optional.default, optional.default_factory = None, None
        optional.annotation = annotation | None
        fields[name] = (optional.annotation, optional)
    return create_model(f"{model.__name__}Overrides", __base__=StrictModel, **fields)


if TYPE_CHECKING:  # built at run time, so type checkers only know it is a model
    LiveOverrides = BaseModel
else:
    LiveOverrides = _overrides_of(LiveSettings)


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(base[key], value) if isinstance(value, Mapping) else value
    return merged


class CameraSettings(StrictModel):
    """What to ask a local camera for; the driver picks the nearest mode it supports."""

    width: int | None = Field(None, ge=1, le=16_384, description="requested width in pixels")
    height: int | None = Field(None, ge=1, le=16_384, description="requested height in pixels")
    fps: float | None = Field(None, gt=0, le=1000, description="requested frame rate")


class SourceSettings(StrictModel):
    """One input: a video file, an RTSP camera or a local camera."""

    url: str = Field(description="video file path, rtsp:// URL, /dev/videoN or camera:N")
    id: str | None = Field(None, description="name used in events and output paths; default: from the url")
    buffer_policy: Literal["auto", "block", "drop_oldest"] = Field(
        "auto", description="auto: block (lossless) for files, drop_oldest (freshest) for live sources"
    )
    buffer_size: int = Field(16, ge=1, le=10_000, description="frames held between decoder and inference")
    live: LiveOverrides = Field(
        default_factory=LiveOverrides, description="keys of the global 'live' settings to change here"
    )
    camera: CameraSettings = Field(default_factory=CameraSettings, description="local cameras only")
    video_track: int | None = Field(
        None,
        ge=0,
        le=1000,
        description="files only: which video track to read, counting from 0 (default: the first; a file"
        " with several says which it reads)",
    )
    realtime: bool = Field(
        False,
        description="files only: deliver frames at the file's own frame rate, like a camera (a recording"
        " replayed as a live source: drop_oldest buffering, frames dropped when processing falls behind)",
    )
    loop: bool = Field(
        False, description="files only: start again at the end, until stopped or 'duration' has passed"
    )
    group: str | None = Field(
        None, description="distributed runs: live sources of one group share a worker (see 'distributed')"
    )


class JsonlSinkSettings(StrictModel):
    """Append one JSON object per processed frame to a file."""

    type: Literal["jsonl"]
    path: Path = Field(description="output file; '{source}' is replaced by the source id")
    existing: Literal["append", "replace", "refuse"] = Field(
        "append",
        description="an existing file: append to it, replace it when the run ends (written aside until"
        " then), or refuse to start",
    )
    include_empty: bool = Field(True, description="also write frames in which no face was found")
    events: bool = Field(True, description="also write track and scene events, one line each")


RedactMode = Literal["blur", "pixelate", "fill"]


class RedactSettings(StrictModel):
    """Privacy redaction, for sinks with ``redact:`` and POST /api/v1/redact: recall first. Faces are
    covered from their own, lower score threshold, with a margin that takes in the whole head, and a
    tracked face stays covered where it was predicted on frames the detector misses it (up to
    tracking.max_missed). Redacting runs use the full-range model unless detector.model is set."""

    min_score: float = Field(
        0.25, gt=0.0, lt=1.0, description="cover faces scoring this much (other outputs: detector.min_score)"
    )
    lookback: int = Field(
        8,
        ge=0,
        le=64,
        description="frames before a face's first sighting covered too, where it came in (a redacted video"
        " is written this many frames later)",
    )
    margin: float = Field(
        0.4,
        ge=0.0,
        le=3.0,
        description="added around each face box on the sides and below, twice above,"
        " as a fraction of its size: the whole head",
    )


class VideoSinkSettings(StrictModel):
    """Write annotated H.264 MP4: same size, frame rate and timing as the input."""

    type: Literal["video"]
    path: Path = Field(description="output file; '{source}' is replaced by the source id")
    existing: Literal["replace", "refuse"] = Field(
        "replace",
        description="an existing file: replace it when the video is complete (written aside, as"
        " NAME.partial.mp4, until then), or refuse to start",
    )
    crf: int = Field(23, ge=0, le=51, description="x264 constant rate factor: lower is better quality")
    preset: str = Field("veryfast", description="x264 preset: ultrafast .. veryslow")
    draw_keypoints: bool = Field(True, description="draw the six face keypoints (eyes, nose, mouth, ears)")
    draw_scores: bool = Field(True, description="label each box with its score")
    audio: bool = Field(
        True,
        description="copy the input's audio into the video (not re-encoded; files only, not streams;"
        " --no-audio: off)",
    )
    redact: RedactMode | None = Field(
        None,
        description="a redacted video: every face's head blurred, pixelated or filled (see 'redact'),"
        " nothing drawn unless draw_boxes is true",
    )
    draw_boxes: bool | None = Field(None, description="draw face boxes; default: yes, unless redact is set")


class ImagesSinkSettings(StrictModel):
    """Photo inputs written back out, one file per photo: same name and format, EXIF orientation
    applied, metadata (GPS, camera, EXIF) left out."""

    type: Literal["images"]
    dir: Path = Field(description="folder; '{source}' is replaced by the source id")
    existing: Literal["replace", "refuse"] = Field(
        "replace", description="an existing file of the same name: replace it (written aside until then)"
    )
    redact: RedactMode | None = Field(
        None, description="blur, pixelate or fill every face's head; none: draw the face boxes instead"
    )
    draw_boxes: bool | None = Field(None, description="draw face boxes; default: yes, unless redact is set")
    quality: int = Field(95, ge=1, le=100, description="JPEG and WebP quality")


QoS = Literal[0, 1, 2]


class MqttQosSettings(StrictModel):
    """MQTT quality of service per kind of topic: 0 at most once, 1 at least once, 2 exactly once."""

    available: QoS = Field(1, description="QoS of {prefix}/available (online/offline)")
    events: QoS = Field(1, description="QoS of {prefix}/events (track events)")
    faces: QoS = Field(1, description="QoS of {prefix}/{source}/faces (face count)")
    status: QoS = Field(1, description="QoS of {prefix}/{source}/status (source state)")
    snapshot: QoS = Field(0, description="QoS of {prefix}/{source}/snapshot (JPEG)")
    stats: QoS = Field(0, description="QoS of {prefix}/stats (periodic statistics)")
    detections: QoS = Field(0, description="QoS of {prefix}/{source}/detections (per-frame records)")
    discovery: QoS = Field(1, description="QoS of Home Assistant discovery configs")


class HomeAssistantSettings(StrictModel):
    """Home Assistant MQTT discovery: each source appears as a 'face detected' binary sensor and a
    'faces' sensor."""

    enabled: bool = Field(False, description="publish discovery configs (opt-in)")
    discovery_prefix: str = Field("homeassistant", min_length=1, description="Home Assistant's prefix")
    node_id: str | None = Field(None, description="groups this instance's entities; default: topic prefix")


class MqttSinkSettings(StrictModel):
    """Publish events, face counts, source status and stats to the broker in the ``mqtt`` section."""

    type: Literal["mqtt"]
    qos: MqttQosSettings = Field(default_factory=MqttQosSettings)
    queue_size: int = Field(
        10_000, ge=1, le=10_000_000, description="messages held while the broker is away; oldest dropped"
    )
    max_inflight: int = Field(20, ge=1, le=65_535, description="QoS>=1 messages awaiting their ack")
    reconnect_min_delay: float = Field(0.5, gt=0, le=3600, description="first retry after a loss (s)")
    reconnect_max_delay: float = Field(30.0, gt=0, le=3600, description="retries slow down to this (s)")
    stats_interval: float = Field(10.0, ge=0, description="seconds between {prefix}/stats messages; 0: off")
    snapshot: bool = Field(False, description="publish a JPEG of the best face")
    snapshot_interval: float = Field(5.0, ge=0, description="at most one snapshot per source this often (s)")
    snapshot_quality: int = Field(85, ge=1, le=100, description="JPEG quality of snapshots")
    detections: bool = Field(False, description="publish per-frame detections")
    detections_interval: float = Field(1.0, ge=0, description="min seconds between them; 0: all")
    home_assistant: HomeAssistantSettings = Field(default_factory=HomeAssistantSettings)

    @model_validator(mode="before")
    @classmethod
    def _no_close_timeout(cls, data: Any) -> Any:
        # one bound for every output once a run stops; a config from before says where it went
        if isinstance(data, dict) and "close_timeout" in data:
            raise ValueError("close_timeout was replaced by the top-level shutdown_grace: move it there")
        return data

    @model_validator(mode="after")
    def _delays_ordered(self) -> MqttSinkSettings:
        if self.reconnect_max_delay < self.reconnect_min_delay:
            raise ValueError("reconnect_max_delay must not be less than reconnect_min_delay")
        return self


SinkSettings = Annotated[
    JsonlSinkSettings | VideoSinkSettings | MqttSinkSettings | ImagesSinkSettings, Field(discriminator="type")
]


class MqttTlsSettings(StrictModel):
    """TLS to the broker. The server certificate is always verified (against ca_file or the system CAs)."""

    enabled: bool = Field(False, description="connect with TLS")
    ca_file: FilePath | None = Field(None, description="CA certificate(s) in PEM; default: the system's CAs")
    cert_file: FilePath | None = Field(None, description="client certificate in PEM, for brokers that ask")
    key_file: FilePath | None = Field(None, description="client private key in PEM (if not in cert_file)")
    insecure: bool = Field(False, description="skip the host-name check (the chain is still verified)")

    @model_validator(mode="after")
    def _key_needs_cert(self) -> MqttTlsSettings:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file is set but cert_file is not: give the client certificate too")
        return self


class MqttSettings(StrictModel):
    """The MQTT broker and topic layout, shared by the mqtt sink and ``streamproc events``."""

    host: str = Field("localhost", min_length=1, description="broker host name or address")
    port: int = Field(1883, ge=1, le=65_535, description="broker port (1883 plain, 8883 TLS by convention)")
    protocol: Literal["3.1.1", "5"] = Field("3.1.1", description="MQTT protocol version")
    client_id: str | None = Field(None, description="default: unique per connection")
    username: str | None = Field(
        None, description="broker login; the password comes from STREAMPROC_MQTT__PASSWORD"
    )
    password: SecretStr | None = Field(None, description="better set STREAMPROC_MQTT__PASSWORD")
    keepalive: int = Field(30, ge=5, le=65_535, description="seconds between keep-alive pings")
    connect_timeout: float = Field(10.0, gt=0, le=600, description="seconds to wait for the broker's answer")
    topic_prefix: str = Field("streamproc", description="every topic starts with this")
    instance: str | None = Field(
        None, description="names this process: availability goes to {prefix}/{instance}/available"
    )
    tls: MqttTlsSettings = Field(default_factory=MqttTlsSettings)

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value  # YAML reads `5` as a number

    @field_validator("topic_prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        if not value or value.startswith("/") or value.endswith("/") or any(c in value for c in "+#\0"):
            raise ValueError("must be a topic like 'streamproc' or 'home/cams': no '+', '#' or outer '/'")
        return value

    @model_validator(mode="after")
    def _password_needs_user(self) -> MqttSettings:
        if self.password is not None and self.username is None:
            raise ValueError("a password is set but no username: set mqtt.username too")
        return self


class DetectApiSettings(StrictModel):
    """POST /api/v1/detect: faces, and on request classifications, in one uploaded image."""

    enabled: bool = Field(True, description="serve the detection API")
    workers: int = Field(2, ge=1, le=64, description="inference threads, each with its own interpreters")
    queue_size: int = Field(32, ge=1, le=100_000, description="requests waiting for a worker; more get 503")
    batch: int = Field(8, ge=1, le=256, description="most queued requests one worker takes at once")
    max_body_mb: float = Field(20.0, gt=0, le=1024, description="largest request body, megabytes")
    max_megapixels: float = Field(
        50.0, gt=0, le=1000, description="largest image, read from its header before decoding"
    )
    max_scans: int = Field(
        100, ge=1, le=100_000, description="most JPEG scans (progressive passes), counted before decoding"
    )
    cpu_budget_s: float = Field(
        2.0, gt=0, le=600, description="CPU seconds one image may take to decode; the decode is killed after"
    )
    models: list[str] = Field(
        default_factory=list,
        description="classifier models requests may name (model=), manifest names or paths; the "
        "classifier section's model is one of them when classification is enabled",
    )


class HttpSettings(StrictModel):
    """The optional HTTP server: /metrics, /healthz, /readyz, /api/*, live view, detection API."""

    enabled: bool = Field(False, description="serve metrics, health, stats and the live view over HTTP")
    host: str = Field("127.0.0.1", description="address to listen on; beyond loopback a token is required")
    port: int = Field(8080, ge=0, le=65535, description="TCP port; 0 picks a free one (logged at start)")
    live_fps: float = Field(10.0, gt=0.0, le=120.0, description="most frames per second sent to a viewer")
    jpeg_quality: int = Field(80, ge=10, le=100, description="JPEG quality of the live view")
    token: SecretStr | None = Field(
        None, description="bearer token every route but /healthz requires (STREAMPROC_HTTP__TOKEN)"
    )
    token_file: FilePath | None = Field(None, description="or a file holding the token")
    allowed_hosts: list[str] | None = Field(
        None,
        description="Host header names accepted besides IP addresses, which always are ('*': any); "
        "default: localhost and the listening address",
    )
    cors_origins: list[str] = Field(default_factory=list, description="origins allowed by CORS; none: off")
    tls_cert: FilePath | None = Field(None, description="serve HTTPS with this certificate (PEM)")
    tls_key: FilePath | None = Field(None, description="private key of tls_cert (PEM)")
    tls_key_password: SecretStr | None = Field(
        None, description="passphrase of an encrypted tls_key (STREAMPROC_HTTP__TLS_KEY_PASSWORD)"
    )
    request_timeout: float = Field(
        10.0, gt=0, le=3600, description="seconds a client has to send a request's headers and body"
    )
    idle_timeout: float = Field(5.0, gt=0, le=3600, description="seconds an idle keep-alive connection stays")
    max_connections: int = Field(
        512, ge=1, le=100_000, description="open connections beyond which requests get 503"
    )
    api: DetectApiSettings = Field(default_factory=DetectApiSettings)

    @model_validator(mode="after")
    def _tls_pair(self) -> HttpSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both or neither")
        if self.token is not None and self.token_file is not None:
            raise ValueError("token and token_file are alternatives: give one")
        return self


class TrackingSettings(StrictModel):
    """Faces become tracks with stable ids; tracks raise new / update / end events."""

    enabled: bool = Field(True, description="track faces and send events")
    min_hits: int = Field(3, ge=1, le=1000, description="frames in a row a face must be seen before 'new'")
    max_missed: int = Field(15, ge=0, le=100_000, description="frames a track may go unseen before 'end'")
    max_missed_s: float | None = Field(None, gt=0, description="or seconds (media time) unseen before 'end'")
    iou_threshold: float = Field(
        0.2, gt=0, le=1, description="least IoU of a face with a track's predicted box"
    )
    high_score: float = Field(
        0.6, ge=0, le=1, description="faces scoring this much start tracks; weaker ones only extend tracks"
    )
    update_interval_s: float = Field(1.0, ge=0, description="at most one 'update' per track this often")
    better_view_gain: float = Field(
        0.05, gt=0, le=1, description="quality gain that makes a view the track's new best (snapshot)"
    )


class SnapshotSettings(StrictModel):
    """Best face crop per track as JPEG: {dir}/{source}/{track_id}.jpg."""

    enabled: bool = Field(False, description="save each track's best view (also: --snapshots DIR)")
    dir: Path = Field(Path("out/snapshots"), description="folder; one sub-folder per source")
    margin: float = Field(0.4, ge=0, le=3, description="added on each side, as a fraction of the face size")
    size: int = Field(256, ge=0, le=4096, description="side of the square JPEG in pixels; 0: as cropped")
    quality: int = Field(90, ge=1, le=100, description="JPEG quality")
    full_frame: bool = Field(False, description="also save the whole frame with the face boxed")


class FaceClassifySettings(StrictModel):
    """When a tracked face is classified: at confirmation, then on a better view and every N frames."""

    margin: float = Field(0.25, ge=0, le=3, description="added around the face, fraction of its size")
    every_n_frames: int = Field(75, ge=0, description="classify each tracked face again this often; 0: never")
    on_better_view: bool = Field(True, description="classify again when the track's best view improves")
    min_gap_frames: int = Field(10, ge=0, description="never classify one face more often than this")


class KeyframeSettings(StrictModel):
    """Which frames are classified whole (scene events)."""

    policy: Literal["every_n", "codec_keyframes", "scene_change"] = Field(
        "every_n", description="every N-th frame, the codec's key frames, or when the scene changes"
    )
    every_n: int = Field(125, ge=1, description="every_n: classify every N-th frame")
    scene_threshold: float = Field(
        0.12, gt=0, le=1, description="scene_change: mean change of a small grey thumbnail, 0..1"
    )
    min_gap_frames: int = Field(25, ge=0, description="codec_keyframes / scene_change: at most this often")


class ClassifierSettings(StrictModel):
    """MobileNet (or any image classifier) on face crops and/or key frames."""

    enabled: bool = Field(False, description="classify (also: --classify faces|keyframes|both)")
    targets: Literal["faces", "keyframes", "both"] = Field(
        "faces", description="face crops of tracks, whole frames, or both"
    )
    model: str = Field("mobilenet_v2", description="a name from `streamproc models list` or a model path")
    top_k: int = Field(5, ge=1, le=1000, description="labels reported per classification")
    threads: int = Field(1, ge=1, le=64, description="CPU threads for the classifier")
    device: Device = Field("cpu", description=DEVICE_HELP)
    # How a model given by path wants its input; manifest models declare these themselves.
    preprocessing: Literal["raw", "minus1_1", "zero_1", "mean_std"] | None = Field(
        None, description="model path only: pixels 0..255 as they are, [-1, 1], [0, 1] or (p - mean) / std"
    )
    mean: tuple[float, float, float] | None = Field(None, description="mean_std: per-channel means")
    std: tuple[float, float, float] | None = Field(None, description="mean_std: per-channel deviations")
    output: Literal["probabilities", "logits"] = Field(
        "probabilities", description="model path only: softmax already applied, or logits"
    )
    labels: Path | None = Field(None, description="labels file, one class name per line")
    label_offset: int = Field(0, ge=0, description="class index of the labels file's first line")
    faces: FaceClassifySettings = Field(default_factory=FaceClassifySettings)
    keyframes: KeyframeSettings = Field(default_factory=KeyframeSettings)


class DistributedSettings(StrictModel):
    """Runs on Ray (``--workers N`` or ``--cluster ADDRESS``; needs ``pip install 'streamproc[ray]'``)."""

    cluster: str | None = Field(
        None, description="Ray address: 'auto' (a cluster started with `ray start`) or ray://host:10001"
    )
    max_retries: int = Field(3, ge=0, le=100, description="times a file is retried after its worker died")
    outputs: Literal["shared", "driver"] = Field(
        "shared",
        description="files: workers write outputs on storage all nodes share (same paths), or return "
        "them for the driver to write",
    )
    job: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="cameras on a cluster: run them as this named job, whose groups outlive the driver; "
        "a driver started again with the same job attaches to them",
    )
    photos_per_shard: int = Field(
        200, ge=1, le=1_000_000, description="photo collections are split into tasks of this many photos"
    )
    cameras_per_worker: int = Field(
        4, ge=1, le=10_000, description="live sources without a 'group' are packed this many per worker"
    )
    group_cpus: float = Field(1.0, gt=0, le=64, description="CPUs Ray reserves for each camera group")
    poll_interval: float = Field(
        0.5, gt=0, le=60, description="seconds between the driver's looks at the workers (stats, lost tracks)"
    )


class Settings(BaseSettings, NumbersAreNumbers):
    """Everything a run needs. `streamproc config example` prints a documented example."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        env_ignore_empty=True,  # `STREAMPROC_X= cmd` clears a variable, as in the shell (was: "" as a value)
        extra="forbid",
        allow_inf_nan=False,
        nested_model_default_partial_update=True,
    )

    live: LiveSettings = Field(default_factory=LiveSettings, description="defaults for every live source")
    sources: list[SourceSettings] = Field(default_factory=list, description="inputs to process")
    detector: DetectorSettings = Field(default_factory=DetectorSettings)
    sinks: list[SinkSettings] = Field(default_factory=list, description="where results go")
    http: HttpSettings = Field(default_factory=HttpSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings, description="broker for mqtt sinks and events")
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    snapshots: SnapshotSettings = Field(default_factory=SnapshotSettings)
    classifier: ClassifierSettings = Field(default_factory=ClassifierSettings)
    redact: RedactSettings = Field(default_factory=RedactSettings)
    models_dir: Path | None = Field(
        None, description="fetched models (MobileNets); default ~/.cache/streamproc/models"
    )
    sink_queue_size: int = Field(
        64,
        ge=1,
        le=100_000,
        description="results queued per sink before inference waits for it (at most"
        f" {PICTURE_QUEUE_LIMIT} for sinks that keep whole frames: video, live view, MQTT snapshots)",
    )
    queue_bytes: int = Field(
        128 * 2**20,
        ge=1,
        description="decoded pictures each queue (a source's buffer, a sink's queue) holds, in bytes,"
        " at most (at least one frame): bounds memory for huge pictures; 128 MiB by default",
    )
    shutdown_grace: float = Field(
        SHUTDOWN_GRACE_S,
        ge=0,
        le=3600,
        description="seconds an output keeps trying once the run is stopping (Ctrl-C, SIGTERM, end of"
        " input): a file that cannot be written (disk full, live runs), MQTT messages the broker has not"
        " taken; then it gives up, says how many records or messages were not delivered and where, and"
        " the run exits 1",
    )
    progress: bool = Field(True, description="show a progress bar for files when attached to a terminal")
    duration: float | None = Field(
        None, gt=0, description="stop after this many seconds; default: live sources run until stopped"
    )
    workers: int | None = Field(
        None, ge=1, le=10_000, description="process the inputs with this many Ray workers on this machine"
    )
    distributed: DistributedSettings = Field(default_factory=DistributedSettings)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="streamproc's log detail when no -v/-q/--debug flag is given"
    )

    def live_for(self, source: SourceSettings) -> LiveSettings:
        """The global live settings with this source's overrides applied, key by key."""
        overrides = source.live.model_dump(exclude_none=True)
        return LiveSettings.model_validate(_merge(self.live.model_dump(), overrides))


class _YamlSource(PydanticBaseSettingsSource):
    """Feeds an already-parsed YAML mapping into pydantic-settings."""

    def __init__(self, settings_cls: type[BaseSettings], data: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = dict(data)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


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
        raise ConfigError(_describe(exc, config_path, file_data, cli_data)) from None
    return loaded


def _describe(
    exc: ValidationError, config_path: Path | None, file_data: Mapping[str, Any], cli_data: Mapping[str, Any]
) -> str:
    """One line naming the first bad key, where it came from and what is wrong."""
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    # pydantic adds the union member's tag after the list index (sinks.0.<type>.field); drop it
    key = ".".join(part for i, part in enumerate(loc) if not (i == 2 and loc[0] == "sinks"))
    origin = _origin(error["loc"], config_path, file_data, cli_data)
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        match = closest(str(error["loc"][-1]), keys_at(Settings, error["loc"][:-1]))
        hint = f"did you mean '{match}'? " if match else "check the spelling; "
        message = f"unknown setting ({hint}`streamproc config example` lists every key)"
    more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
    return f"invalid setting '{key}' {origin}: {message}{more}"


def _origin(
    loc: tuple[Any, ...], config_path: Path | None, file_data: Mapping[str, Any], cli_data: Mapping[str, Any]
) -> str:
    top = str(loc[0]) if loc else ""
    if top in cli_data:
        return "on the command line"
    exact_env = ENV_PREFIX + ENV_NESTED_DELIMITER.join(str(part) for part in loc).upper()
    if exact_env in os.environ:
        return f"in environment variable {exact_env}"
    # the file names this very key: another variable of the same section (a password) is not to blame
    if config_path and _holds(file_data, loc):
        return f"in {config_path}"
    env_name = ENV_PREFIX + top.upper()
    if any(name.upper().startswith(env_name) for name in os.environ):
        return f"in environment variable {env_name}*"
    if config_path:
        return f"in {config_path}"
    return "in the settings"


def _holds(data: Any, loc: tuple[Any, ...]) -> bool:
    """Whether the parsed YAML has a value at this error location (pydantic's union tags skipped)."""
    for part in loc:
        in_list = isinstance(data, list) and isinstance(part, int) and part < len(data)
        if in_list or (isinstance(data, Mapping) and part in data):
            data = data[part]
        elif not isinstance(part, int) and isinstance(data, Mapping) and data.get("type") == part:
            continue  # the tag of a sinks union member (sinks.0.mqtt.host)
        else:
            return False
    return True
