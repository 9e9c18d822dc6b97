"""A command group that imports a subcommand's module only when it is run.

``offload worker`` is started once per worker process, often many at a time; it
should not pay for the dashboard's, the tables' and the progress bars' imports
(rich, the web stack) that only other commands use. ``offload --help`` still
lists every command: listing imports them all, which only help needs.
"""

from __future__ import annotations

import importlib

import click


class LazyGroup(click.Group):
    """``commands`` maps a name to ``"module:attribute"``, imported on use."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, _, attribute = self.lazy[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)
