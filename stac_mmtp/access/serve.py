"""`stac-mmtp serve`: a STAC API (item search, CQL2 filter) over a release's stac-geoparquet files.

Built on stac-fastapi-geoparquet (stac-fastapi + rustac's DuckDB client): no database to run.
At start the parquet files of the tree (or published release) are copied once to a working
directory with their hrefs made absolute, so that the items the API returns point at the real
assets wherever the release lives.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import click

from stac_mmtp import console
from stac_mmtp.errors import EXIT_BAD_INPUT, MmtpError

log = logging.getLogger(__name__)


def prepare(root: str, workdir: Path) -> Path:
    """Write `workdir/collections.json` (what stac-fastapi-geoparquet reads) and absolute-href parquets."""
    import rustac

    from stac_mmtp.stac.geoparquet import (
        PARQUET_MEDIA_TYPE,
        _read_json,
        absolutize,
        collection_parquets,
        local_copy,
    )

    hrefs = collection_parquets(root)
    collections: list[dict[str, Any]] = []
    for cid, href in sorted(hrefs.items()):
        items = rustac.read_sync(local_copy(href, workdir))["features"]
        dst = workdir / f"{cid}.parquet"
        rustac.write_sync(str(dst), [absolutize(it, href) for it in items])
        coll_href = href.rsplit("/", 1)[0] + "/collection.json"
        coll = _read_json(coll_href)
        coll["assets"] = {"geoparquet-items": {"href": str(dst), "type": PARQUET_MEDIA_TYPE, "roles": ["stac-items"]}}
        coll["links"] = []
        collections.append(coll)
        log.info("%s: %d items from %s", cid, len(items), href)
    path = workdir / "collections.json"
    path.write_text(json.dumps(collections), encoding="utf-8")
    return path


def create_app(root: str, workdir: Path) -> Any:
    """The FastAPI app serving `root` (a built tree or a published root URL)."""
    from stac_fastapi.geoparquet.api import create
    from stac_fastapi.geoparquet.settings import Settings

    from stac_mmtp.stac.geoparquet import _read_json, duckdb_client

    collections_json = prepare(root, workdir)
    catalog_href = root if root.endswith(".json") else (root.rstrip("/") + "/catalog.json")
    catalog = _read_json(catalog_href)
    settings = Settings(
        stac_fastapi_title=catalog.get("title", "stac-mmtp"),
        stac_fastapi_description=catalog.get("description", ""),
        stac_fastapi_landing_id=catalog.get("id", "stac-mmtp"),
        stac_fastapi_collections_href=str(collections_json),
    )
    return create(settings, duckdb_client()).app


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
