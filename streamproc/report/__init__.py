"""``streamproc report``: one self-contained HTML page summarising a run's JSON Lines results."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from streamproc.core.errors import OutputError
from streamproc.report.data import read_results
from streamproc.report.render import render_report
from streamproc.report.thumbs import attach_thumbnails, video_map
from streamproc.report.tracks import source_tracks

log = logging.getLogger(__name__)


def write_report(
    paths: Sequence[Path], output: Path, videos: Sequence[str] = (), title: str | None = None
) -> Path:
    """Read ``paths``, build tracks and thumbnails, and write the HTML page to ``output``."""
    results = read_results(list(paths))
    sources = [source_tracks(records) for records in results.sources.values()]
    attach_thumbnails(
        sources,
        base_dirs=[path.parent for path in results.paths],
        videos=video_map(videos, list(results.sources)),
    )
    names = [path.name for path in results.paths]
    page = render_report(title or f"streamproc report: {', '.join(names)}", sources, names)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write report {output}: {exc.strerror}: choose another path") from None
    tracks = sum(len(source.tracks) for source in sources)
    log.info("report with %d source(s) and %d track(s) written to %s", len(sources), tracks, output)
    return output
