"""The RGB pixels a warp plan reads, taken from a decoded video frame without converting all of it.

MediaPipe is fed ``frame.to_ndarray(format="rgb24")``: swscale's conversion of the whole frame.
The warp reads only ``plan.rows`` x ``plan.cols`` of it (about a fifth of the rows and columns at
720p). For 4:2:0 frames (yuv420p, yuvj420p) swscale converts each 2x2 block from its own luma and
its one chroma sample, so a small frame cut from those rows and columns, in whole 2x2 blocks,
converts to exactly the same RGB there; cutting it is a gather of a few hundred kilobytes. Whether
that holds for a frame layout (format, size, colour tags) is checked once against the full
conversion; any other layout, or one that fails the check, converts the whole frame.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np

from streamproc.core.pictures import reformat
from streamproc.inference.image_to_tensor import WarpPlan

log = logging.getLogger(__name__)

_CUTTABLE_FORMATS = frozenset({"yuv420p", "yuvj420p"})


@dataclass(frozen=True, eq=False)
class _Cut:
    """The rows and columns of the frame's planes that make the small frame's planes."""

    rows: np.ndarray  # luma rows
    cols: np.ndarray  # luma columns, in even/odd pairs
    exact: bool  # the small frame's RGB equals the full conversion's (checked on a real frame)
    chroma_rows: np.ndarray = field(init=False)  # every other luma row, halved
    pairs: np.ndarray = field(init=False)  # the chroma columns; also the luma pairs in 16-bit units

    def __post_init__(self) -> None:
        object.__setattr__(self, "chroma_rows", self.rows[::2] // 2)
        object.__setattr__(self, "pairs", self.cols[::2] // 2)


_cuts: dict[tuple, _Cut] = {}
_cuts_lock = threading.Lock()


def full_rgb(frame: Any) -> np.ndarray:
    """The whole frame as MediaPipe's caller makes it: ``to_ndarray(format="rgb24")``."""
    return reformat(frame, format="rgb24").to_ndarray()


def plan_rgb(frame: Any, plan: WarpPlan) -> np.ndarray:
    """RGB uint8 (len(rows), len(cols), 3): the frame's full rgb24 conversion at the plan's rows and
    columns. Cheap for 4:2:0 frames; other layouts are converted whole first."""
    key = _layout(frame, plan)
    cut = _cuts.get(key)
    if cut is None:
        cut = _new_cut(frame, plan, key)
    if not cut.exact:
        return full_rgb(frame)[np.ix_(plan.rows, plan.cols)]
    return _convert_cut(frame, cut)


def _layout(frame: Any, plan: WarpPlan) -> tuple:
    lines = tuple(plane.line_size for plane in frame.planes)
    colour = (frame.colorspace, frame.color_range)
    return (plan.width, plan.height, plan.size, frame.format.name, lines, colour)


def _new_cut(frame: Any, plan: WarpPlan, key: tuple) -> _Cut:
    rows, cols = plan.rows, plan.cols
    cuttable = frame.format.name in _CUTTABLE_FORMATS and len(rows) % 2 == 0 and len(cols) % 2 == 0
    cut = _Cut(rows.astype(np.intp), cols.astype(np.intp), exact=cuttable)
    if cuttable and not np.array_equal(_convert_cut(frame, cut), full_rgb(frame)[np.ix_(rows, cols)]):
        log.info("%s %dx%d: converting whole frames for the detector", key[3], frame.width, frame.height)
        cut = _Cut(cut.rows, cut.cols, exact=False)
    with _cuts_lock:
        if len(_cuts) >= 32:  # sizes that keep changing: do not grow without bound
            _cuts.clear()
        _cuts[key] = cut
    return cut


def _convert_cut(frame: Any, cut: _Cut) -> np.ndarray:
    small = av.VideoFrame(len(cut.cols), len(cut.rows), frame.format.name)
    source, target = frame.planes, small.planes
    # luma columns come in even/odd pairs: gathered as 16-bit units, half as many picks (a cut
    # whose pairs were not whole would fail the exactness check in _new_cut)
    _gather(source[0], cut.rows, cut.pairs, target[0], np.uint16)
    for index in (1, 2):
        _gather(source[index], cut.chroma_rows, cut.pairs, target[index], np.uint8)
    small.colorspace, small.color_range = frame.colorspace, frame.color_range
    return reformat(small, format="rgb24").to_ndarray()


def _gather(plane: Any, rows: np.ndarray, cols: np.ndarray, into: Any, unit: type) -> None:
    """``plane``'s pixels at ``rows`` x ``cols`` (in ``unit``s), written straight into the small
    frame's plane ``into``: whole lines first, then columns; mode "clip" writes without a buffer."""
    lines = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
    out = np.frombuffer(into, np.uint8).reshape(-1, into.line_size)[:, : len(cols) * np.dtype(unit).itemsize]
    np.take(np.take(lines, rows, axis=0).view(unit), cols, axis=1, out=out.view(unit), mode="clip")
