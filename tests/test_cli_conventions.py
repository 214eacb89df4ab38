"""Command-line conventions: ``-`` is standard output; without -c the config is $STREAMPROC_CONFIG,
else ./streamproc.yaml."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO, CliRunner


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
