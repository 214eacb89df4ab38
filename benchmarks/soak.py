"""Chaos soak (issue 21): live cameras from real servers, every sink, scripted faults; a benchmark.

    sudo python benchmarks/soak.py --minutes 10 --cameras 8

Half the cameras come through rtsp-server-perl as a relay (it answers 404 Not Found while the camera
behind it is away), half from GStreamer's RTSP server (one of them through a proxy that can keep the
connection open and send nothing). streamproc runs as a user would (a subprocess, JSON Lines + the
annotated video on a small tmpfs, MQTT to Mosquitto) while the script, at fixed points of the run:
takes the relay's cameras away (404) and brings them back, restarts the GStreamer server, mutes the
proxied connection, stops the broker, fills the tmpfs. It prints, per fault, the time until frames
(or writes) flow again; per sink, frames received = written + not written (it must close); RSS, open
files and threads of the streamproc process at start and end.

Needs root (the tmpfs), ffmpeg, rtsp-server-perl, mosquitto and GStreamer's RTSP server (scripts/
setup.sh --test). All traffic stays on 127.0.0.1; every process it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test suite's real-server helpers

from gst_server import GstServer, Publisher, live_h264  # noqa: E402
from mqtt_support import MOSQUITTO, Broker, free_port  # noqa: E402
from rtsp_proxy import RtspProxy  # noqa: E402
from rtsp_server import RtspServer  # noqa: E402

LIVE = {"reconnect": {"initial": 0.2, "factor": 2.0, "max": 1.0, "jitter": 0.2}, "stall_timeout": 3.0}


@dataclass
class Fault:
    name: str
    cameras: list[str]  # whose frames must flow again ("" for a sink fault)
    begin: float = 0.0
    back: float = 0.0  # when the server, broker or disk was back
    resumed: dict[str, float | None] = field(default_factory=dict)  # camera or sink -> seconds after back


@dataclass
class Lab:
    """The servers, broker, tmpfs and clip of one soak; ``close`` stops everything it started."""

    work: Path
    clip: Path
    relay: RtspServer
    gst: GstServer
    publishers: list[Publisher]
    proxy: RtspProxy
    broker: Broker
    disk: Path
    urls: dict[str, str]


def _clip(work: Path) -> Path:
    """The committed sample, small and at 10 fps with a keyframe a second: 8 cameras fit 2 cores."""
    clip = work / "camera.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(REPO / "samples" / "sample.mp4"), "-vf",
         "scale=320:180,fps=10", "-c:v", "libx264", "-g", "10", "-bf", "0", str(clip)],
        check=True,
    )  # fmt: skip
    return clip


def _broker(work: Path) -> Broker:
    folder = work / "broker"
    folder.mkdir()
    broker = Broker(folder, free_port())
    lines = ["user root", f"log_dest file {broker.log}", "persistence false", "allow_anonymous true"]
    broker.config.write_text("\n".join([*lines, f"listener {broker.port} 127.0.0.1"]) + "\n")
    broker.start()
    return broker


@contextlib.contextmanager
def lab(work: Path, cameras: int) -> Iterator[Lab]:
    clip = _clip(work)
    relayed, served = cameras // 2, cameras - cameras // 2
    relay = RtspServer(work)
    publishers = [Publisher(work, clip).start() for _ in range(served)]
    gst = GstServer(work, live={f"cam{n}": live_h264(p.port) for n, p in enumerate(publishers, relayed)})
    disk = work / "disk"
    disk.mkdir()
    started: list[Callable[[], object]] = []
    try:
        relay.start()
        started.append(relay.close)
        for number in range(relayed):
            relay.publish(f"cam{number}", clip)
        gst.start()
        started.append(gst.kill)
        proxy = RtspProxy(gst.port).start()
        started.append(proxy.close)
        broker = _broker(work)
        started.append(broker.stop)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(disk)], check=True)
        started.append(lambda: subprocess.run(["umount", "-l", str(disk)], check=False))
        urls = {f"cam{n}": relay.url(f"cam{n}") for n in range(relayed)}
        urls |= {f"cam{n}": gst.url(f"cam{n}") for n in range(relayed, cameras)}
        urls[f"cam{cameras - 1}"] = proxy.url(f"cam{cameras - 1}")
        yield Lab(work, clip, relay, gst, publishers, proxy, broker, disk, urls)
    finally:
        for stop in reversed(started):
            with contextlib.suppress(Exception):
                stop()
        for publisher in publishers:
            publisher.kill()


def _config(lab: Lab, relayed: set[str]) -> Path:
    sources = [
        {"id": camera, "url": url, "live": {"transport": "udp" if camera in relayed else "tcp"}}
        for camera, url in lab.urls.items()
    ]
    config = {
        "sources": sources,
        "live": LIVE,
        "mqtt": {"host": "127.0.0.1", "port": lab.broker.port},
        "sinks": [
            {"type": "jsonl", "path": str(lab.disk / "{source}.jsonl")},
            {"type": "video", "path": str(lab.disk / "{source}.mp4"), "preset": "ultrafast"},
            {"type": "mqtt", "reconnect_max_delay": 1.0},
        ],
        "progress": False,
    }
    path = lab.work / "soak.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _process_numbers(pid: int) -> dict[str, Any]:
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return {
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(status["Threads"]),
    }


def _open_files(pid: int) -> set[str]:
    """What the process's descriptors point at (sockets and pipes by kind only)."""
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            found.add(f"{fd}:{target.split(':')[0] if target.startswith(('socket:', 'pipe:')) else target}")
    return found


class _Sampler(threading.Thread):
    """RSS every 15 s: growth that levels off (warm-up) or keeps going (a leak)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.rss: list[float] = []

    def run(self) -> None:
        with contextlib.suppress(OSError, KeyError):
            while True:
                self.rss.append(round(_process_numbers(self.pid)["rss_mb"], 1))
                time.sleep(15)


def _faults(lab: Lab, relayed: list[str], served: list[str], proxied: str, seconds: float) -> list[tuple]:
    """(at seconds, fault, take away, bring back, hold seconds) spread over the run."""

    def relay_away() -> None:
        lab.relay.kill()
        lab.relay.start()  # up, without its cameras: 404 Not Found

    def relay_back() -> None:
        for camera in relayed:
            lab.relay.publish(camera, lab.clip)

    def fill_disk() -> None:
        subprocess.run(["dd", "if=/dev/zero", f"of={lab.disk / 'filler'}", "bs=1M"], capture_output=True)

    slot = seconds / 6
    return [
        (slot * 0.5, Fault("camera gone behind its relay (404), 20 s", relayed), relay_away, relay_back, 20),
        (slot * 1.5, Fault("RTSP server restart (5 s down)", served), lab.gst.kill, lab.gst.start, 5),
        (slot * 2.5, Fault("connection open, no data, 15 s", [proxied]), lambda: _mute(lab, True),
         lambda: _mute(lab, False), 15),
        (slot * 3.5, Fault("broker down 30 s", ["mqtt"]), lab.broker.stop, lab.broker.start, 30),
        (slot * 4.5, Fault("disk full 20 s", ["jsonl", "video"]), fill_disk,
         lambda: (lab.disk / "filler").unlink(), 20),
    ]  # fmt: skip


def _mute(lab: Lab, muted: bool) -> None:
    lab.proxy.mute_tcp = muted


def run(minutes: float, cameras: int, keep_log: Path | None = None) -> dict:
    seconds = minutes * 60
    with tempfile.TemporaryDirectory(prefix="soak-") as folder, lab(Path(folder), cameras) as setup:
        relayed = [f"cam{n}" for n in range(cameras // 2)]
        served = [f"cam{n}" for n in range(cameras // 2, cameras)]
        config = _config(setup, set(relayed))
        log = setup.work / "streamproc.log"
        command = [sys.executable, "-m", "streamproc", "run", "-c", str(config), "--log-format", "json"]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(log, "wb") as out:
            process = subprocess.Popen(command, stderr=out, stdout=subprocess.DEVNULL, env=env, cwd=REPO)
        started = time.monotonic()
        time.sleep(20)  # every camera streaming, the encoder and the broker warm
        if process.poll() is not None:
            raise RuntimeError(f"streamproc ended at start-up:\n{log.read_text()[-3000:]}")
        first, opened = _process_numbers(process.pid), _open_files(process.pid)
        sampler = _Sampler(process.pid)
        sampler.start()
        faults = _inject(_faults(setup, relayed, served, served[-1], seconds - 40), started + 20)
        while time.monotonic() < started + seconds:
            time.sleep(1)
        last = _process_numbers(process.pid)
        last["opened since start"] = sorted(_open_files(process.pid) - opened)
        last["rss_mb over the run"] = sampler.rss
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=120)
        if keep_log is not None:
            keep_log.write_bytes(log.read_bytes())
        return _results(setup, log, faults, first, last, code, seconds)


def _inject(schedule: list[tuple], zero: float) -> list[Fault]:
    faults = []
    for at, fault, take, give, hold in schedule:
        time.sleep(max(0.0, zero + at - time.monotonic()))
        fault.begin = time.time()
        take()
        time.sleep(hold)
        give()
        fault.back = time.time()
        faults.append(fault)
    return faults


def _results(
    lab: Lab, log: Path, faults: list[Fault], first: dict, last: dict, code: int, seconds: float
) -> dict:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    frames: dict[str, list[float]] = {}
    summary: dict = {}
    for path in lab.disk.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record["type"] == "frame":
                frames.setdefault(record["source"], []).append(record["wall_time"])
            elif record["type"] == "summary":
                summary = record["sinks"]
    for fault in faults:
        for name in fault.cameras:
            fault.resumed[name] = _resumed(name, fault.back, frames, lines)
    return {
        "seconds": seconds,
        "exit_code": code,
        "faults": [vars(fault) for fault in faults],
        "sinks": summary,
        "frames": {camera: len(times) for camera, times in sorted(frames.items())},
        "process": {"start": first, "end": last},
    }


def _resumed(name: str, back: float, frames: dict[str, list[float]], lines: list[dict]) -> float | None:
    """Seconds from ``back`` to the camera's first frame, or to the sink's 'writing again' line."""
    if name in frames:
        after = [stamp for stamp in frames[name] if stamp >= back]
        return round(min(after) - back, 2) if after else None
    words = {"mqtt": "MQTT: reconnected", "jsonl": "events file", "video": "annotated video"}[name]
    again = [
        line["time"]
        for line in lines
        if line["time"] >= back
        and words in line["message"]
        and ("writing again" in line["message"] or name == "mqtt")
    ]
    return round(min(again) - back, 2) if again else None


def table(result: dict) -> str:
    rows = [
        "| fault | what must flow again | seconds after the server/broker/disk was back |",
        "| --- | --- | --- |",
    ]
    for fault in result["faults"]:
        for name, took in fault["resumed"].items():
            rows.append(f"| {fault['name']} | {name} | {'never' if took is None else took} |")
    rows += [
        "",
        "| sink | received | written | not written (why) | closes |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, counts in result["sinks"].items():
        missing = counts["not_written"]
        closes = counts["received"] == counts["written"] + sum(missing.values())
        why = ", ".join(f"{n} {reason}" for reason, n in missing.items()) or "-"
        rows.append(
            f"| {name} | {counts['received']} | {counts['written']} | {why} | {'yes' if closes else 'NO'} |"
        )
    start, end = result["process"]["start"], result["process"]["end"]
    rows += ["", "| process | start | end | change |", "| --- | --- | --- | --- |"]
    for key in ("rss_mb", "fds", "threads"):  # the raw numbers (and RSS over time) are in the JSON above
        change = f"{(end[key] - start[key]) / start[key] * 100:+.1f} %"
        rows.append(f"| {key} | {start[key]:.1f} | {end[key]:.1f} | {change} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--log", type=Path, help="keep streamproc's log (JSON lines) here")
    args = parser.parse_args()
    if os.geteuid() != 0 or not Path(MOSQUITTO).exists():
        print("the soak needs root (a tmpfs) and mosquitto", file=sys.stderr)
        return 2
    result = run(args.minutes, args.cameras, args.log)
    print(json.dumps(result, indent=1))
    print(table(result))
    print(f"streamproc exit code {result['exit_code']}; frames per camera {result['frames']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
