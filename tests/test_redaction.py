"""Privacy redaction on clips with known face positions (tests/face_clips.py: real face photos moving
over a background): every known face is hidden on every frame; photos come out upright and without
their GPS position; the redacted video keeps the input's timing."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from face_clips import LEAK_MATCH, detail_match, known_faces, read_frames, write_clip
from media_gen import variable_rate, write_video
from PIL import Image
from rtsp_server import RtspServer
from test_audio_copy import audio_packets

from streamproc.cli import main
from streamproc.privacy.cover import YUV_FILL, cover, cover_yuv420

GPS_IFD = 0x8825


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three scenes, 640x360, 2 s each."""
    folder = tmp_path_factory.mktemp("clips")
    return {
        scene: write_clip(folder / f"{scene}.mp4", scene, (640, 360), 50)
        for scene in ("pan", "edges", "zoom")
    }


def grace(shared_dir: Path) -> np.ndarray:
    return cv2.imread(str(shared_dir / "images" / "grace_hopper.bmp"), cv2.IMREAD_COLOR)


FACE = np.array([170, 140, 350, 335])  # Grace Hopper's face in grace_hopper.bmp (tests/face_clips.py)


@pytest.mark.parametrize("mode", ["blur", "pixelate"])
def test_blur_and_pixelate_leave_no_detail(shared_dir: Path, mode: str) -> None:
    original = grace(shared_dir)
    hidden = original.copy()
    cover(hidden, (130, 20, 395, 370), mode)  # type: ignore[arg-type]
    assert detail_match(original, hidden, FACE) < 0.1
    edges = [
        cv2.Laplacian(cv2.cvtColor(p[140:335, 170:350], cv2.COLOR_BGR2GRAY), cv2.CV_32F)
        for p in (original, hidden)
    ]
    assert np.abs(edges[1]).mean() < 0.2 * np.abs(edges[0]).mean(), "the fine detail is gone"
    assert np.array_equal(hidden[:, :130], original[:, :130]), "nothing outside the region changes"


def test_fill_is_constant_on_every_plane() -> None:
    planes = [
        np.random.default_rng(1).integers(0, 255, shape, np.uint8) for shape in ((40, 60), (20, 30), (20, 30))
    ]
    before = [plane.copy() for plane in planes]
    cover_yuv420(planes, [(11, 5, 31, 25)], "fill")
    assert np.all(planes[0][5:25, 11:31] == YUV_FILL[0])
    assert np.all(planes[1][2:13, 5:16] == YUV_FILL[1]) and np.all(planes[2][2:13, 5:16] == YUV_FILL[2])
    assert np.array_equal(planes[0][:, 31:], before[0][:, 31:])


def redact(clip: Path, out: Path, *flags: str) -> Path:
    code = main(["run", str(clip), "--out-video", str(out), "--no-progress", "-q", *flags])
    assert code == 0
    return out


@pytest.mark.slow
@pytest.mark.parametrize("scene", ["pan", "edges", "zoom"])
def test_every_known_face_is_hidden_on_every_frame(
    clips: dict[str, Path], tmp_path: Path, scene: str
) -> None:
    clip = clips[scene]
    blurred = redact(clip, tmp_path / "blur.mp4", "--redact", "blur")
    filled = redact(clip, tmp_path / "fill.mp4", "--redact", "fill")
    truth = known_faces(clip)
    frames = zip(read_frames(clip), read_frames(blurred), read_frames(filled), truth, strict=True)
    checked = 0
    for index, (original, blur, fill, faces) in enumerate(frames):
        for box in faces:
            assert detail_match(original, blur, box) < LEAK_MATCH, (
                f"{scene} frame {index}: face {box} visible"
            )
            x1, y1, x2, y2 = (round(float(v)) for v in box)
            grey = cv2.cvtColor(fill[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
            assert grey.std() < 3 and grey.mean() < 30, f"{scene} frame {index}: face {box} not filled"
            checked += 1
    assert checked >= 30, "faces on most frames"


def test_without_redaction_the_faces_stay(clips: dict[str, Path], tmp_path: Path) -> None:
    """The measure above can fail: a plain re-encoded video keeps every face's detail."""
    plain = redact(clips["zoom"], tmp_path / "plain.mp4", "--draw", "none")
    matches = [
        detail_match(original, output, box)
        for original, output, faces in zip(
            read_frames(clips["zoom"]), read_frames(plain), known_faces(clips["zoom"]), strict=True
        )
        for box in faces
    ]
    assert min(matches) > 0.8


def ffprobe_pts(path: Path) -> list[float]:
    command = [
        "ffprobe",
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "frame=pts_time",
        "-of",
        "csv=p=0",
    ]
    lines = subprocess.run([*command, str(path)], capture_output=True, text=True, check=True).stdout.split()
    return [float(line.strip(",")) for line in lines if line.strip(",")]


def test_variable_frame_rate_and_rotation_are_kept(tmp_path: Path) -> None:
    """A phone clip: VFR timestamps and a 90-degree display matrix; the redacted video plays the same
    frames at the same times, upright (as players show the input)."""
    pts = variable_rate([(10, 30.0), (10, 12.0), (10, 24.0)])
    clip = write_video(tmp_path / "phone.mp4", pts, size=(320, 240), rotation=90)
    out = redact(clip, tmp_path / "out.mp4", "--redact", "pixelate")
    assert ffprobe_pts(out) == pytest.approx(ffprobe_pts(clip), abs=1e-3)
    first = next(read_frames(out))
    assert first.shape[:2] == (320, 240), "upright: the display size of the input"


def test_refuses_to_write_over_its_input(clips: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "same.mp4"
    copy.write_bytes(clips["zoom"].read_bytes())
    before = copy.read_bytes()
    assert main(["run", str(copy), "--out-video", str(copy), "--redact", "blur", "-q", "--no-progress"]) == 2
    assert copy.read_bytes() == before


def sideways_photo_with_gps(upright: np.ndarray) -> bytes:
    """A phone's portrait JPEG: pixels stored sideways, EXIF orientation 6, a GPS position."""
    picture = Image.fromarray(cv2.cvtColor(upright, cv2.COLOR_BGR2RGB)).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2], gps[3], gps[4] = "N", (48.0, 51.0, 24.0), "E", (2.0, 21.0, 3.0)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def test_photos_come_out_upright_without_gps_and_with_faces_hidden(shared_dir: Path, tmp_path: Path) -> None:
    upright = grace(shared_dir)
    photos = tmp_path / "in"
    photos.mkdir()
    (photos / "portrait.jpg").write_bytes(sideways_photo_with_gps(upright))
    cv2.imwrite(str(photos / "plain.png"), upright)
    assert Image.open(photos / "portrait.jpg").getexif().get_ifd(GPS_IFD), "the input has a position"
    out = tmp_path / "out"
    assert (
        main(["run", str(photos), "--out-images", str(out), "--redact", "fill", "-q", "--no-progress"]) == 0
    )
    assert sorted(path.name for path in out.iterdir()) == ["plain.png", "portrait.jpg"]
    written = Image.open(out / "portrait.jpg")
    assert written.format == "JPEG" and Image.open(out / "plain.png").format == "PNG"
    assert written.size == (upright.shape[1], upright.shape[0]), "upright, as the orientation said"
    assert not written.getexif(), "no EXIF at all: no GPS, no camera, no orientation left to apply twice"
    assert b"Exif" not in (out / "portrait.jpg").read_bytes()[:4096]
    for name in ("portrait.jpg", "plain.png"):
        face = cv2.imread(str(out / name))[140:335, 170:350]
        assert cv2.cvtColor(face, cv2.COLOR_BGR2GRAY).std() < 3, f"{name}: the face is filled"
        assert np.abs(cv2.imread(str(out / name))[500:, :].astype(int) - upright[500:, :]).mean() < 3


def test_photos_are_never_written_over_themselves(shared_dir: Path, tmp_path: Path) -> None:
    photo = tmp_path / "grace.png"
    cv2.imwrite(str(photo), grace(shared_dir))
    before = photo.read_bytes()
    assert main(["run", str(tmp_path), "--out-images", str(tmp_path), "--redact", "blur", "-q"]) == 2
    assert photo.read_bytes() == before


def _thumbnail(picture: np.ndarray) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY), (80, 45), interpolation=cv2.INTER_AREA)


def assert_recording_redacted(recording: Path, clip: Path, least_frames: int, damaged: float = 0.0) -> None:
    """Each frame of ``recording`` is a frame of the pan clip (found by its background: the camera
    pans) and every known face on it is filled. ``damaged``: the share of frames allowed to match no
    frame of the clip (a camera over UDP on a loaded machine loses packets: FFmpeg fills the gaps)."""
    originals = [_thumbnail(picture) for picture in read_frames(clip)]
    truth = known_faces(clip)
    recorded = unmatched = 0
    for picture in read_frames(recording):
        recorded += 1
        thumb = _thumbnail(picture)
        seen = thumb > 24  # the background, not the filled heads, says which frame this is
        errors = [float(np.median(np.abs(thumb.astype(int) - original)[seen])) for original in originals]
        index = int(np.argmin(errors))
        if errors[index] >= 6:
            unmatched += 1
            continue
        for box in truth[index]:
            x1, y1, x2, y2 = (round(float(v)) for v in box)
            grey = cv2.cvtColor(picture[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
            assert grey.std() < 3 and grey.mean() < 30, f"clip frame {index}: face {box} not filled"
    assert recorded >= least_frames
    assert unmatched <= damaged * recorded, f"{unmatched} of {recorded} frames are no frame of the clip"


@pytest.mark.slow
def test_a_camera_recorded_redacted(rtsp_server: RtspServer, clips: dict[str, Path], tmp_path: Path) -> None:
    """The pan clip looped by a real RTSP server, recorded redacted for 5 s."""
    rtsp_server.publish("cam", clips["pan"])
    out = tmp_path / "cam.mp4"
    code = main(
        ["run", rtsp_server.url("cam"), "--out-video", str(out), "--redact", "fill", "--duration", "5", "-q"]
    )
    assert code == 0
    assert_recording_redacted(out, clips["pan"], 50, damaged=0.2)


@pytest.mark.slow
def test_killed_mid_run_the_partial_video_is_redacted(clips: dict[str, Path], tmp_path: Path) -> None:
    """SIGKILL while a looped recording is redacted in real time: what reached the disk plays, and
    shows no face (frames held back for late regions are lost, never written uncovered)."""
    config = tmp_path / "run.yaml"
    source = {"url": str(clips["pan"]), "realtime": True, "loop": True}
    config.write_text(yaml.safe_dump({"sources": [source]}))
    out = tmp_path / "live.mp4"
    command = [sys.executable, "-m", "streamproc", "run", "-c", str(config), "--out-video", str(out)]
    process = subprocess.Popen([*command, "--redact", "fill", "-q"], stderr=subprocess.PIPE)
    partial = tmp_path / "live.partial.mp4"
    try:
        deadline = time.monotonic() + 60
        while not (partial.exists() and partial.stat().st_size > 100_000) and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.2)
    finally:
        process.kill()
        process.wait()
    assert not out.exists()
    assert_recording_redacted(partial, clips["pan"], 10)


def test_redact_per_sink_in_the_config(clips: dict[str, Path], tmp_path: Path) -> None:
    """One run, two videos: a redacted one (with the boxes asked for) and an annotated one."""
    clip = clips["zoom"]
    redacted, annotated = tmp_path / "redacted.mp4", tmp_path / "annotated.mp4"
    sinks = [
        {"type": "video", "path": str(redacted), "redact": "pixelate", "draw_boxes": True},
        {"type": "video", "path": str(annotated)},
    ]
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"sources": [{"url": str(clip)}], "sinks": sinks}))
    assert main(["run", "-c", str(config), "-q", "--no-progress"]) == 0
    green = 0
    for original, hidden, shown, faces in zip(
        read_frames(clip), read_frames(redacted), read_frames(annotated), known_faces(clip), strict=True
    ):
        for box in faces:
            x1, y1, x2, y2 = box
            inner = np.array([x1 + (x2 - x1) / 4, y1 + (y2 - y1) / 4, x2 - (x2 - x1) / 4, y2 - (y2 - y1) / 4])
            assert detail_match(original, hidden, inner) < LEAK_MATCH
            assert detail_match(original, shown, inner) > 0.8, "the annotated video shows the face"
        green += int(
            np.count_nonzero((hidden[:, :, 1] > 180) & (hidden[:, :, 0] < 80) & (hidden[:, :, 2] < 80))
        )
    assert green > 1000, "the boxes asked for are drawn on the redacted video"


@pytest.mark.slow
def test_the_redacted_video_keeps_the_audio(clips: dict[str, Path], tmp_path: Path) -> None:
    """A clip with an AAC track: the redacted video carries every audio packet unchanged."""
    clip = tmp_path / "talk.mp4"
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:d=2"]
    command = ["ffmpeg", "-v", "error", "-y", "-i", str(clips["edges"]), *tone, "-map", "0:v", "-map", "1:a"]
    subprocess.run([*command, "-c:v", "copy", "-c:a", "aac", "-shortest", str(clip)], check=True, timeout=60)
    out = redact(clip, tmp_path / "out.mp4", "--redact", "blur")
    (source_audio,) = audio_packets(clip)
    assert len(source_audio) > 40
    assert audio_packets(out) == [source_audio], "every packet copied, unchanged, same timestamps"
    for original, hidden, faces in zip(
        read_frames(clip), read_frames(out), known_faces(clips["edges"]), strict=True
    ):
        assert all(detail_match(original, hidden, box) < LEAK_MATCH for box in faces)


def test_redact_without_a_picture_output_is_refused(clips: dict[str, Path], tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    assert main(["run", str(clips["zoom"]), "--events", str(events), "--redact", "blur", "-q"]) == 2
    assert not events.exists(), "refused before anything is written"


def test_frames_held_back_are_written_and_counted(clips: dict[str, Path], tmp_path: Path) -> None:
    """The last redact.lookback frames wait in the sink until the end: all are written, all counted."""
    events, out = tmp_path / "e.jsonl", tmp_path / "out.mp4"
    redact(clips["zoom"], out, "--redact", "fill", "--events", str(events))
    summary = json.loads(events.read_text().splitlines()[-1])
    assert summary["sinks"][f"video:{out}"] == {"received": 50, "written": 50, "not_written": {}}
    assert sum(1 for _ in read_frames(out)) == 50
