"""Logging set-up: a readable format for people, JSON lines for log shippers."""

from __future__ import annotations

import json
import logging
import sys

from streamproc.core.credentials import RedactingFilter

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
OWN_LOGGER = "streamproc"


class JsonFormatter(logging.Formatter):
    """One JSON object per log record."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def levels_for(verbosity: int) -> tuple[int, int]:
    """(streamproc's level, other libraries' level) for a -v count minus a -q count.

    -qq: errors only; -q: warnings; default: streamproc's progress lines (one per source state
    change, start and summary); -v: streamproc's debug lines too; -vv: every library's debug lines.
    """
    if verbosity <= -2:
        return logging.ERROR, logging.ERROR
    if verbosity == -1:
        return logging.WARNING, logging.WARNING
    if verbosity == 0:
        return logging.INFO, logging.WARNING
    if verbosity == 1:
        return logging.DEBUG, logging.WARNING
    return logging.DEBUG, logging.DEBUG


def setup_logging(verbosity: int = 0, json_format: bool = False) -> None:
    """Configure the root logger once, on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_format else logging.Formatter(TEXT_FORMAT, "%H:%M:%S"))
    handler.addFilter(RedactingFilter())  # no password in any log line, whoever wrote it
    own, others = levels_for(verbosity)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # third-party chatter stays out of the user's way unless asked for (-vv)
    root.setLevel(others)
    logging.getLogger(OWN_LOGGER).setLevel(own)


def set_own_level(level: str | int) -> None:
    """Apply a configured ``log_level`` to streamproc's own loggers."""
    logging.getLogger(OWN_LOGGER).setLevel(level)
