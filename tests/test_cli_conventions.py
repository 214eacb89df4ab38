"""Command-line conventions: ``-`` is standard output (a reader that stops early, as ``head`` does,
ends the run quietly) or standard input (the source ``stdin``); without -c the config is
$STREAMPROC_CONFIG, else ./streamproc.yaml."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, CliRunner
from media_gen import ffprobe_frames

pytestmark = pytest.mark.slow  # whole runs of the command line


def _models_dir_used(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    """Run ``streamproc models list`` in ``cwd``: (the models directory it used, its log)."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in ("STREAMPROC_CONFIG", "STREAMPROC_MODELS_DIR")
    }
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environ.get("PYTHONPATH")]))
    completed = subprocess.run(
        [sys.executable, "-m", "streamproc", "models", "list", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environ | (env or {}),
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    first = completed.stdout.splitlines()[0]
    return first.removeprefix("models directory: "), completed.stderr


def _config(path: Path, models_dir: str) -> Path:
    path.write_text(f"models_dir: {models_dir}\n")
    return path


def test_local_streamproc_yaml_is_read_and_named(tmp_path: Path) -> None:
    _config(tmp_path / "streamproc.yaml", "/from/local")
    used, log = _models_dir_used(tmp_path)
    assert used == "/from/local"
    assert "config: streamproc.yaml (found in the current directory)" in log


def test_environment_variable_wins_over_the_local_file_and_flag_over_both(tmp_path: Path) -> None:
    _config(tmp_path / "streamproc.yaml", "/from/local")
    chosen = _config(tmp_path / "chosen.yaml", "/from/env")
    used, log = _models_dir_used(tmp_path, env={"STREAMPROC_CONFIG": str(chosen)})
    assert used == "/from/env"
    assert f"config: {chosen} (from STREAMPROC_CONFIG)" in log
    flagged = _config(tmp_path / "flag.yaml", "/from/flag")
    used, _ = _models_dir_used(tmp_path, "-c", str(flagged), env={"STREAMPROC_CONFIG": str(chosen)})
    assert used == "/from/flag"


def test_no_config_anywhere_means_defaults(tmp_path: Path) -> None:
    used, log = _models_dir_used(tmp_path, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert used == str(tmp_path / "cache" / "streamproc" / "models")
    assert "config:" not in log


def test_events_dash_writes_records_to_stdout_and_no_file(run_cli: CliRunner, sample_video: Path) -> None:
    result = run_cli("run", sample_video, "--events", "-", "--no-progress")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["frame"] for record in records if record["type"] == "frame"] == list(range(100))
    assert not (REPO / "-").exists()


def _shell(command: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run ``command`` in bash from the repository: (streamproc's exit code, stdout, stderr). The
    command puts streamproc's own exit code (the pipe's first) on the last line of stderr."""
    completed = subprocess.run(
        ["bash", "-c", command + '; echo "exit ${PIPESTATUS[0]}" >&2'],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )
    *log, last = completed.stderr.splitlines()
    return int(last.removeprefix("exit ")), completed.stdout, "\n".join(log)


def _quiet_end(stderr: str) -> None:
    for noise in ("error", "Traceback", "Exception ignored", "BrokenPipe"):
        assert noise not in stderr, stderr


def test_a_reader_that_stops_early_stops_the_run_quietly(long_video: Path) -> None:
    streamproc = f"{sys.executable} -m streamproc"
    code, stdout, stderr = _shell(f"{streamproc} run {long_video} --events - --no-progress | head -n 3")
    assert code == 0, stderr
    assert len(stdout.splitlines()) == 3 and all(json.loads(line) for line in stdout.splitlines())
    _quiet_end(stderr)
    assert "(stopped: the reader of standard output went away)" in stderr
    processed = int(stderr.split("processed ", 1)[1].split()[0])
    assert processed < 500, f"{processed} of 1000 frames: the run went on after its reader left"
    code, stdout, stderr = _shell(f"{streamproc} config schema | head -n 1")
    assert (code, stdout) == (0, "{\n")
    _quiet_end(stderr)


def test_other_outputs_are_finished_when_the_stdout_reader_leaves(tmp_path: Path, sample_video: Path) -> None:
    video = tmp_path / "a.mp4"
    command = f"{sys.executable} -m streamproc run {sample_video} --events - --out-video {video}"
    code, stdout, stderr = _shell(command + " --no-progress | head -n 2")
    assert code == 0, stderr
    assert len(stdout.splitlines()) == 2
    _quiet_end(stderr)
    assert "stopped: the reader" not in stderr, "the video still had frames to write"
    assert ffprobe_frames(video) == 100, "the annotated video has every frame and plays"


def test_a_stream_on_stdin_is_the_source_stdin(tmp_path: Path, sample_video: Path) -> None:
    events, video = tmp_path / "{source}.jsonl", tmp_path / "{source}.mp4"
    command = f"cat {sample_video} | {sys.executable} -m streamproc run - --events '{events}'"
    code, _, stderr = _shell(command + f" --out-video '{video}' --no-progress")
    assert code == 0, stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["stdin.jsonl", "stdin.mp4"]
    *records, summary = [json.loads(line) for line in (tmp_path / "stdin.jsonl").read_text().splitlines()]
    assert len(records) > 100 and {record["source"] for record in records} == {"stdin"}
    assert summary["type"] == "summary"
    assert ffprobe_frames(tmp_path / "stdin.mp4") == 100


def test_events_to_a_closed_stdout_is_one_clear_line(sample_video: Path) -> None:
    command = f"{sys.executable} -m streamproc run {sample_video} --events - --no-progress"
    code, _, stderr = _shell(command + " >&-")
    assert code == 1, stderr
    assert "streamproc: error: events to '-' (standard output), but it is closed" in stderr
    assert "Traceback" not in stderr and "NoneType" not in stderr


def test_events_to_a_pipe_by_its_path(sample_video: Path) -> None:
    """/dev/stdout (or a shell's >(...)) is a pipe: written to, never read back (that would block)."""
    command = f"{sys.executable} -m streamproc run {sample_video} --events /dev/stdout --no-progress"
    code, stdout, stderr = _shell(command + " | cat", timeout=60)
    assert code == 0, stderr
    records = [json.loads(line) for line in stdout.splitlines()]
    assert [record["frame"] for record in records if record["type"] == "frame"] == list(range(100))


def test_a_wrong_flag_shows_the_commands_usage_and_the_flag_meant(run_cli: CliRunner) -> None:
    wrong = run_cli("run", "x.mp4", "--output", "x.jsonl")
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr.startswith("usage: streamproc run [-h]"), wrong.stderr
    assert "--events PATH" in wrong.stderr and "COMMAND ..." not in wrong.stderr
    last = wrong.stderr.splitlines()[-1]
    assert last == "streamproc run: error: unrecognized arguments: --output x.jsonl; did you mean --events?"
    video = run_cli("run", "x.mp4", "-o=out.mp4").stderr.splitlines()[-1]
    assert video.endswith("unrecognized arguments: -o=out.mp4; did you mean --out-video?")
    typo = run_cli("run", "x.mp4", "--evnts", "e.jsonl").stderr.splitlines()[-1]
    assert typo.endswith("unrecognized arguments: --evnts e.jsonl; did you mean --events?")
    nested = run_cli("config", "schema", "--formt", "markdown")
    assert nested.stderr.startswith("usage: streamproc config schema [-h]")
    assert nested.stderr.splitlines()[-1].endswith("did you mean --format?")
    unlike = run_cli("report", "r.jsonl", "--zzz").stderr.splitlines()[-1]
    assert unlike == "streamproc report: error: unrecognized arguments: --zzz"


def test_the_example_config_runs_in_an_empty_folder(tmp_path: Path) -> None:
    """`streamproc config example > streamproc.yaml; streamproc run`, as the README says, anywhere."""
    environ = {key: value for key, value in os.environ.items() if key != "STREAMPROC_CONFIG"}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environ.get("PYTHONPATH")]))

    def streamproc(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "streamproc", *args]
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=environ, timeout=120)
        assert done.returncode == 0, done.stderr
        return done

    (tmp_path / "streamproc.yaml").write_text(streamproc("config", "example").stdout)
    log = streamproc("run", "--no-progress").stderr
    assert "config: streamproc.yaml (found in the current directory)" in log
    records = [json.loads(line) for line in (tmp_path / "out" / "sample.jsonl").read_text().splitlines()]
    assert [record["frame"] for record in records if record["type"] == "frame"] == list(range(100))
    assert ffprobe_frames(tmp_path / "out" / "sample.annotated.mp4") == 100


def test_the_example_names_an_installed_sample_whatever_its_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A virtualenv under a folder such as 'my videos: #1' still gives YAML that reads back the path."""
    from streamproc.cli import config_files

    for path in (
        "/opt/venv/lib/python3.11/site-packages/streamproc/examples/sample.mp4",
        "/tmp/a: b #1/s.mp4",
    ):
        monkeypatch.setattr(config_files, "SAMPLE_VIDEO", path)
        assert yaml.safe_load(config_files.example_config())["sources"][0]["url"] == path
