"""What the `langbatch` command shows a person: help that keeps examples whole, progress lines, error codes,
answers, estimates — and never Python's None, nan or a class name."""

from __future__ import annotations

import inspect

import click
import pytest
from click.testing import CliRunner

from langbatch_core.cli import cli


def every_command(group: click.Group = cli, path: tuple[str, ...] = ()):
    yield path, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from every_command(command, (*path, name))
        else:
            yield (*path, name), command


COMMANDS = list(every_command())


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "langbatch" for p, _ in COMMANDS])
def test_help_examples_stay_whole_at_80_columns(path, command):
    result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=80, catch_exceptions=False)
    shown = [line.strip() for line in result.output.splitlines()]
    examples = [
        line.strip()
        for line in inspect.cleandoc(command.help or "").splitlines()
        if line.strip().startswith("langbatch ")
    ]
    assert examples, f"`langbatch {' '.join(path)}` has no example command in its help"
    for example in examples:
        assert example in shown, f"{example!r} is wrapped or reflowed in:\n{result.output}"
