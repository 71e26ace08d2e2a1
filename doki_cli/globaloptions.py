"""The global options on every command, before or after its name: `doki status --json` is `doki --json status`.

The root callback (`doki_cli.main.main`) declares them, each with its environment variable, and makes the call's one
`App` from them. Every command and group below the root takes copies of those same options (so each is declared once,
and reads the same everywhere), which are not arguments of the command's function: each value given on the command
line is merged into the `App` as it is parsed, before the command runs. The rule, the same at every depth:

- a value given on the command line wins over the option's environment variable, wherever it is given;
- `--json` given anywhere turns JSON on; `-v` counts wherever it is given (`doki -v status -v` is `-vv`);
- `--config`, `--env`, `--project` and `--region` given twice must say the same: two different values are refused
  (`bad_option`), never one silently preferred.

Commands and groups get this by being made with `DokiTyper`, whose commands are `DokiCommand`s and whose groups
`DokiGroupBase`s; their help lists the global options in a section of their own. Only typer is imported here:
`doki --help` stays instant.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import typer
from typer._click.core import Context, Parameter, ParameterSource
from typer._click.formatting import HelpFormatter
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandFunctionType

# The root callback's parameters that are global options, by name (the name each has in `GlobalOptions`).
NAMES = ("config", "env", "project", "region", "json", "verbose")
SECTION = "Global options (before or after the command name)"


def _merge(ctx: Context, param: Parameter, value: Any) -> Any:
    """A global option given after a command name, merged into the call's options as it is parsed."""
    from doki_cli.context import app_of

    assert param.name is not None
    # Only what the command line says: the environment variable was read once, at the root.
    if not ctx.resilient_parsing and ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE:
        app_of(ctx).give(param.name, value, where=ctx.command_path)
    return value


def _below_the_root(param: Parameter) -> Parameter:
    """A copy of the root's `param` for a command below it: merged into the `App`, not passed to the function."""
    below = copy.copy(param)
    below.expose_value = False
    below.callback = _merge
    # --json before the others, in the order click processes options: an error in another one (a --project given
    # twice) is then reported as JSON too.
    below.is_eager = param.name == "json"
    return below


def _with_globals(command: DokiCommand | DokiGroupBase, ctx: Context, params: list[Parameter]) -> list[Parameter]:
    """`params` and, below the root, copies of the root's global options, made once per command: click orders the
    options it processes by identity, so each call must return the same objects."""
    if command.global_options is None:
        root = ctx.find_root().command
        command.global_options = [] if root is command else [_below_the_root(p) for p in root.params if p.name in NAMES]
    return [*params, *command.global_options]


def format_options(command: TyperCommand | TyperGroup, ctx: Context, formatter: HelpFormatter) -> None:
    """Help as typer writes it (arguments, then options), with the global options in a section of their own."""
    sections: dict[str, list[tuple[str, str]]] = {"Arguments": [], "Options": [], SECTION: []}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        if param.param_type_name == "argument":
            sections["Arguments"].append(record)
        else:
            sections[SECTION if param.name in NAMES else "Options"].append(record)
    for title, records in sections.items():
        if records:
            with formatter.section(title):
                formatter.write_dl(records)


class DokiCommand(TyperCommand):
    """A command that takes the global options after its name too."""

    global_options: list[Parameter] | None = None  # made on first use, from the root's

    def get_params(self, ctx: Context) -> list[Parameter]:
        return _with_globals(self, ctx, super().get_params(ctx))

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        format_options(self, ctx, formatter)


class DokiGroupBase(TyperGroup):
    """A group of commands (`doki cors`, and the root itself) that takes the global options after its name too.

    Its help lists the commands in `sections` (title, command names), in that order, and any other under "Commands".
    typer's own panels (`rich_help_panel`) need rich, which `doki --help` does not import: it stays fast."""

    global_options: list[Parameter] | None = None  # made on first use, from the root's (none for the root)
    sections: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def get_params(self, ctx: Context) -> list[Parameter]:
        return _with_globals(self, ctx, super().get_params(ctx))

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        format_options(self, ctx, formatter)
        self.format_commands(ctx, formatter)

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        commands = {}
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                commands[name] = command
        if not commands:
            return
        width = max(map(len, commands))
        # As typer shortens them: the help's width less the longest name and three spaces either side.
        limit = formatter.width - 6 - width
        listed = {name for _, names in self.sections for name in names}
        sections = [*self.sections, ("Commands", tuple(name for name in commands if name not in listed))]
        for title, names in sections:
            # Every section's names padded to the longest of all, so the descriptions line up across sections.
            rows = [(name.ljust(width), commands[name].get_short_help_str(limit)) for name in names if name in commands]
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class DokiTyper(typer.Typer):
    """A typer app whose groups are `DokiGroupBase`s and whose commands are `DokiCommand`s, unless told otherwise."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", DokiGroupBase)
        super().__init__(**kwargs)

    def command(self, name: str | None = None, **kwargs: Any) -> Callable[[CommandFunctionType], CommandFunctionType]:
        kwargs.setdefault("cls", DokiCommand)
        return super().command(name, **kwargs)
