"""`stac-mmtp serve`: a STAC API (item search, CQL2 filter) over a release's stac-geoparquet files.

Built on stac-fastapi-geoparquet (stac-fastapi + rustac's DuckDB client): no database to run.
At start the parquet files of the tree (or published release) are copied once to a working
directory with their hrefs made absolute, so that the items the API returns point at the real
assets wherever the release lives.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

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
