"""`stac-mmtp overview BUILD_DIR`: the dataset at a glance (PNG + offline HTML page + JSON numbers)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape

from stac_mmtp import console
from stac_mmtp.errors import EXIT_FAILED, MmtpError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.command("overview", context_settings=CONTEXT)
@click.argument("build_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where to write overview.png/.html/.json [default: BUILD_DIR/overview].")
@click.option("--events", "events_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Inventory directory (for the continents) [default: the package's catalog/events].")
def overview_command(build_dir: Path, out_dir: Path | None, events_dir: Path | None) -> None:
    """Write a world map of the events by phenomenon, a timeline of events and acquisitions, the counts per
    phenomenon x continent x split and the cascade graph, as overview.png and a self-contained overview.html."""
    from stac_mmtp.build.overview import write_overview

    try:
        files = write_overview(build_dir, out_dir, events_dir)
    except MmtpError as exc:
        console.error(escape(str(exc)))
        sys.exit(getattr(exc, "exit_code", EXIT_FAILED))
    for path in files.values():
        click.echo(str(path))
