"""Which config file a command reads when ``-c`` is not given, and the example config it can print."""

from __future__ import annotations

import json
import logging
import os
import re
from importlib.resources import files
from pathlib import Path

log = logging.getLogger(__name__)

CONFIG_ENV = "STREAMPROC_CONFIG"
LOCAL_CONFIG = Path("streamproc.yaml")
EXAMPLE_CONFIG = files("streamproc") / "examples" / "example.yaml"
SAMPLE_VIDEO = files("streamproc") / "examples" / "sample.mp4"  # samples/sample.mp4, shipped in the package
# the example's input, as config/example.yaml names it (a path inside a checkout)
_EXAMPLE_INPUT = re.compile(r"^  - url: samples/sample\.mp4 .*$", re.MULTILINE)
_PLAIN_PATH = re.compile(r"[\w./+-]+")  # written bare in YAML; others (': ', ' #', quotes) are quoted


def find_config(explicit: Path | None) -> Path | None:
    """``-c FILE``, else ``$STREAMPROC_CONFIG``, else ``./streamproc.yaml`` if it exists; says which."""
    if explicit is not None:
        path, why = explicit, "from -c"
    elif os.environ.get(CONFIG_ENV):
        path, why = Path(os.environ[CONFIG_ENV]).expanduser(), f"from {CONFIG_ENV}"
    elif LOCAL_CONFIG.is_file():
        path, why = LOCAL_CONFIG, "found in the current directory"
    else:
        log.debug(
            "config: no file (-c, %s, ./%s): defaults and STREAMPROC_* variables", CONFIG_ENV, LOCAL_CONFIG
        )
        return None
    # a file found by lookup is worth a line; one given with -c the user already knows
    log.log(logging.DEBUG if explicit is not None else logging.INFO, "config: %s (%s)", path, why)
    return path


def example_config() -> str:
    """The commented example config that ships with the package (every field, with its default),
    its input the sample video inside the installed package: it runs from any directory."""
    path = str(SAMPLE_VIDEO)
    url = path if _PLAIN_PATH.fullmatch(path) else json.dumps(path)  # YAML reads JSON strings as they are
    sample = f"  - url: {url}   # the sample that comes with streamproc: name your video here"
    return _EXAMPLE_INPUT.sub(lambda _match: sample, EXAMPLE_CONFIG.read_text(encoding="utf-8"), count=1)
