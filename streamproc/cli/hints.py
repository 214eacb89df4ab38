"""Command-line mistakes answered with the usage of the command that was meant and, where one is
close, the flag that was probably meant (``--output x.jsonl``: did you mean ``--events``?)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import PurePath
from typing import NoReturn

from streamproc.config.suggest import closest

# what an output flag of another tool (-o, --output, --outfile) most likely meant, by the file it names
_OUTPUT_BY_SUFFIX = {
    ".jsonl": "--events",
    ".ndjson": "--events",
    ".json": "--events",
    ".mp4": "--out-video",
    ".mov": "--out-video",
    ".mkv": "--out-video",
}


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """``parser.parse_args``, but an unknown argument is refused by the (sub)command it was given to."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        refuse_unknown(command_parser(parser, args), unknown)
    return args


def command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the innermost command ``args`` chose (that of ``check`` in ``config check``)."""
    for action in parser._actions:  # argparse offers no public way to reach its subparsers
        if isinstance(action, argparse._SubParsersAction):
            chosen = action.choices.get(getattr(args, action.dest, None) or "")
            if chosen is not None:
                return command_parser(chosen, args)
    return parser


def refuse_unknown(parser: argparse.ArgumentParser, unknown: list[str]) -> NoReturn:
    """Exit 2 with ``parser``'s usage and a hint for the first unknown flag that resembles one."""
    options = [name for action in parser._actions for name in action.option_strings]
    hints = (
        _hint(flag, unknown[i + 1] if i + 1 < len(unknown) else None, options)
        for i, flag in enumerate(unknown)
        if flag.startswith("-")
    )
    hint = next((found for found in hints if found), None)
    meant = f"; did you mean {hint}?" if hint else ""
    parser.error(f"unrecognized arguments: {' '.join(unknown)}{meant}")


def _hint(flag: str, following: str | None, options: list[str]) -> str | None:
    name, _, value = flag.partition("=")
    value = value or following or ""
    by_suffix = _OUTPUT_BY_SUFFIX.get(PurePath(value).suffix.lower())
    if name.lstrip("-").startswith("o") and by_suffix in options:
        return by_suffix
    return closest(name, options)
