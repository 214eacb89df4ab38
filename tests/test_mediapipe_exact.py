"""BlazeFace as real MediaPipe 0.10.14 computes it: its own input tensors and detections (../shared).

The reference holds, for every photo in ../shared/images and 14 decoded frames of the two clips,
MediaPipe's model input at 128 and 192 (``mediapipe_input_tensors.npz``) and its faces for both
models (``mediapipe_reference.json``). Same RGB pixels in, the tensor must be bit-identical and
the faces equal up to float noise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import CliRunner, read_records

from streamproc.core.geometry import box_iou
from streamproc.inference.blazeface import BlazeFaceDetector
from streamproc.inference.image_to_tensor import tensor_values, warp_plan

VARIANTS = ("short", "full")
REFERENCE_FRAMES = (0, 10, 20, 30, 40, 50, 59)


def _shared() -> Path:
    override = os.environ.get("STREAMPROC_SHARED_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[1].parent / "shared"


def _items() -> list[str]:
    """The reference's items, read at collection time to parametrize the tests."""
    path = _shared() / "reference" / "mediapipe_reference.json"
    if not path.is_file():
        return ["<missing mediapipe_reference.json>"]  # one case that fails loudly instead of none
    return sorted(json.loads(path.read_text())["items"])


@pytest.fixture(scope="module")
def reference(shared_dir: Path) -> dict:
    return json.loads((shared_dir / "reference" / "mediapipe_reference.json").read_text())["items"]


@pytest.fixture(scope="module")
def tensors(shared_dir: Path) -> dict[str, np.ndarray]:
    with np.load(shared_dir / "reference" / "mediapipe_input_tensors.npz") as archive:
        return {key: archive[key] for key in archive.files}


@pytest.fixture(scope="module", params=VARIANTS)
def detector(request: pytest.FixtureRequest) -> BlazeFaceDetector:
    return BlazeFaceDetector(request.param)


def load_rgb(shared_dir: Path, item: str) -> np.ndarray:
    """The item's RGB pixels as MediaPipe was fed them (photos decoded whole, frames saved losslessly)."""
    bgr = cv2.imread(str(shared_dir / item), cv2.IMREAD_COLOR)
    assert bgr is not None, f"{shared_dir / item} is missing or unreadable"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("size", [128, 192])
@pytest.mark.parametrize("item", _items())
def test_input_tensor_is_bit_identical(shared_dir: Path, tensors: dict, item: str, size: int) -> None:
    rgb = load_rgb(shared_dir, item)
    plan = warp_plan(rgb.shape[1], rgb.shape[0], size)
    expected = tensors[f"{item}|{size}"]
    got = tensor_values(plan.warp(rgb))
    assert got.dtype == np.float32 and got.shape == expected.shape
    differing = int((got != expected).any(axis=2).sum())
    assert differing == 0, f"{differing} of {size * size} tensor pixels differ from MediaPipe's"
    # the video path hands in only the rows and columns the warp reads
    sampled = tensor_values(plan.warp_sampled(rgb[np.ix_(plan.rows, plan.cols)]))
    assert np.array_equal(sampled, expected)


@pytest.mark.parametrize("item", _items())
def test_faces_equal_mediapipes(
    detector: BlazeFaceDetector, shared_dir: Path, reference: dict, item: str
) -> None:
    expected = reference[item][detector.variant]
    rgb = load_rgb(shared_dir, item)
    assert [rgb.shape[1], rgb.shape[0]] == [reference[item]["width"], reference[item]["height"]]
    faces = detector.detect_image(rgb)
    assert len(faces) == len(expected), f"{len(faces)} faces, MediaPipe found {len(expected)}"
    for index, face in enumerate(expected):  # both best first
        np.testing.assert_allclose(faces.boxes[index], face["box"], rtol=0, atol=0.01)
        np.testing.assert_allclose(faces.keypoints[index], face["keypoints"], rtol=0, atol=0.01)
        assert abs(float(faces.scores[index]) - face["score"]) <= 1e-4


def test_reference_covers_photos_and_frames(shared_dir: Path, reference: dict) -> None:
    photos = {f"images/{path.name}" for path in (shared_dir / "images").iterdir()}
    frames = {f"reference/frames/{path.name}" for path in (shared_dir / "reference" / "frames").glob("*.png")}
    assert len(frames) == 14 and set(reference) == photos | frames
    counts = {variant: sum(len(entry[variant]) for entry in reference.values()) for variant in VARIANTS}
    assert counts["short"] > 0 and counts["full"] > counts["short"]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("clip", ["faces_720p", "portrait_720x1280"])
def test_video_run_finds_mediapipes_faces(
    run_cli: CliRunner, shared_dir: Path, reference: dict, tmp_path: Path, clip: str, variant: str
) -> None:
    """``streamproc run`` decodes the clip itself (PyAV, yuv420p); on the frames MediaPipe saw, it
    finds the same faces: nothing missed, nothing extra, IoU >= 0.98, score within 0.01."""
    events = tmp_path / "faces.jsonl"
    result = run_cli(
        "run", shared_dir / "video" / f"{clip}.mp4", "--events", events, "--model", variant, "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    records = {record["frame"]: record for record in read_records(events)}
    assert len(records) == 60
    for index in REFERENCE_FRAMES:
        expected = reference[f"reference/frames/{clip}_f{index:02d}.png"][variant]
        got = records[index]["faces"]
        assert len(got) == len(expected), f"frame {index}: {len(got)} faces, MediaPipe found {len(expected)}"
        if not expected:
            continue
        iou = box_iou(np.array([f["box"] for f in expected]), np.array([f["box"] for f in got]))
        matches = np.argmax(iou, axis=1)
        assert len(set(matches.tolist())) == len(expected), f"frame {index}: faces matched twice"
        for row, (face, match) in enumerate(zip(expected, matches, strict=True)):
            assert iou[row, match] >= 0.98, f"frame {index}, face {row}: best IoU {iou[row, match]:.3f}"
            assert abs(got[match]["score"] - face["score"]) <= 0.01
