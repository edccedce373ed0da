"""`stac-mmtp load-pgstac` into a real PostgreSQL + PostGIS + pgstac on 127.0.0.1, served by
stac-fastapi-pgstac (what Planetary Computer and Earth Search run): pystac-client gets the same ids
as `stac-mmtp search` over the release's stac-geoparquet files."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from pgstac_server import PgstacUnavailable, pgstac_api
from test_release import built_tree  # noqa: F401 - the sample build (events, imagery, labels, splits)
from unavailable import unavailable

from stac_mmtp.commands.main import main
from stac_mmtp.stac.geoparquet import search


def _cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return r.exit_code, r.output


def _item_count(tree: Path, coll: str) -> int:
    doc = json.loads((tree / coll / "collection.json").read_text())
    return sum(1 for lk in doc["links"] if lk["rel"] == "item")


def test_load_pgstac_same_ids_as_search(built_tree: Path) -> None:  # noqa: F811
    from pystac_client import Client

    try:
        server = pgstac_api([], [])
        api = server.__enter__()
    except PgstacUnavailable as exc:
        unavailable(str(exc))
    try:
        code, out = _cli("load-pgstac", str(built_tree), "--dsn", api.dsn)
        assert code == 0, out
        code, out = _cli("load-pgstac", str(built_tree), "--dsn", api.dsn)  # upsert: loading twice changes nothing
        assert code == 0, out
        client = Client.open(api.url)
        api_colls = sorted(c.id for c in client.get_collections())
        assert api_colls == sorted(p.name for p in built_tree.iterdir() if (p / "collection.json").is_file())
        queries = [
            {"collections": ["sentinel-2"]},
            {"collections": ["events"]},
            {"collections": ["sentinel-1", "sentinel-2"], "bbox": [10.9, 59.9, 11.2, 60.2],
             "datetime": "2020-12-30T00:00:00Z/2021-03-31T00:00:00Z"},
            {"collections": ["sentinel-1", "sentinel-2"],
             "filter": {"op": "=", "args": [{"property": "mmtp:temporal_role"}, "first-post-event"]}},
        ]
        for q in queries:
            ours = sorted(it["id"] for it in search(str(built_tree), **q))
            theirs = sorted(it.id for it in client.search(**q, filter_lang="cql2-json" if "filter" in q else None,
                                                           max_items=10_000).items())
            assert theirs == ours and ours, q
        # every item once, whatever was loaded twice
        for coll in ("events", "sentinel-2", "annotations"):
            n = sum(1 for _ in client.search(collections=[coll], max_items=10_000).items())
            assert n == _item_count(built_tree, coll)
        # hrefs point at the release, absolute
        first = next(client.search(collections=["sentinel-2"], max_items=1).items())
        assert all(Path(a.href.removeprefix("file://")).is_file() for a in first.assets.values() if a.href.startswith("file:"))
    finally:
        server.__exit__(None, None, None)


def test_load_pgstac_bad_dsn_is_one_line(built_tree: Path) -> None:  # noqa: F811
    code, out = _cli("load-pgstac", str(built_tree), "--dsn", "postgresql://u:s3cret@127.0.0.1:1/none")
    assert code == 1 and "s3cret" not in out and "127.0.0.1:1" in out
