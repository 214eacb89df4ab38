"""User-facing errors: each message is one line naming the problem and what to do."""

from streamproc.core.credentials import redact


class StreamprocError(Exception):
    """An expected failure; the CLI prints its message without a traceback (and without logins:
    a message that quotes a url with a password is cleaned here, once for every caller)."""

    exit_code = 1

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(redact(str(message)), *args)


class ConfigError(StreamprocError):
    """Invalid configuration (file, environment or command line)."""

    exit_code = 2


class InputError(StreamprocError):
    """A source that cannot be opened or decoded."""


class ModelError(StreamprocError):
    """A model file that is missing, corrupt or of the wrong shape."""


class OutputError(StreamprocError):
    """An output (file, directory, broker) that cannot be written."""


def first_line(exc: BaseException) -> str:
    """Libraries' messages span lines; keep the first so user-facing errors stay one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
