"""docs/python-api.md: every ```python block runs as written and prints the ```text block after it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import REPO

import streamproc

DOC = REPO / "docs" / "python-api.md"
# a python block, then (after a little prose, no code) the text block that shows what it prints
EXAMPLE = re.compile(r"```python\n(.*?)```\n(?:[^`]*?\n)?```text\n(.*?)```", re.DOTALL)
EXAMPLES = EXAMPLE.findall(DOC.read_text(encoding="utf-8"))


def test_every_public_name_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [name for name in streamproc.__all__ if name != "__version__" and f"`{name}" not in text]
    assert not missing, f"{DOC.name} does not describe {missing}"


def test_the_doc_has_its_examples() -> None:
    assert len(EXAMPLES) >= 2, f"{DOC} lost its runnable examples"


@pytest.mark.parametrize(("code", "printed"), EXAMPLES, ids=[f"example{i + 1}" for i in range(len(EXAMPLES))])
def test_example_runs_and_prints_what_the_doc_shows(code: str, printed: str) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout == printed
