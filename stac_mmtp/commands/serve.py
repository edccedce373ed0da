"""`stac-mmtp serve`: a STAC API (item search, CQL2 filter) over a release's stac-geoparquet files."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from stac_mmtp import console
from stac_mmtp.access.serve import create_app
from stac_mmtp.errors import EXIT_BAD_INPUT, MmtpError


@click.command("serve", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
def serve_command(source: str, host: str, port: int) -> None:
    """Serve a STAC API over SOURCE, a built catalog directory or a published root URL.

    Item search with bbox, datetime, collections, ids and CQL2 filters on any property
    (e.g. mmtp:phenomenon, mmtp:temporal_role), from the stac-geoparquet file of each collection.
    Try it with pystac-client:

    \b
      from pystac_client import Client
      api = Client.open("http://127.0.0.1:8000")
      api.search(bbox=[10.9, 59.9, 11.2, 60.2], filter="\\"mmtp:phenomenon\\" = 'landslide'").item_collection()
    """
    import uvicorn

    with tempfile.TemporaryDirectory(prefix="stac-mmtp-serve-") as tmp:
        try:
            app = create_app(source, Path(tmp))
        except MmtpError as exc:
            console.error(str(exc))
            raise SystemExit(getattr(exc, "exit_code", EXIT_BAD_INPUT)) from exc
        console.err.print(f"STAC API on http://{host}:{port}/ (Ctrl-C to stop)")
        uvicorn.run(app, host=host, port=port, log_level="warning")
