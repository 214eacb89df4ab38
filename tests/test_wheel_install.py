"""A new user's install: build the sdist and wheel, pip-install the wheel into a fresh virtual
environment outside the source tree and run the README's commands from another directory."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, count_frames

pytestmark = pytest.mark.slow  # builds the wheel and installs it into a fresh venv

MAX_VENV_BYTES = 600 * 1024 * 1024
# what a checkout holds that is not source: caches, environments, earlier outputs
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", "out", ".*_cache", "*.pyc", "node_modules"
)
# setuptools' complaints (deprecated metadata, files not found, ...); pip's own "WARNING:" lines about
# this machine's package indexes are not about the project
BUILD_WARNING = re.compile(r"warning:|Warning:|deprecat", re.IGNORECASE)


def _build(workdir: Path) -> tuple[Path, str]:
    """``python -m build`` (sdist, then the wheel from the sdist) on a copy of the checkout."""
    source = workdir / "src"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    env = _environment(drop=("PYTHONPATH", "PYTHONDONTWRITEBYTECODE"))
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(workdir / "dist"), str(source)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    output = built.stdout + built.stderr
    assert built.returncode == 0, output[-3000:]
    (wheel,) = (workdir / "dist").glob("streamproc-*.whl")
    return wheel, output


def _environment(drop: tuple[str, ...]) -> dict[str, str]:
    """This process's environment without the variables whose names start with one of ``drop``."""
    return {key: value for key, value in os.environ.items() if not key.startswith(drop)}


def _venv_bytes(venv: Path) -> int:
    return sum(path.lstat().st_size for path in venv.rglob("*") if path.is_file() and not path.is_symlink())


class Installed:
    """The wheel installed into ``venv``, run from ``cwd`` with nothing of the checkout in reach."""

    def __init__(self, venv: Path, cwd: Path, models_dir: Path) -> None:
        self.venv, self.cwd = venv, cwd
        self.env = _environment(drop=("PYTHON", "STREAMPROC_")) | {
            "STREAMPROC_MODELS_DIR": str(models_dir),
            "HOME": str(cwd),
        }

    def run(self, *args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            [str(self.venv / "bin" / "streamproc"), *map(str, args)],
            capture_output=True,
            text=True,
            cwd=cwd or self.cwd,
            env=self.env,
            timeout=120,
        )
        assert completed.returncode == 0, f"streamproc {' '.join(map(str, args))}: {completed.stderr[-2000:]}"
        return completed


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Installed:
    workdir = tmp_path_factory.mktemp("wheel")
    started = time.monotonic()
    wheel, build_output = _build(workdir)
    lines = build_output.splitlines()
    warnings = [line for line in lines if BUILD_WARNING.search(line) and not line.startswith("WARNING:")]
    assert not warnings, "python -m build warned:\n" + "\n".join(warnings)
    built = time.monotonic()
    venv = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # the lock's versions first (what CI tested; hashes stripped, the wheel is not in the lock), then
    # the wheel alone, and pip's own check that the lock satisfies what the wheel declares
    lock = (REPO / "requirements" / "base.txt").read_text()
    locked = re.findall(r"(?m)^([A-Za-z0-9_.-]+==[^\\\n]*?)\s*\\?$", lock)  # with environment markers
    (workdir / "locked.txt").write_text("\n".join(locked) + "\n")
    python = str(venv / "bin" / "python")
    for step in (["-r", str(workdir / "locked.txt")], ["--no-deps", str(wheel)]):
        pip = subprocess.run(
            [python, "-m", "pip", "install", "-q", *step], capture_output=True, text=True, timeout=300
        )
        assert pip.returncode == 0, pip.stderr[-3000:]
    check = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout
    size = _venv_bytes(venv)
    installing = time.monotonic() - built
    print(
        f"{wheel.name}: build {built - started:.1f} s, venv + install {installing:.1f} s, "
        f"venv size {size / 2**20:.0f} MB"
    )
    assert size < MAX_VENV_BYTES, f"the base install takes {size / 2**20:.0f} MB, more than 600 MB"
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    return Installed(venv, elsewhere, models_dir)


def test_base_install_has_no_tensorflow(installed: Installed) -> None:
    probe = (
        "from importlib.util import find_spec as f; print(f('tensorflow') is None, f('streamproc').origin)"
    )
    python = installed.venv / "bin" / "python"
    completed = subprocess.run(
        [python, "-c", probe], capture_output=True, text=True, cwd=installed.cwd, env=installed.env
    )
    no_tensorflow, origin = completed.stdout.split()
    assert no_tensorflow == "True"
    assert Path(origin).is_relative_to(installed.venv)  # the installed copy, not the checkout


def test_run_report_and_classify_from_another_directory(installed: Installed, sample_video: Path) -> None:
    started = time.monotonic()
    run = installed.run("run", sample_video, "--events", "-", "--out-video", "annotated.mp4", "--no-progress")
    print(f"first run of the installed wheel: {time.monotonic() - started:.1f} s")
    records = [json.loads(line) for line in run.stdout.splitlines()]
    frames = [record for record in records if record["type"] == "frame"]
    assert [record["frame"] for record in frames] == list(range(100))
    assert all(len(record["faces"]) == 2 for record in frames)  # the sample: two faces in every frame
    assert count_frames(installed.cwd / "annotated.mp4")[0] == 100
    events = installed.cwd / "events.jsonl"
    events.write_text(run.stdout)

    installed.run("report", events, "-o", "report.html", "--video", sample_video)
    page = (installed.cwd / "report.html").read_text()
    assert page.lower().startswith("<!doctype html>") and "data:image/jpeg;base64," in page

    installed.run("run", sample_video, "--classify", "faces", "--events", "classified.jsonl", "--no-progress")
    lines = (installed.cwd / "classified.jsonl").read_text().splitlines()
    faces = [face for line in lines for face in json.loads(line).get("faces", ())]
    classified = [face for face in faces if "classification" in face]
    assert classified, "no face was classified"


def test_models_and_config_commands(installed: Installed) -> None:
    verify = installed.run("models", "verify").stdout
    for name in ("mobilenet_v2", "imagenet_labels", "blazeface_short", "blazeface_full"):
        assert re.search(rf"^{name}\s+\S+\s+ok\b", verify, re.MULTILINE), verify

    example = installed.run("config", "example").stdout
    (sample,) = [source["url"] for source in yaml.safe_load(example)["sources"]]
    assert Path(sample).is_relative_to(installed.venv) and Path(sample).stat().st_size > 50_000
    ours = (REPO / "config" / "example.yaml").read_text().splitlines()
    assert [line for line in example.splitlines() if line not in ours] == [
        f"  - url: {sample}   # the sample that comes with streamproc: name your video here"
    ]
    empty = installed.cwd / "empty"  # the README's first steps, in a folder of their own
    empty.mkdir()
    (empty / "streamproc.yaml").write_text(example)
    installed.run("run", "--no-progress", cwd=empty)
    assert count_frames(empty / "out" / "sample.annotated.mp4")[0] == 100
    assert len((empty / "out" / "sample.jsonl").read_text().splitlines()) > 100  # frames, status, events

    schema = json.loads(installed.run("config", "schema").stdout)
    assert schema["title"] == "streamproc configuration"
    assert {"sources", "sinks", "detector", "classifier"} <= set(schema["properties"])
