"""BlazeFace around the MediaPipe-exact core (tests/test_mediapipe_exact.py): inputs, anchors,
suppression, thresholds, model files and the errors a user sees."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import streamproc
from streamproc.core.errors import ModelError
from streamproc.core.geometry import box_iou
from streamproc.core.pictures import ArrayPicture, AvPicture
from streamproc.inference.blazeface import BlazeFaceDetector
from streamproc.inference.blazeface_decode import SPECS, RawFaces, ssd_anchors, weighted_nms
from streamproc.inference.models import ModelRegistry, blazeface_model_path
from streamproc.inference.runtime import TfliteModel

VARIANTS = ("short", "full")


def _load_rgb(shared_dir: Path, name: str) -> np.ndarray:
    path = shared_dir / "images" / name
    assert path.is_file(), f"{path} missing"
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_detections_have_declared_types(shared_dir: Path) -> None:
    detections = BlazeFaceDetector("short").detect_image(_load_rgb(shared_dir, "face.jpg"))
    assert len(detections) > 0
    assert detections.boxes.dtype == np.float32 and detections.boxes.shape == (len(detections), 4)
    assert detections.scores.dtype == np.float32 and detections.scores.shape == (len(detections),)
    assert detections.keypoints.dtype == np.float32
    assert detections.keypoints.shape == (len(detections), 6, 2)
    assert np.all(np.diff(detections.scores) <= 0), "detections come best first"


def test_detect_enlarges_small_pictures(shared_dir: Path) -> None:
    rgb = _load_rgb(shared_dir, "grace_hopper.bmp")  # 512x600, one face
    small = np.asarray(Image.fromarray(rgb).resize((85, 100), Image.BILINEAR))
    detector = BlazeFaceDetector("short")
    detections = detector.detect_image(small)  # 85x100 enlarged: a 100x100 square into 128x128
    large = detector.detect_image(rgb)
    assert len(detections) == 1 and len(large) == 1
    assert box_iou(detections.boxes * (512 / 85), large.boxes)[0, 0] >= 0.8


def test_a_run_of_inputs_gives_each_the_faces_of_detecting_it_alone(shared_dir: Path) -> None:
    detector = BlazeFaceDetector("short")
    pictures = [_load_rgb(shared_dir, name) for name in ("face.jpg", "cat.bmp", "grace_hopper.bmp")]
    inputs = [detector.prepare(ArrayPicture.from_rgb(rgb)) for rgb in pictures]
    alone = [detector.detect(model_input) for model_input in inputs]
    together = detector.detect_many([*inputs, inputs[0]])  # a picture may come twice in a run
    assert [len(found) for found in together] == [len(found) for found in alone] + [len(alone[0])]
    assert len(alone[0]) > 0 and len(alone[2]) == 1
    for one, run in zip([*alone, alone[0]], together, strict=True):
        for name in ("boxes", "scores", "keypoints"):
            assert getattr(one, name).tobytes() == getattr(run, name).tobytes()  # bit for bit


@pytest.mark.parametrize(("variant", "count"), [("short", 896), ("full", 2304)])
def test_anchor_counts(variant: str, count: int) -> None:
    anchors = ssd_anchors(SPECS[variant])
    assert anchors.shape == (count, 2) and anchors.dtype == np.float32
    assert np.all((anchors > 0) & (anchors < 1))


def test_short_range_anchor_layout() -> None:
    anchors = ssd_anchors(SPECS["short"])
    # Stride 8: 16x16 cells with 2 anchors each, then stride 16: 8x8 cells with 6 anchors each.
    np.testing.assert_allclose(anchors[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[1], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[512:518], np.tile([0.5 / 8, 0.5 / 8], (6, 1)))
    np.testing.assert_allclose(anchors[518], [1.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(anchors[-1], [7.5 / 8, 7.5 / 8])


def test_prepare_from_bgr_picture_equals_rgb(shared_dir: Path) -> None:
    """Cameras and stills hand in BGR arrays: the same input as the RGB photo, made in a new array
    (the capture thread prepares it while the detector runs the previous frame)."""
    detector = BlazeFaceDetector("short")
    rgb = _load_rgb(shared_dir, "grace_hopper.bmp")
    from_bgr = detector.prepare(ArrayPicture(np.ascontiguousarray(rgb[..., ::-1])))
    from_rgb = detector.prepare(ArrayPicture.from_rgb(rgb))
    assert from_bgr.tensor.shape == (1, 128, 128, 3) and from_bgr.tensor.dtype == np.float32
    assert np.array_equal(from_bgr.tensor, from_rgb.tensor)
    assert not np.shares_memory(from_bgr.tensor, detector.prepare(ArrayPicture.from_rgb(rgb)).tensor)
    got, expected = detector.detect(from_bgr), detector.detect_image(rgb)
    assert len(got) == len(expected) == 1
    assert np.array_equal(got.boxes, expected.boxes) and np.array_equal(got.keypoints, expected.keypoints)


def test_black_border_and_value_range() -> None:
    """A white 1280x720 picture: tensor row v samples picture row 10 v - 280, so rows 28..99 are
    white (255 -> 1.0000001 in MediaPipe's float32 arithmetic) and the square's padding is black."""
    white = ArrayPicture(np.full((720, 1280, 3), 255, np.uint8))
    tensor = BlazeFaceDetector("short").prepare(white).tensor[0]
    assert np.all(tensor[:28] == -1.0) and np.all(tensor[100:] == -1.0)
    assert np.all(tensor[28:100] == np.float32(1.0000001))


@pytest.mark.parametrize(("variant", "default"), [("short", 0.5), ("full", 0.6)])
def test_thresholds_default_to_mediapipes(variant: str, default: float) -> None:
    assert BlazeFaceDetector(variant).min_score == default
    assert BlazeFaceDetector(variant, min_score=0.3).min_score == 0.3
    with pytest.raises(ValueError, match="min_score"):
        BlazeFaceDetector(variant, min_score=1.0)


def test_lower_threshold_finds_more(shared_dir: Path) -> None:
    rgb = _load_rgb(shared_dir, "face.jpg")
    default = BlazeFaceDetector("short").detect_image(rgb)
    lower = BlazeFaceDetector("short", min_score=0.2).detect_image(rgb)
    assert len(lower) > len(default) > 0
    assert lower.scores.min() >= 0.2 and default.scores.min() >= 0.5


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("value", [0, 128])
def test_blank_picture_has_no_faces(variant: str, value: int) -> None:
    detector = BlazeFaceDetector(variant)
    detections = detector.detect_image(np.full((480, 640, 3), value, np.uint8))
    assert len(detections) == 0
    assert detections.boxes.shape == (0, 4) and detections.keypoints.shape == (0, 6, 2)


def test_weighted_nms_merges_overlaps() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    keypoints = np.zeros((3, 6, 2), np.float32)
    keypoints[1] += 3.0
    scores = np.array([0.6, 0.9, 0.7], np.float32)
    out = weighted_nms(RawFaces(boxes, keypoints, scores), 0.3)
    np.testing.assert_allclose(out.scores, [0.9, 0.7])
    np.testing.assert_allclose(out.boxes[0], [0.6, 0, 10.6, 10], rtol=1e-6)  # (0.6*0 + 0.9*1) / 1.5
    np.testing.assert_allclose(out.keypoints[0], np.full((6, 2), 1.8), rtol=1e-6)
    np.testing.assert_allclose(out.boxes[1], boxes[2])


def test_weighted_nms_stops_at_an_empty_box() -> None:
    """An empty best box overlaps nothing, not even itself: MediaPipe keeps it and stops there."""
    boxes = np.array([[5, 5, 5, 9], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    out = weighted_nms(RawFaces(boxes, np.zeros((2, 6, 2), np.float32), scores), 0.3)
    assert len(out) == 1 and np.array_equal(out.boxes[0], boxes[0])


def test_model_path_variants() -> None:
    assert blazeface_model_path("short").name == "face_detection_short_range.tflite"
    assert blazeface_model_path("full").name == "face_detection_full_range_sparse.tflite"
    assert blazeface_model_path("short").is_file()


def test_shipped_models_are_mediapipes_with_notice() -> None:
    """The two files ship inside streamproc, match the manifest's sha256 and carry MediaPipe's notice."""
    registry = ModelRegistry.load()
    notice = (blazeface_model_path("short").parent / "NOTICE").read_text()
    assert "MediaPipe" in notice and "Apache License, Version 2.0" in notice
    for variant in VARIANTS:
        spec = registry.get(f"blazeface_{variant}")
        path = blazeface_model_path(variant)
        assert spec.package_data == "streamproc/models/blazeface"
        assert path.parent == Path(streamproc.__file__).parent / "models" / "blazeface"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.sha256
        assert spec.sha256 in notice


def test_corrupt_model_is_one_line_error_naming_it(tmp_path: Path) -> None:
    """The sha256 is checked when the detector loads its model: a damaged copy is refused."""
    shipped = blazeface_model_path("short")
    damaged = bytearray(shipped.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (tmp_path / shipped.name).write_bytes(bytes(damaged))
    spec = ModelRegistry.load().get("blazeface_short")
    manifest = tmp_path / "manifest.toml"
    manifest.write_text(
        f'[models.blazeface_short]\nkind = "detector"\nfile = "{shipped.name}"\nsha256 = "{spec.sha256}"\n'
    )
    registry = ModelRegistry.load(tmp_path, manifest)
    with pytest.raises(ModelError) as info:
        blazeface_model_path("short", registry)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / shipped.name) in message and "sha256" in message


def test_runtime_exposes_model_details() -> None:
    model = TfliteModel(blazeface_model_path("short"))
    assert model.input_shape == (1, 128, 128, 3)
    assert model.input_dtype == np.float32
    assert model.input_quantization == (0.0, 0)
    outputs = model.invoke(np.zeros(model.input_shape, np.float32))
    assert [o.shape for o in outputs] == [tuple(d["shape"]) for d in model.outputs]
    again = model.invoke(np.ones(model.input_shape, np.float32))
    assert not np.array_equal(outputs[0], again[0]), "outputs must be copies, not live buffers"


def test_unknown_variant_is_model_error() -> None:
    with pytest.raises(ModelError, match=r"'short'.*'full'"):
        blazeface_model_path("medium")
    with pytest.raises(ModelError, match="medium"):
        BlazeFaceDetector("medium")


def test_missing_model_is_model_error(tmp_path: Path) -> None:
    missing = tmp_path / "models" / "nope.tflite"
    with pytest.raises(ModelError, match=re.escape("nope.tflite does not exist")):
        TfliteModel(missing)
    with pytest.raises(ModelError, match=re.escape("nope.tflite")):
        BlazeFaceDetector("short", model_path=missing)


def test_text_file_is_model_error(tmp_path: Path) -> None:
    fake = tmp_path / "fake.tflite"
    fake.write_text("this is not a model\n")
    with pytest.raises(ModelError, match=re.escape("fake.tflite is not a TFLite model")) as info:
        TfliteModel(fake)
    assert "\n" not in str(info.value)


def test_wrong_model_is_model_error(shared_dir: Path) -> None:
    mobilenet = shared_dir / "models" / "mobilenet_v1_0.25_128_quant.tflite"
    with pytest.raises(ModelError, match=re.escape("mobilenet_v1_0.25_128_quant.tflite")):
        BlazeFaceDetector("short", model_path=mobilenet)


@pytest.mark.parametrize(
    ("pixel_format", "width", "height"),
    [
        ("yuv420p", 1280, 720),
        ("yuvj420p", 720, 1280),
        ("yuv420p", 642, 362),
        ("yuv420p", 300, 200),  # the cut's planes have padded lines (chroma 150 wide in 160)
        ("yuv422p", 640, 360),
    ],
)
def test_video_frames_give_the_tensor_of_their_whole_rgb(pixel_format: str, width: int, height: int) -> None:
    """Frames are converted to RGB only where the warp reads (4:2:0), or whole (other layouts): the
    input must equal the one made from ``to_ndarray(format="rgb24")``, what MediaPipe is fed."""
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(noise, format="rgb24").reformat(format=pixel_format)
    for variant in VARIANTS:
        detector = BlazeFaceDetector(variant)
        for _ in range(2):  # the first frame of a layout is also checked against the whole conversion
            got = detector.prepare(AvPicture(frame)).tensor
            expected = detector.prepare(ArrayPicture.from_rgb(frame.to_ndarray(format="rgb24"))).tensor
            assert np.array_equal(got, expected)
