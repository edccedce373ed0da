"""Assemble and write the catalog tree: relative links, extents, summaries, deterministic JSON.

Layout: `catalog.json`, `<collection>/collection.json`, `<collection>/<item>/<item>.json` with the
item's assets beside it. Every href is relative, so the same tree works on disk, S3 and HTTPS.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from shapely.geometry import shape

from stac_mmtp.atomic import dumps_json, staged_file
from stac_mmtp.errors import MmtpError
from stac_mmtp.stac import JSON_MEDIA_TYPE

STAC_VERSION = "1.1.0"


def item_href(collection_id: str, item_id: str, from_depth: int = 2) -> str:
    """Relative href of an item, seen from an object `from_depth` directories below the root."""
    return "../" * from_depth + f"{collection_id}/{item_id}/{item_id}.json"


@dataclass
class CollectionBundle:
    collection: dict[str, Any]
    # a list, or a stream in ascending id order (written once, never held: see `write_tree`)
    items: list[dict[str, Any]] | Iterable[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.collection["id"]


def _title(obj: dict[str, Any]) -> dict[str, str]:
    """A link's title from its target, left out when the target has none (null is not a valid title)."""
    return {"title": obj["title"]} if obj.get("title") else {}


def _strip_structural(links: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [lk for lk in links if lk.get("rel") not in ("root", "parent", "child", "item", "collection", "self")]


class ItemStats:
    """What a collection's metadata needs from its items, reduced as they stream past (`add`), so no item
    dict is kept: count, synthetic count, extent, distinct property values, each asset key as first seen.
    `summarise`, `item_assets`, `distinct`, `set_extent` and synthetic.mark_* take it where they take a
    list, with the same result.

    Distinct values are kept for every property (flattening lists), up to `cap` of them per property; past
    that a property keeps only its numeric range, and a summary of its distinct values is refused (MmtpError)
    rather than given wrong. Titles, datetimes and ids reach the cap; summarised fields (event ids, EPSG
    codes, orbits) stay far below it."""

    def __init__(self, items: Iterable[dict[str, Any]] = (), cap: int = 20_000) -> None:
        self.cap = cap
        self.count = 0
        self.synthetic = 0
        self.bbox: list[float] | None = None
        self.start: str | None = None
        self.end: str | None = None
        self.values: dict[str, set[Any]] = {}
        self.overflow: set[str] = set()
        self.numeric: dict[str, list[Any]] = {}  # name -> [min, max] while every value is a number
        self.mixed: set[str] = set()  # names with a value that is not a number
        self.assets: dict[str, dict[str, Any]] = {}
        for it in items:
            self.add(it)

    def add(self, item: dict[str, Any]) -> None:
        self.count += 1
        p = item["properties"]
        if p.get("mmtp:synthetic") is True:
            self.synthetic += 1
        b = item.get("bbox")
        if b:
            if self.bbox is None:
                self.bbox = [b[0], b[1], b[2], b[3]]
            else:
                u = self.bbox
                u[0], u[1], u[2], u[3] = min(u[0], b[0]), min(u[1], b[1]), max(u[2], b[2]), max(u[3], b[3])
        start = p.get("start_datetime") or p.get("datetime")
        end = p.get("end_datetime") or p.get("datetime")
        if start and (self.start is None or start < self.start):
            self.start = start
        if end and (self.end is None or end > self.end):
            self.end = end
        for name, v in p.items():
            if v is None:
                continue
            for x in v if isinstance(v, list) else (v,):
                self._value(name, x)
        for key, a in (item.get("assets") or {}).items():
            if key not in self.assets:
                self.assets[key] = a

    def _value(self, name: str, x: Any) -> None:
        if isinstance(x, int | float) and not isinstance(x, bool):
            if name not in self.mixed:
                r = self.numeric.get(name)
                if r is None:
                    self.numeric[name] = [x, x]
                else:
                    r[0], r[1] = (x if x < r[0] else r[0]), (x if x > r[1] else r[1])
        else:
            self.mixed.add(name)
        if name in self.overflow:
            return
        try:
            vals = self.values.setdefault(name, set())
            vals.add(x)
        except TypeError:  # a dict or list inside: not summarised by value
            self.overflow.add(name)
            self.values.pop(name, None)
            return
        if len(vals) > self.cap:
            self.overflow.add(name)
            del self.values[name]

    def distinct(self, name: str) -> set[Any]:
        if name in self.overflow:
            raise MmtpError(f"{name}: more than {self.cap} distinct values (or unhashable ones): no summary of them")
        return set(self.values.get(name, ()))

    def summarise(self, fields: Iterable[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in fields:
            if name not in self.numeric and name not in self.mixed:
                continue
            if name not in self.mixed:
                lo, hi = self.numeric[name]
                out[name] = {"minimum": lo, "maximum": hi}
            else:
                out[name] = sorted(self.distinct(name), key=str)
        return out


def distinct(items: list[dict[str, Any]] | ItemStats, name: str) -> set[Any]:
    """The distinct values of a property over the items (list values flattened)."""
    if isinstance(items, ItemStats):
        return items.distinct(name)
    out: set[Any] = set()
    for it in items:
        v = it["properties"].get(name)
        if v is not None:
            out.update(v if isinstance(v, list) else [v])
    return out


def temporal_extent(items: list[dict[str, Any]] | ItemStats) -> list[list[str | None]]:
    if isinstance(items, ItemStats):
        return [[items.start, items.end]]
    starts, ends = [], []
    for it in items:
        p = it["properties"]
        starts.append(p.get("start_datetime") or p.get("datetime"))
        ends.append(p.get("end_datetime") or p.get("datetime"))
    starts = [s for s in starts if s]
    ends = [e for e in ends if e]
    return [[min(starts) if starts else None, max(ends) if ends else None]]


def spatial_extent(items: list[dict[str, Any]] | ItemStats) -> list[list[float]]:
    if isinstance(items, ItemStats):
        if items.bbox is None:
            return [[-180.0, -90.0, 180.0, 90.0]]
        return [[round(v, 6) for v in items.bbox]]
    boxes = [it["bbox"] for it in items if it.get("bbox")]
    if not boxes:
        return [[-180.0, -90.0, 180.0, 90.0]]
    union = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
    return [[round(v, 6) for v in union]]


def summarise(items: list[dict[str, Any]] | ItemStats, fields: Iterable[str]) -> dict[str, Any]:
    """Distinct values (sorted) of each property; numbers as a range."""
    if isinstance(items, ItemStats):
        return items.summarise(fields)
    out: dict[str, Any] = {}
    for name in fields:
        values: list[Any] = []
        for it in items:
            v = it["properties"].get(name)
            if v is None:
                continue
            values.extend(v if isinstance(v, list) else [v])
        if not values:
            continue
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            out[name] = {"minimum": min(values), "maximum": max(values)}
        else:
            out[name] = sorted(set(values), key=str)
    return out


def item_assets(items: list[dict[str, Any]] | ItemStats, keep: tuple[str, ...], drop_band_fields: tuple[str, ...] = (),
                no_bands: tuple[str, ...] = ()) -> dict[str, Any]:
    """A collection's `item_assets`: each asset key as first seen, reduced to the fields that hold for
    every item (`keep`); band fields that vary per item (`drop_band_fields`) are left out, and so are
    the bands of assets listed in `no_bands`."""
    first = items.assets if isinstance(items, ItemStats) else {}
    if not isinstance(items, ItemStats):
        for it in items:
            for key, a in it["assets"].items():
                first.setdefault(key, a)
    out: dict[str, Any] = {}
    for key, a in first.items():
        out[key] = {k: v for k, v in a.items() if k in ("type", "roles", "title", *keep)}
        if "bands" in a and key not in no_bands:
            out[key]["bands"] = [{k: v for k, v in b.items() if k not in drop_band_fields} for b in a["bands"]]
    return out


def set_extent(collection: dict[str, Any], items: list[dict[str, Any]] | ItemStats) -> None:
    if (items.count if isinstance(items, ItemStats) else items):
        collection["extent"] = {"spatial": {"bbox": spatial_extent(items)}, "temporal": {"interval": temporal_extent(items)}}


def bbox_of(geometry: dict[str, Any]) -> list[float]:
    return [round(v, 6) for v in shape(geometry).bounds]


ROWS_PER_GROUP = 20_000  # items.parquet row group: a few hundred MiB of item dicts at most, one at a time


@dataclass
class TreeWritten:
    files: int = 0
    items: dict[str, int] = field(default_factory=dict)  # collection id -> items written


def write_tree(out: Path, catalog: dict[str, Any], bundles: list[CollectionBundle], geoparquet: bool = False,
               rows_per_group: int = ROWS_PER_GROUP) -> TreeWritten:
    """Write the root catalog, collections and items under `out` with relative structural links.

    It streams: each item is written as it comes out of its bundle's `items` (a list, sorted here, or any
    iterable already in ascending id order, e.g. a generator reading them from a work directory), and
    only its link (spilled to a file) and its parquet row (until its row group is written) are kept.
    With `geoparquet`, each collection also gets its items as `items.parquet`, a collection asset with
    role `stac-items` (what `stac-mmtp search`/`serve` and stac-geoparquet readers use), in row groups
    of `rows_per_group` items.
    """
    done = TreeWritten()
    out.mkdir(parents=True, exist_ok=True)
    catalog = dict(catalog)
    ordered = sorted(bundles, key=lambda b: b.id)
    catalog["links"] = [
        {"rel": "root", "href": "./catalog.json", "type": JSON_MEDIA_TYPE, **_title(catalog)},
        *[
            {"rel": "child", "href": f"./{b.id}/collection.json", "type": JSON_MEDIA_TYPE, **_title(b.collection)}
            for b in ordered
        ],
        *_strip_structural(catalog.get("links", [])),
    ]
    for bundle in ordered:
        n, files = _write_collection(out, catalog, bundle, geoparquet, rows_per_group)
        done.items[bundle.id] = n
        done.files += files
    ship_extension_schema(out)
    write_bytes(str(out / "catalog.json"), dumps_bytes(catalog))
    done.files += 2
    return done


def _ordered(items: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The items in ascending id order: a list is sorted (as it always was), a stream is checked."""
    if isinstance(items, list):
        yield from sorted(items, key=lambda it: it["id"])
        return
    last = None
    for it in items:
        if last is not None and it["id"] <= last:
            raise MmtpError(f"items of a streamed collection must come in ascending id order: {it['id']!r} after "
                            f"{last!r}")
        last = it["id"]
        yield it


def _write_collection(out: Path, catalog: dict[str, Any], bundle: CollectionBundle, geoparquet: bool,
                      rows_per_group: int) -> tuple[int, int]:
    from stac_mmtp.stac.geoparquet import ParquetStream

    coll = dict(bundle.collection)
    cdir = os.path.join(str(out), bundle.id)
    os.makedirs(cdir, exist_ok=True)
    root_link = {"rel": "root", "href": "../../catalog.json", "type": JSON_MEDIA_TYPE, **_title(catalog)}
    up = {"type": JSON_MEDIA_TYPE, **_title(coll)}
    own = [root_link, {"rel": "parent", "href": "../collection.json", **up},
           {"rel": "collection", "href": "../collection.json", **up}]
    pq = ParquetStream(Path(cdir), rows_per_group) if geoparquet else None
    n = 0
    # Each item's link in collection.json is spilled, already serialised, to a file beside it: at a million
    # items a list of link dicts would be most of the memory.
    spill_path = os.path.join(cdir, ".item-links.part")
    try:
        with open(spill_path, "wb") as spill:
            for it in _ordered(bundle.items):
                it = dict(it)
                iid = it["id"]
                it["collection"] = bundle.id
                it["links"] = [*own, *_strip_structural(it.get("links", []))]
                data = dumps_bytes(it)
                idir = os.path.join(cdir, iid)
                with contextlib.suppress(FileExistsError):
                    os.mkdir(idir)
                write_bytes(os.path.join(idir, iid + ".json"), data)
                title = it["properties"].get("title")
                spill.write(b"%s    {\n      \"rel\": \"item\",\n      \"href\": %s,\n      \"type\": "
                            b"\"application/geo+json\"%s\n    }" % (
                                b",\n" if n else b"", orjson.dumps(f"./{iid}/{iid}.json"),
                                b",\n      \"title\": " + orjson.dumps(title) if title else b""))
                if pq is not None:
                    pq.add(data)
                n += 1
        files = n
        coll["links"] = [
            {"rel": "root", "href": "../catalog.json", "type": JSON_MEDIA_TYPE, **_title(catalog)},
            {"rel": "parent", "href": "../catalog.json", "type": JSON_MEDIA_TYPE, **_title(catalog)},
            *_strip_structural(coll.get("links", [])),
            _ITEM_LINKS,
        ]
        if pq is not None and n:
            from stac_mmtp.raster.assets import file_fields
            from stac_mmtp.stac import FILE
            from stac_mmtp.stac.geoparquet import ITEMS_ASSET, PARQUET_MEDIA_TYPE

            path = pq.close()
            coll["assets"] = {**coll.get("assets", {}), ITEMS_ASSET: {
                "href": "./items.parquet", "type": PARQUET_MEDIA_TYPE, "roles": ["stac-items"],
                "title": f"All {n} items of this collection as stac-geoparquet", **file_fields(path)}}
            coll["stac_extensions"] = sorted({*coll.get("stac_extensions", []), FILE})
            files += 1
        _write_with_links(Path(cdir) / "collection.json", coll, spill_path, n)
    finally:
        if pq is not None:
            pq.discard()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(spill_path)
    return n, files + 1


# Stands for the item links in a collection while it is serialised; replaced by the spilled links.
_ITEM_LINKS = "\x00stac-mmtp item links\x00"
_ITEM_LINKS_JSON = b",\n    " + orjson.dumps(_ITEM_LINKS)


def _write_with_links(path: Path, coll: dict[str, Any], spill_path: str, n: int) -> None:
    text = dumps_bytes(coll)
    head, sep, tail = text.partition(_ITEM_LINKS_JSON)
    if not sep:  # json's path writes the same placeholder the same way; a mismatch is a bug here
        raise MmtpError(f"internal: no item-links placeholder in {path}")
    with staged_file(path) as tmp, open(tmp, "wb") as f:
        f.write(head)
        if n:
            f.write(b",\n")
            with open(spill_path, "rb") as spill:
                shutil.copyfileobj(spill, f, 1 << 20)
        f.write(tail)


def dumps_bytes(obj: Any) -> bytes:
    """Exactly `atomic.dumps_json(obj)` as UTF-8, by orjson (about 20x faster than json's indenting encoder,
    which is pure Python on 3.11). orjson differs from json on NaN/Infinity (null), floats below 1e-4
    (`0.00001`, `1.5e-7`), integers beyond 64 bits and non-string keys: those take json's path."""
    try:
        out = orjson.dumps(obj, option=_ORJSON_OPTS)
    except (TypeError, orjson.JSONEncodeError):
        return dumps_json(obj).encode()
    if _small_float(out) or (b"null" in out and not _finite(obj)):
        return dumps_json(obj).encode()
    return out


_ORJSON_OPTS = (orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE | orjson.OPT_PASSTHROUGH_DATETIME
                | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS)


def _small_float(out: bytes) -> bool:
    """Might orjson have written a float unlike repr() (`0.0000x`, or a digit then `e-`)? A false positive
    (such text inside a string) only costs json's slower path. bytes.find, not a regex: 10x faster."""
    if b"0.0000" in out:
        return True
    i = out.find(b"e-")
    while i > 0:
        if 48 <= out[i - 1] <= 57:
            return True
        i = out.find(b"e-", i + 2)
    return False


def _finite(obj: Any) -> bool:
    """No NaN/Infinity inside (json's C encoder, fast, raises on them with allow_nan=False)."""
    try:
        json.dumps(obj, allow_nan=False)
    except ValueError:
        return False
    return True


def write_bytes(path: str, data: bytes) -> None:
    """Write a file of the tree through a `.part` sibling renamed into place (never half-written), without
    `pathlib` or `mkstemp`: at a million items their per-call costs are most of the write."""
    tmp = path + ".part"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def shipped_schema_path(tree: Path) -> Path:
    """Where a tree carries our extension's schema: the path of its URL below the Pages site
    (`extensions/mmtp/v1.0.0/schema.json`), so the release validates on its own, offline."""
    from stac_mmtp import EXTENSION_SCHEMA_PATH

    return tree / EXTENSION_SCHEMA_PATH


def ship_extension_schema(out: Path) -> Path:
    """Copy the extension's JSON schema (the package's, byte for byte) into the tree."""
    from stac_mmtp import EXTENSION_NAME
    from stac_mmtp.atomic import staged_file
    from stac_mmtp.paths import extensions_dir

    src = extensions_dir() / EXTENSION_NAME / "json-schema" / "schema.json"
    dst = shipped_schema_path(out)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with staged_file(dst) as tmp:
        tmp.write_bytes(src.read_bytes())
    return dst
