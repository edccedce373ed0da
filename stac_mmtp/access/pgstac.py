"""`stac-mmtp load-pgstac`: a release (or a build) into PostgreSQL/pgstac, for stac-fastapi-pgstac.

The embedded default API stays `stac-mmtp serve` (stac-geoparquet, no database). For a public,
many-user API, pgstac is what Planetary Computer and Earth Search run. The items come from the
release's own stac-geoparquet index (the same rows `stac-mmtp search` reads), with every href made
absolute against the release's URL, so the API's items point at the published COGs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from stac_mmtp.errors import InputError, MmtpError

_STRUCTURAL = {"root", "parent", "self", "child", "item", "collection"}
Progress = Callable[[str, int, int], None] | None


@dataclass
class PgstacLoad:
    dsn: str
    collections: list[str] = field(default_factory=list)
    items: dict[str, int] = field(default_factory=dict)


def redact_dsn(dsn: str) -> str:
    """postgresql://user:secret@host/db -> postgresql://user@host/db (for messages and logs)."""
    import urllib.parse

    u = urllib.parse.urlsplit(dsn)
    if u.password:
        u = u._replace(netloc=(f"{u.username}@" if u.username else "") + (u.hostname or "") + (f":{u.port}" if u.port else ""))
    return urllib.parse.urlunsplit(u)


def _collections(root: str) -> Iterator[dict[str, Any]]:
    from stac_mmtp.stac.geoparquet import _join, _read_json, collection_parquets

    catalog_href = root if root.endswith(".json") else (root.rstrip("/") + "/catalog.json")
    if "://" not in catalog_href:
        from pathlib import Path

        p = Path(root)
        catalog_href = str(p / "catalog.json") if p.is_dir() else str(p)
    parquets = collection_parquets(root)
    for link in _read_json(catalog_href).get("links", []):
        if link.get("rel") != "child":
            continue
        href = _join(catalog_href, link["href"])
        coll = _read_json(href)
        if coll.get("id") not in parquets:
            continue
        coll["links"] = [{**lk, "href": _join(href, lk["href"])} for lk in coll.get("links", [])
                         if lk.get("rel") not in _STRUCTURAL]
        for asset in coll.get("assets", {}).values():
            asset["href"] = _join(href, asset["href"])
        yield coll


def load_pgstac(root: str, dsn: str, *, migrate: bool = True, progress: Progress = None) -> PgstacLoad:
    """Upsert every collection and item of the release at `root` (a built tree or a published root URL).

    Re-running updates in place (pypgstac's upsert): the same release loaded twice holds each item once."""
    try:
        from pypgstac.db import PgstacDB
        from pypgstac.load import Loader, Methods
        from pypgstac.migrate import Migrate
    except ModuleNotFoundError as exc:
        raise InputError("load-pgstac needs pypgstac: pip install 'stac-mmtp[pgstac]'") from exc
    from stac_mmtp.stac.geoparquet import search

    report = PgstacLoad(redact_dsn(dsn))
    collections = list(_collections(root))
    try:
        with PgstacDB(dsn=dsn) as db:
            if migrate:
                Migrate(db).run_migration()
            loader = Loader(db=db)
            loader.load_collections(iter(collections), Methods.upsert)
            report.collections = [c["id"] for c in collections]
            for i, coll in enumerate(collections):
                items = search(root, collections=[coll["id"]])
                for it in items:
                    it["collection"] = coll["id"]
                    it["links"] = [lk for lk in it.get("links", []) if lk.get("rel") not in _STRUCTURAL]
                # pgstac partitions by collection: one load per collection keeps each transaction small
                loader.load_items(iter(json.loads(json.dumps(items))), Methods.upsert)
                report.items[coll["id"]] = len(items)
                if progress:
                    progress("load", i + 1, len(collections))
    except MmtpError:
        raise
    except Exception as exc:  # psycopg errors: name the database (redacted), no traceback
        raise MmtpError(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
                        report.dsn) from None
    return report
