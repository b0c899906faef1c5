"""o2ctl dispatches every command the same way: one table from command name to the function running it."""

from __future__ import annotations

import argparse

from o2ctl import cli


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_every_command_of_the_parser_has_its_function_and_no_other() -> None:
    assert _commands(cli._parser()) == set(cli.COMMANDS)
    assert all(callable(fn) for fn in cli.COMMANDS.values())
