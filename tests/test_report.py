"""`streamproc report`: a self-contained HTML page from a real run's JSON Lines results."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import av
import cv2
import numpy as np
import pytest
from conftest import CliRunner, read_records

from streamproc.inference.blazeface import BlazeFaceDetector

SVG = "{http://www.w3.org/2000/svg}"


class Page(HTMLParser):
    """The parts of the report the tests look at: track rows, their cells and images, the plots."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.images: list[str] = []
        self.svgs: list[str] = []
        self.external: list[str] = []
        self._cell: list[str] | None = None
        self._in_row = False
        self.feed(text)
        start = 0
        while (begin := text.find("<svg", start)) >= 0:
            end = text.index("</svg>", begin) + len("</svg>")
            self.svgs.append(text[begin:end])
            start = end

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "tr" and values.get("class") == "track":
            self._in_row = True
            self.rows.append([])
        elif tag == "td" and self._in_row:
            self._cell = []
        elif tag == "img" and self._in_row:
            self.images.append(values.get("src") or "")
        src = values.get("src") or values.get("href") or ""
        if tag in ("img", "script", "link") and src and not src.startswith("data:"):
            self.external.append(src)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr":
            self._in_row = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def decode_data_uri(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/jpeg;base64,")
    picture = cv2.imdecode(np.frombuffer(base64.b64decode(uri.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None, "thumbnail is not a readable JPEG"
    return picture


@pytest.fixture(scope="module")
def enter_exit(tmp_path_factory: pytest.TempPathFactory, sample_maker: ModuleType) -> tuple[Path, Path]:
    """A real run on the enter/exit sample: face A at 0.5-2.5 s, face B at 1.5-3.5 s, each once."""
    folder = tmp_path_factory.mktemp("report")
    video = sample_maker.make_sample(folder / "ee.mp4", scenario="enter_exit")
    from streamproc.config.settings import JsonlSinkSettings, Settings, SourceSettings
    from streamproc.pipeline.build import build_pipeline

    events = folder / "ee.jsonl"
    settings = Settings(
        sources=[SourceSettings(url=str(video))], sinks=[JsonlSinkSettings(type="jsonl", path=events)]
    )
    assert build_pipeline(settings).run().ok
    return video, events


def test_report_from_frame_records_has_a_row_per_face_a_plot_and_thumbnails(
    enter_exit: tuple[Path, Path], tmp_path: Path, run_cli: CliRunner
) -> None:
    video, events = enter_exit
    output = tmp_path / "report.html"
    result = run_cli("report", events, "-o", output, "--video", video)
    assert result.returncode == 0, result.stderr
    page = Page(output.read_text())
    assert page.external == [], "the report must not need other files"

    assert len(page.rows) == 2, "each face enters and leaves once: two tracks"
    starts = [float(row[2].split()[0]) for row in page.rows]
    ends = [float(row[3]) for row in page.rows]
    assert 0.5 <= starts[0] <= 1.1 and 2.0 <= ends[0] <= 2.6  # face A
    assert 1.5 <= starts[1] <= 2.1 and 3.0 <= ends[1] <= 3.6  # face B
    durations = [float(row[4]) for row in page.rows]
    assert durations == pytest.approx([e - s for s, e in zip(starts, ends, strict=True)], abs=0.011)

    detector = BlazeFaceDetector("short")
    assert len(page.images) == 2
    for uri in page.images:
        thumb = decode_data_uri(uri)
        assert max(thumb.shape[:2]) <= 128
        rgb = cv2.cvtColor(thumb, cv2.COLOR_BGR2RGB)
        assert len(detector.detect_image(rgb)) == 1, "a thumbnail shows the track's face"

    assert len(page.svgs) == 1
    svg = ET.fromstring(page.svgs[0])
    bars = [rect for rect in svg.iter(f"{SVG}rect") if rect.get("class") == "track"]
    # a track is shown by its short number (1, 2 per source in order of appearance), its id beside it
    assert [row[0].split()[0] for row in page.rows] == ["1", "2"]
    assert [bar.get("data-track") for bar in bars] == [row[0].split()[1] for row in page.rows]
    assert all(row[0].split()[1].endswith(f"-{n}") for n, row in enumerate(page.rows, start=1))
    labels = [text.text for text in svg.iter(f"{SVG}text") if text.get("class") == "label"]
    assert labels == ["1", "2"], "each bar is labelled with its number"
    faces = next(p for p in svg.iter(f"{SVG}polygon") if p.get("class") == "faces")
    frames = len(read_records(events))  # frame records; event lines are not steps
    assert len(faces.get("points", "").split()) == 2 * frames + 2  # a step per frame


def test_report_tracks_untracked_results_with_the_live_tracker(
    enter_exit: tuple[Path, Path], tmp_path: Path, run_cli: CliRunner
) -> None:
    """Results written without tracking (no events, no track ids) still give one row per face."""
    _video, events = enter_exit
    untracked = tmp_path / "untracked.jsonl"
    frames = read_records(events, "frame")
    for record in frames:
        for face in record["faces"]:
            face.pop("track_id", None)
    untracked.write_text("".join(json.dumps(record) + "\n" for record in frames))
    output = tmp_path / "report.html"
    result = run_cli("report", untracked, "-o", output)
    assert result.returncode == 0, result.stderr
    page = Page(output.read_text())
    assert "chained across frames" in output.read_text()
    assert len(page.rows) == 2, "each face enters and leaves once: two tracks"
    starts = [float(row[2].split()[0]) for row in page.rows]
    ends = [float(row[3]) for row in page.rows]
    assert 0.4 <= starts[0] <= 1.1 and 2.0 <= ends[0] <= 2.6  # face A
    assert 1.4 <= starts[1] <= 2.1 and 3.0 <= ends[1] <= 3.6  # face B


def test_report_uses_track_events_with_snapshots_and_classes(
    enter_exit: tuple[Path, Path], tmp_path: Path, run_cli: CliRunner
) -> None:
    """Track events in the documented format (issue 3's tracker writes them) take precedence."""
    video, frames_file = enter_exit
    with av.open(str(video)) as container:
        still = next(f for i, f in enumerate(container.decode(video=0)) if i == 40).to_ndarray(format="bgr24")
    (tmp_path / "snaps").mkdir()
    cv2.imwrite(str(tmp_path / "snaps" / "t7.jpg"), still[20:200, 100:260])
    events = [
        {
            "type": "new",
            "event_id": "e1",
            "track_id": 7,
            "source_id": "ee",
            "start_pts": 0.6,
            "start_time": 1.7e9,
        },
        {
            "type": "update",
            "track_id": 7,
            "source_id": "ee",
            "classification": [{"label": "mask", "score": 0.2}],
        },
        {
            "type": "end",
            "track_id": 7,
            "source_id": "ee",
            "start_pts": 0.6,
            "end_pts": 2.4,
            "best": {"box": [100, 20, 260, 200], "score": 0.97},
            "snapshot": "snaps/t7.jpg",
            "classification": [{"label": "oxygen mask", "score": 0.61}, {"label": "wig", "score": 0.3}],
        },
        {"type": "new", "track_id": "9", "source": "ee"},  # a track with nothing else known
        {"type": "scene", "source": "ee", "pts": 1.0},  # other record types are ignored
    ]
    results = tmp_path / "run.jsonl"
    # the frame records only: this test brings its own events
    lines = [line for line in frames_file.read_text().splitlines() if '"type":"frame"' in line]
    results.write_text("\n".join(lines + [json.dumps(e) for e in events] + ["not json"]) + "\n")
    output = tmp_path / "events.html"
    result = run_cli("report", results, "-o", output)
    assert result.returncode == 0, result.stderr
    assert "skipped 1 line" in result.stderr
    page = Page(output.read_text())
    rows = {row[0].split()[1]: row for row in page.rows}
    assert {track: row[0].split()[0] for track, row in rows.items()} == {"7": "1", "9": "2"}
    assert rows["7"][2].startswith("0.60") and rows["7"][3] == "2.40" and rows["7"][4] == "1.80"
    assert rows["7"][6] == "0.97"
    assert rows["7"][7] == "oxygen mask 0.61, wig 0.30"
    assert rows["9"][2:8] == ["-", "-", "-", "-", "-", "-"]
    assert len(page.images) == 1, "only track 7 has a snapshot"
    thumb = decode_data_uri(page.images[0])
    assert thumb.shape[0] / thumb.shape[1] == pytest.approx(180 / 160, rel=0.05)  # the snapshot's shape


@pytest.mark.parametrize(
    ("content", "args", "expected"),
    [
        (None, (), "does not exist"),
        ("hello\nworld\n", (), "holds no streamproc records"),
        ('{"type":"frame","source":"a","frame":0,"pts":0,"faces":[]}\n', ("--video", "nope.mp4"), "nope.mp4"),
    ],
)
def test_report_bad_input_is_one_line(
    tmp_path: Path, run_cli: CliRunner, content: str | None, args: tuple[str, ...], expected: str
) -> None:
    results = tmp_path / "results.jsonl"
    if content is not None:
        results.write_text(content)
    result = run_cli("report", results, *args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and expected in errors[0], result.stderr
