"""The ``streamproc`` command and its subcommands."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """The console script's entry point. The commands load only when it runs, so a helper of this
    package (``cli.logs``, ``cli.progress``) can be imported without setting the command up."""
    from streamproc.cli.commands import main as run_command

    return run_command(argv)
