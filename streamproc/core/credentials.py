"""The one helper that keeps logins out of every message, log line, API answer and event.

Two nets: any ``scheme://user:password@`` in a text becomes ``scheme://***@``, and every password
read from a configured url is replaced wherever it appears, even where no url surrounds it (a
password holding a blank or a quote would otherwise end the pattern early). Nothing here imports
the rest of streamproc, so errors and logging can use it.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import quote

MASK = "***"
# a scheme, then anything up to the last @ before a blank (hiding too much is harmless); one slash
# too, as a url that went through pathlib.Path lost one ("http:/user:pw@host/x.mp4")
_LOGIN_IN_TEXT = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*:/{1,2})[^\s<>]*@")
MIN_SECRET = 3  # shorter passwords would mangle ordinary words; the url pattern still hides them

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(secret: str | None) -> None:
    """Remember a password (as written and percent-encoded) so that :func:`redact` removes it."""
    if secret and len(secret) >= MIN_SECRET:
        with _lock:
            _secrets.update({secret, quote(secret, safe="")})


def redact(text: str) -> str:
    """``text`` with url logins replaced by ``***`` and every known password removed."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:  # first: a password with a blank would stop the pattern below
        text = text.replace(secret, MASK)
    return _LOGIN_IN_TEXT.sub(rf"\g<scheme>{MASK}@", text)


class RedactingFilter(logging.Filter):
    """Applies :func:`redact` to every log record a handler writes (arguments included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
