"""The rounding rules of every JSON record streamproc writes (JSON Lines, MQTT, events)."""

from __future__ import annotations

from typing import Any

import numpy as np

PIXEL_DIGITS = 2  # a hundredth of a pixel: finer than any detector is sure of
SCORE_DIGITS = 4
TIME_DIGITS = 6  # microseconds


def pixels(array: np.ndarray) -> list[Any]:
    """Coordinates as nested lists, rounded to PIXEL_DIGITS."""
    return np.round(np.asarray(array, np.float64), PIXEL_DIGITS).tolist()


def scores(array: np.ndarray) -> list[Any]:
    return np.round(np.asarray(array, np.float64), SCORE_DIGITS).tolist()


def score(value: float) -> float:
    return round(float(value), SCORE_DIGITS)


def seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), TIME_DIGITS)
