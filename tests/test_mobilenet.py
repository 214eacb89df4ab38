"""MobileNet classification: the reference top-5, batching, and the same Keras model through both runtimes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from streamproc.config.settings import ClassifierSettings
from streamproc.inference.classifier import Classifier
from streamproc.inference.classifiers import open_classifier
from streamproc.inference.models import ModelRegistry
from streamproc.inference.runtime import load_model

# Keras's own numpy conversions trip numpy 2's copy-keyword deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy:DeprecationWarning"
)

MODELS = {
    "mobilenet_v2": "mobilenet_v2_1.0_224_quant.tflite",
    "mobilenet_v1": "mobilenet_v1_0.25_128_quant.tflite",
}


def _reference_cases() -> list[tuple[str, str]]:
    """(model, image) pairs the reference covers, read at collection time."""
    override = os.environ.get("STREAMPROC_SHARED_DIR")
    shared = Path(override) if override else REPO.parent / "shared"
    path = shared / "reference" / "mobilenet_reference.json"
    if not path.is_file():
        return [("<missing mobilenet_reference.json>", "")]  # fails loudly rather than testing nothing
    reference = json.loads(path.read_text())
    return [(name, image) for name, file in MODELS.items() for image in sorted(reference[file])]


@pytest.fixture(scope="module")
def reference(shared_dir: Path) -> dict:
    return json.loads((shared_dir / "reference" / "mobilenet_reference.json").read_text())


@pytest.fixture(scope="module")
def classifiers(models_dir: Path) -> dict[str, Classifier]:
    registry = ModelRegistry.load(models_dir)
    return {name: open_classifier(ClassifierSettings(model=name), registry) for name in MODELS}


def load_rgb(shared_dir: Path, name: str, size: int | None = None) -> np.ndarray:
    with Image.open(shared_dir / "images" / name) as image:
        rgb = image.convert("RGB")
        return np.asarray(rgb.resize((size, size)) if size else rgb)


@pytest.mark.parametrize(("model", "image"), _reference_cases())
def test_whole_image_matches_reference(
    classifiers: dict[str, Classifier], reference: dict, shared_dir: Path, model: str, image: str
) -> None:
    expected = reference[MODELS[model]][image]
    got = classifiers[model].classify([load_rgb(shared_dir, image)])[0]
    assert got.top.index == expected[0][0], f"top-1 {got.top.label!r}, reference {expected[0][1]!r}"
    assert [label.index for label in got.labels] == [index for index, _, _ in expected]
    for label, (_, name, score) in zip(got.labels, expected, strict=True):
        assert label.label == name
        assert label.score == pytest.approx(score, abs=0.02)


def test_fixed_batch_model_classifies_many_pictures_one_by_one(
    classifiers: dict[str, Classifier], shared_dir: Path
) -> None:
    classifier = classifiers["mobilenet_v2"]
    assert not classifier.model.dynamic_batch  # the quantised graph pins batch 1
    pictures = [load_rgb(shared_dir, name) for name in ("cat.bmp", "parrot.jpg", "hot_dog.jpg")]
    together = classifier.classify(pictures, frame=7)
    alone = [classifier.classify([picture], frame=7)[0] for picture in pictures]
    assert together == alone
    assert len({result.top.index for result in together}) == 3


# ------------------------------------------------------------------ Keras / SavedModel / converted TFLite


@pytest.fixture(scope="module")
def keras_models(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> dict[str, Path]:
    """A MobileNetV2 (96x96, random weights) saved as .keras, .h5 and SavedModel, and converted to .tflite."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None)
    # Fresh batch-norm statistics make every activation vanish (uniform output); set them from a
    # batch of real photos in one pass, and widen the random classifier so the top-5 is distinct.
    batch = np.stack([load_rgb(shared_dir, p.name, 96) for p in sorted((shared_dir / "images").iterdir())])
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(batch.astype(np.float32) / 127.5 - 1.0, training=True)
    dense = model.get_layer("predictions")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * 20.0, bias])

    folder = tmp_path_factory.mktemp("keras")
    paths = {
        "keras": folder / "mobilenet_v2.keras",
        "h5": folder / "mobilenet_v2.h5",
        "saved": folder / "saved",
    }
    model.save(paths["keras"])
    model.save(paths["h5"])
    model.export(str(paths["saved"]), verbose=False)
    paths["tflite"] = folder / "mobilenet_v2.tflite"
    paths["tflite"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return paths


@pytest.mark.slow  # builds, saves and converts a Keras MobileNet with TensorFlow (about a minute)
@pytest.mark.parametrize("kind", ["keras", "h5", "saved"])
def test_keras_model_and_its_tflite_conversion_agree(
    keras_models: dict[str, Path], shared_dir: Path, kind: str
) -> None:
    def top5(path: Path) -> list[tuple[int, float]]:
        classifier = Classifier(load_model(path), path.stem, "minus1_1", top_k=5)
        assert classifier.input_size == (96, 96) and classifier.num_classes == 1000
        result = classifier.classify([load_rgb(shared_dir, "grace_hopper.bmp")])[0]
        return [(label.index, label.score) for label in result.labels]

    tensorflow, lite = top5(keras_models[kind]), top5(keras_models["tflite"])
    assert [index for index, _ in tensorflow] == [index for index, _ in lite]
    np.testing.assert_allclose([s for _, s in tensorflow], [s for _, s in lite], atol=1e-4)
    assert tensorflow[0][1] > 5 / 1000  # a real ranking, not a uniform output over 1000 classes


def test_dynamic_batch_model_classifies_many_pictures_in_one_invoke(
    keras_models: dict[str, Path], shared_dir: Path
) -> None:
    classifier = Classifier(load_model(keras_models["tflite"]), "converted", "minus1_1", top_k=3)
    assert classifier.model.dynamic_batch
    pictures = [load_rgb(shared_dir, name) for name in ("cat.bmp", "parrot.jpg", "face.jpg")]
    together = classifier.classify(pictures)
    alone = [classifier.classify([picture])[0] for picture in pictures]
    for batched, single in zip(together, alone, strict=True):
        assert [label.index for label in batched.labels] == [label.index for label in single.labels]
        np.testing.assert_allclose(
            [label.score for label in batched.labels], [label.score for label in single.labels], atol=1e-5
        )


def test_tflite_only_run_never_imports_tensorflow(sample_video: Path, tmp_path: Path) -> None:
    script = f"""
import sys
from streamproc.config.settings import JsonlSinkSettings, Settings, SourceSettings
from streamproc.pipeline.build import run_pipeline
settings = Settings(
    sources=[SourceSettings(url={str(sample_video)!r})],
    sinks=[JsonlSinkSettings(type="jsonl", path={str(tmp_path / "out.jsonl")!r})],
    classifier={{"enabled": True, "targets": "both"}},
)
report = run_pipeline(settings)
assert report.ok and report.frames_processed > 0, report.problems()
print(sorted(name for name in ("tensorflow", "keras", "tf_keras") if name in sys.modules))
"""
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120, env=os.environ
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"
    assert '"classification"' in (tmp_path / "out.jsonl").read_text()  # the classifier did run
