"""Failures are visible and retried (issue 13, cases 3, 5, 9, 11): a full disk (a real tmpfs), a
broker ACL that refuses events (a real Mosquitto), the line that says why a run stopped, and a run
stopped on a disk that stays full ending within its shutdown grace."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO, CliRunner
from http_helpers import get, wait_for
from media_gen import ffprobe_frames
from mqtt_support import Broker, BrokerFactory

from streamproc.config.settings import (
    HttpSettings,
    JsonlSinkSettings,
    Settings,
    SourceSettings,
    VideoSinkSettings,
)
from streamproc.core.errors import OutputError
from streamproc.core.frames import SourceState, StatusEvent
from streamproc.media.pixels import PixelPlan
from streamproc.pipeline.build import build_pipeline
from streamproc.pipeline.run import RunReport
from streamproc.server import StatusServer
from streamproc.server.health import readiness
from streamproc.sinks.jsonl import JsonlSink
from streamproc.sinks.live import LiveViewSink

pytestmark = pytest.mark.slow  # full disks (tmpfs) and broker refusals, whole runs


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (CI runs as root)."""
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(disk: Path) -> Path:
    """Take every free byte of ``disk``."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as stream, contextlib.suppress(OSError):
        while True:
            stream.write(b"\0" * 4096)
    return filler


def _whole_lines(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), "no torn last line"
    return [json.loads(line) for line in data.splitlines()]


def test_full_disk_fails_a_file_run_and_keeps_the_good_video(
    tmp_path: Path, long_video: Path, sample_video: Path
) -> None:
    with small_disk(tmp_path / "disk", "1m") as disk:
        video, events = disk / "a.mp4", disk / "e.jsonl"
        video.write_bytes(sample_video.read_bytes())  # yesterday's good output
        settings = Settings(
            sources=[SourceSettings(url=str(long_video))],
            sinks=[
                JsonlSinkSettings(type="jsonl", path=events),
                VideoSinkSettings(type="video", path=video),
            ],
            progress=False,
        )
        pipeline = build_pipeline(settings)
        report = pipeline.run()
        assert not report.ok and len(report.sink_errors) == 2, report.sink_errors
        assert all("No space left" in error for error in report.sink_errors.values())
        ready, reasons = readiness(pipeline)  # what /readyz answers (503 when not ready)
        assert not ready and sum("failed:" in reason and "No space left" in reason for reason in reasons) == 2
        assert video.read_bytes() == sample_video.read_bytes(), "a failed run never replaces a good file"
        records = _whole_lines(events)
        frames = [record["frame"] for record in records if record["type"] == "frame"]
        assert frames == list(range(len(frames))) and frames, "whole records, none twice"
        decoded = ffprobe_frames(disk / "a.partial.mp4")  # what was written still plays
        print(f"disk full: {len(frames)} records written whole, {decoded} frames playable")
        assert decoded > 25


def test_full_disk_on_a_live_run_is_reported_retried_and_resumed(
    tmp_path: Path, sample_video: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with small_disk(tmp_path / "disk", "2m") as disk:
        events, video = disk / "e.jsonl", disk / "a.mp4"
        settings = Settings(
            sources=[SourceSettings(url=str(sample_video), realtime=True, loop=True)],
            sinks=[
                JsonlSinkSettings(type="jsonl", path=events),
                VideoSinkSettings(type="video", path=video),
            ],
            http=HttpSettings(enabled=True, host="127.0.0.1", port=0),
            progress=False,
        )
        live = LiveViewSink(settings.http.jpeg_quality)
        pipeline = build_pipeline(settings, extra_sinks=[live])
        reports: list[RunReport] = []
        runner = threading.Thread(target=lambda: reports.append(pipeline.run()), daemon=True)
        with StatusServer(settings.http, pipeline, live) as server, caplog.at_level(logging.WARNING):
            runner.start()
            wait_for(lambda: get(server.url + "readyz").status == 200, what="ready")
            partial = disk / "a.partial.mp4"
            wait_for(lambda: partial.exists() and partial.stat().st_size > 20_000, what="video fragments")
            filler = fill(disk)
            wait_for(lambda: len(get(server.url + "readyz").json()["reasons"]) == 2, what="both sinks stuck")
            reasons = get(server.url + "readyz").json()["reasons"]
            assert all("No space left on device; retrying" in reason for reason in reasons), reasons
            written = len(events.read_bytes().splitlines())
            filler.unlink()
            wait_for(lambda: get(server.url + "readyz").status == 200, timeout=40, what="ready again")
            wait_for(lambda: len(events.read_bytes().splitlines()) > written + 25, what="writing again")
            pipeline.stop()
            runner.join(30)
        assert reports[0].ok, reports[0].problems()
        assert "events file" in caplog.text and "writing again" in caplog.text
        records = [record for record in _whole_lines(events) if record["type"] == "frame"]
        frames = [record["frame"] for record in records]
        assert len(set(frames)) == len(frames) and frames == sorted(frames), "no duplicate, in order"
        before, after = ffprobe_frames(disk / "a.partial-1.mp4"), ffprobe_frames(video)
        print(f"live disk full: video set aside with {before} frames, {after} written after it")
        assert before > 0 and after > 0


def test_snapshots_on_a_full_disk_fail_the_run(
    tmp_path: Path, sample_video: Path, run_cli: CliRunner
) -> None:
    with small_disk(tmp_path / "disk", "64k") as disk:
        (disk / "snaps").mkdir()
        fill(disk)
        result = run_cli("run", sample_video, "--snapshots", disk / "snaps", "--no-progress")
    assert result.returncode == 1, result.stderr
    assert "cannot write snapshot" in result.stderr and "No space left" in result.stderr


def _acl_broker(broker_factory: BrokerFactory, denied: str) -> Broker:
    """Mosquitto whose ACL lets anonymous clients publish everything but the events topic."""
    broker = broker_factory()
    broker.stop()
    acl = broker.workdir / "acl"
    acl.write_text(f"topic readwrite #\ntopic deny {denied}\n")
    broker.config.write_text(broker.config.read_text() + f"acl_file {acl}\nlog_type all\n")
    broker.start()
    return broker


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_events_refused_by_the_broker(
    tmp_path: Path, sample_video: Path, broker_factory: BrokerFactory, run_cli: CliRunner, protocol: str
) -> None:
    broker = _acl_broker(broker_factory, "streamproc/events")
    config = tmp_path / "mqtt.yaml"
    config.write_text(
        f"sinks:\n  - type: mqtt\n    stats_interval: 0\nmqtt:\n  host: 127.0.0.1\n  port: {broker.port}\n"
        f"  protocol: '{protocol}'\n"
    )
    result = run_cli("run", sample_video, "-c", config, "--no-progress")
    if protocol == "5":  # the broker says so: counted, warned once per topic, the run fails
        assert result.returncode == 1, result.stderr
        assert "refused" in result.stderr and "event messages on streamproc/events" in result.stderr
        warnings = [line for line in result.stderr.splitlines() if "check the broker's ACL" in line]
        assert len(warnings) >= 1 and all("streamproc/events" in line for line in warnings)
        assert len(warnings) <= 2, "one warning per topic per interval, and the rest summed at the end"
    else:  # MQTT 3.1.1 has no way to say no: the broker drops them and only its log tells
        assert result.returncode == 0, result.stderr
        assert "Denied PUBLISH" in broker.log.read_text()


def test_stop_reason_names_the_signal_or_duration(
    tmp_path: Path, long_video: Path, run_cli: CliRunner
) -> None:
    config = tmp_path / "paced.yaml"  # 40 s at its own pace: it never ends before the stop
    config.write_text(f"sources:\n  - url: {long_video}\n    realtime: true\n")
    result = run_cli("run", "-c", config, "--duration", "1", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "--duration reached" in result.stderr and "by SIG" not in result.stderr
    assert "end of file" not in result.stderr, "the file did not end"
    command = [sys.executable, "-m", "streamproc", "run", "-c", config, "--events", tmp_path / "e.jsonl"]
    process = subprocess.Popen([*command, "--no-progress"], cwd=REPO, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (tmp_path / "e.jsonl").exists() and (tmp_path / "e.jsonl").stat().st_size > 0, 30)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "(stopped by SIGTERM)" in stderr and "--duration" not in stderr
    assert "end of file" not in stderr and "stopped after" in stderr


@dataclass
class _Watched:
    """A ``streamproc run`` process whose log lines are timed as they arrive."""

    process: subprocess.Popen
    lines: list[tuple[float, str]]

    def when(self, text: str) -> float | None:
        return next((at for at, line in self.lines if text in line), None)

    @property
    def log(self) -> str:
        return "".join(line for _, line in self.lines)


def _watch(*args: str | Path) -> _Watched:
    command = [sys.executable, "-m", "streamproc", "run", *map(str, args), "--no-progress"]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    watched = _Watched(process, [])

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            watched.lines.append((time.monotonic(), line))

    threading.Thread(target=read, daemon=True).start()
    return watched


@contextlib.contextmanager
def _stuck_run(tmp_path: Path, video: Path, loop: bool, grace: float) -> Iterator[tuple[_Watched, Path]]:
    """A run paced like a camera (a full disk is retried, not fatal) writing events and video on a
    small disk, from the moment both outputs are stuck on it being full."""
    config = tmp_path / "live.yaml"
    config.write_text(
        f"sources:\n  - url: {video}\n    realtime: true\n    loop: {str(loop).lower()}\n"
        f"shutdown_grace: {grace}\n"
    )
    with small_disk(tmp_path / "disk", "2m") as disk:
        run = _watch("-c", config, "--events", disk / "e.jsonl", "--out-video", disk / "a.mp4")
        try:
            partial = disk / "a.partial.mp4"
            wait_for(lambda: partial.exists() and partial.stat().st_size > 20_000, what="video fragments")
            fill(disk)
            for stuck in ("cannot write events file", "cannot write the annotated video"):
                wait_for(lambda stuck=stuck: run.when(stuck) is not None, what=stuck)
            yield run, disk
        finally:
            run.process.kill()
            run.process.wait()


def _kept_as_written(disk: Path) -> None:
    """What was written stays valid: whole lines, and each video file kept plays."""
    frames = [record["frame"] for record in _whole_lines(disk / "e.jsonl") if record["type"] == "frame"]
    assert frames and frames == sorted(set(frames)), "whole records, in order, none twice"
    kept = sorted(disk.glob("a.partial*.mp4"))
    assert disk / "a.partial-1.mp4" in kept, "the video written before the error is set aside"
    assert all(ffprobe_frames(path) > 0 for path in kept), "each file kept plays; no empty retries"
    assert not (disk / "a.mp4").exists(), "no finished video claims to be complete"


@pytest.mark.parametrize("stop", ["SIGTERM", "end of input"])
def test_a_disk_that_stays_full_ends_the_run_within_the_shutdown_grace(
    tmp_path: Path, sample_video: Path, stop: str
) -> None:
    grace = 2  # without a loop, the 4 s of video end after the disk is full
    with _stuck_run(tmp_path, sample_video, loop=stop == "SIGTERM", grace=grace) as (run, disk):
        if stop == "SIGTERM":
            run.process.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
        else:
            wait_for(lambda: run.when("end of file") is not None, timeout=20, what="the end of the input")
            stopped = run.when("end of file") or 0.0
        run.process.wait(timeout=60)
        took = time.monotonic() - stopped
        print(f"disk full, stopped by {stop}: ended {took:.1f} s later (grace {grace} s)")
        assert took < grace + 3, f"{took:.1f} s: the grace was not kept\n{run.log}"
        assert run.process.returncode == 1, run.log
        assert "Traceback" not in run.log
        errors = [line for _, line in run.lines if line.startswith("streamproc: error:")]
        gave_up = f"gave up after the {grace} s shutdown grace"
        events = disk / "e.jsonl"
        assert any(gave_up in line and f"records not written to {events}" in line for line in errors), run.log
        video_error = f"sink video:{disk / 'a.mp4'}"
        assert any(video_error in line and "No space left" in line for line in errors), run.log
        _kept_as_written(disk)


def test_a_second_ctrl_c_does_not_wait_for_the_grace(tmp_path: Path, sample_video: Path) -> None:
    with _stuck_run(tmp_path, sample_video, loop=True, grace=60) as (run, disk):
        run.process.send_signal(signal.SIGINT)
        wait_for(lambda: run.when("shutdown_grace") is not None, what="the grace announced")
        run.process.send_signal(signal.SIGINT)
        stopped = time.monotonic()
        run.process.wait(timeout=30)
        took = time.monotonic() - stopped
        print(f"second Ctrl-C on a full disk: ended {took:.2f} s later")
        assert took < 3 and run.process.returncode == 130, run.log
        assert "interrupted before the outputs were finished" in run.log
        assert "Traceback" not in run.log
        _kept_as_written(disk)


def test_a_camera_run_on_a_disk_full_from_the_start_retries_then_gives_up(tmp_path: Path) -> None:
    """The first record of a camera run is its 'connecting' status: already retried, not fatal."""
    with small_disk(tmp_path / "disk", "64k") as disk:
        fill(disk)
        events = disk / "e.jsonl"
        sink = JsonlSink(JsonlSinkSettings(type="jsonl", path=events), grace_s=1)
        sink.open(PixelPlan.for_consumers([sink]))
        connecting = StatusEvent("cam", SourceState.CONNECTING, "connecting", time.time())
        writer = threading.Thread(target=sink.handle_status, args=(connecting,), daemon=True)
        writer.start()
        wait_for(lambda: sink.problem is not None, what="the sink retrying")
        assert "No space left on device; retrying" in sink.problem
        stopped = time.monotonic()
        sink.stopping()
        writer.join(5)
        assert not writer.is_alive() and time.monotonic() - stopped < 2, "the 1 s grace was kept"
        with pytest.raises(OutputError, match=f"1 record not written to {events}"):
            sink.close()
        assert events.read_bytes() == b""


def test_records_on_standard_output_redirected_to_a_full_disk_stay_whole(
    tmp_path: Path, sample_video: Path
) -> None:
    with small_disk(tmp_path / "disk", "16k") as disk:
        out = disk / "out.jsonl"
        with open(out, "wb") as stdout:  # `streamproc run ... --events - > out.jsonl`
            command = [sys.executable, "-m", "streamproc", "run", sample_video, "--events", "-"]
            completed = subprocess.run(
                [*command, "--no-progress"], cwd=REPO, stdout=stdout, stderr=subprocess.PIPE, text=True
            )
        assert completed.returncode == 1, completed.stderr
        assert "No space left on device" in completed.stderr and "Exception ignored" not in completed.stderr
        frames = [record["frame"] for record in _whole_lines(out) if record["type"] == "frame"]
        assert frames == list(range(len(frames))) and frames, "whole records up to the full disk"
