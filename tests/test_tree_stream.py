"""The streamed tree writer (issue 16): the same tree as the whole-list writer, items.parquet in row groups.

The expectations come from outside the writer: the item JSON is `json.dumps(indent=2)` of the item the test
assembles itself, pystac reads the tree back, and the parquet rows are those of one `rustac.write_sync` of
all the items at once (what the writer did before it streamed).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from stac_mmtp.errors import MmtpError
from stac_mmtp.stac.geoparquet import parquet_ready
from stac_mmtp.stac.tree import CollectionBundle, dumps_bytes, write_tree

CATALOG = {"type": "Catalog", "stac_version": "1.1.0", "id": "stream", "title": "Streamed tree",
           "description": "synthetic items of the streamed-writer test", "links": []}
COLLECTION = {"type": "Collection", "stac_version": "1.1.0", "id": "things", "title": "Synthetic things",
              "description": "synthetic", "license": "CC-BY-4.0",
              "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
              "links": [{"rel": "license", "href": "https://spdx.org/licenses/CC-BY-4.0.html", "type": "text/html"}]}


def item(i: int) -> dict:
    """Synthetic item i; some properties and asset fields appear in a few items only, late ones too, so
    the row groups' schemas differ and must be unified."""
    lon, lat = -20 + i * 0.37, 40 - i * 0.11
    props: dict = {"datetime": f"2021-03-{1 + i % 28:02d}T10:00:{i % 60:02d}Z", "mmtp:synthetic": True,
                   "mmtp:event_id": f"ev-{i % 4}", "eo:cloud_cover": round(i * 1.7 % 100, 2)}
    if i % 3 == 0:
        props["title"] = f"Synthetic thing n°{i} – ünïcode"
    if i > 50:
        props["late:only"] = i  # a column the first row groups never see
    if i == 7:
        props["tiny"] = 1e-05  # orjson writes 0.00001 where json writes 1e-05: json's path
    assets = {"data": {"href": "./data.tif", "type": "image/tiff", "roles": ["data"],
                       "bands": [{"name": "b1", "nodata": "nan" if i % 5 == 0 else 0}]}}
    if i % 4 == 0:
        assets["thumbnail"] = {"href": "./thumb.png", "type": "image/png", "roles": ["thumbnail"],
                               **({"title": "late thumb"} if i > 40 else {})}
    return {"type": "Feature", "stac_version": "1.1.0", "stac_extensions": [], "id": f"thing-{i:03d}",
            "geometry": {"type": "Point", "coordinates": [lon, lat]} if i % 6 else
            {"type": "Polygon", "coordinates": [[[lon, lat], [lon + 1, lat], [lon + 1, lat + 1], [lon, lat]]]},
            "bbox": [lon, lat, lon + (0 if i % 6 else 1), lat + (0 if i % 6 else 1)],
            "properties": props,
            "links": [{"rel": "via", "href": f"https://example.org/thing/{i}", "type": "text/html"},
                      {"rel": "self", "href": "/abs/ignored.json"}],
            "assets": assets}


N = 61


def expected_item(i: int) -> dict:
    it = item(i)
    it["collection"] = "things"
    it["links"] = [
        {"rel": "root", "href": "../../catalog.json", "type": "application/json", "title": "Streamed tree"},
        {"rel": "parent", "href": "../collection.json", "type": "application/json", "title": "Synthetic things"},
        {"rel": "collection", "href": "../collection.json", "type": "application/json", "title": "Synthetic things"},
        {"rel": "via", "href": f"https://example.org/thing/{i}", "type": "text/html"},
    ]
    return it


def test_streamed_tree_is_the_expected_tree(tmp_path: Path) -> None:
    import pystac
    import rustac

    shuffled = [item(i) for i in (list(range(0, N, 2)) + list(range(1, N, 2)))]
    listed, streamed = tmp_path / "listed", tmp_path / "streamed"
    write_tree(listed, CATALOG, [CollectionBundle(COLLECTION, shuffled)], geoparquet=True, rows_per_group=7)
    done = write_tree(streamed, CATALOG, [CollectionBundle(COLLECTION, (item(i) for i in range(N)))],
                      geoparquet=True, rows_per_group=7)
    assert done.items == {"things": N}
    files = sorted(p.relative_to(listed) for p in listed.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(streamed) for p in streamed.rglob("*") if p.is_file())
    assert not [f for f in files if ".part" in f.name]  # no spill left behind
    for f in files:
        assert (listed / f).read_bytes() == (streamed / f).read_bytes(), f
    for i in range(N):
        it = expected_item(i)
        path = streamed / "things" / it["id"] / f"{it['id']}.json"
        assert path.read_bytes() == (json.dumps(it, indent=2, ensure_ascii=False) + "\n").encode()
    raw = (streamed / "things" / "collection.json").read_bytes()
    coll = json.loads(raw)
    assert raw == (json.dumps(coll, indent=2, ensure_ascii=False) + "\n").encode()
    assert [lk for lk in coll["links"] if lk["rel"] == "item"] == [
        {"rel": "item", "href": f"./thing-{i:03d}/thing-{i:03d}.json", "type": "application/geo+json",
         **({"title": f"Synthetic thing n°{i} – ünïcode"} if i % 3 == 0 else {})} for i in range(N)]
    assert coll["assets"]["geoparquet-items"]["title"] == f"All {N} items of this collection as stac-geoparquet"

    cat = pystac.Catalog.from_file(str(streamed / "catalog.json"))
    got = sorted(cat.get_items(recursive=True), key=lambda x: x.id)
    assert [x.id for x in got] == [f"thing-{i:03d}" for i in range(N)]
    assert got[3].properties["title"] == "Synthetic thing n°3 – ünïcode"
    assert got[3].get_collection().id == "things"
    assert got[7].properties["tiny"] == 1e-05

    ref = tmp_path / "reference.parquet"
    rustac.write_sync(str(ref), [parquet_ready(expected_item(i)) for i in range(N)])
    ours = pq.ParquetFile(streamed / "things" / "items.parquet")
    assert ours.metadata.num_rows == N
    assert ours.metadata.num_row_groups == math.ceil(N / 7)
    assert ours.schema_arrow.names == pq.ParquetFile(ref).schema_arrow.names
    assert ours.read().to_pylist() == pq.read_table(ref).to_pylist()
    geo, ref_geo = (json.loads(pq.read_metadata(p).metadata[b"geo"])["columns"]["geometry"]
                    for p in (streamed / "things" / "items.parquet", ref))
    assert geo["bbox"] == ref_geo["bbox"]
    assert set(geo["geometry_types"]) == set(ref_geo["geometry_types"]) == {"Point", "Polygon"}
    late = ours.read_row_group(0).column("late:only").to_pylist()
    assert late == [None] * 7  # the first group has the column, as nulls: one schema for every group

    from stac_mmtp.stac.geoparquet import duckdb_client

    found = duckdb_client().search(str(streamed / "things" / "items.parquet"), ids=["thing-055", "thing-002"])
    assert sorted(x["id"] for x in found) == ["thing-002", "thing-055"]


def test_a_collection_of_one_row_group_is_what_rustac_writes(tmp_path: Path) -> None:
    import rustac

    # Points only: with several geometry types rustac lists them in the geo metadata in no fixed order
    points = [i for i in range(14) if i % 6]
    write_tree(tmp_path / "t", CATALOG, [CollectionBundle(COLLECTION, [item(i) for i in points])], geoparquet=True)
    ref = tmp_path / "reference.parquet"
    rustac.write_sync(str(ref), [parquet_ready(expected_item(i)) for i in points])
    assert (tmp_path / "t" / "things" / "items.parquet").read_bytes() == ref.read_bytes()


def test_a_stream_out_of_id_order_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MmtpError, match="ascending id order: 'thing-001' after 'thing-002'"):
        write_tree(tmp_path / "t", CATALOG, [CollectionBundle(COLLECTION, iter([item(2), item(1)]))])


@pytest.mark.parametrize("value", [
    {"a": 1e-05, "b": [1.5e-07, 0.0001, 1e16, 1e22, -0.0, 5e-324]}, {"n": float("nan"), "i": float("inf")},
    {"big": 2**70, "neg": -(2**63) - 1}, {1: "int key"}, {"s": "tab\t nul\x00 del\x7f \u2028 é ☃ \"q\" \\"},
    {"e": "1e-5 in a string", "z": "0.00001"}, {"empty": [], "obj": {}, "null": None, "t": True}, [1, [2, [3]]],
])
def test_dumps_bytes_is_json_dumps(value: object) -> None:
    assert dumps_bytes(value) == (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()


def test_item_stats_reduce_a_stream_to_what_the_lists_give() -> None:
    """Collection metadata from ItemStats (one pass, no item kept) equals the list functions' on the same
    items: extent, summaries (ranges, distinct values, flattened lists, mixed types), item_assets, the
    synthetic marking; and the hand-computed values."""
    from stac_mmtp.stac.synthetic import mark_collection
    from stac_mmtp.stac.tree import ItemStats, distinct, item_assets, set_extent, summarise

    items = [item(i) for i in range(N)]
    for i, it in enumerate(items):
        it["properties"]["sar:polarizations"] = ["VV", "VH"] if i % 2 else ["VV"]
        it["properties"]["mixed"] = i if i % 10 else f"s{i}"
        if i == 5:
            it["properties"].update(start_datetime="2020-12-31T00:00:00Z", end_datetime="2021-12-31T00:00:00Z")
    items[9]["properties"]["mmtp:synthetic"] = False
    stats = ItemStats(iter(items))
    fields = ["eo:cloud_cover", "mmtp:event_id", "sar:polarizations", "mixed", "late:only", "absent"]
    assert stats.summarise(fields) == summarise(items, fields)
    assert summarise(stats, fields)["late:only"] == {"minimum": 51, "maximum": 60}
    assert summarise(stats, fields)["sar:polarizations"] == ["VH", "VV"]
    assert distinct(stats, "mmtp:event_id") == distinct(items, "mmtp:event_id") == {"ev-0", "ev-1", "ev-2", "ev-3"}
    keep = ("title",)
    assert item_assets(stats, keep, ("nodata",)) == item_assets(items, keep, ("nodata",))
    assert item_assets(stats, keep)["thumbnail"] == {"type": "image/png", "roles": ["thumbnail"]}  # first seen
    a, b = {}, {}
    set_extent(a, stats)
    set_extent(b, items)
    assert a == b
    assert a["extent"]["temporal"]["interval"] == [["2020-12-31T00:00:00Z", "2021-12-31T00:00:00Z"]]
    assert a["extent"]["spatial"]["bbox"] == [[-20.0, 33.4, 3.2, 41.0]]
    ca, cb = dict(COLLECTION), dict(COLLECTION)
    mark_collection(ca, stats, None)
    mark_collection(cb, items, None)
    assert ca == cb and ca["description"].startswith(f"Synthetic sample items included: {N - 1} of the {N} items")
    small = ItemStats(items, cap=3)
    with pytest.raises(MmtpError, match="more than 3 distinct values"):
        small.summarise(["mixed"])
    assert small.summarise(["eo:cloud_cover"]) == summarise(items, ["eo:cloud_cover"])  # a range needs no set


def test_parquet_chunks_and_row_groups_are_bounded_by_bytes_too(tmp_path: Path) -> None:
    """Items of very different sizes (an event item links every acquisition of its event): a spill ends when
    its items' JSON reaches `chunk_bytes` and a row group when its arrow tables reach `group_bytes`, whatever
    the counts; the rows are those of one rustac write of all the items."""
    import rustac

    from stac_mmtp.stac.geoparquet import ParquetStream

    def big(i: int) -> dict:
        it = expected_item(i)
        it["links"] += [{"rel": "related", "href": f"../../s2/acq-{i}-{k:05d}/acq-{i}-{k:05d}.json",
                         "type": "application/geo+json", "title": f"acquisition {k} of thing {i}"} for k in range(2000)]
        return it

    items = [big(i) if i % 5 == 0 else expected_item(i) for i in range(40)]
    blobs = [dumps_bytes(it) for it in items]
    assert all(len(b) > 200_000 for b in blobs[::5]) and max(len(b) for b in blobs[1::5]) < 2_000
    (tmp_path / "c").mkdir()
    stream = ParquetStream(tmp_path / "c", rows_per_group=1000, chunk=1000, chunk_bytes=400_000, group_bytes=600_000)
    spilled: list[int] = []
    for b in blobs:
        stream.add(b)
        spilled.append(len(stream.spills))
    # a spill each time two big items (2 x ~250 kB) are in the batch: after items 5, 15, 25, 35, never 1000 items
    assert [i for i in range(1, 40) if spilled[i] > spilled[i - 1]] == [5, 15, 25, 35] and spilled[0] == 0
    path = stream.close()
    ref = tmp_path / "reference.parquet"
    rustac.write_sync(str(ref), [parquet_ready(it) for it in items])
    ours = pq.ParquetFile(path)
    assert ours.metadata.num_rows == 40 and ours.metadata.num_row_groups > 1
    assert max(ours.metadata.row_group(g).num_rows for g in range(ours.metadata.num_row_groups)) < 40
    assert ours.read().to_pylist() == pq.read_table(ref).to_pylist()
    stream.discard()  # what write_tree does after close
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["items.parquet"]
