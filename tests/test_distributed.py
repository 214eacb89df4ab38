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

from streamproc.config.settings import Settings
from streamproc.core.events import SCHEMA_PATH
from streamproc.distributed.aggregate import ClusterView
from streamproc.distributed.cameras import run_cameras
from streamproc.distributed.jobs import run_files
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


def test_a_named_job_is_refused_in_one_line_where_it_cannot_outlive_its_driver(
    sample_video: Path, tmp_path: Path, run_cli: CliRunner
) -> None:
    camera = "rtsp://127.0.0.1:9/never-opened"  # refused before anything connects (Ray is not started)
    for inputs, flags, said in (
        ([camera], ["--workers", "1"], "add --cluster ADDRESS"),
        ([camera], [], "--job applies to distributed runs"),
        ([sample_video], ["--cluster", "auto"], "--job applies to cameras"),
    ):
        result = run_cli("run", *inputs, "--job", "lobby", *flags, "--events", tmp_path / "e.jsonl")
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and said in lines[0], result.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.fixture(scope="module")
def photo_sets(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> dict[str, str]:
    """Three collections of the shared photos at mixed sizes: a folder (with a broken photo), a list
    file (a missing photo among them) and a glob pattern; each named by its source id."""
    import cv2

    root = tmp_path_factory.mktemp("photos")
    folder, shots = root / "album", root / "shots"
    folder.mkdir()
    shots.mkdir()
    originals = sorted((shared_dir / "images").iterdir())
    for number, scale in enumerate((1.0, 0.5, 1.6)):
        for original in originals:
            picture = cv2.imread(str(original))
            resized = cv2.resize(picture, None, fx=scale, fy=scale)
            cv2.imwrite(str(folder / f"{number}-{original.stem}.jpg"), resized)
            cv2.imwrite(str(shots / f"{number}-{original.stem}.png"), resized)
    data = (folder / "0-face.jpg").read_bytes()
    (folder / "1-cut.jpg").write_bytes(data[: len(data) // 2])
    listed = [f"shots/{name.name}" for name in sorted(shots.iterdir())][::-1][:9]  # its own order
    (root / "manifest.txt").write_text("# picked\n" + "\n".join([*listed[:4], "shots/gone.png", *listed[4:]]))
    return {"album": str(folder), "manifest": str(root / "manifest.txt"), "shots": str(shots / "*.png")}


def _photo_settings(urls: list[str], events: Path) -> Settings:
    return Settings(
        sources=[{"url": url} for url in urls], sinks=[{"type": "jsonl", "path": events}], progress=False
    )


@pytest.mark.slow
def test_photo_collections_are_sharded_and_match_a_plain_run(
    ray_cluster: Any, photo_sets: dict[str, str], tmp_path: Path, run_cli: CliRunner
) -> None:
    problems = []  # one plain run per collection: a run's summary record counts all its sources
    for url in photo_sets.values():
        problems += run_pipeline(_photo_settings([url], tmp_path / "plain" / "{source}.jsonl")).problems()
    assert problems == [
        "album: 1 image(s) could not be read: 1-cut.jpg",
        "manifest: 1 image(s) could not be read: gone.png",
    ]
    out = tmp_path / "out"
    env = {**ENV, "STREAMPROC_DISTRIBUTED__PHOTOS_PER_SHARD": "4"}
    flags = ["--cluster", ray_cluster.address, "--events", out / "{source}.jsonl"]
    result = run_cli("run", *photo_sets.values(), *flags, env=env)
    assert result.returncode == 1, result.stderr
    for source_id in photo_sets:
        got, expected = (
            records(out / f"{source_id}.jsonl"),
            records(tmp_path / "plain" / f"{source_id}.jsonl"),
        )
        assert got == expected, f"{source_id}: sharded output differs from a plain run"
    assert sorted(path.name for path in out.iterdir()) == ["album.jsonl", "manifest.jsonl", "shots.jsonl"]
    summary = json.loads((out / "album.jsonl").read_text().splitlines()[-1])
    name = f"jsonl:{out}/{{source}}.jsonl"
    assert summary["type"] == "summary" and list(summary["sinks"]) == [name], summary
    assert summary["sinks"][name]["written"] == 18, "the shards' counts added up"
    assert "album: 1 image(s) could not be read: 1-cut.jpg" in result.stderr.splitlines()[-1]
    shard_lines = [line for line in result.stderr.splitlines() if "(process_shard pid=" in line]
    assert any("album photos 16-18] source album: stopped (3 images)" in line for line in shard_lines)
    assert "\x1b[" not in result.stdout + result.stderr, "colour codes in a log that is not a terminal"


@pytest.mark.slow
def test_resume_runs_only_the_shards_not_finished(
    ray_cluster: Any, photo_sets: dict[str, str], tmp_path: Path
) -> None:
    import ray

    settings = _photo_settings([photo_sets["shots"]], tmp_path / "out" / "{source}.jsonl")
    settings.distributed.photos_per_shard, settings.workers = 5, 1  # one shard at a time on a cluster
    settings.distributed.cluster = ray_cluster.address
    stop = threading.Event()
    first = run_files(ray, settings, stop, listener=lambda progress: progress and stop.set())
    assert first.problems() == [
        "shots: shots photos 5-9: stopped (and 2 more shards); finished shards are kept for --resume"
    ]
    assert not (tmp_path / "out" / "shots.jsonl").exists()
    ran: set[int] = set()
    second = run_files(ray, settings, threading.Event(), resume=True, listener=lambda p: ran.update(p))
    assert second.ok and ran == {1, 2, 3}, second.problems()
    plain_run = run_pipeline(_photo_settings([photo_sets["shots"]], tmp_path / "plain.jsonl"))
    assert plain_run.ok and records(tmp_path / "out" / "shots.jsonl") == records(tmp_path / "plain.jsonl")
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["shots.jsonl"], "shards left"


def _driver(config: Path, address: str, log_path: Path) -> subprocess.Popen[bytes]:
    """``streamproc run -c CONFIG --cluster ADDRESS --job lobby`` in its own process, logging to a file."""
    command = [
        sys.executable,
        "-m",
        "streamproc",
        "run",
        "-c",
        str(config),
        "--cluster",
        address,
        "--job",
        "lobby",
    ]
    with log_path.open("wb") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, **ENV}
        )


def _frames_since(events: Path, source_id: str, after: float) -> int:
    return sum(1 for r in jsonl(events, "frame") if r["source"] == source_id and r["wall_time"] > after)


@pytest.mark.slow
def test_a_driver_killed_mid_run_and_started_again_re_attaches_to_its_job(
    ray_cluster: Any, sample_video: Path, tmp_path: Path, run_cli: CliRunner
) -> None:
    import ray

    events, config = tmp_path / "events.jsonl", tmp_path / "cameras.yaml"
    source = {"url": str(sample_video), "realtime": True, "loop": True}
    config.write_text(  # JSON is YAML
        json.dumps(
            {
                "sources": [{**source, "id": "cam-a", "group": "a"}, {**source, "id": "cam-b", "group": "b"}],
                "sinks": [{"type": "jsonl", "path": str(events)}],
                "distributed": {"group_cpus": 0.5, "poll_interval": 0.25},
                "progress": False,
            }
        )
    )
    address, drivers = ray_cluster.address, []
    try:
        drivers.append(_driver(config, address, tmp_path / "driver-1.log"))
        wait_until(lambda: {e["source"] for e in jsonl(events, "new")} == {"cam-a", "cam-b"}, 90, "tracks")
        drivers[0].kill()  # SIGKILL: nothing of the driver runs after this
        drivers[0].wait()
        killed_at = time.time()
        for source_id in ("cam-a", "cam-b"):  # the groups write on without a driver
            wait_until(
                lambda s=source_id: _frames_since(events, s, killed_at) > 25,
                20,
                f"{source_id} without driver",
            )
        second_log = tmp_path / "driver-2.log"
        drivers.append(_driver(config, address, second_log))
        wait_until(
            lambda: second_log.read_text().count("(running: attached)") == 2, 60, "both groups attached"
        )
        status = run_cli("cluster", "status", "lobby", "--cluster", address, env=ENV)
        assert status.returncode == 0, status.stderr
        assert "job lobby: 2 groups" in status.stdout and "cam-b: streaming" in status.stdout, status.stdout
        drivers[1].kill()
        drivers[1].wait()
    finally:
        for driver in drivers:
            driver.kill()
        stopped = run_cli("cluster", "stop", "lobby", "--cluster", address, env=ENV)
    assert stopped.returncode == 0 and "job lobby: 2 groups stopped" in stopped.stdout, stopped.stderr
    gone = run_cli("cluster", "status", "lobby", "--cluster", address, env=ENV)
    assert gone.returncode == 1 and "no job named lobby runs" in gone.stderr.strip().splitlines()[-1]
    names = [entry["name"] for entry in ray.util.list_named_actors(all_namespaces=True)]
    assert not [name for name in names if name.startswith("lobby:")], names
    for source_id in ("cam-a", "cam-b"):
        frames = [(r["frame"], r["wall_time"]) for r in jsonl(events, "frame") if r["source"] == source_id]
        numbers = [number for number, _ in frames]
        assert numbers == sorted(set(numbers)), f"{source_id}: frame numbers started over (a new group)"
        gap, at = max((b - a, a) for (_, a), (_, b) in itertools.pairwise(frames))
        assert gap <= 2.0, f"{source_id}: {gap:.1f} s without frames, {at - killed_at:+.1f} s after the kill"
    ended = collections.Counter(e["track_id"] for e in jsonl(events, "end"))
    news = [e["track_id"] for e in jsonl(events, "new")]
    assert news and all(ended[track] == 1 for track in news) and set(ended) == set(news), ended
    assert not [e for e in jsonl(events, "end") if e["end_reason"] == "worker_lost"]


@pytest.mark.slow
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
