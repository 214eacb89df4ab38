"""The house rules of docs/architecture.md, checked on the source itself: no import circle (type
checking imports count), no import the layer table of docs/architecture.md does not allow, sinks
never reach into capture, and no function longer than 60 lines."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "streamproc"
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """Modules imported anywhere in a module: lazily inside functions too (a circle closed by a lazy
    import is still a circle), and for type checking only too (the type checker follows them)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        imports = _imports(tree, name, path.name == "__init__.py")
        graph[name] = {target for target in imports if target in files and target != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_sees_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle() -> None:
    graph = _graph()
    assert graph.get("streamproc.pipeline.build"), "the graph was read"
    assert _cycles(graph) == []


def test_type_checking_imports_are_counted() -> None:
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from streamproc.x import Y\n")
    assert "streamproc.x" in _imports(tree, "streamproc.a", False)


def _layers() -> dict[str, tuple[int, str, set[str]]]:
    """Folder of streamproc -> (row, layer, the layers it may import), from the layer table of
    docs/architecture.md: those its "imports" column names before any ';' (all the rows above for
    "everything above" and "... and below"), and itself."""
    text = (REPO / "docs" / "architecture.md").read_text()
    table = text.split("| layer | folders and modules | imports |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|") for line in table.splitlines()[2:]]
    names = [cells[1].strip() for cells in rows]
    layers = {}
    for number, cells in enumerate(rows):
        said = cells[3].split(";")[0]
        above = "everything above" in said or "and below" in said
        allowed = (
            set(names[:number]) if above else {n for n in names[:number] if re.search(rf"\b{n}\b", said)}
        )
        for folder in re.findall(r"`(\w+)/`:", cells[2]):
            layers[folder] = (number, names[number], allowed | {names[number]})
    return layers


def test_the_layer_table_names_every_folder_once() -> None:
    layers = _layers()
    folders = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    assert set(layers) == folders
    assert layers["capture"][2] == {"core", "media", "capture"}, "the table was read"


def test_each_layer_imports_only_what_the_table_allows() -> None:
    layers = _layers()
    refused = []
    for module, targets in _graph().items():
        here = layers.get(module.split(".")[1]) if module.count(".") else None
        for target in targets:
            there = layers.get(target.split(".")[1]) if target.count(".") else None
            if here and there and there[1] not in here[2]:
                refused.append(f"{module} ({here[1]}) imports {target} ({there[1]})")
    assert refused == []


def test_sinks_do_not_import_capture() -> None:
    graph = _graph()
    leaks = {
        module: sorted(t for t in targets if t.startswith("streamproc.capture"))
        for module, targets in graph.items()
        if module.startswith("streamproc.sinks")
    }
    assert {module: targets for module, targets in leaks.items() if targets} == {}


def test_no_function_is_longer_than_sixty_lines() -> None:
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({length} lines)")
    assert long == []
