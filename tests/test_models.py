"""The model registry: list/fetch/verify, downloads over real HTTP, and every kind of bad model file."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CliRunner
from test_bad_input import assert_one_line_error

from streamproc.config.settings import ClassifierSettings, load_settings
from streamproc.core.errors import ConfigError, ModelError
from streamproc.inference.classifiers import open_classifier
from streamproc.inference.models import MANIFEST_PATH, FileState, ModelRegistry, blazeface_model_path

V2 = "mobilenet_v2_1.0_224_quant.tflite"
LABELS = "imagenet_labels.txt"


def sha256_sums(models_dir: Path) -> dict[str, str]:
    """The published checksums (SHA256SUMS beside the files), independent of our manifest."""
    lines = (models_dir / "SHA256SUMS").read_text().split("\n")
    return {name.strip(): digest for digest, name in (line.split() for line in lines if line.strip())}


def test_manifest_pins_the_published_checksums(models_dir: Path) -> None:
    registry = ModelRegistry.load(models_dir)
    sums = sha256_sums(models_dir)
    fetchable = [spec for spec in registry.specs.values() if not spec.package_data]
    assert {spec.file for spec in fetchable} == set(sums)
    for spec in fetchable:
        assert spec.sha256 == sums[spec.file]
        assert spec.url and "google-coral/test_data/raw/104342d2d3480b3e66203073dac24f4e2dbb4c41/" in spec.url
    for variant in ("short", "full"):
        spec = registry.get(f"blazeface_{variant}")
        assert registry.path(spec) == blazeface_model_path(variant)
        assert registry.check(spec).state is FileState.OK


def test_cli_list_and_verify(run_cli: CliRunner, models_dir: Path) -> None:
    listed = run_cli("models", "list", "--models-dir", models_dir)
    assert listed.returncode == 0, listed.stderr
    rows = {
        line.split()[0]: line.split()
        for line in listed.stdout.splitlines()
        if line.startswith(("mobile", "image", "blaze"))
    }
    assert set(rows) == set(ModelRegistry.load(models_dir).specs)
    assert all(row[2] == "ok" for row in rows.values())
    # each says what it is for: a newcomer must not take ImageNet labels on a face for a bug
    specs = ModelRegistry.load(models_dir).specs.values()
    assert all(f"for: {spec.purpose}" in listed.stdout for spec in specs if spec.purpose)
    assert all(spec.purpose for spec in specs)
    assert "on a face crop it names what is around the face" in listed.stdout
    assert listed.stdout.rstrip().endswith("README, 'Face classifiers').")
    assert run_cli("models", "verify", "--models-dir", models_dir).returncode == 0


def test_cli_verify_reports_missing_and_corrupt(run_cli: CliRunner, models_dir: Path, tmp_path: Path) -> None:
    shutil.copy(models_dir / LABELS, tmp_path / LABELS)
    (tmp_path / V2).write_bytes((models_dir / V2).read_bytes()[:-10])  # cut short
    result = run_cli(
        "models", "verify", "mobilenet_v2", "mobilenet_v1", "imagenet_labels", "--models-dir", tmp_path
    )
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "2 of 3", "mobilenet_v2 mobilenet_v1", "streamproc models fetch")
    rows = {line.split()[0]: line.split()[2] for line in result.stdout.splitlines() if line[:1] != " "}
    assert rows == {"mobilenet_v2": "corrupt", "mobilenet_v1": "missing", "imagenet_labels": "ok"}


@pytest.fixture
def mirror(tmp_path: Path, models_dir: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on a free port serving a copy of the models (and one damaged file)."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    for name in (V2, LABELS):
        shutil.copy(models_dir / name, folder / name)
    (folder / "mobilenet_v1_0.25_128_quant.tflite").write_bytes(b"not the model you are looking for")
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/", folder
    server.shutdown()
    server.server_close()
    thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_fetch_downloads_verifies_and_skips_what_is_there(
    run_cli: CliRunner, mirror: tuple[str, Path], tmp_path: Path, models_dir: Path
) -> None:
    url, _ = mirror
    target = tmp_path / "models"
    result = run_cli(
        "models", "fetch", "mobilenet_v2", "imagenet_labels", "--models-dir", target, "--base-url", url
    )
    assert result.returncode == 0, result.stderr
    for name in (V2, LABELS):
        assert hashlib.sha256((target / name).read_bytes()).hexdigest() == sha256_sums(models_dir)[name]
    assert sorted(p.name for p in target.iterdir()) == [LABELS, V2]  # no temporary files left
    again = run_cli("models", "fetch", "mobilenet_v2", "--models-dir", target, "--base-url", url)
    assert again.returncode == 0 and "already" in again.stdout


def test_fetch_rejects_a_download_with_the_wrong_checksum(
    run_cli: CliRunner, mirror: tuple[str, Path], tmp_path: Path, models_dir: Path
) -> None:
    url, _ = mirror
    target = tmp_path / "models"
    result = run_cli("models", "fetch", "mobilenet_v1", "--models-dir", target, "--base-url", url)
    assert result.returncode == 1
    expected = sha256_sums(models_dir)["mobilenet_v1_0.25_128_quant.tflite"]
    assert_one_line_error(result.stderr, "sha256", expected, "not saved")
    assert list(target.iterdir()) == []


def test_fetch_offline_fails_clearly(run_cli: CliRunner, tmp_path: Path, models_dir: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    target = tmp_path / "models"
    result = run_cli(
        "models", "fetch", "mobilenet_v2", "--models-dir", target, "--base-url", f"http://127.0.0.1:{port}/"
    )
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "cannot download", V2, sha256_sums(models_dir)[V2], "network")
    assert not target.exists() or list(target.iterdir()) == []


def test_run_with_a_missing_model_says_how_to_fix_it(
    run_cli: CliRunner, tmp_path: Path, sample_video: Path, models_dir: Path
) -> None:
    result = run_cli("run", sample_video, "--classify", "faces", "--models-dir", tmp_path, "--no-progress")
    assert result.returncode == 1
    assert_one_line_error(
        result.stderr,
        str(tmp_path / V2),
        "missing",
        sha256_sums(models_dir)[V2],
        "streamproc models fetch mobilenet_v2",
    )


def test_damaged_model_names_file_checksums_and_fix(tmp_path: Path, models_dir: Path) -> None:
    shutil.copy(models_dir / LABELS, tmp_path / LABELS)
    data = bytearray((models_dir / V2).read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    (tmp_path / V2).write_bytes(bytes(data))
    with pytest.raises(ModelError) as caught:
        open_classifier(ClassifierSettings(enabled=True), ModelRegistry.load(tmp_path))
    message = str(caught.value)
    for fragment in (str(tmp_path / V2), hashlib.sha256(data).hexdigest(), sha256_sums(models_dir)[V2]):
        assert fragment in message
    assert "streamproc models fetch mobilenet_v2" in message and "\n" not in message


def test_file_that_is_not_a_model(tmp_path: Path) -> None:
    fake = tmp_path / "classifier.tflite"
    fake.write_text("<html>404 Not Found</html>")
    with pytest.raises(ModelError, match=r"classifier\.tflite is not a TFLite model"):
        open_classifier(
            ClassifierSettings(enabled=True, model=str(fake), preprocessing="raw"), ModelRegistry.load()
        )


def test_model_with_the_wrong_input_size(tmp_path: Path, models_dir: Path) -> None:
    """A manifest entry whose file is another model: the input size gives it away."""
    manifest = tmp_path / "manifest.toml"
    v1 = "mobilenet_v1_0.25_128_quant.tflite"
    manifest.write_text(
        MANIFEST_PATH.read_text()
        .replace(f'file = "{V2}"', f'file = "{v1}"')
        .replace(sha256_sums(models_dir)[V2], sha256_sums(models_dir)[v1])
    )
    registry = ModelRegistry.load(models_dir, manifest)
    with pytest.raises(ModelError) as caught:
        open_classifier(ClassifierSettings(enabled=True, model="mobilenet_v2"), registry)
    message = str(caught.value)
    assert v1 in message and "128x128" in message and "224x224" in message
    assert "streamproc models fetch mobilenet_v2" in message


def test_model_that_is_not_a_classifier() -> None:
    """BlazeFace takes an image but answers with boxes, not class scores."""
    settings = ClassifierSettings(
        enabled=True, model=str(blazeface_model_path("short")), preprocessing="minus1_1"
    )
    with pytest.raises(ModelError, match="not one vector of class scores"):
        open_classifier(settings, ModelRegistry.load())


def test_unknown_model_name_lists_the_known_ones() -> None:
    with pytest.raises(
        ModelError, match=r"unknown model 'mobilenet_v3'.*mobilenet_v1.*mobilenet_v2"
    ) as caught:
        open_classifier(ClassifierSettings(enabled=True, model="mobilenet_v3"), ModelRegistry.load())
    # a classifier is asked for: detectors and label files are no answer
    assert "blazeface" not in str(caught.value) and "imagenet_labels" not in str(caught.value)


def test_path_model_must_declare_its_preprocessing() -> None:
    settings = ClassifierSettings(enabled=True, model=str(blazeface_model_path("short")))
    with pytest.raises(ConfigError, match=r"classifier\.preprocessing must be set"):
        open_classifier(settings, ModelRegistry.load())


def test_example_config_classifies_with_its_documented_values(repo_dir: Path) -> None:
    settings = load_settings(repo_dir / "config" / "example.yaml", {"classifier": {"enabled": True}})
    classifier = open_classifier(settings.classifier, ModelRegistry.load(settings.models_dir))
    assert classifier.name == "mobilenet_v2" and classifier.input_size == (224, 224)


def test_manifest_model_keeps_its_declared_preprocessing() -> None:
    settings = ClassifierSettings(enabled=True, model="mobilenet_v2", preprocessing="zero_1")
    with pytest.raises(ConfigError, match="declares its own"):
        open_classifier(settings, ModelRegistry.load())
