"""`stac-mmtp load-pgstac`: a release into PostgreSQL/pgstac for stac-fastapi-pgstac."""

from __future__ import annotations

import sys

import click
from rich.markup import escape

from stac_mmtp import console
from stac_mmtp.commands.common import json_option
from stac_mmtp.errors import MmtpError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.command("load-pgstac", context_settings=CONTEXT)
@click.argument("release")
@click.option("--dsn", envvar="PGSTAC_DSN", required=True,
              help="PostgreSQL connection string, e.g. postgresql://user@host:5432/db [env PGSTAC_DSN].")
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="Run pgstac's migrations first.")
@json_option
def load_pgstac_command(release: str, dsn: str, migrate: bool) -> None:
    """Load RELEASE (a built tree, or a published version's root URL) into pgstac: every collection and
    item, upserted, with hrefs made absolute against RELEASE (serve it with stac-fastapi-pgstac).

    Exit codes: 0 loaded, 1 the database refused (named, password redacted), 2 bad input."""
    from stac_mmtp.access.pgstac import load_pgstac

    try:
        with console.progress_bar() as progress:
            report = load_pgstac(release, dsn, migrate=migrate, progress=progress)
    except MmtpError as exc:
        console.error(escape(str(exc)))
        sys.exit(exc.exit_code)
    console.table(f"loaded into {report.dsn}", ["collection", "items"], [[c, n] for c, n in report.items.items()],
                  key="collections")
