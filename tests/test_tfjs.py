"""TensorFlow.js models against real TensorFlow.js 4.22 outputs, through LiteRT and TensorFlow.

Reference: ../shared/reference/tfjs_reference.json (TF.js on Node, cpu backend) on the saved inputs in
../shared/reference/tfjs/. Every model runs through both paths: the cached TFLite conversion on LiteRT,
and the rebuilt graph in TensorFlow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import REPO, CliRunner, read_records
from scipy.special import digamma  # scikit-image, a dev dependency, brings SciPy

from streamproc.config.settings import ClassifierSettings, DetectorSettings
from streamproc.core.errors import ConfigError, ModelError
from streamproc.inference.classifiers import open_classifier
from streamproc.inference.detectors import open_detector
from streamproc.inference.models import ModelRegistry
from streamproc.inference.tfjs.convert import CACHE_ENV, CacheEntry
from streamproc.inference.tfjs.loader import TfjsModel, load_tfjs_model
from streamproc.inference.tfjs.modeljson import read_model_json
from streamproc.inference.tfjs.preprocess import Preprocess, resize_bilinear

RUNTIMES = ("litert", "tensorflow")
SIDECARS = REPO / "models" / "tfjs"


@pytest.fixture(scope="session", autouse=True)
def tfjs_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh conversion cache for the session (conversions happen once, here)."""
    folder = tmp_path_factory.mktemp("tfjs-cache")
    previous = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = previous


@pytest.fixture(scope="session")
def reference(shared_dir: Path) -> dict:
    return json.loads((shared_dir / "reference" / "tfjs_reference.json").read_text())


@pytest.fixture(scope="session")
def human(shared_dir: Path) -> Path:
    return shared_dir / "models" / "tfjs" / "human-3.3.6"


@pytest.fixture(scope="session")
def emotion_dir(tmp_path_factory: pytest.TempPathFactory, human: Path) -> Path:
    """Human's emotion model with the repository's sidecar and labels beside it."""
    folder = tmp_path_factory.mktemp("emotion")
    for name in ("emotion.json", "emotion.bin"):
        shutil.copy(human / name, folder / name)
    for name in ("emotion.streamproc.toml", "emotion.txt"):
        shutil.copy(SIDECARS / name, folder / name)
    return folder


def load(path: Path, runtime: str) -> TfjsModel:
    model = load_tfjs_model(path, runtime=runtime)  # type: ignore[arg-type]
    assert model.runtime == runtime
    return model


def run(model: TfjsModel, tensor: np.ndarray) -> dict[str, np.ndarray]:
    return dict(zip(model.output_names, model.model.invoke(tensor.astype(np.float32)), strict=True))


def emotion_input(crop: np.ndarray) -> np.ndarray:
    """The reference's emotion input: gray of [0, 1] RGB, then (gray - 0.5) * 2."""
    gray = (crop.astype(np.float32) / 255 * np.array([0.2989, 0.5870, 0.1140], np.float32)).sum(-1)
    return ((gray - 0.5) * 2)[None, :, :, None]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_emotion_matches_tfjs(runtime: str, human: Path, shared_dir: Path, reference: dict) -> None:
    model = load(human / "emotion.json", runtime)
    for item in reference["emotion"]["items"]:
        probs = run(model, emotion_input(np.load(shared_dir / item["crop_file"])))["Identity"][0]
        assert np.abs(probs - item["probs"]).max() <= 1e-4, item["crop_file"]
        assert reference["emotion"]["labels"][int(np.argmax(probs))] == item["top"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_faceres_matches_tfjs(runtime: str, human: Path, shared_dir: Path, reference: dict) -> None:
    """float16-quantised weights: gender and age within 1e-4, descriptor cosine >= 0.9999."""
    model = load(human / "faceres.json", runtime)
    assert model.output_names == ["gender_pred/Sigmoid", "global_pooling/Mean", "age_pred/Softmax"]
    for item in reference["faceres"]["items"]:
        out = run(model, np.load(shared_dir / item["crop_file"])[None])
        assert abs(float(out["gender_pred/Sigmoid"][0, 0]) - item["gender_sigmoid"]) <= 1e-4
        assert np.abs(out["age_pred/Softmax"][0] - item["age_probs"]).max() <= 1e-4
        descriptor, expected = (
            out["global_pooling/Mean"][0],
            np.load(shared_dir / item["descriptor_file"]).ravel(),
        )
        cosine = descriptor @ expected / (np.linalg.norm(descriptor) * np.linalg.norm(expected))
        assert cosine >= 0.9999, item["crop_file"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_blazeface_raw_outputs_match_tfjs(
    runtime: str, human: Path, shared_dir: Path, reference: dict
) -> None:
    """Raw logits reach -800: within 1e-3, relative to the value where it exceeds 1 (float32 sums)."""
    model = load(human / "blazeface.json", runtime)
    assert model.model.input_shape == (1, 256, 256, 3)
    for item in reference["blazeface"]["items"]:
        out = run(model, np.load(shared_dir / item["input_file"])[None] / 127.5 - 1)
        for name, expected in item["outputs"].items():
            wanted = np.load(shared_dir / expected["file"])
            assert out[name].shape == wanted.shape
            error = np.abs(out[name] - wanted) / np.maximum(1.0, np.abs(wanted))
            assert error.max() <= 1e-3, (item["image"], name, float(error.max()))
            assert int(np.argmax(out[name].ravel())) == expected.get("argmax", int(np.argmax(wanted.ravel())))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_layers_model_matches_tfjs(runtime: str, shared_dir: Path, reference: dict) -> None:
    demo = reference["layers_demo"]
    model = load(shared_dir / demo["model_dir"], runtime)
    assert read_model_json(shared_dir / demo["model_dir"]).format == "layers-model"
    for spec, expected in zip(demo["inputs"], demo["outputs"], strict=True):
        probs = next(iter(run(model, np.load(shared_dir / spec["file"])).values()))[0]
        assert np.abs(probs - expected).max() <= 1e-4, spec["file"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_functional_layers_model_matches_tfjs(runtime: str) -> None:
    """Saved by TF.js itself (benchmarks/seed_tfjs/make_functional_fixture.mjs): branches, two outputs."""
    folder = REPO / "tests" / "data" / "tfjs_functional"
    expected = json.loads((folder / "reference.json").read_text())["outputs"]
    y, x, c = np.meshgrid(np.arange(24), np.arange(24), np.arange(3), indexing="ij")
    image = np.where(c == 0, y / 23, np.where(c == 1, x / 23, ((x + 2 * y) % 7) / 6))[None]
    model = load(folder, runtime)
    assert model.output_names == ["probs", "score"]
    for name, values in run(model, image).items():
        assert np.abs(values.ravel() - expected[name]).max() <= 1e-6, name


def quantised_copy(human: Path, folder: Path, dtype: str, shards: int) -> tuple[Path, Path]:
    """Emotion re-saved as the TF.js converter quantises (affine uint8/uint16), in several shards.

    Also writes, in ``folder/plain``, a float32 copy holding codes * scale + min as TF.js computes them
    (double precision, int32 rounded half up): what the quantised model must load as.
    """
    source = read_model_json(human / "emotion.json")
    data = source.read_weights()
    levels = {"uint8": 255, "uint16": 65535}[dtype]
    specs, chunks, plain, offset = [], [], [], 0
    for spec in source.weight_specs:
        count = int(np.prod(spec["shape"]))
        values = np.frombuffer(data, "<f4" if spec["dtype"] == "float32" else "<i4", count, offset)
        offset += count * 4
        low, high = float(values.min()), float(values.max())
        scale = (high - low) / levels or 1.0
        codes = np.round((values - low) / scale).astype(np.uint8 if dtype == "uint8" else "<u2")
        chunks.append(codes.tobytes())
        specs.append({**spec, "quantization": {"dtype": dtype, "min": low, "scale": scale}})
        real = codes.astype(np.float64) * scale + low
        plain.append(real.astype("<f4") if spec["dtype"] == "float32" else np.floor(real + 0.5).astype("<i4"))
    manifest = json.loads((human / "emotion.json").read_text())
    blob = b"".join(chunks)
    step = -(-len(blob) // shards)
    paths = [f"group1-shard{i + 1}of{shards}.bin" for i in range(shards)]
    for i, name in enumerate(paths):
        (folder / name).write_bytes(blob[i * step : (i + 1) * step])
    manifest["weightsManifest"] = [{"paths": paths, "weights": specs}]
    (folder / "model.json").write_text(json.dumps(manifest))
    (folder / "plain").mkdir()
    (folder / "plain" / "weights.bin").write_bytes(b"".join(array.tobytes() for array in plain))
    manifest["weightsManifest"] = [{"paths": ["weights.bin"], "weights": source.weight_specs}]
    (folder / "plain" / "model.json").write_text(json.dumps(manifest))
    return folder / "model.json", folder / "plain" / "model.json"


@pytest.mark.parametrize(("dtype", "tolerance"), [("uint8", 0.05), ("uint16", 1e-3)])
def test_quantised_sharded_weights_dequantise_like_tfjs(
    dtype: str, tolerance: float, tmp_path: Path, human: Path, shared_dir: Path, reference: dict
) -> None:
    """Codes times scale plus min (int32 reduction axes rounded back exactly); shards joined in order."""
    quantised, plain = quantised_copy(human, tmp_path, dtype, shards=3)
    model, dequantised = load(quantised, "tensorflow"), load(plain, "tensorflow")
    for item in reference["emotion"]["items"]:
        tensor = emotion_input(np.load(shared_dir / item["crop_file"]))
        probs = run(model, tensor)["Identity"][0]
        assert np.array_equal(probs, run(dequantised, tensor)["Identity"][0])
        assert np.abs(probs - item["probs"]).max() <= tolerance  # and quantisation loses little


def test_missing_or_foreign_shards_are_refused(tmp_path: Path, human: Path) -> None:
    path, _ = quantised_copy(human, tmp_path, "uint8", shards=2)
    (tmp_path / "group1-shard2of2.bin").unlink()
    with pytest.raises(ModelError, match=r"shard2of2\.bin .*missing"):
        load_tfjs_model(path)
    manifest = json.loads(path.read_text())
    manifest["weightsManifest"][0]["paths"] = ["../../etc/passwd"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="outside its folder"):
        load_tfjs_model(path)
    path.write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_tfjs_model(path)


def test_unconvertible_model_falls_back_to_tensorflow(
    tmp_path: Path, human: Path, shared_dir: Path, reference: dict, caplog: pytest.LogCaptureFixture
) -> None:
    """Digamma has no TFLite kernel: the model runs in TensorFlow, the log says so, and a note is cached."""
    manifest = json.loads((human / "emotion.json").read_text())
    nodes = manifest["modelTopology"]["node"]
    identity = next(node for node in nodes if node["name"] == "Identity")
    digamma_node = {
        "name": "extra",
        "op": "Digamma",
        "input": identity["input"],
        "attr": {"T": {"type": "DT_FLOAT"}},
    }
    nodes.append(digamma_node)
    identity["input"] = ["extra"]
    (tmp_path / "model.json").write_text(json.dumps(manifest))
    shutil.copy(human / "emotion.bin", tmp_path / "emotion.bin")
    model = load_tfjs_model(tmp_path / "model.json")
    assert model.runtime == "tensorflow"
    assert "does not convert to TFLite" in caplog.text and "Digamma" in caplog.text
    assert CacheEntry(model.source.content_hash()).failure() is not None
    item = reference["emotion"]["items"][0]
    got = run(model, emotion_input(np.load(shared_dir / item["crop_file"])))["Identity"][0]
    assert np.abs(got - digamma(np.asarray(item["probs"], np.float64))).max() <= 1e-2 * np.abs(got).max()
    with pytest.raises(ModelError, match="does not convert to TFLite"):
        load_tfjs_model(tmp_path / "model.json", runtime="litert")


def test_cached_model_loads_without_tensorflow(human: Path, tfjs_cache: Path) -> None:
    """A second process finds the .tflite by content hash and never imports TensorFlow."""
    load(human / "emotion.json", "litert")
    source = read_model_json(human / "emotion.json")
    entry = CacheEntry(source.content_hash())
    assert entry.tflite.is_file() and entry.tflite.parent == tfjs_cache / "tfjs"
    script = (
        "import sys, time; from streamproc.inference.tfjs.loader import load_tfjs_model\n"
        f"start = time.perf_counter(); model = load_tfjs_model({str(human / 'emotion.json')!r})\n"
        "print(model.runtime, 'tensorflow' in sys.modules, time.perf_counter() - start)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO, env=os.environ
    )
    runtime, imported, seconds = result.stdout.split()
    assert (runtime, imported) == ("litert", "False"), result.stderr
    assert float(seconds) < 1.0


def test_resize_bilinear_is_tfjs_resize_not_opencv() -> None:
    """resizeBilinear samples source row i * in/out (no half-pixel centres), unlike cv2.INTER_LINEAR."""
    picture = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3) * 3
    out = resize_bilinear(picture, 3, 4)
    src_y, src_x = 2 * 4 / 3, 3 * 6 / 4  # output pixel (2, 3)
    y0, x0 = int(src_y), int(src_x)
    fy, fx = src_y - y0, src_x - x0
    p = picture.astype(np.float64)
    top = p[y0, x0] + (p[y0, x0 + 1] - p[y0, x0]) * fx
    bottom = p[y0 + 1, x0] + (p[y0 + 1, x0 + 1] - p[y0 + 1, x0]) * fx
    assert np.allclose(out[2, 3], top + (bottom - top) * fy, atol=1e-4)
    assert np.array_equal(out[0, 0], picture[0, 0])
    assert not np.allclose(out, cv2.resize(picture, (4, 3), interpolation=cv2.INTER_LINEAR), atol=0.5)


def test_tfjs_resize_reproduces_the_reference_crops(shared_dir: Path, reference: dict) -> None:
    """The emotion crop of face.jpg, re-derived with the documented window and resize, is bit-exact."""
    item = reference["emotion"]["items"][0]
    rgb = cv2.imread(str(shared_dir / item["image"]), cv2.IMREAD_COLOR)[:, :, ::-1]
    x, y, size, _ = item["window_xywh"]
    crop = np.clip(np.rint(resize_bilinear(rgb[y : y + size, x : x + size], 64, 64)), 0, 255).astype(np.uint8)
    assert np.array_equal(crop, np.load(shared_dir / item["crop_file"]))


def test_sidecar_preprocessing_is_the_reference_preprocessing(shared_dir: Path, reference: dict) -> None:
    prepare = Preprocess(64, 64, "bilinear", "gray", "minus1_1")
    for item in reference["emotion"]["items"]:
        crop = np.load(shared_dir / item["crop_file"])
        assert np.abs(prepare(crop)[None] - emotion_input(crop)).max() <= 1e-6


def test_model_json_is_a_classifier_with_its_sidecar(
    emotion_dir: Path, shared_dir: Path, reference: dict
) -> None:
    settings = ClassifierSettings(model=str(emotion_dir / "emotion.json"), top_k=3)
    classifier = open_classifier(settings, ModelRegistry.load())
    assert classifier.name == "emotion" and classifier.input_size == (64, 64)
    assert classifier.model.dynamic_batch  # all crops of a frame in one invoke
    crops = [np.load(shared_dir / item["crop_file"]) for item in reference["emotion"]["items"]]
    results = classifier.classify(crops, frame=3)
    for result, item in zip(results, reference["emotion"]["items"], strict=True):
        assert result.top.label == item["top"] and result.frame == 3 and len(result.labels) == 3
        assert abs(result.top.score - max(item["probs"])) <= 1e-4


def test_model_json_without_declared_preprocessing_is_refused(tmp_path: Path, human: Path) -> None:
    for name in ("emotion.json", "emotion.bin"):
        shutil.copy(human / name, tmp_path / name)
    with pytest.raises(ConfigError, match=r"emotion\.streamproc\.toml"):
        open_classifier(ClassifierSettings(model=str(tmp_path / "emotion.json")), ModelRegistry.load())
    (tmp_path / "emotion.streamproc.toml").write_text('color = "rgb"\nrange = "minus1_1"\n')
    with pytest.raises(ModelError, match="1-channel input"):
        open_classifier(ClassifierSettings(model=str(tmp_path / "emotion.json")), ModelRegistry.load())
    (tmp_path / "emotion.streamproc.toml").write_text('colour = "gray"\n')
    with pytest.raises(ModelError, match="colour"):
        open_classifier(ClassifierSettings(model=str(tmp_path / "emotion.json")), ModelRegistry.load())


@pytest.fixture(scope="session")
def faceres_dir(tmp_path_factory: pytest.TempPathFactory, human: Path) -> Path:
    """The README's recipe: faceres.json copied as age.json and gender.json beside faceres.bin, with
    the repository's sidecars and labels."""
    folder = tmp_path_factory.mktemp("faceres")
    shutil.copy(human / "faceres.bin", folder / "faceres.bin")
    for name in ("age", "gender"):
        shutil.copy(human / "faceres.json", folder / f"{name}.json")
        for suffix in (".streamproc.toml", ".txt"):
            shutil.copy(SIDECARS / f"{name}{suffix}", folder / f"{name}{suffix}")
    return folder


def test_faceres_recipe_classifies_age_and_gender_as_human_does(
    faceres_dir: Path, shared_dir: Path, reference: dict
) -> None:
    registry = ModelRegistry.load()
    gender = open_classifier(ClassifierSettings(model=str(faceres_dir / "gender.json"), top_k=2), registry)
    age = open_classifier(ClassifierSettings(model=str(faceres_dir / "age.json"), top_k=3), registry)
    assert (gender.name, gender.num_classes, age.name, age.num_classes) == ("gender", 2, "age", 100)
    items = reference["faceres"]["items"]
    crops = [np.load(shared_dir / item["crop_file"]) for item in items]
    for item, by_gender, by_age in zip(items, gender.classify(crops), age.classify(crops), strict=True):
        male = item["gender_sigmoid"]
        assert by_gender.top.label == item["human"]["gender"]
        scores = {label.label: label.score for label in by_gender.labels}
        assert scores == pytest.approx({"male": male, "female": 1 - male}, abs=1e-4)
        assert by_age.top.label == f"age {item['human']['ageArgmax']}"
        assert by_age.top.score == pytest.approx(max(item["age_probs"]), abs=1e-4)


def test_a_model_with_several_outputs_needs_one_named(tmp_path: Path, human: Path) -> None:
    for name in ("faceres.json", "faceres.bin"):
        shutil.copy(human / name, tmp_path / name)
    sidecar = tmp_path / "faceres.streamproc.toml"
    sidecar.write_text('range = "raw"\n')
    settings = ClassifierSettings(model=str(tmp_path / "faceres.json"))
    with pytest.raises(
        ModelError, match=r"has 3 outputs \(gender_pred/Sigmoid, .*\): name the one .* output_name"
    ):
        open_classifier(settings, ModelRegistry.load())
    sidecar.write_text('range = "raw"\noutput_name = "age"\n')
    with pytest.raises(ModelError, match="has no output 'age'"):
        open_classifier(settings, ModelRegistry.load())


@pytest.fixture(scope="session")
def face_clip(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    """Twelve frames of ../shared/images/face.jpg (four people) as an H.264 clip."""
    path = tmp_path_factory.mktemp("face-clip") / "face.mp4"
    rgb = cv2.imread(str(shared_dir / "images" / "face.jpg"))[:, :, ::-1]
    rgb = np.ascontiguousarray(rgb[: rgb.shape[0] // 2 * 2, : rgb.shape[1] // 2 * 2])
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], "yuv420p"
        for _ in range(12):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def test_face_pipeline_labels_faces_with_the_emotion_model(
    emotion_dir: Path, face_clip: Path, tmp_path: Path, run_cli: CliRunner
) -> None:
    events = tmp_path / "events.jsonl"
    result = run_cli(
        "run", face_clip, "--events", events, "--classify", "faces",
        "--classifier-model", emotion_dir / "emotion.json", "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    labels = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    classified = [
        face["classification"]
        for record in read_records(events)
        for face in record["faces"]
        if face.get("classification")
    ]
    assert len({json.dumps(c["top_k"]) for c in classified}) >= 2, "fewer than two faces were classified"
    for classification in classified:
        assert classification["model"] == "emotion"
        assert {label["label"] for label in classification["top_k"]} <= labels
        assert sum(label["score"] for label in classification["top_k"]) <= 1.0001


def iou(a: np.ndarray, b: np.ndarray) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_tfjs_blazeface_is_a_face_detector(human: Path, shared_dir: Path) -> None:
    """Human's 256x256 BlazeFace finds the people MediaPipe's full-range model finds on face.jpg."""
    detector = open_detector(DetectorSettings(model=str(human / "blazeface.json")))
    assert detector.input_size == 256 and len(detector.anchors) == 896
    rgb = np.ascontiguousarray(cv2.imread(str(shared_dir / "images" / "face.jpg"))[:, :, ::-1])
    found = detector.detect_image(rgb)
    mediapipe = json.loads((shared_dir / "reference" / "mediapipe_reference.json").read_text())
    expected = [np.array(face["box"]) for face in mediapipe["items"]["images/face.jpg"]["full"]]
    assert len(found.boxes) >= 3
    for box in found.boxes:
        assert max(iou(box, other) for other in expected) >= 0.5, box
    assert found.keypoints.shape == (len(found.boxes), 6, 2)


def test_pipeline_runs_with_a_tfjs_detector(
    human: Path, face_clip: Path, tmp_path: Path, run_cli: CliRunner
) -> None:
    events = tmp_path / "events.jsonl"
    env = {"STREAMPROC_DETECTOR__MODEL": str(human / "blazeface.json")}
    result = run_cli("run", face_clip, "--events", events, "--no-progress", env=env)
    assert result.returncode == 0, result.stderr
    records = read_records(events)
    assert len(records) == 12 and all(len(record["faces"]) >= 3 for record in records)


def test_unwritable_cache_is_one_clear_error(
    tmp_path: Path, shared_dir: Path, reference: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv(CACHE_ENV, str(blocker))
    with pytest.raises(ModelError, match=f"cannot write the converted model .*set {CACHE_ENV}"):
        load_tfjs_model(shared_dir / reference["layers_demo"]["model_dir"])
