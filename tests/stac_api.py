"""A real STAC API on 127.0.0.1 over given items: stac-fastapi-geoparquet (rustac/DuckDB), in a thread,
or stac-fastapi-pgstac on PostgreSQL + PostGIS (pgstac_server.py), the implementation the big providers run.

The geoparquet one is the server `stac-mmtp serve` runs, started here over plain item dicts (one
stac-geoparquet file per collection); `any_stac_api(kind, ...)` starts either over the same items, so
discovery tests search two real implementations of STAC API item search.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str) -> None:
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def collection_doc(cid: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    xs = [it["bbox"] for it in items]
    times = sorted(it["properties"]["datetime"] for it in items)
    return {
        "type": "Collection", "stac_version": "1.1.0", "id": cid, "description": f"test copy of {cid}",
        "license": "other", "links": [],
        "extent": {"spatial": {"bbox": [[min(b[0] for b in xs), min(b[1] for b in xs),
                                         max(b[2] for b in xs), max(b[3] for b in xs)]]},
                   "temporal": {"interval": [[times[0], times[-1]]]}},
    }


@contextmanager
def stac_api(collections: dict[str, list[dict[str, Any]]], workdir: Path, port: int | None = None) -> Iterator[str]:
    """Serve `collections` ({id: items}) as a STAC API; yields its root URL."""
    import rustac
    import uvicorn
    from stac_fastapi.geoparquet.api import create
    from stac_fastapi.geoparquet.settings import Settings

    from stac_mmtp.stac.geoparquet import PARQUET_MEDIA_TYPE, duckdb_client

    workdir.mkdir(parents=True, exist_ok=True)
    docs = []
    for cid, items in sorted(collections.items()):
        dst = workdir / f"{cid}.parquet"
        rustac.write_sync(str(dst), [dict(it, collection=cid) for it in items])
        coll = collection_doc(cid, items)
        coll["assets"] = {"geoparquet-items": {"href": str(dst), "type": PARQUET_MEDIA_TYPE, "roles": ["stac-items"]}}
        docs.append(coll)
    (workdir / "collections.json").write_text(json.dumps(docs), encoding="utf-8")
    settings = Settings(stac_fastapi_title="test API", stac_fastapi_description="real items on 127.0.0.1",
                        stac_fastapi_landing_id="test-api", stac_fastapi_collections_href=str(workdir / "collections.json"))
    app = create(settings, duckdb_client()).app
    port = port or _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/")
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


SERVERS = ("geoparquet", "pgstac")


@contextmanager
def any_stac_api(kind: str, collections: dict[str, list[dict[str, Any]]], workdir: Path,
                 created: list[dict[str, Any]] = ()) -> Iterator[str]:
    """`stac_api` (kind "geoparquet") or stac-fastapi-pgstac (kind "pgstac", items loaded with pypgstac) over
    `collections`; yields the root URL. pgstac_server.PgstacUnavailable when PostgreSQL or its venv is missing.

    `created` (pgstac only): items with their `collection`, stored with pgstac's own SQL `create_item`, for the
    geometries pypgstac's loader refuses and real APIs still serve (a MultiPolygon with an empty member).
    """
    if kind == "geoparquet":
        if created:
            raise ValueError("stac-fastapi-geoparquet (rustac) cannot store the `created` items")
        with stac_api(collections, workdir) as url:
            yield url
        return
    import subprocess

    from pgstac_server import pg_bin, pgstac_api

    colls = [collection_doc(cid, items) for cid, items in sorted(collections.items())]
    items = [dict(it, collection=cid) for cid, its in sorted(collections.items()) for it in its]
    workdir.mkdir(parents=True, exist_ok=True)
    with pgstac_api(colls, items, log=workdir / "pgstac.log") as api:
        for it in created:
            # psql interpolates :'item' (quoted as a literal) in its input, not in -c
            subprocess.run([pg_bin() / "psql", api.dsn, "-q", "-v", "ON_ERROR_STOP=1", "-v", f"item={json.dumps(it)}"],
                           input="select pgstac.create_item(:'item'::jsonb);\n", text=True, check=True,
                           capture_output=True)
        yield api.url
