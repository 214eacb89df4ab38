"""Progress bar for file runs: frames done / total, fps and ETA."""

from __future__ import annotations

import sys
from types import TracebackType

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from streamproc.core.frames import FrameResult


class ProgressBar:
    """A tqdm bar on stderr, shown only on a terminal; log lines print above it."""

    def __init__(self, total: int | None, enabled: bool = True) -> None:
        self._enabled = enabled and sys.stderr.isatty()
        self._bar: tqdm | None = None
        self._redirect = logging_redirect_tqdm()
        self._total = total

    def __enter__(self) -> ProgressBar:
        if self._enabled:
            self._redirect.__enter__()
            self._bar = tqdm(total=self._total, unit="frame", dynamic_ncols=True, smoothing=0.1)
        return self

    def update(self, _result: FrameResult) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.close()
            self._redirect.__exit__(exc_type, exc, tb)
