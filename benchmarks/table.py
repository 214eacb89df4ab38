"""The summary every benchmark ends with: one row per target, measured value against the target."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class Row:
    """One measured value and its target; ``ok`` is None for values reported without a target."""

    name: str
    value: str
    target: str = ""
    ok: bool | None = None

    def line(self) -> str:
        verdict = {True: "pass", False: "FAIL", None: ""}[self.ok]
        return f"{self.name:<52} {self.value:>22} {self.target:>12}  {verdict}"


def print_rows(rows: Sequence[Row], title: str = "") -> None:
    if title:
        print(title)
    print(f"{'measure':<52} {'value':>22} {'target':>12}  result")
    for row in rows:
        print(row.line())


def all_ok(rows: Sequence[Row]) -> bool:
    return all(row.ok is not False for row in rows)
