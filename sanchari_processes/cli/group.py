"""The ``sanchari`` group: built-in commands plus commands other packages plug in.

A package adds a command by declaring an entry point in the ``sanchari.commands`` group
(``name = module:command``); the training tools do, in setup.cfg. Such a command's module is
imported only when the command runs or its own help is asked for: ``sanchari --help`` lists
them by name from the installed metadata, so it imports neither them nor torch, and this
package never imports ``training``.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import click

from sanchari_processes.errors import SanchariError

ENTRY_POINT_GROUP = "sanchari.commands"


def installed_commands(group: str = ENTRY_POINT_GROUP) -> dict[str, EntryPoint]:
    """The commands installed packages declare, by name (the first declaration wins)."""
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=group):
        found.setdefault(point.name, point)
    return found


class SanchariGroup(click.Group):
    """A click group whose plug-in commands are loaded on first use.

    ``plugins`` maps command names to entry points; ``None`` (the default) reads them from the
    installed packages' metadata when first needed. Tests may set it to a table of their own.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plugins: Mapping[str, EntryPoint] | None = None

    def plugin_names(self) -> list[str]:
        """Plug-in commands not shadowed by a built-in one, without importing any."""
        if self.plugins is None:
            self.plugins = installed_commands()
        return sorted(set(self.plugins) - set(self.commands))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.plugin_names()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is not None or cmd_name not in self.plugin_names():
            return command
        assert self.plugins is not None
        point = self.plugins[cmd_name]
        try:
            command = point.load()
        except ImportError as exc:
            raise SanchariError(
                f"`{ctx.command_path} {cmd_name}` cannot be loaded here ({exc}); its package "
                f"({point.value.split(':')[0]}) and its dependencies must be installed"
            ) from None
        if not isinstance(command, click.Command):
            raise SanchariError(f"entry point {point.name} = {point.value} is not a command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Built-in commands with their short help, then the plug-ins by name only (their
        help would mean importing them)."""
        shown = sorted((n, c) for n, c in self.commands.items() if not c.hidden)
        if shown:
            limit = formatter.width - 6 - max(len(name) for name, _ in shown)
            rows = [(name, command.get_short_help_str(limit)) for name, command in shown]
            with formatter.section("Commands"):
                formatter.write_dl(rows)
        names = self.plugin_names()
        if names:
            with formatter.section("Training commands (sanchari COMMAND --help)"):
                formatter.write_text(", ".join(names))
