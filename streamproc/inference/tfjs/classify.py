"""A TF.js model as a streamproc classifier, with the preprocessing its sidecar declares."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from streamproc.config.settings import ClassifierSettings
from streamproc.core.errors import ConfigError, ModelError
from streamproc.inference.classifier import Classifier, read_labels
from streamproc.inference.runtime import Model, OutputsView
from streamproc.inference.tfjs.loader import TfjsModel, load_tfjs_model
from streamproc.inference.tfjs.preprocess import Preprocess
from streamproc.inference.tfjs.sidecar import Sidecar, read_sidecar, sidecar_path


def model_name(path: Path) -> str:
    """``emotion`` for emotion.json; the folder's name for a model.json (or its folder)."""
    path = Path(path)
    if path.is_dir():
        return path.name
    return path.parent.name if path.name == "model.json" else path.stem


def open_tfjs_classifier(settings: ClassifierSettings, path: Path) -> Classifier:
    """The classifier for a model.json: sidecar declarations, overridden by classifier settings."""
    declared = read_sidecar(path)
    if declared is None and settings.preprocessing is None:
        raise ConfigError(
            f"the TF.js model {path} needs its preprocessing declared: write {sidecar_path(path)} "
            "(see the README) or set classifier.preprocessing"
        )
    sidecar = declared or Sidecar()
    if settings.preprocessing is not None:
        sidecar = sidecar.model_copy(
            update={"value_range": settings.preprocessing, "mean": settings.mean, "std": settings.std}
        )
    loaded = load_tfjs_model(path, settings.threads, device=settings.device)
    model = _one_output(loaded, sidecar.output_name, path)
    shape = model.input_shape
    if len(shape) != 4:
        raise ModelError(f"{path} takes input of shape {shape}, not images (1, height, width, channels)")
    height, width = sidecar.input_size or (int(shape[1]), int(shape[2]))
    prepare = Preprocess(
        height, width, sidecar.resize, sidecar.color, sidecar.value_range, sidecar.mean, sidecar.std
    )
    if prepare.channels != shape[3]:
        raise ModelError(
            f"{path} takes {shape[3]}-channel input but color = {sidecar.color!r} gives "
            f"{prepare.channels}: fix color in {sidecar_path(path)}"
        )
    labels = settings.labels or sidecar.labels
    return Classifier(
        model,
        model_name(path),
        "raw",
        output=sidecar.output if settings.output == "probabilities" else settings.output,
        labels=read_labels(labels) if labels else None,
        label_offset=settings.label_offset or sidecar.label_offset,
        top_k=settings.top_k,
        expected_size=(height, width),
        fix=f"check {path} and {sidecar_path(path)}",
        prepare=prepare,
    )


def _one_output(loaded: TfjsModel, name: str | None, path: Path) -> Model:
    """The model seen through the output its sidecar names (``output_name``); models with one
    output need no name."""
    names = [found.removesuffix(":0") for found in loaded.output_names]
    if name is None:
        if len(names) > 1:
            raise ModelError(
                f"{path} has {len(names)} outputs ({', '.join(names)}): name the one to classify with"
                f" output_name in {sidecar_path(path)}"
            )
        return loaded.model
    if name.removesuffix(":0") not in names:
        raise ModelError(
            f"{path} has no output {name!r} (it has {', '.join(names)}):"
            f" fix output_name in {sidecar_path(path)}"
        )
    return OneOutput(loaded.model, names.index(name.removesuffix(":0")))


class OneOutput(OutputsView):
    """A model with several outputs (Human's faceres: gender, descriptor, age) seen as one of them."""

    def __init__(self, model: Model, index: int) -> None:
        super().__init__(model)
        self._index = index

    @property
    def output_shapes(self) -> list[tuple[int, ...]]:
        return [self._model.output_shapes[self._index]]

    def output_quantization(self, index: int) -> tuple[float, int]:
        return self._model.output_quantization(self._index)

    def invoke(self, tensor: np.ndarray) -> list[np.ndarray]:
        return [self._model.invoke(tensor)[self._index]]
