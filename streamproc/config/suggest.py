""" "Did you mean ...?": the closest known name to a misspelt flag or config key."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the command line uses closest() before (or without) loading any settings
    from pydantic import BaseModel


def closest(word: str, known: Iterable[str]) -> str | None:
    """The known name most like ``word`` (difflib ratio >= 0.6), or None."""
    found = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return found[0] if found else None


def keys_at(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """The keys the config section at ``loc`` takes (a pydantic error location: field names, list
    indexes and the tags of tagged unions); empty when the location leads nowhere known."""
    current: list[type[BaseModel]] = [model]
    for part in loc:
        if isinstance(part, int):
            continue  # a list index: the element type is already in ``current``
        tagged = [candidate for candidate in current if part in _tags(candidate)]
        if tagged:
            current = tagged
            continue
        inside = [c.model_fields[part].annotation for c in current if part in c.model_fields]
        current = [found for annotation in inside for found in _models_in(annotation)]
    return sorted({name for candidate in current for name in candidate.model_fields})


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds, through Optional, list, dict, Annotated and unions."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        return [found for arg in typing.get_args(annotation) for found in _models_in(arg)]
    return []


def _tags(model: type[BaseModel]) -> tuple[Any, ...]:
    """The values of a tagged union member's ``type`` field (``jsonl`` for the jsonl sink)."""
    field = model.model_fields.get("type")
    return typing.get_args(field.annotation) if field is not None else ()
