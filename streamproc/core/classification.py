"""What a classifier says about a picture: its top-k labels, best first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamproc.core import rounding


@dataclass(frozen=True)
class Label:
    index: int
    label: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "label": self.label, "score": rounding.score(self.score)}


@dataclass(frozen=True)
class Classification:
    """Top-k labels of one picture, best first; ``frame`` is the frame index it was computed on."""

    model: str
    labels: tuple[Label, ...]
    frame: int | None = None

    @property
    def top(self) -> Label:
        return self.labels[0]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "frame": self.frame, "top_k": [label.to_dict() for label in self.labels]}
