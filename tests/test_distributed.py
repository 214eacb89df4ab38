"""Distributed runs on Ray (--workers, --cluster): files as retried tasks, cameras as actors.

Outputs are compared record by record with plain one-file runs (wall-clock times aside): frames,
boxes, scores, keypoints and events, event ids included (they derive from the input file).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
from conftest import REPO, CliRunner
from http_helpers import get
from mqtt_support import Broker, free_port, wait_until
from ray_support import FAST_HEALTH_CHECKS, records, wait_for_health_checks
from test_file_run import file_to_jsonl

from streamproc.analysis.events import SCHEMA_PATH
from streamproc.config.settings import Settings
from streamproc.distributed.aggregate import ClusterView
from streamproc.distributed.cameras import run_cameras
from streamproc.distributed.files import run_files
from streamproc.distributed.ledger import TrackRegistry
from streamproc.distributed.outputs import TEMP_MARK
from streamproc.pipeline.build import run_pipeline

ENV = {**FAST_HEALTH_CHECKS, "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def four_files(tmp_path_factory: pytest.TempPathFactory, sample_maker: ModuleType) -> list[Path]:
    """Four different short recordings (different lengths and sizes), and a plain run's output of each."""
    folder = tmp_path_factory.mktemp("inputs")
    sizes = [(640, 360, 2.0), (480, 270, 3.0), (640, 360, 1.6), (320, 240, 2.4)]
    videos = []
    for number, (width, height, seconds) in enumerate(sizes):
        video = folder / f"clip{number}.mp4"
        sample_maker.make_sample(video, width, height, 25, seconds, seed=number)
        run_pipeline(file_to_jsonl(video, folder / f"plain-{video.stem}.jsonl"))
        videos.append(video)
    return videos


@pytest.fixture(scope="module")
def killable_video(tmp_path_factory: pytest.TempPathFactory, sample_maker: ModuleType) -> Path:
    """4000 frames: ~4 s of work here, so a kill sent within ~1 s of the first progress report (the
    report and the driver's poll are 0.5 s apart each) lands mid-file; 1000 frames took 0.9 s and
    the kill sometimes came after the file was done."""
    path = tmp_path_factory.mktemp("killable") / "long.mp4"
    return sample_maker.make_sample(path, width=640, height=360, fps=25, seconds=160)


def plain(video: Path) -> list[dict[str, Any]]:
    return records(video.parent / f"plain-{video.stem}.jsonl")


def assert_same_as_plain(out: Path, videos: list[Path]) -> None:
    for video in videos:
        got = records(out / f"{video.stem}.jsonl")
        assert got == plain(video), f"{video.name}: distributed output differs from a plain run"
    assert not [path for path in out.iterdir() if TEMP_MARK in path.name], "temporary files left"


def test_without_the_flags_ray_is_not_imported(sample_video: Path, tmp_path: Path) -> None:
    code = (
        "import sys; from streamproc.cli import main; "
        f"code = main(['run', {str(sample_video)!r}, '--events', {str(tmp_path / 'e.jsonl')!r}, '-q']); "
        "assert 'ray' not in sys.modules, 'ray was imported'; sys.exit(code)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr


def test_the_flags_without_ray_say_how_to_install_it(sample_video: Path, tmp_path: Path) -> None:
    code = (  # an interpreter where `import ray` fails, as on a machine without the extra
        "import sys; sys.modules['ray'] = None; from streamproc.cli import main; "
        f"sys.exit(main(['run', {str(sample_video)!r}, '--events', {str(tmp_path / 'e.jsonl')!r}, "
        "'--workers', '2']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'streamproc[ray]'" in lines[0], result.stderr


def test_the_track_registry_owes_ends_per_output_and_incarnation() -> None:
    registry = TrackRegistry()  # the plain class: the actor's logic without Ray
    for output in (0, 2):  # outputs 0 and 2 announce t1 and t2; output 2 lags behind on t3
        for track_id in ("t1", "t2"):
            registry.opened("g", "old", output, {"track_id": track_id})
    registry.opened("g", "old", 0, {"track_id": "t3"})
    registry.opened("g", "new", 0, {"track_id": "t4"})
    registry.ended("g", "old", 0, ["t1", "t2"])  # output 0 wrote their ends, output 2 only t2's
    registry.ended("g", "old", 2, ["t2"])
    lost = registry.take("g", lost=None, keep="new")
    assert {track_id: track.owing for track_id, track in lost.items()} == {"t1": {2}, "t3": {0}}
    assert registry.take("g", lost=None, keep="new") == {}, "taken once"
    assert set(registry.take("g", lost="new", keep=None)) == {"t4"}


def test_files_and_cameras_in_one_run_are_refused_in_one_line(
    sample_video: Path, tmp_path: Path, run_cli: CliRunner
) -> None:
    camera = "rtsp://127.0.0.1:9/never-opened"  # refused before anything connects (Ray is not started)
    result = run_cli("run", sample_video, camera, "--workers", "2", "--events", tmp_path / "{source}.jsonl")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not both" in lines[0] and "one run for each" in lines[0], result.stderr
    assert not list(tmp_path.iterdir())


def test_workers_2_match_plain_runs_and_a_bad_file_is_reported(
    four_files: list[Path], tmp_path: Path, run_cli: CliRunner
) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video" * 50)
    out = tmp_path / "out"
    result = run_cli("run", *four_files, bad, "--workers", "2", "--events", out / "{source}.jsonl", env=ENV)
    assert result.returncode == 1, result.stderr
    assert_same_as_plain(out, four_files)
    assert not (out / "broken.jsonl").exists()
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("streamproc: error: broken:"), result.stderr
    frames = sum(len([r for r in plain(video) if r["type"] == "frame"]) for video in four_files)
    assert f"processed {frames} frames of 4/5 files" in result.stderr
    worker_lines = [line for line in (result.stdout + result.stderr).splitlines() if "[worker " in line]
    assert any("file clip0] source clip0: streaming" in line for line in worker_lines), worker_lines[:5]


def test_resume_skips_complete_files(
    ray_cluster: Any, four_files: list[Path], tmp_path: Path, run_cli: CliRunner
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    done = out / f"{four_files[0].stem}.jsonl"
    done.write_text("kept\n")  # complete outputs are never rewritten
    flags = ["--cluster", ray_cluster.address, "--resume", "--events", out / "{source}.jsonl"]
    result = run_cli("run", *four_files[:2], *flags, env=ENV)
    assert result.returncode == 0, result.stderr
    assert done.read_text() == "kept\n"
    assert records(out / f"{four_files[1].stem}.jsonl") == plain(four_files[1])
    assert "1 skipped as complete" in result.stderr


@pytest.mark.parametrize("outputs", ["shared", "driver"])
def test_cluster_runs_match_plain_runs(
    ray_cluster: Any, four_files: list[Path], tmp_path: Path, run_cli: CliRunner, outputs: str
) -> None:
    out = tmp_path / "out"
    env = {**ENV, "STREAMPROC_DISTRIBUTED__OUTPUTS": outputs}  # driver: the workers return them
    result = run_cli(
        "run", *four_files, "--cluster", ray_cluster.address, "--events", out / "{source}.jsonl", env=env
    )
    assert result.returncode == 0, result.stderr
    assert_same_as_plain(out, four_files)
    assert "of 4/4 files" in result.stderr


def test_a_worker_killed_mid_file_is_retried_without_duplicates(
    ray_cluster: Any, killable_video: Path, tmp_path: Path
) -> None:
    import ray

    reference = tmp_path / "plain.jsonl"
    run_pipeline(file_to_jsonl(killable_video, reference))
    out = tmp_path / "out"
    settings = file_to_jsonl(killable_video, out / "{source}.jsonl")
    settings.progress = False
    killed: list[int] = []
    attempts: list[int] = []

    def kill_once_on_the_way(progress: dict[int, Any]) -> None:
        entry = progress.get(0)
        if entry is not None and entry.frames >= 50 and not killed:
            killed.append(entry.pid)
            os.kill(entry.pid, signal.SIGKILL)
        attempts[:] = [entry.attempts] if entry is not None else []

    report = run_files(ray, settings, threading.Event(), listener=kill_once_on_the_way)
    assert killed, "the file finished before it could be killed"
    assert report.ok, report.problems()
    assert attempts == [2], "one retry after the kill"
    got = records(out / "long.jsonl")
    assert got == records(reference)
    frames = [record["frame"] for record in got if record["type"] == "frame"]
    assert frames == sorted(set(frames)) and len(frames) == 4000
    assert [path.name for path in out.iterdir()] == ["long.jsonl"]


def test_a_lost_node_s_camera_group_resumes_on_the_other_node(  # last: it removes a node
    ray_cluster: Any, sample_video: Path, tmp_path: Path, broker: Broker, recorders: Any
) -> None:
    import ray

    events = tmp_path / "events.jsonl"
    source = {"url": str(sample_video), "realtime": True, "loop": True}
    settings = Settings(
        sources=[{**source, "id": "cam-a", "group": "a"}, {**source, "id": "cam-b", "group": "b"}],
        sinks=[{"type": "jsonl", "path": events}, {"type": "mqtt", "stats_interval": 0}],
        mqtt={"host": "127.0.0.1", "port": broker.port, "topic_prefix": "sp"},
        distributed={"group_cpus": 0.5, "poll_interval": 0.25},
        http={"enabled": True, "port": free_port()},
        progress=False,
    )
    http = f"http://127.0.0.1:{settings.http.port}"
    recorder = recorders(broker.port, ("sp/#",))
    view, stop = ClusterView(), threading.Event()
    driver = threading.Thread(target=run_cameras, args=(ray, settings, stop, view))
    driver.start()
    try:
        doomed = next(node for node in ray_cluster.list_all_nodes() if not node.head)
        workers = wait_until(lambda: _on_two_nodes(view), 60, "both groups running, on two nodes")
        lost = next(group for group, node in workers.items() if doomed.node_id[:12] in node)
        kept = "b" if lost == "a" else "a"
        _check_http(http)
        wait_for_health_checks(doomed.node_id)
        # the node dies right after a track is announced, before the driver's poll could see it
        source_id, after = f"cam-{lost}", len(_news(events, f"cam-{lost}"))
        newest = wait_until(lambda: _unseen_new(events, view, lost, after), 20, f"a new track in {lost}")
        killed_at = time.time()
        ray_cluster.remove_node(doomed, allow_graceful=False)
        with contextlib.suppress(ProcessLookupError):  # as in a real node's loss, its worker goes too
            os.kill(_worker_pid(view, lost), signal.SIGKILL)

        gap = wait_until(lambda: _restart_gap(events, source_id, killed_at), 30, "frames of a new worker")
        assert gap < 5.0, f"frames of group {lost} resumed {gap:.1f} s after the last one"
        ended = lambda: {e["track_id"] for e in _worker_lost_ends(events)}  # noqa: E731 - read anew
        wait_until(lambda: newest in ended(), 10, "a worker_lost end of the track announced last")
        ends = _worker_lost_ends(events)
        started = {e["track_id"] for e in _news(events, source_id)}
        assert {e["track_id"] for e in ends} <= started and {e["source"] for e in ends} == {source_id}
        schema = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
        for end in ends:
            schema.validate(end)
        availability = f"sp/{lost}/available"
        wait_until(lambda: _came_back(recorder.texts(availability)), 20, f"{availability}: offline, online")
    finally:
        stop.set()
        driver.join(60)
    assert not driver.is_alive()
    assert recorder.texts(f"sp/{kept}/available") == ["online", "offline"]  # offline: at the clean stop
    aggregate = recorder.texts("sp/available")
    assert aggregate[:1] == ["online"] and "offline" not in aggregate[:-1], aggregate  # offline: at exit
    assert {json.loads(m.payload)["source"] for m in recorder.on("sp/events")} == {"cam-a", "cam-b"}
    for where, found in (("events file", jsonl(events, "new", "end")), ("broker", _published(recorder))):
        ended = collections.Counter(e["track_id"] for e in found if e["type"] == "end")
        news = {e["track_id"] for e in found if e["type"] == "new"}
        assert news and all(ended[track] == 1 for track in news), f"{where}: a track without one end"


def _news(events: Path, source_id: str) -> list[dict[str, Any]]:
    return [event for event in jsonl(events, "new") if event["source"] == source_id]


def _unseen_new(events: Path, view: ClusterView, group: str, after: int) -> str | None:
    """The id of a track announced after the first ``after`` of its source's, still open, and not
    among the open tracks the driver's last poll saw (the poll is 0.25 s apart: most are unseen)."""
    snapshot = view.group(group)
    seen = set(snapshot.open_tracks) if snapshot is not None else set()
    ended = {event["track_id"] for event in jsonl(events, "end")}
    fresh = [e["track_id"] for e in _news(events, f"cam-{group}")[after:] if e["track_id"] not in ended]
    return next((track for track in reversed(fresh) if track not in seen), None)


def _worker_pid(view: ClusterView, group: str) -> int:
    snapshot = view.group(group)
    assert snapshot is not None
    return snapshot.pid


def _published(recorder: Any) -> list[dict[str, Any]]:
    return [json.loads(message.payload) for message in recorder.on("sp/events")]


def jsonl(path: Path, *types: str) -> list[dict[str, Any]]:
    """Whole records of the given types written so far (a line being written is left out)."""
    lines = path.read_text().split("\n")[:-1] if path.exists() else []
    return [record for record in map(json.loads, lines) if record["type"] in types]


def _restart_gap(events: Path, source_id: str, after: float) -> float | None:
    """Seconds between the last frame of a killed worker and the first of its successor (frame
    numbers start over in a new worker; a looping file keeps counting up)."""
    frames = [(r["frame"], r["wall_time"]) for r in jsonl(events, "frame") if r["source"] == source_id]
    for (number, at), (next_number, next_at) in itertools.pairwise(frames):
        if next_number < number and next_at > after:
            return next_at - at
    return None


def _worker_lost_ends(events: Path) -> list[dict[str, Any]]:
    return [event for event in jsonl(events, "end") if event["end_reason"] == "worker_lost"]


def _came_back(availability: list[str]) -> bool:
    return "offline" in availability and availability[-1] == "online"


def _check_http(http: str) -> None:
    """The driver's endpoints speak for both groups."""
    wait_until(lambda: get(f"{http}/readyz").status == 200, 10, "/readyz ready")
    stats = get(f"{http}/api/stats").json()
    assert set(stats["sources"]) == {"cam-a", "cam-b"} and len(stats["workers"]) == 2
    metrics = get(f"{http}/metrics").body.decode()
    assert 'streamproc_source_state{source="cam-a",state="streaming"} 1.0' in metrics
    assert 'streamproc_source_state{source="cam-b",state="streaming"} 1.0' in metrics


def _on_two_nodes(view: ClusterView) -> dict[str, str] | None:
    workers = view.stats_snapshot()["workers"]
    alive = {group: w["node"] for group, w in workers.items() if w["alive"]}
    return alive if len(alive) == 2 and len(set(alive.values())) == 2 else None
