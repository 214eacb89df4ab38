"""The detection API under hostile uploads (issue 22), against real ``streamproc serve`` processes:
this checkout and a baseline checkout (``--baseline DIR``, e.g. ``git archive`` of an older commit),
scenario by scenario, interleaved. For each scenario: /healthz p50/p99/max for a well-behaved client
(polled every 20 ms) while the hostile requests are in flight, their answers and the slowest
one's seconds. Then SIGTERM while a scan bomb decodes: seconds until the process is gone, traceback or not.

    python benchmarks/bench_api_hostile.py [--baseline /tmp/base] [--photo-mp 12] [--clients 64]
        [--only upload --repeat 3]

Scenarios: a 49 MP progressive JPEG of 2000 one-byte scans (default limits; and with
``max_scans`` raised so that only the CPU budget stops it), a 19 MB form of a million empty parts,
a 16 MB JPEG of four million comment segments, ``--clients`` clients uploading a ``--photo-mp`` MP
photo at once, 200 TLS sockets that never start a handshake.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cv2
import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from hostile_uploads import comment_bomb, empty_parts_form, scan_bomb, self_signed  # noqa: E402

POLL_S = 0.02
MIN_POLL_S = 3.0  # at least this long, so that short scenarios have samples too


@contextlib.contextmanager
def serve(code: Path, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, int, list[str]]]:
    """``streamproc serve`` from ``code``; yields the process, its port and its log lines to come."""
    process = subprocess.Popen(
        [sys.executable, "-m", "streamproc", "serve", "--http", "127.0.0.1:0"],
        cwd=code,
        env={**os.environ, "PYTHONPATH": str(code), **env},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    port = 0
    for line in process.stderr:
        found = re.search(r"HTTP server on https?://\S+:(\d+)/", line)
        if found:
            port = int(found.group(1))
            break
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(process.stderr or ()), daemon=True).start()  # drained
    try:
        time.sleep(1.0)  # the decoder processes start in the background
        yield process, port, log
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def post(base: str, body: bytes, content_type: str = "image/jpeg") -> tuple[int, float]:
    started = time.perf_counter()
    try:
        answer = httpx.post(
            f"{base}/api/v1/detect", content=body, headers={"Content-Type": content_type}, timeout=300
        )
        status = answer.status_code
    except httpx.HTTPError:
        status = 0
    return status, time.perf_counter() - started


def healthz_during(base: str, work: Sequence[Callable[[], object]]) -> dict:
    """Run each of ``work`` in a thread; poll /healthz until all are done (MIN_POLL_S at least)."""
    results: list[object] = []
    threads = [threading.Thread(target=lambda job=job: results.append(job())) for job in work]
    latencies = []
    with httpx.Client(timeout=60) as client:  # made first: on a busy machine that takes seconds
        client.get(f"{base}/healthz")  # connected before the clock starts
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads) or time.perf_counter() - started < MIN_POLL_S:
            tick = time.perf_counter()
            client.get(f"{base}/healthz")
            latencies.append((time.perf_counter() - tick) * 1000.0)
            time.sleep(POLL_S)
    for thread in threads:
        thread.join()
    return {
        "p50": float(np.percentile(latencies, 50)),
        "p99": float(np.percentile(latencies, 99)),
        "max": max(latencies),
        "samples": len(latencies),
        "results": results,
    }


def answers(results: list) -> str:
    """Each status with its count, and the slowest answer's seconds."""
    counts: dict[int, int] = {}
    for status, _ in results:
        counts[status] = counts.get(status, 0) + 1
    shown = " ".join(f"{status}x{count}" for status, count in sorted(counts.items()))
    return f"{max((took for _, took in results), default=0.0):>7.1f}  {shown}"


def photo(megapixels: float, face: bytes) -> bytes:
    picture = cv2.imdecode(np.frombuffer(face, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None
    scale = (megapixels * 1e6 / (picture.shape[0] * picture.shape[1])) ** 0.5
    big = cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    return cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def scenarios(args: argparse.Namespace, face: bytes) -> list[tuple[str, dict[str, str], Callable]]:
    bomb = scan_bomb(scans=2000)
    form, form_type = empty_parts_form(1_000_000)
    comments = comment_bomb(face, 4_000_000)
    upload = photo(args.photo_mp, face)
    raised = {"STREAMPROC_HTTP__API__MAX_SCANS": "100000"}  # unknown to the baseline: left out there
    return [
        ("idle", {}, lambda base: []),
        ("scan bomb, default limits", {}, lambda base: [lambda: post(base, bomb)]),
        ("scan bomb, budget only", raised, lambda base: [lambda: post(base, bomb)]),
        ("1M empty form parts (19 MB)", {}, lambda base: [lambda: post(base, form, form_type)]),
        ("4M comment segments (16 MB)", {}, lambda base: [lambda: post(base, comments)]),
        (
            f"{args.clients} clients upload {args.photo_mp:g} MP",
            {},
            lambda base: [lambda: post(base, upload)] * args.clients,
        ),
    ]


def run_scenario(code: Path, env: dict[str, str], make: Callable) -> dict:
    with serve(code, env) as (process, port, _log):
        base = f"http://127.0.0.1:{port}"
        row = healthz_during(base, make(base))
        process.send_signal(signal.SIGTERM)
        process.wait(120)
    return row


def silent_tls(code: Path, folder: Path, sockets: int) -> dict:
    cert, key = self_signed(folder)
    env = {"STREAMPROC_HTTP__TLS_CERT": str(cert), "STREAMPROC_HTTP__TLS_KEY": str(key)}
    with serve(code, env) as (_process, port, _log):
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(sockets)]
        started, closed = time.perf_counter(), []
        for conn in conns:
            conn.settimeout(max(0.1, 120 - (time.perf_counter() - started)))
            with contextlib.suppress(OSError):
                conn.recv(1)
            closed.append(time.perf_counter() - started)
            conn.close()
    return {"dropped_after_s": max(closed)}


def sigterm_during(code: Path, env: dict[str, str], bodies: list[tuple[bytes, str]]) -> dict:
    """SIGTERM 2 s after ``bodies`` were sent at once: seconds until the process is gone."""
    with serve(code, env) as (process, port, log):
        base = f"http://127.0.0.1:{port}"
        for body, content_type in bodies:
            threading.Thread(target=post, args=(base, body, content_type), daemon=True).start()
        time.sleep(2.0)
        started = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        process.wait(300)
        took = time.perf_counter() - started
        time.sleep(0.2)  # the last lines
    return {"exit_s": took, "code": process.returncode, "traceback": any("Traceback" in line for line in log)}


def decode_cost(data: bytes, rounds: int = 10) -> tuple[float, float]:
    """Median ms of decoding ``data`` in this process and through a decoder process, interleaved."""
    from streamproc.media.still_images import decode_image
    from streamproc.server.decoder import Decoder

    decoder = Decoder(60.0, 10**9)
    decoder.decode(data)  # started and warm
    here, there = [], []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            decode_image(data, 10**9)
            here.append(time.perf_counter() - started)
            started = time.perf_counter()
            decoder.decode(data)
            there.append(time.perf_counter() - started)
    finally:
        decoder.close()
    return float(np.median(here)) * 1000.0, float(np.median(there)) * 1000.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--baseline", type=Path, help="a checkout to compare with (its serve, same scenarios)"
    )
    parser.add_argument("--photo-mp", type=float, default=12.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--tls-sockets", type=int, default=200)
    parser.add_argument("--only", help="only the scenarios whose name contains this, or: tls, sigterm")
    parser.add_argument("--repeat", type=int, default=1, help="run each scenario this often, interleaved")
    args = parser.parse_args(argv)
    shared = Path(os.environ.get("STREAMPROC_SHARED_DIR", REPO.parent / "shared"))
    face = (shared / "images" / "face.jpg").read_bytes()
    codes = {"this": REPO, **({"baseline": args.baseline} if args.baseline else {})}
    here, there = decode_cost(photo(args.photo_mp, face))
    print(f"decoding a {args.photo_mp:g} MP JPEG, median: {here:.1f} ms here, {there:.1f} ms in a decoder")
    columns = ("p50 ms", "p99 ms", "max ms", "n", "slowest")
    print(f"{'scenario':<30} {'code':<8} " + " ".join(f"{name:>7}" for name in columns) + "  answers")
    chosen = [each for each in scenarios(args, face) if args.only is None or args.only in each[0]]
    for name, env, make in chosen:
        for label, code in list(codes.items()) * args.repeat:
            row = run_scenario(code, env if label == "this" else {}, make)
            print(
                f"{name:<30} {label:<8} {row['p50']:>7.1f} {row['p99']:>7.1f} {row['max']:>7.1f} "
                f"{row['samples']:>7} {answers(row['results'])}",
                flush=True,
            )
    if args.only in (None, "tls"):
        silent_tls_rows(codes, args.tls_sockets)
    if args.only in (None, "sigterm"):
        sigterm_rows(codes, args, face)
    return 0


def silent_tls_rows(codes: dict[str, Path], sockets: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for label, code in codes.items():
            row = silent_tls(code, Path(folder), sockets)
            print(f"{sockets} silent TLS sockets ({label}): all dropped after {row['dropped_after_s']:.1f} s")


def sigterm_rows(codes: dict[str, Path], args: argparse.Namespace, face: bytes) -> None:
    raised = {"STREAMPROC_HTTP__API__MAX_SCANS": "100000", "STREAMPROC_HTTP__API__CPU_BUDGET_S": "60"}
    form, form_type = empty_parts_form(1_000_000)
    cases = [
        ("a 4000-scan bomb decoding", raised, [(scan_bomb(scans=4000), "image/jpeg")]),
        ("1M empty form parts", {}, [(form, form_type)]),
        (f"{args.clients} uploads", {}, [(photo(args.photo_mp, face), "image/jpeg")] * args.clients),
    ]
    for what, env, bodies in cases:
        for label, code in codes.items():
            row = sigterm_during(code, env if label == "this" else {}, bodies)
            print(
                f"SIGTERM during {what} ({label}): gone after {row['exit_s']:.2f} s, "
                f"exit code {row['code']}, traceback in the log: {'yes' if row['traceback'] else 'no'}",
                flush=True,
            )


if __name__ == "__main__":
    sys.exit(main())
