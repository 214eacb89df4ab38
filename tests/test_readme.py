"""The user documentation against the code it describes: every `streamproc` command line in README.md
and docs/ uses flags its command has, every run/serve flag is documented, every YAML config snippet
is valid against the settings' JSON Schema, every STREAMPROC_* variable names a setting, and every
relative link and #anchor leads somewhere."""

from __future__ import annotations

import argparse
import re
import shlex
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from conftest import REPO

from streamproc.cli.commands import build_parser
from streamproc.config.settings import Settings
from streamproc.inference.tfjs.sidecar import Sidecar

README = REPO / "README.md"
DOCS = [
    README,
    *sorted((REPO / "docs").glob("*.md")),
    REPO / "models" / "README.md",
    REPO / "samples" / "README.md",
]
# variables streamproc reads itself, not settings
NOT_SETTINGS = {"STREAMPROC_CONFIG", "STREAMPROC_CACHE_DIR", "STREAMPROC_SHARED_DIR"}
BLOCK = re.compile(r"^ *```(\w*)\n(.*?)^ *```", re.DOTALL | re.MULTILINE)  # also inside list items
SHELL = {"bash", "sh", "shell", "console", ""}
ENDS_COMMAND = {"|", "||", "&&", ";", ">", ">>", "2>", "2>&1", "&"}


def _text(doc: Path) -> str:
    return doc.read_text(encoding="utf-8")


def _blocks(doc: Path, languages: set[str]) -> list[str]:
    return [textwrap.dedent(body) for language, body in BLOCK.findall(_text(doc)) if language in languages]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _command_lines(doc: Path) -> list[str]:
    """`streamproc ...` in shell blocks (one per line) and in inline code spans of the prose."""
    lines = [line for body in _blocks(doc, SHELL) for line in body.splitlines()]
    prose = BLOCK.sub("", _text(doc))
    lines += re.findall(r"`((?:[A-Z_]+=\S+ )*streamproc [^`]+)`", prose)
    return [line for line in lines if re.search(r"(^|[\s/])streamproc\s", line)]


def _words(line: str) -> list[str]:
    """The words of the first streamproc command on the line, up to a pipe, redirection or `;`."""
    try:
        words = shlex.split(line.replace("$(", "( "), comments=True)
    except ValueError:  # an example cut short in prose, e.g. an unclosed quote
        words = line.split()
    starts = [i for i, word in enumerate(words) if word.endswith("streamproc")]
    command: list[str] = []
    for word in words[starts[0] + 1 if starts else len(words) :]:  # none: the name was in a comment
        if word in ENDS_COMMAND or word.startswith((">", "2>")):
            break
        command.append(word)
    return command


def _unknown_flags(words: list[str], parser: argparse.ArgumentParser) -> list[str]:
    unknown = []
    for word in words:
        commands = _subparsers(parser)
        if word in commands:
            parser = commands[word]
        elif word.startswith("-") and word != "-":
            flag = word.split("=", 1)[0]
            if flag not in parser._option_string_actions:
                unknown.append(flag)
    return unknown


def test_the_command_line_finder_sees_a_wrong_flag() -> None:
    parser = build_parser()
    words = _words("STREAMPROC_X=1 streamproc run a.mp4 --events - --nope 3 | jq .faces")
    assert words == ["run", "a.mp4", "--events", "-", "--nope", "3"]
    assert _unknown_flags(words, parser) == ["--nope"]
    assert _unknown_flags(_words("streamproc config schema --format markdown > x.md"), parser) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: str(doc.relative_to(REPO)))
def test_every_documented_command_uses_flags_that_exist(doc: Path) -> None:
    parser = build_parser()
    wrong = {line: flags for line in _command_lines(doc) if (flags := _unknown_flags(_words(line), parser))}
    assert wrong == {}, f"{doc.name} shows flags its command does not have"


@pytest.mark.parametrize("command", ["run", "serve"])
def test_every_flag_of_run_and_serve_is_in_the_readme(command: str) -> None:
    parser = _subparsers(build_parser())[command]
    text = _text(README)
    undocumented = [
        action.option_strings
        for action in parser._actions
        if action.option_strings and action.dest != "help"
        if not any(re.search(rf"{re.escape(flag)}(?![\w-])", text) for flag in action.option_strings)
    ]
    assert undocumented == []


def _config_snippets() -> list[tuple[str, Any]]:
    """YAML blocks whose top-level keys are settings (a compose file is not); a block that is not
    YAML at all is kept as its error, for the test to report."""
    snippets: list[tuple[str, Any]] = []
    for doc in DOCS:
        for i, body in enumerate(_blocks(doc, {"yaml", "yml"})):
            where = f"{doc.relative_to(REPO)}#{i + 1}"
            try:
                data = yaml.safe_load(body)
            except yaml.YAMLError as exc:
                snippets.append((where, exc))
                continue
            if isinstance(data, dict) and set(data) & set(Settings.model_fields):
                snippets.append((where, data))
    return snippets


SNIPPETS = _config_snippets()


def test_the_docs_show_config_snippets() -> None:
    assert len(SNIPPETS) >= 2, "the config snippets were not found"


@pytest.mark.parametrize(("where", "data"), SNIPPETS, ids=[where for where, _ in SNIPPETS])
def test_every_config_snippet_is_valid(where: str, data: Any) -> None:
    assert not isinstance(data, yaml.YAMLError), f"{where} is not YAML: {data}"
    # the schema checks keys, types, ranges and choices; files the snippet names need not exist here
    jsonschema.validate(data, Settings.model_json_schema())


def test_the_schema_check_sees_a_misspelt_key() -> None:
    with pytest.raises(jsonschema.ValidationError, match="retry_forevr"):
        jsonschema.validate({"live": {"retry_forevr": True}}, Settings.model_json_schema())


def test_the_tfjs_sidecar_example_is_valid_and_is_the_shipped_one() -> None:
    (example,) = _blocks(README, {"toml"})
    Sidecar.model_validate(tomllib.loads(example))
    shipped = tomllib.loads((REPO / "models" / "tfjs" / "emotion.streamproc.toml").read_text())
    assert tomllib.loads(example) == shipped, "the README shows models/tfjs/emotion.streamproc.toml"


def _setting_exists(schema: dict[str, Any], node: dict[str, Any], path: list[str]) -> bool:
    if not path:
        return True
    if "$ref" in node:
        return _setting_exists(schema, schema["$defs"][node["$ref"].rsplit("/", 1)[1]], path)
    options = node.get("anyOf", []) + node.get("oneOf", [])
    if options:
        return any(_setting_exists(schema, option, path) for option in options)
    child = node.get("properties", {}).get(path[0])
    return child is not None and _setting_exists(schema, child, path[1:])


def test_every_documented_variable_names_a_setting() -> None:
    schema = Settings.model_json_schema()
    names = {name for doc in DOCS for name in re.findall(r"STREAMPROC_[A-Z0-9_]*[A-Z0-9]", _text(doc))}
    assert "STREAMPROC_MQTT__PASSWORD" in names
    wrong = [
        name
        for name in sorted(names - NOT_SETTINGS)
        if not _setting_exists(schema, schema, name.removeprefix("STREAMPROC_").lower().split("__"))
    ]
    assert wrong == []


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: str(doc.relative_to(REPO)))
def test_every_relative_link_leads_somewhere(doc: Path) -> None:
    text = BLOCK.sub("", _text(doc))
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (doc.parent / path).resolve() if path else doc
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", BLOCK.sub("", _text(linked)), re.MULTILINE)
            if anchor not in {_anchor(heading) for heading in headings}:
                broken.append(target)
    assert broken == []


def test_architecture_names_every_module_and_package() -> None:
    text = _text(REPO / "docs" / "architecture.md")
    package = REPO / "streamproc"
    folders = [path for path in package.iterdir() if (path / "__init__.py").exists()]
    parts = [f"{path.name}/" for path in folders]
    parts += [f"{path.stem}.py" for path in package.glob("*.py") if not path.stem.startswith("__")]
    parts += [f"{path.stem}.py" for folder in folders for path in folder.glob("[!_]*.py")]
    assert len(parts) > 30
    assert [part for part in parts if f"`{part}" not in text] == []


def test_every_path_named_in_the_docs_exists() -> None:
    """Files of the repository the docs name in code spans (`tests/rtsp_server.py`, `benchmarks/...`)."""
    pattern = r"`(\.?(?:tests|benchmarks|scripts|streamproc|docs|config|samples|models|\.ci)/[^`\s]*)`"
    named = {path for doc in DOCS for path in re.findall(pattern, _text(doc))}
    assert len(named) > 20
    assert sorted(path for path in named if not any(REPO.glob(path.rstrip("/")))) == []
