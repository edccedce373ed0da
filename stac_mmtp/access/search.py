"""Quick queries straight on a release's stac-geoparquet files, no server (`stac-mmtp search`)."""

from __future__ import annotations

import json
from typing import Any


def search_items(source: str, bbox: list[float] | None = None, datetime: str | None = None,
                 collections: list[str] | None = None, ids: list[str] | None = None, cql2: str | None = None,
                 limit: int | None = None) -> list[dict[str, Any]]:
    """Items of SOURCE (a built tree or a published root URL) matching the query; `cql2` is CQL2 text or JSON."""
    from stac_mmtp.stac.geoparquet import search

    flt: dict | str | None = cql2
    if cql2 and cql2.lstrip().startswith("{"):
        flt = json.loads(cql2)
    return search(source, bbox=bbox, datetime=datetime, collections=collections, ids=ids, filter=flt, limit=limit)
