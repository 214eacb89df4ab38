"""Bad config files (issue 13, case 10): one line naming the problem and exit code 2, never a
traceback; duplicate keys, booleans and infinities are errors, not silently taken."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CliRunner

from streamproc.config.settings import load_settings
from streamproc.core.errors import ConfigError

CASES = {
    "not_utf8": (b"detector:\n  model: \xff\xfeshort\n", "is not UTF-8 text (byte 0xff at line 2)"),
    "deep": (b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested more than 50 levels deep"),
    "duplicate": (b"detector:\n  min_score: 0.5\n  min_score: 0.9\n", "line 3: duplicate key 'min_score'"),
    "boolean": (b"detector:\n  min_score: true\n", "'min_score' must be a number, not the boolean true"),
    "boolean_int": (b"sink_queue_size: false\n", "'sink_queue_size' must be a number, not the boolean false"),
    "infinity": (b"duration: .inf\n", "invalid setting 'duration'"),
    "nan": (b"detector:\n  min_score: .nan\n", "invalid setting 'detector.min_score'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_files_are_one_clear_error(tmp_path: Path, case: str) -> None:
    text, expected = CASES[case]
    config = tmp_path / "bad.yaml"
    config.write_bytes(text)
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    assert expected in str(error.value) and "\n" not in str(error.value)
    assert error.value.exit_code == 2


def test_booleans_stay_booleans_and_numbers_numbers(tmp_path: Path) -> None:
    config = tmp_path / "good.yaml"
    config.write_text("detector:\n  min_score: 1\nprogress: false\nduration: 2.5\n")
    settings = load_settings(config)
    assert (settings.detector.min_score, settings.progress, settings.duration) == (1.0, False, 2.5)


def test_config_check_exits_2_with_one_line(tmp_path: Path, run_cli: CliRunner) -> None:
    for name in ("deep", "not_utf8"):
        config = tmp_path / f"{name}.yaml"
        config.write_bytes(CASES[name][0])
        result = run_cli("config", "check", config, timeout=60)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
