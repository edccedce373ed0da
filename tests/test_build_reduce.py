"""The build's reduce step streams: its memory does not grow with the items (each is read back from the
spool one at a time), and the tree it writes is the one the list-based reduce writes from the same items.

The items are replicas of two items a real build made of synthetic sample products (each replica keeps
`mmtp:synthetic: true` and its "Synthetic sample" title), under new ids and datetimes.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stac_mmtp.build import build, reduce_tree
from stac_mmtp.build.labels import dataset_hook
from stac_mmtp.build.spool import AcquisitionSpool, ItemSpool, LinkedEvents
from stac_mmtp.dataset.inventory import load_inventory
from stac_mmtp.paths import default_events_dir
from stac_mmtp.sources.registry import get_source
from stac_mmtp.sources.sentinel2.samples import write_product
from stac_mmtp.stac import MMTP
from stac_mmtp.stac.events import (
    acquisition,
    events_bundle,
    link_acquisitions,
    root_catalog_metadata,
    sample_collection_metadata,
)
from stac_mmtp.stac.synthetic import mark_catalog, mark_collection
from stac_mmtp.stac.tree import CollectionBundle, ItemStats, dumps_bytes, set_extent, write_tree

GJERDRUM = "gjerdrum-landslide-2020"
# row groups (and rustac batches) of 100 items: the parquet buffers the same at both sizes of the memory test
ROWS = 100
EVENTS = 20  # the replicas are spread over this many events of the inventory, 2 of each template
STRUCTURAL = ("root", "parent", "collection", "self", "item", "child")


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """(events directory, the two S2 items a real build made of a pre- and a post-event sample product)."""
    root = tmp_path_factory.mktemp("reduce")
    events = root / "events"
    events.mkdir()
    shutil.copy(default_events_dir() / f"{GJERDRUM}.geojson", events)
    ev = load_inventory(events)[0]
    # the replicas' other events: inventory events triggered by none (whose trigger would be missing)
    others = [p for p in sorted(default_events_dir().glob("*.geojson")) if p.stem != GJERDRUM
              and not json.loads(p.read_text())["properties"].get("triggered_by")]
    for path in others[:EVENTS - 1]:
        shutil.copy(path, events)
    products = root / "products"
    write_product(products, ev, datetime(2020, 12, 25, 10, 44, 41, tzinfo=UTC), "L2A", "S2A")
    write_product(products, ev, datetime(2021, 1, 2, 10, 44, 41, tzinfo=UTC), "L2A", "S2B")
    report = build(events, [products], root / "catalog")
    assert report.ok and report.collections["sentinel-2"] == 2, report.failures
    templates = []
    for p in sorted((root / "catalog" / "sentinel-2").glob("*/*.json")):
        it = json.loads(p.read_text())
        it.pop("collection")
        it["links"] = [lk for lk in it["links"] if lk["rel"] not in STRUCTURAL]
        templates.append(it)
    assert {t["properties"]["mmtp:temporal_role"] for t in templates} == {"pre-event", "first-post-event"}
    assert len(load_inventory(events)) == EVENTS
    return events, templates


def replicas(templates: list[dict[str, Any]], n: int, events: list[str]) -> list[dict[str, Any]]:
    """n copies of the templates, spread over `events` (event ids), under new ids, titles and datetimes."""
    out = []
    for k in range(n):
        it = copy.deepcopy(templates[k % len(templates)])
        p = it["properties"]
        ev = events[(k // len(templates)) % len(events)]
        it["id"] = f"{it['id'].replace(p['mmtp:event_id'], ev, 1)}-r{k:06d}"
        p["mmtp:event_id"] = ev
        p["title"] = f"{p['title']} (replica {k})"
        day = 1 + k % 28
        p["datetime"] = f"2021-01-{day:02d}T10:44:{k % 60:02d}.{k % 1000:03d}000Z"
        assert p["mmtp:synthetic"] is True and p["title"].startswith("Synthetic sample")
        out.append(it)
    return out


def streamed(stage: Path, spool_dir: Path, events_dir: Path, items: list[dict[str, Any]]) -> tuple[dict, int]:
    """The build's reduce on spooled items; (items per collection, tracemalloc peak of the reduce alone)."""
    events = load_inventory(events_dir)
    with ItemSpool(spool_dir) as spool:
        for it in random.Random(7).sample(items, len(items)):  # in completion order, not id order
            spool.add("sentinel-2", it)
        hook = dataset_hook(None, events_dir)
        tracemalloc.start()
        try:
            counts = reduce_tree(stage, events, ["sentinel-2"], spool, hook, rows_per_group=ROWS)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return counts, peak


def reference(out: Path, events_dir: Path, items: list[dict[str, Any]]) -> None:
    """The reduce as it was before it streamed: every item in a list, edited in place."""
    events = load_inventory(events_dir)
    items = sorted(copy.deepcopy(items), key=lambda it: it["id"])
    bundles = [events_bundle(events)]
    stats = ItemStats(items)
    source = get_source("sentinel-2")
    coll = source.collection(stats)
    mark_collection(coll, stats, sample_collection_metadata(source.collection_id))
    set_extent(coll, stats)
    bundles.append(CollectionBundle(coll, items))
    bundles += dataset_hook(None, events_dir)(events, bundles, out)
    link_acquisitions(bundles[0], bundles)
    catalog = root_catalog_metadata()
    mark_catalog(catalog, [it for b in bundles for it in b.items], MMTP)
    write_tree(out, catalog, bundles, geoparquet=True, rows_per_group=ROWS)


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_streamed_reduce_writes_the_list_reduce_tree(setting: tuple[Path, list[dict[str, Any]]], tmp_path: Path) -> None:
    import pystac

    events_dir, templates = setting
    ids = sorted(ev.id for ev in load_inventory(events_dir))
    items = replicas(templates, 600, ids)
    counts, _ = streamed(tmp_path / "stage", tmp_path / "spool", events_dir, items)
    assert counts == {"events": EVENTS, "sentinel-2": 600}
    reference(tmp_path / "ref", events_dir, items)
    ours, ref = files(tmp_path / "stage"), files(tmp_path / "ref")
    # the items, the events, catalog.json, 2 collection.json, 2 items.parquet, splits.json, the extension's schema
    assert sorted(ours) == sorted(ref) and len(ours) == 600 + EVENTS + 1 + 2 + 2 + 1 + 1
    assert [k for k in ours if ours[k] != ref[k]] == []
    # what the test put in, read back by pystac: every item, the event linking each of them by role
    cat = pystac.Catalog.from_file(str(tmp_path / "stage" / "catalog.json"))
    s2 = cat.get_child("sentinel-2")
    got = {it.id: it for it in s2.get_items()}
    assert sorted(got) == sorted(it["id"] for it in items)
    for it in items[:: 47]:
        props = got[it["id"]].properties
        assert {k: v for k, v in props.items() if k != "ml-aoi:split"} == it["properties"]
        assert props["ml-aoi:split"] in ("train", "validate", "test")
    event = json.loads((tmp_path / "stage" / "events" / GJERDRUM / f"{GJERDRUM}.json").read_text())
    roles = [lk["rel"] for lk in event["links"] if lk["rel"] in ("pre-event", "first-post-event")]
    mine = [it["properties"]["mmtp:temporal_role"] for it in items if it["properties"]["mmtp:event_id"] == GJERDRUM]
    assert roles == ["pre-event"] * mine.count("pre-event") + ["first-post-event"] * mine.count("first-post-event")
    assert len(roles) == 30
    catalog = json.loads((tmp_path / "stage" / "catalog.json").read_text())
    assert catalog["description"].startswith(f"Synthetic sample build: 600 of its {600 + EVENTS} items")


def test_reduce_memory_does_not_grow_with_the_items(setting: tuple[Path, list[dict[str, Any]]], tmp_path: Path) -> None:
    """10x the items: the reduce's peak grows by a small fraction of what holding the items would cost."""
    events_dir, templates = setting
    peaks, held = {}, {}
    for n in (200, 2000):  # the smaller first: it pays the imports
        items = replicas(templates, n, sorted(ev.id for ev in load_inventory(events_dir)))
        tracemalloc.start()  # what holding these items costs, parsed as the reduce parses them
        kept = [json.loads(json.dumps(it)) for it in items]
        held[n] = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del kept
        counts, peaks[n] = streamed(tmp_path / f"stage-{n}", tmp_path / f"spool-{n}", events_dir, items)
        assert counts["sentinel-2"] == n
    grown, would = peaks[2000] - peaks[200], held[2000] - held[200]
    print(f"reduce peak {peaks[200] / 2**20:.1f} -> {peaks[2000] / 2**20:.1f} MiB; held items "
          f"{held[200] / 2**20:.1f} -> {held[2000] / 2**20:.1f} MiB")
    assert would > 50 * 2**20  # the items are heavy enough for the difference to show
    assert grown < 0.1 * would
    assert peaks[2000] < 0.5 * held[2000]


def test_event_keeps_one_thumbnail_per_role_and_collection(tmp_path: Path) -> None:
    """Six S2 acquisitions of Gjerdrum (event 2020-12-30): the event item links all six, and keeps one thumbnail
    per (role, collection), the acquisition nearest the event: the latest before it, the earliest after it,
    ties by item id."""
    events = tmp_path / "events"
    events.mkdir()
    shutil.copy(default_events_dir() / f"{GJERDRUM}.geojson", events)
    ev = load_inventory(events)[0]
    assert ev.start.date().isoformat() == "2020-12-30"
    products = tmp_path / "products"
    for day, sat in [("2020-12-20", "S2A"), ("2020-12-25", "S2B"), ("2020-12-25", "S2A"),  # pre-event
                     ("2021-01-02", "S2B"),  # first-post-event: the first after it
                     ("2021-01-12", "S2B"), ("2021-01-07", "S2A")]:  # post-event
        write_product(products, ev, datetime.fromisoformat(f"{day}T10:44:41+00:00"), "L2A", sat)
    report = build(events, [products], tmp_path / "catalog")
    assert report.ok and report.collections == {"events": 1, "sentinel-2": 6}, report.failures

    def item_id(day: str, sat: str) -> str:
        return f"{GJERDRUM}_{sat}_MSIL2A_{day.replace('-', '')}T104441_N0510_R008_T32VPM_{day.replace('-', '')}T120141"

    s2 = tmp_path / "catalog" / "sentinel-2"
    item = json.loads((tmp_path / "catalog" / "events" / GJERDRUM / f"{GJERDRUM}.json").read_text())
    links = [(lk["rel"], lk["href"]) for lk in item["links"] if lk["rel"] not in (*STRUCTURAL, "about", "cite-as")]
    assert links == [(rel, f"../../sentinel-2/{item_id(d, s)}/{item_id(d, s)}.json") for rel, d, s in [
        ("pre-event", "2020-12-20", "S2A"), ("pre-event", "2020-12-25", "S2A"), ("pre-event", "2020-12-25", "S2B"),
        ("first-post-event", "2021-01-02", "S2B"),
        ("post-event", "2021-01-07", "S2A"), ("post-event", "2021-01-12", "S2B")]]
    chosen = {"thumbnail-pre-event-sentinel-2": item_id("2020-12-25", "S2A"),  # the tie at 12-25: S2A < S2B
              "thumbnail-first-post-event-sentinel-2": item_id("2021-01-02", "S2B"),
              "thumbnail-post-event-sentinel-2": item_id("2021-01-07", "S2A")}
    assert list(item["assets"]) == list(chosen)
    for key, iid in chosen.items():
        acq = json.loads((s2 / iid / f"{iid}.json").read_text())
        thumb = item["assets"][key]
        assert thumb["href"] == f"../../sentinel-2/{iid}/thumbnail.png"
        assert thumb["title"] == f"{key.removeprefix('thumbnail-').removesuffix('-sentinel-2')}: " \
                                 f"{acq['properties']['title']}"
        assert thumb["file:checksum"] == acq["assets"]["thumbnail"]["file:checksum"]
        assert thumb["roles"] == ["thumbnail"] and thumb["type"] == "image/png"
        assert (s2 / iid / "thumbnail.png").is_file()
    # the events' items.parquet: one assets field per key, not one per acquisition
    import pyarrow.parquet as pq

    schema = pq.read_schema(tmp_path / "catalog" / "events" / "items.parquet")
    assert sorted(schema.field("assets").type.names) == sorted(chosen)


def test_linked_events_from_sqlite_are_the_in_memory_links(setting: tuple[Path, list[dict[str, Any]]],
                                                           tmp_path: Path) -> None:
    """The facts read back from SQLite link each event item as the in-memory path does, ties included: the same
    time and id in two collections (in the order found), the same time under two ids, items of no thumbnail."""
    events_dir, templates = setting
    pre, post = sorted(templates, key=lambda t: t["properties"]["mmtp:temporal_role"] != "pre-event")
    found = []
    for coll in ("sentinel-2", "sentinel-1"):  # one id in two collections: the order found breaks the tie
        for k, t in enumerate([pre, post, pre, post]):
            it = copy.deepcopy(t)
            if k >= 2:  # the same datetime as the first two, a later id
                it["id"] += "-b"
            if coll == "sentinel-1" and k == 3:
                del it["assets"]["thumbnail"]
            found.append(acquisition(coll, it))
    assert len(found) == 8 and all(a is not None for a in found)
    bundle = events_bundle(load_inventory(events_dir))
    with AcquisitionSpool(tmp_path / "acq.sqlite") as spool:
        spool.extend(found)
        assert len(spool) == 8
        streamed = list(LinkedEvents(copy.deepcopy(bundle.items), spool))
    link_acquisitions(bundle, [], found)
    assert [it["id"] for it in streamed] == sorted(it["id"] for it in bundle.items)
    by_id = {it["id"]: it for it in bundle.items}
    assert [dumps_bytes(it) for it in streamed] == [dumps_bytes(by_id[it["id"]]) for it in streamed]
    ev = next(it for it in streamed if it["id"] == GJERDRUM)
    hrefs = [lk["href"].split("/")[3] for lk in ev["links"] if lk["rel"] in ("pre-event", "first-post-event")]
    p, q = pre["id"], post["id"]
    assert hrefs == [p, p, f"{p}-b", f"{p}-b", q, q, f"{q}-b", f"{q}-b"]
    assert [lk["href"].split("/")[2] for lk in ev["links"] if lk["rel"] == "pre-event"] == \
        ["sentinel-2", "sentinel-1", "sentinel-2", "sentinel-1"]
    assert {k: v["href"].split("/")[3] for k, v in ev["assets"].items()} == {
        "thumbnail-pre-event-sentinel-1": p, "thumbnail-pre-event-sentinel-2": p,
        "thumbnail-first-post-event-sentinel-1": q, "thumbnail-first-post-event-sentinel-2": q}


def test_spool_index_is_on_disk_in_id_order_ties_as_they_came(tmp_path: Path) -> None:
    """The spool's index (SQLite): items and their (id, event id) come back in code point order of the ids,
    equal ids in arrival order, and adding items keeps no Python memory per item."""
    with ItemSpool(tmp_path / "spool") as spool:
        arrivals = [("b", "ev-1", 1), ("é", None, 2), ("a", "ev-2", 3), ("B", "ev-1", 4), ("a", "ev-3", 5)]
        for iid, eid, n in arrivals:
            spool.add("sentinel-2", {"id": iid, "properties": {"mmtp:event_id": eid} if eid else {}, "n": n})
        spool.add("sentinel-1", {"id": "z", "properties": {}, "n": 6})
        # "B" (0x42) < "a" (0x61) < "b" < "é" (0xe9); the two "a" in the order they arrived
        assert [it["n"] for it in spool.items("sentinel-2")] == [4, 3, 5, 1, 2]
        assert list(spool.items("sentinel-2").keys()) == [("B", "ev-1"), ("a", "ev-2"), ("a", "ev-3"), ("b", "ev-1"),
                                                          ("é", None)]
        assert spool.count("sentinel-2") == 5 and spool.count("sentinel-1") == 1 and spool.count("none") == 0
        assert spool.collections() == ["sentinel-1", "sentinel-2"] and list(spool.items("none")) == []
        grown = {}
        for n in (10_000, 40_000):
            tracemalloc.start()
            for i in range(n):
                spool.add(f"c{n}", {"id": f"item-{i:07d}-{'x' * 60}", "properties": {"mmtp:event_id": "ev"}})
            next(iter(spool.items(f"c{n}")))
            grown[n] = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
        # 30,000 more items: their ids alone (~110 bytes each) would be 3.3 MB
        assert grown[40_000] - grown[10_000] < 100_000, grown


def test_manifest_streamed_is_the_manifest_text(setting: tuple[Path, list[dict[str, Any]]]) -> None:
    """splits.json written from id streams is byte for byte the dumps_json of manifest(): non-ASCII ids, an
    empty split, and collections one of whose ids is a prefix of another's ("/" sorts after "-")."""
    import io

    from stac_mmtp.atomic import dumps_json
    from stac_mmtp.dataset.splits import SPLITS, assign_splits, manifest, write_manifest

    events_dir, _ = setting
    evs = load_inventory(events_dir)
    assignment = assign_splits(evs, (0.8, 0.2, 0.0), "seed-1", 5000.0)
    assert set(assignment.values()) == {"train", "validate"}  # "test" stays empty
    eids = sorted(assignment)
    items = [(coll, {"id": f"{name}-{k}", "properties": {"ml-aoi:split": assignment[eids[k % len(eids)]]}})
             for k in range(60) for coll, name in [("sentinel-2", "s2"), ("sentinel-2-l1c", "l1c"),
                                                   ("sentinel-2", "Glacier-Ødegaard")]]
    items.append(("sentinel-2", {"id": "no-split", "properties": {}}))
    expected = dumps_json(manifest(items, assignment, evs, (0.8, 0.2, 0.0), "seed-1", 5000.0))

    def per_split(s: str) -> Any:
        return iter(sorted(f"{c}/{it['id']}" for c, it in items if it["properties"].get("ml-aoi:split") == s))

    out = io.StringIO()
    write_manifest(out, per_split, assignment, evs, (0.8, 0.2, 0.0), "seed-1", 5000.0)
    assert out.getvalue() == expected
    man = json.loads(expected)
    assert man["items"]["test"] == [] and list(man["items"]) == list(SPLITS)
    assert "sentinel-2-l1c/l1c-0" in man["items"]["train"] + man["items"]["validate"]
    assert "Ødegaard" in expected  # written as UTF-8, not escaped
