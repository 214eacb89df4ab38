"""Shared fixtures: the shared reference data, sample videos and a CLI runner."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import av
import pytest
from rtsp_server import RtspServer

from streamproc.inference.blazeface import BlazeFaceDetector

REPO = Path(__file__).resolve().parents[1]

pytest_plugins = ["mqtt_support", "ray_support"]  # Mosquitto brokers, a test CA and MQTT helpers; Ray


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only reference data beside the repository (override with STREAMPROC_SHARED_DIR)."""
    path = Path(os.environ.get("STREAMPROC_SHARED_DIR", REPO.parent / "shared"))
    assert path.is_dir(), f"reference data folder {path} is missing (set STREAMPROC_SHARED_DIR)"
    return path


@pytest.fixture(scope="session", autouse=True)
def models_dir(shared_dir: Path) -> Path:
    """MobileNets come from ../shared/models unless STREAMPROC_MODELS_DIR says otherwise (as in .ci/run)."""
    os.environ.setdefault("STREAMPROC_MODELS_DIR", str(shared_dir / "models"))
    return Path(os.environ["STREAMPROC_MODELS_DIR"])


def read_records(path: Path, *types: str) -> list[dict]:
    """JSON Lines records of the given types ("frame" by default; events: "new", "update", ...)."""
    wanted = set(types or ("frame",))
    records = (json.loads(line) for line in path.read_text().splitlines())
    return [record for record in records if record["type"] in wanted]


@pytest.fixture(scope="session")
def sample_maker() -> ModuleType:
    """The project's sample script, imported from samples/make_sample.py."""
    spec = importlib.util.spec_from_file_location("make_sample", REPO / "samples" / "make_sample.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def sample_video() -> Path:
    """The committed sample: 640x360, 25 fps, 100 frames, two moving faces."""
    path = REPO / "samples" / "sample.mp4"
    assert path.is_file(), (
        "samples/sample.mp4 is missing: run python samples/make_sample.py samples/sample.mp4"
    )
    return path


@pytest.fixture(scope="session")
def long_video(tmp_path_factory: pytest.TempPathFactory, sample_maker: ModuleType) -> Path:
    """40 s (1000 frames) of the moving sample: seconds of processing, time to act while it runs."""
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    return sample_maker.make_sample(path, width=640, height=360, fps=25, seconds=40)


def count_frames(path: Path) -> tuple[int, float]:
    """Decode every frame of a video: (frame count, duration in seconds from the last pts)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count, last_pts, first_pts = 0, 0.0, None
        for frame in container.decode(stream):
            count += 1
            seconds = float(frame.pts * stream.time_base)
            first_pts = seconds if first_pts is None else first_pts
            last_pts = seconds
        rate = float(stream.average_rate)
    return count, last_pts - (first_pts or 0.0) + 1.0 / rate


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


CliRunner = Callable[..., CliResult]


def run_streamproc(*args: str | Path, timeout: float = 120, env: dict[str, str] | None = None) -> CliResult:
    """Run ``python -m streamproc ARGS`` in a subprocess, as a user would."""
    completed = subprocess.run(
        [sys.executable, "-m", "streamproc", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


@pytest.fixture
def run_cli() -> CliRunner:
    """Run ``python -m streamproc ARGS`` in a subprocess, as a user would."""
    return run_streamproc


@pytest.fixture(scope="session")
def blazeface() -> BlazeFaceDetector:
    """One short-range BlazeFace for tests that run pipelines (loading it once saves time)."""
    return BlazeFaceDetector("short")


@pytest.fixture
def make_rtsp_server(tmp_path: Path) -> Iterator[Callable[[], RtspServer]]:
    """Starts rtsp-server-perl instances on free loopback ports; all are killed after the test."""
    servers: list[RtspServer] = []

    def make() -> RtspServer:
        workdir = tmp_path / f"rtsp-{len(servers)}"
        workdir.mkdir()
        server = RtspServer(workdir)
        servers.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.close()


@pytest.fixture
def rtsp_server(make_rtsp_server: Callable[[], RtspServer]) -> RtspServer:
    """A running RTSP server; ``publish(name, video)`` adds a stream, ``url(name)`` is where to read it."""
    return make_rtsp_server()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never answers: a camera that hangs."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]
