"""Image classification (MobileNet and friends): declared preprocessing, batching, top-k labels."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from streamproc.config.settings import ClassifierSettings
from streamproc.core.classification import Classification, Label
from streamproc.core.errors import ConfigError, ModelError
from streamproc.inference.models import ModelRegistry
from streamproc.inference.runtime import Model, load_model
from streamproc.media.crops import resize_to

log = logging.getLogger(__name__)

# What a path-given model must declare itself; manifest models declare it in the manifest.
_PATH_ONLY_FIELDS = ("preprocessing", "mean", "std", "output", "labels", "label_offset")


class Classifier:
    """Runs one classification model on RGB uint8 pictures.

    ``preprocessing`` maps a pixel p (0..255) to what the model was trained on: ``raw`` (p itself;
    a uint8 input gets the bytes unchanged), ``minus1_1`` (p/127.5 - 1), ``zero_1`` (p/255) or
    ``mean_std`` ((p - mean)/std). An integer input is then quantised with the model's own scale
    and zero point; integer outputs are dequantised the same way. ``prepare`` (a picture -> one input
    row, e.g. a TF.js model's declared preprocessing) replaces all of that and allows 1-channel inputs.
    """

    def __init__(
        self,
        model: Model,
        name: str,
        preprocessing: str,
        *,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        output: str = "probabilities",
        labels: Sequence[str] | None = None,
        label_offset: int = 0,
        top_k: int = 5,
        expected_size: tuple[int, int] | None = None,
        fix: str = "check the model path",
        prepare: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.model = model
        self._prepare = prepare
        self.name = name
        self.top_k = top_k
        self._preprocessing = preprocessing
        self._output = output
        self._labels = list(labels) if labels is not None else None
        self._label_offset = label_offset
        shape = model.input_shape
        channels = (1, 3) if prepare is not None else (3,)
        if len(shape) != 4 or shape[3] not in channels or shape[1] < 1 or shape[2] < 1:
            raise ModelError(
                f"{model.path} takes input of shape {shape}, not RGB images (1, height, width, 3): {fix}"
            )
        self.input_height, self.input_width = int(shape[1]), int(shape[2])
        if expected_size is not None and expected_size != (self.input_height, self.input_width):
            raise ModelError(
                f"{model.path} takes {self.input_width}x{self.input_height} input, but {name} is "
                f"{expected_size[1]}x{expected_size[0]}: the file is not {name}; {fix}"
            )
        if preprocessing == "mean_std" and (mean is None or std is None or not all(std)):
            raise ConfigError(f"model {name}: preprocessing mean_std needs mean and non-zero std (3 values)")
        self._mean = np.asarray(mean if mean is not None else (0.0,) * 3, np.float32)
        self._std = np.asarray(std if std is not None else (1.0,) * 3, np.float32)
        self._integer_input = np.issubdtype(model.input_dtype, np.integer)
        raw_bytes = preprocessing == "raw" and model.input_dtype == np.uint8
        if self._integer_input and not raw_bytes and model.input_quantization[0] == 0.0:
            raise ModelError(f"{model.path} has an integer input without quantisation parameters: {fix}")
        outputs = model.output_shapes
        values = int(np.prod(outputs[0][1:])) if len(outputs) == 1 else 0
        if values != 1 if output == "sigmoid" else values < 2:
            raise ModelError(
                f"{model.path} has outputs {outputs}, not one vector of class scores per image: {fix}"
            )
        self.num_classes = 2 if output == "sigmoid" else values
        if self._labels is not None and len(self._labels) + label_offset != self.num_classes:
            raise ModelError(
                f"{model.path} scores {self.num_classes} classes, but its labels give "
                f"{len(self._labels)} (offset {label_offset}): the labels file does not belong to it"
            )
        # The first invoke packs weights (XNNPACK): do it now, not on the first face of a run.
        self.classify([np.zeros((self.input_height, self.input_width, 3), np.uint8)])

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) pictures are resized to."""
        return self.input_width, self.input_height

    @property
    def resizes_itself(self) -> bool:
        """Whether the model declares its own resize (TF.js sidecars): callers then pass pictures
        at any size, since resizing them first would change what the model sees."""
        return self._prepare is not None

    def classify(self, pictures: Sequence[np.ndarray], frame: int | None = None) -> list[Classification]:
        """Top-k labels for each RGB uint8 picture (any size; resized to the model input).

        One invoke for all pictures when the model takes a batch, else one invoke per picture.
        """
        if not pictures:
            return []
        batch = np.stack([self._tensor(picture) for picture in pictures])
        if self.model.dynamic_batch:
            scores = self._scores(self.model.invoke(batch)[0])
        else:
            scores = np.concatenate(
                [self._scores(self.model.invoke(batch[i : i + 1])[0]) for i in range(len(batch))]
            )
        return [self._top(row, frame) for row in scores]

    def _tensor(self, rgb: np.ndarray) -> np.ndarray:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an (h, w, 3) uint8 RGB picture, got {rgb.shape} {rgb.dtype}")
        if self._prepare is not None:
            return self._prepare(rgb).astype(self.model.input_dtype, copy=False)
        pixels = resize_to(rgb, self.input_width, self.input_height)
        dtype = self.model.input_dtype
        if self._preprocessing == "raw" and (dtype == np.uint8 or not self._integer_input):
            return pixels.astype(dtype, copy=False)
        real = pixels.astype(np.float32)
        if self._preprocessing == "minus1_1":
            real = real / np.float32(127.5) - np.float32(1.0)
        elif self._preprocessing == "zero_1":
            real /= np.float32(255.0)
        elif self._preprocessing == "mean_std":
            real = (real - self._mean) / self._std
        if not self._integer_input:
            return real.astype(dtype, copy=False)
        scale, zero_point = self.model.input_quantization
        info = np.iinfo(dtype)
        return np.clip(np.round(real / scale + zero_point), info.min, info.max).astype(dtype)

    def _scores(self, output: np.ndarray) -> np.ndarray:
        rows = output.reshape(output.shape[0], -1)
        if np.issubdtype(rows.dtype, np.integer):
            scale, zero_point = self.model.output_quantization(0)
            rows = (rows.astype(np.float32) - zero_point) * scale
        rows = rows.astype(np.float32, copy=False)
        if self._output == "logits":
            shifted = np.exp(rows - rows.max(axis=1, keepdims=True))
            rows = shifted / shifted.sum(axis=1, keepdims=True)
        elif self._output == "sigmoid":  # one probability p of the second class: [1 - p, p]
            rows = np.concatenate([1 - rows, rows], axis=1)
        return rows

    def _top(self, scores: np.ndarray, frame: int | None) -> Classification:
        k = min(self.top_k, scores.size)
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best], kind="stable")]
        return Classification(
            self.name, tuple(Label(int(i), self._label(int(i)), float(scores[i])) for i in best), frame
        )

    def _label(self, index: int) -> str:
        position = index - self._label_offset
        if self._labels is not None and 0 <= position < len(self._labels):
            return self._labels[position]
        return str(index)


def read_labels(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ModelError(f"labels file {path} cannot be read: {exc.strerror}") from None
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.strip() for line in lines]


def open_model_classifier(settings: ClassifierSettings, registry: ModelRegistry) -> Classifier:
    """A classifier from a manifest model (checked against its sha256) or a model file
    (``.tflite``, Keras, SavedModel); TF.js models go through :mod:`streamproc.inference.classifiers`."""
    if settings.model in registry.specs:
        spec = registry.get(settings.model)
        defaults = ClassifierSettings.model_fields
        overridden = [name for name in _PATH_ONLY_FIELDS if getattr(settings, name) != defaults[name].default]
        if overridden:
            raise ConfigError(
                f"classifier.{overridden[0]} applies to models given by path; {spec.name} declares its "
                f"own in {registry.manifest}"
            )
        if spec.kind != "classifier":
            raise ConfigError(f"classifier.model {spec.name!r} is a {spec.kind}, not a classifier")
        fix = f"run `streamproc models fetch {spec.name}`"
        model = load_model(registry.require(spec.name), settings.threads, settings.device)
        return Classifier(
            model,
            spec.name,
            spec.preprocessing or "raw",
            mean=spec.mean,
            std=spec.std,
            output=spec.output,
            labels=read_labels(registry.require(spec.labels)) if spec.labels else None,
            label_offset=spec.label_offset,
            top_k=settings.top_k,
            expected_size=spec.input_size,
            fix=fix,
        )
    path = Path(settings.model)
    if not path.exists() and not path.suffix:
        registry.get(settings.model, "classifier")  # neither a file nor a known name: list the names
    if settings.preprocessing is None:
        raise ConfigError(
            f"classifier.preprocessing must be set for the model file {path} "
            "(raw, minus1_1, zero_1 or mean_std: how the model was trained)"
        )
    return Classifier(
        load_model(path, settings.threads, settings.device),
        path.stem,
        settings.preprocessing,
        mean=settings.mean,
        std=settings.std,
        output=settings.output,
        labels=read_labels(settings.labels) if settings.labels else None,
        label_offset=settings.label_offset,
        top_k=settings.top_k,
    )
