"""The `stac-mmtp` command line: a thin layer that parses options, calls one function, prints, exits.

Exit codes: 0 success; 1 some work failed (a product, a validation error, an upload);
2 invalid input or usage (nothing was written).
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from stac_mmtp import __version__, console
from stac_mmtp.commands.common import CONTEXT, fail

__all__ = ["LAZY_COMMANDS", "LazyGroup", "fail", "main"]

# Commands that live in their own modules, as name -> "module:attribute". They are imported only when
# used: importing them all up front pulled in shapely/numpy and cost ~0.1 s on every invocation.
LAZY_COMMANDS = {
    "events": "stac_mmtp.commands.events:events_command",
    "build": "stac_mmtp.commands.build:build_command",
    "validate": "stac_mmtp.commands.validate:validate_command",
    "inspect": "stac_mmtp.commands.inspect:inspect_command",
    "sample": "stac_mmtp.commands.sample:sample_command",
    "publish": "stac_mmtp.commands.publish:publish_command",
    "annotations": "stac_mmtp.commands.annotations:annotations_command",
    "splits": "stac_mmtp.commands.splits:splits_command",
    "preview": "stac_mmtp.commands.preview:preview_command",
    "serve": "stac_mmtp.commands.serve:serve_command",
    "search": "stac_mmtp.commands.search:search_command",
    "release": "stac_mmtp.commands.release:release_command",
    "verify": "stac_mmtp.commands.release:verify_command",
    "load-pgstac": "stac_mmtp.commands.pgstac:load_pgstac_command",
    "discover": "stac_mmtp.commands.discover:discover_command",
    "overview": "stac_mmtp.commands.overview:overview_command",
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when the command is looked up.

    click's "lazy loading of subcommands" pattern: `list_commands` names the lazy commands without
    importing anything, `get_command` imports one module on demand. A module that is not there
    (left out of a trimmed install) is left out of the listing, as the eager registration did;
    any other import error is a real bug and propagates.
    """

    def __init__(self, *args: Any, lazy_subcommands: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = dict(lazy_subcommands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_subcommands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_subcommands:
            cmd = self._load(cmd_name)
            if cmd is None:
                return None
            self.add_command(cmd, cmd_name)  # later look-ups are plain dictionary hits
        return super().get_command(ctx, cmd_name)

    def _load(self, cmd_name: str) -> click.Command | None:
        mod, _, attr = self.lazy_subcommands[cmd_name].partition(":")
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name == mod:
                del self.lazy_subcommands[cmd_name]  # absent: drop it from the listing too
                return None
            raise
        cmd = getattr(module, attr)
        if not isinstance(cmd, click.Command):
            raise TypeError(f"{mod}:{attr} is not a click command")
        return cmd


@click.group(cls=LazyGroup, lazy_subcommands=LAZY_COMMANDS, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="stac-mmtp")
@click.option("-v", "--verbose", count=True, help="More detail (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors: no progress bar, no tables.")
def main(verbose: int, quiet: bool) -> None:
    """Build, validate and publish the stac-mmtp natural-hazard dataset (COGs + STAC 1.1).

    \b
    Typical run:
      stac-mmtp sample build/samples          # small format-faithful products
      stac-mmtp build --products build/samples
      stac-mmtp validate build/catalog

    Exit codes: 0 success, 1 some work failed, 2 invalid input or usage.
    """
    console.setup(verbose, quiet)


if __name__ == "__main__":  # pragma: no cover
    main()
