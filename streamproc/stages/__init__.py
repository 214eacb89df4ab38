"""Analysis after detection, as stages the pipeline runs in order on the inference thread."""

from streamproc.stages.base import Stage

__all__ = ["Stage"]
