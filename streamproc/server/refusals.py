"""Warnings about refused requests that a hostile client cannot turn into a flood of log lines.

The first refusal for each key (a Host name, a client address) is logged in full, for up to
NAMED_KEYS keys; every later one is counted, and the count is logged in one summary line at most
every ``interval_s`` seconds (and when the server stops), naming the keys refused most often.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

log = logging.getLogger(__name__)

NAMED_KEYS = 8  # keys logged in full over the server's life; a client inventing Host names gets no more
COUNTED_KEYS = 256  # keys counted one by one per summary; the rest are counted together
SHOWN_KEYS = 3  # keys named in a summary


class RefusalLog:
    """Logs refusals of one kind (``what``: "a Host not in http.allowed_hosts"). Called on the
    server's event loop only; ``flush`` also after the loop has ended."""

    def __init__(self, what: str, interval_s: float) -> None:
        self.what = what
        self.interval_s = interval_s
        self._named: set[str] = set()
        self._counts: Counter[str] = Counter()
        self._uncounted = 0  # refusals for keys beyond COUNTED_KEYS
        self._since = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def refused(self, key: str, detail: str) -> None:
        """One refusal for ``key``; ``detail`` (where it came from) shows only in the full line."""
        if key not in self._named and len(self._named) < NAMED_KEYS:
            self._named.add(key)
            log.warning(
                "http: refused %s: %r %s (more are counted and summarised every %g s)",
                self.what,
                key,
                detail,
                self.interval_s,
            )
            return
        if key in self._counts or len(self._counts) < COUNTED_KEYS:
            self._counts[key] += 1
        else:
            self._uncounted += 1
        if self._timer is None:
            self._since = time.monotonic()
            self._timer = asyncio.get_running_loop().call_later(self.interval_s, self.flush)

    def flush(self) -> None:
        """Log the summary of the refusals counted since the last one, if any."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        total = sum(self._counts.values()) + self._uncounted
        if total == 0:
            return
        shown = ", ".join(f"{key!r} {count}" for key, count in self._counts.most_common(SHOWN_KEYS))
        if len(self._counts) > SHOWN_KEYS or self._uncounted:
            shown += f"; {len(self._counts)}{'+' if self._uncounted else ''} distinct"
        log.warning(
            "http: refused %d more requests with %s in %.3g s (%s)",
            total,
            self.what,
            time.monotonic() - self._since,
            shown,
        )
        self._counts.clear()
        self._uncounted = 0
