"""Runs on Ray: files as retried tasks, live sources as restartable actors (``--workers``/``--cluster``).

Nothing here imports Ray at import time: a run without those flags never loads it, and a run with
them but without Ray installed fails with one line saying how to install it (see :mod:`.session`).
"""

from __future__ import annotations

from streamproc.config.settings import Settings


def wanted(settings: Settings) -> bool:
    """Whether the settings ask for a distributed run (``workers`` or ``distributed.cluster``)."""
    return settings.workers is not None or settings.distributed.cluster is not None
