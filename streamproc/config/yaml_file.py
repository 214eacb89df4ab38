"""Reading a YAML config file strictly: every bad file is one ConfigError line (exit code 2).

Refused: bytes that are not UTF-8, duplicate keys (YAML would keep the last one silently),
nesting deeper than any config needs (PyYAML would recurse until Python gives up), and anything
but a mapping at the top.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic.fields import FieldInfo

from streamproc.core.errors import ConfigError

MAX_DEPTH = 50  # the deepest real setting is ~5 levels down


class _Problem(yaml.MarkedYAMLError):
    """A strictness rule broken at a place in the file."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and deep nesting."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        depth = getattr(self, "_depth", 0)
        if depth > MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise _Problem(problem=f"nested more than {MAX_DEPTH} levels deep", problem_mark=mark)
        self._depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if isinstance(key, typing.Hashable) and key in seen:
                raise _Problem(problem=f"duplicate key '{key}'", problem_mark=key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML config file into a mapping, with errors that name the file (and the line)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line}):"
            " save it as UTF-8"
        ) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"config file {path} is not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings, not {type(data).__name__}")
    return data


def refuse_bool_for_number(data: Any, fields: Mapping[str, FieldInfo]) -> Any:
    """YAML's true/false are not numbers, though pydantic would read ``min_score: true`` as 1.0."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            field = fields.get(key) if isinstance(key, str) else None
            if isinstance(value, bool) and field is not None and _numeric(field.annotation):
                raise ValueError(f"'{key}' must be a number, not the boolean {str(value).lower()}")
    return data


def _members(annotation: Any) -> tuple[Any, ...]:
    return typing.get_args(annotation) or (annotation,)


def _numeric(annotation: Any) -> bool:
    members = _members(annotation)
    return bool not in members and any(member in (int, float) for member in members)
