"""The report page: inline CSS and SVG only, so the single HTML file is the whole report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from html import escape

from streamproc import __version__
from streamproc.report.tracks import SourceTracks, Track

PLOT_WIDTH = 960
LEFT = 56  # room for the y-axis labels
COUNT_HEIGHT = 90  # the faces-per-frame chart
LANE_HEIGHT = 16
AXIS_HEIGHT = 28
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem 2rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.meta { color: #555; font-size: .9rem; } .id { font-size: .75rem; }
table { border-collapse: collapse; margin-top: .8rem; font-size: .9rem; }
th, td { border-bottom: 1px solid #ddd; padding: .3rem .6rem; text-align: left; vertical-align: middle; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; border-radius: 2px; }
img.thumb { display: block; max-width: 128px; max-height: 128px; }
svg.timeline { background: #fff; border: 1px solid #ddd; }
svg text { font: 11px system-ui, sans-serif; fill: #444; } svg text.label { fill: #fff; }
"""


def render_report(title: str, sources: list[SourceTracks], inputs: list[str]) -> str:
    generated = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    total_tracks = sum(len(source.tracks) for source in sources)
    sections = "\n".join(_section(source) for source in sources)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{escape(title)}</h1>
<p class="meta">{len(sources)} source(s), {total_tracks} track(s), from {escape(", ".join(inputs))}.
Generated {escape(generated)} by streamproc {escape(__version__)}.</p>
{sections}
</body></html>
"""


def _section(source: SourceTracks) -> str:
    frames = len(source.timeline)
    with_faces = sum(1 for _, count in source.timeline if count)
    span = _span(source)
    share = f", faces in {with_faces} ({100 * with_faces / frames:.0f}%)" if frames else ""
    note = {
        "track events": "tracks from the run's track events",
        "track ids": "tracks from the track ids on the per-frame records",
        "IoU chaining": "no track events in the results: tracks are faces chained across frames by "
        "box overlap (IoU)",
    }[source.method]
    rows = "\n".join(_row(track, index) for index, track in enumerate(source.tracks))
    table = (
        '<table class="tracks"><thead><tr><th>track</th><th>thumbnail</th><th>start (s)</th>'
        "<th>end (s)</th><th>duration (s)</th><th>frames</th><th>best score</th><th>classification</th>"
        f"</tr></thead><tbody>\n{rows}\n</tbody></table>"
        if source.tracks
        else "<p>No face tracks.</p>"
    )
    return f"""<section class="source" data-source="{escape(source.source_id)}">
<h2>{escape(source.source_id)}</h2>
<p class="meta">{frames} frame(s) over {span:.2f} s{share}; {len(source.tracks)} track(s); {escape(note)}.</p>
{timeline_svg(source)}
{table}
</section>"""


def _row(track: Track, index: int) -> str:
    thumb = (
        f'<img class="thumb" src="{track.thumbnail}" alt="track {track.number}">'
        if track.thumbnail
        else '<span class="meta">no snapshot</span>'
    )
    classes = ", ".join(f"{escape(label)} {score:.2f}" for label, score in track.classification[:3]) or "-"
    started = (
        f' <span class="meta">{dt.datetime.fromtimestamp(track.start_wall).strftime("%H:%M:%S")}</span>'
        if track.start_wall
        else ""
    )
    frames = "-" if track.frames is None else str(track.frames)
    numbers = (f"{_num(track.start)}{started}", _num(track.end), _num(track.duration), frames)
    cells = "".join(f'<td class="num">{value}</td>' for value in (*numbers, _num(track.best_score)))
    return (
        f'<tr class="track" data-track="{escape(track.track_id)}">'
        f'<td><span class="swatch" style="background:{_colour(index)}"></span>{track.number}'
        f' <span class="meta id">{escape(track.track_id)}</span></td>'
        f"<td>{thumb}</td>{cells}<td>{classes}</td></tr>"
    )


def timeline_svg(source: SourceTracks) -> str:
    """Faces per frame as a step chart, and one bar per track in lanes below it, on one time axis."""
    span = _span(source) or 1.0
    lanes = _lanes(source.tracks)
    lane_count = max(lanes.values(), default=-1) + 1
    height = COUNT_HEIGHT + lane_count * LANE_HEIGHT + AXIS_HEIGHT + 8
    width = PLOT_WIDTH - LEFT - 10
    peak = max((count for _, count in source.timeline), default=0) or 1

    def x(seconds: float) -> float:
        return LEFT + width * max(0.0, min(seconds, span)) / span

    def y(count: int) -> float:
        return COUNT_HEIGHT - 4 - (COUNT_HEIGHT - 12) * count / peak

    label = f"faces over time in {escape(source.source_id)}"
    parts = [
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{PLOT_WIDTH}" height="{height}" '
        f'viewBox="0 0 {PLOT_WIDTH} {height}" role="img" aria-label="{label}">'
    ]
    if source.timeline:
        step = source.frame_interval or 0.0
        points = [f"{x(source.timeline[0][0]):.1f},{y(0):.1f}"]
        for t, count in source.timeline:
            points.append(f"{x(t):.1f},{y(count):.1f}")
            points.append(f"{x(t + step):.1f},{y(count):.1f}")
        points.append(f"{x(source.timeline[-1][0] + step):.1f},{y(0):.1f}")
        parts.append(
            f'<polygon class="faces" points="{" ".join(points)}" fill="#9ecae1" stroke="#3182bd" '
            'stroke-width="1"><title>faces per frame</title></polygon>'
        )
    for value in sorted({0, peak}):
        parts.append(f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value}</text>')
    parts.append('<text x="4" y="14">faces</text>')
    parts += _track_bars(source.tracks, lanes, x)
    if lane_count:
        parts.append(f'<text x="4" y="{COUNT_HEIGHT + 12}">tracks</text>')
    axis_y = height - AXIS_HEIGHT
    parts.append(f'<line x1="{LEFT}" y1="{axis_y}" x2="{LEFT + width}" y2="{axis_y}" stroke="#888"/>')
    for tick in _ticks(span):
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="{axis_y}" x2="{x(tick):.1f}" y2="{axis_y + 4}" stroke="#888"/>'
            f'<text x="{x(tick):.1f}" y="{axis_y + 16}" text-anchor="middle">{tick:g}</text>'
        )
    parts.append(f'<text x="{LEFT + width}" y="{height - 2}" text-anchor="end">seconds</text></svg>')
    return "\n".join(parts)


def _track_bars(tracks: list[Track], lanes: dict[str, int], x: Callable[[float], float]) -> list[str]:
    """One bar per track in its lane, labelled when there is room."""
    parts = []
    for index, track in enumerate(tracks):
        if track.start is None:
            continue
        end = track.end if track.end is not None else track.start
        top = COUNT_HEIGHT + lanes[track.track_id] * LANE_HEIGHT + 2
        left, right = x(track.start), max(x(end), x(track.start) + 2)
        parts.append(
            f'<rect class="track" data-track="{escape(track.track_id)}" x="{left:.1f}" y="{top}" '
            f'width="{right - left:.1f}" height="{LANE_HEIGHT - 4}" fill="{_colour(index)}" rx="2">'
            f"<title>track {track.number} ({escape(track.track_id)}): {_num(track.start)}-{_num(end)} s"
            "</title></rect>"
        )
        if right - left > 8 * len(str(track.number)) + 4:  # room for the number
            baseline = top + LANE_HEIGHT - 7
            parts.append(f'<text x="{left + 3:.1f}" y="{baseline}" class="label">{track.number}</text>')
    return parts


def _lanes(tracks: list[Track]) -> dict[str, int]:
    """Greedy interval packing: a track goes to the first lane free at its start."""
    lane_ends: list[float] = []
    lanes = {}
    for track in tracks:
        if track.start is None:
            continue
        end = track.end if track.end is not None else track.start
        lane = next((i for i, free in enumerate(lane_ends) if free <= track.start), len(lane_ends))
        if lane == len(lane_ends):
            lane_ends.append(end)
        lane_ends[lane] = end
        lanes[track.track_id] = lane
    return lanes


def _ticks(span: float) -> list[float]:
    """About eight round tick values from 0 to span."""
    raw = span / 8
    step = next(s * 10**e for e in range(-2, 7) for s in (1, 2, 5) if s * 10**e >= raw)
    return [round(i * step, 6) for i in range(int(span / step) + 1)]


def _span(source: SourceTracks) -> float:
    ends = [t + (source.frame_interval or 0.0) for t, _ in source.timeline]
    ends += [track.end for track in source.tracks if track.end is not None]
    return max(ends, default=0.0)


def _colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
