"""Which config file a command reads when ``-c`` is not given, and the example config it can print."""

from __future__ import annotations

import logging
import os
from importlib.resources import files
from pathlib import Path

log = logging.getLogger(__name__)

CONFIG_ENV = "STREAMPROC_CONFIG"
LOCAL_CONFIG = Path("streamproc.yaml")
EXAMPLE_CONFIG = files("streamproc") / "examples" / "example.yaml"


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
    """The commented example config that ships with the package (every field, with its default)."""
    return EXAMPLE_CONFIG.read_text(encoding="utf-8")
