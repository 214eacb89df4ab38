"""Live runs from the command line: Ctrl-C while a camera is unreachable, --duration, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, CliRunner, read_records
from live_run import wait_until
from rtsp_server import RtspServer, free_tcp_port

pytestmark = pytest.mark.slow  # live runs of the command line for a duration


class CliProcess:
    """``python -m streamproc run ...`` in the background, its stderr collected line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamproc", "run", *args, "--no-progress"],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def read_to_end(self) -> None:
        """After the process ended: wait until the reader has every line (it may lag behind)."""
        self._reader.join(timeout=10)

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.mark.parametrize("camera", ["closed-port", "hanging-camera"])
def test_ctrl_c_stops_within_two_seconds_while_retrying(silent_server: int, camera: str) -> None:
    port = free_tcp_port() if camera == "closed-port" else silent_server
    waiting_for = "reconnecting" if camera == "closed-port" else "connecting to"
    # a long connect timeout: the capture thread is stuck inside FFmpeg when Ctrl-C comes
    cli = CliProcess(f"rtsp://127.0.0.1:{port}/cam", env={"STREAMPROC_LIVE__CONNECT_TIMEOUT": "20"})
    try:
        wait_until(lambda: cli.saw(waiting_for), 30, f"'{waiting_for}' in the log")
        time.sleep(1.0)
        asked = time.monotonic()
        cli.process.send_signal(signal.SIGINT)
        returncode = cli.process.wait(timeout=10)
        took = time.monotonic() - asked
        cli.read_to_end()
    finally:
        cli.kill()
    log = "".join(cli.lines)
    assert took < 2.0, f"exit took {took:.2f} s\n{log}"
    assert returncode == 1, "no camera ever streamed: the run failed"
    assert "error: cam: never streamed" in log, log
    assert "SIGINT received" in log and "Traceback" not in log


def test_cli_runs_cameras_and_a_file_for_a_duration(
    rtsp_server: RtspServer, sample_video: Path, tmp_path: Path, run_cli: CliRunner
) -> None:
    rtsp_server.publish("cam", sample_video)
    with_password = rtsp_server.url("cam", credentials="viewer:s3cret")
    nobody_home = f"rtsp://127.0.0.1:{free_tcp_port()}/gone"
    started = time.monotonic()
    result = run_cli(
        "run",
        with_password,
        nobody_home,
        sample_video,
        "--rtsp-transport",
        "udp",
        "--duration",
        "5",
        "--events",
        tmp_path / "{source}.jsonl",
        "--no-progress",
        "-vv",
        timeout=60,
        env={
            "STREAMPROC_LIVE__RECONNECT__MAX_ATTEMPTS": "2",
            "STREAMPROC_LIVE__RECONNECT__INITIAL": "0.2",
            "STREAMPROC_LIVE__GIVE_UP_AFTER": "0",
        },
    )
    took = time.monotonic() - started
    # one camera failed, the other streamed: reported, but not a failed run
    assert result.returncode == 0, result.stderr
    assert 5 <= took < 20
    camera = read_records(tmp_path / "cam.jsonl")
    assert len(camera) >= 40 and sum(bool(record["faces"]) for record in camera) >= 0.9 * len(camera)
    assert len(read_records(tmp_path / "sample.jsonl")) == 100
    gone = [json.loads(line) for line in (tmp_path / "gone.jsonl").read_text().splitlines()]
    assert [record["type"] for record in gone][-1] == "summary", "the run's accounting ends the file"
    assert {record["type"] for record in gone[:-1]} == {"status"} and gone[-2]["state"] == "failed"
    assert "gone: cannot connect" in result.stderr and "gave up after 2 attempts" in result.stderr
    assert "latency ms p50" in result.stderr and "ran for 5 s" in result.stderr
    everything = result.stderr + result.stdout + (tmp_path / "cam.jsonl").read_text()
    assert "s3cret" not in everything and "viewer" not in everything


def test_exit_code_when_every_camera_failed(run_cli: CliRunner) -> None:
    result = run_cli(
        "run",
        f"rtsp://127.0.0.1:{free_tcp_port()}/a",
        f"rtsp://127.0.0.1:{free_tcp_port()}/b",
        "--no-progress",
        timeout=60,
        env={
            "STREAMPROC_LIVE__RECONNECT__MAX_ATTEMPTS": "2",
            "STREAMPROC_LIVE__RECONNECT__INITIAL": "0.1",
            "STREAMPROC_LIVE__GIVE_UP_AFTER": "0",
        },
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 2, "one line per camera"
    assert "a: cannot connect" in errors[0] and "b: cannot connect" in errors[1]


def test_rtsp_url_without_host_is_a_clear_error(run_cli: CliRunner) -> None:
    result = run_cli("run", "rtsp://user:pw@/stream", "--no-progress")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "has no host" in errors[0] and "rtsp://***@/stream" in errors[0]
