"""Assemble and write the catalog tree: relative links, extents, summaries, deterministic JSON.

Layout: `catalog.json`, `<collection>/collection.json`, `<collection>/<item>/<item>.json` with the
item's assets beside it. Every href is relative, so the same tree works on disk, S3 and HTTPS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shapely.geometry import shape

from stac_mmtp.atomic import write_json
from stac_mmtp.stac import JSON_MEDIA_TYPE

STAC_VERSION = "1.1.0"


def item_href(collection_id: str, item_id: str, from_depth: int = 2) -> str:
    """Relative href of an item, seen from an object `from_depth` directories below the root."""
    return "../" * from_depth + f"{collection_id}/{item_id}/{item_id}.json"


@dataclass
class CollectionBundle:
    collection: dict[str, Any]
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.collection["id"]


def _title(obj: dict[str, Any]) -> dict[str, str]:
    """A link's title from its target, left out when the target has none (null is not a valid title)."""
    return {"title": obj["title"]} if obj.get("title") else {}


def _strip_structural(links: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [lk for lk in links if lk.get("rel") not in ("root", "parent", "child", "item", "collection", "self")]


def temporal_extent(items: list[dict[str, Any]]) -> list[list[str | None]]:
    starts, ends = [], []
    for it in items:
        p = it["properties"]
        starts.append(p.get("start_datetime") or p.get("datetime"))
        ends.append(p.get("end_datetime") or p.get("datetime"))
    starts = [s for s in starts if s]
    ends = [e for e in ends if e]
    return [[min(starts) if starts else None, max(ends) if ends else None]]


def spatial_extent(items: list[dict[str, Any]]) -> list[list[float]]:
    boxes = [it["bbox"] for it in items if it.get("bbox")]
    if not boxes:
        return [[-180.0, -90.0, 180.0, 90.0]]
    union = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
    return [[round(v, 6) for v in union]]


def summarise(items: list[dict[str, Any]], fields: Iterable[str]) -> dict[str, Any]:
    """Distinct values (sorted) of each property; numbers as a range."""
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


def item_assets(items: list[dict[str, Any]], keep: tuple[str, ...], drop_band_fields: tuple[str, ...] = (),
                no_bands: tuple[str, ...] = ()) -> dict[str, Any]:
    """A collection's `item_assets`: each asset key as first seen, reduced to the fields that hold for
    every item (`keep`); band fields that vary per item (`drop_band_fields`) are left out, and so are
    the bands of assets listed in `no_bands`."""
    out: dict[str, Any] = {}
    for it in items:
        for key, a in it["assets"].items():
            if key in out:
                continue
            out[key] = {k: v for k, v in a.items() if k in ("type", "roles", "title", *keep)}
            if "bands" in a and key not in no_bands:
                out[key]["bands"] = [{k: v for k, v in b.items() if k not in drop_band_fields} for b in a["bands"]]
    return out


def set_extent(collection: dict[str, Any], items: list[dict[str, Any]]) -> None:
    if items:
        collection["extent"] = {"spatial": {"bbox": spatial_extent(items)}, "temporal": {"interval": temporal_extent(items)}}


def bbox_of(geometry: dict[str, Any]) -> list[float]:
    return [round(v, 6) for v in shape(geometry).bounds]


def write_tree(out: Path, catalog: dict[str, Any], bundles: list[CollectionBundle], geoparquet: bool = False) -> list[Path]:
    """Write the root catalog, collections and items under `out` with relative structural links.

    With `geoparquet`, each collection also gets its items as `items.parquet`, a collection asset
    with role `stac-items` (what `stac-mmtp search`/`serve` and stac-geoparquet readers use).
    """
    written: list[Path] = []
    catalog = dict(catalog)
    catalog["links"] = [
        {"rel": "root", "href": "./catalog.json", "type": JSON_MEDIA_TYPE, **_title(catalog)},
        *[
            {"rel": "child", "href": f"./{b.id}/collection.json", "type": JSON_MEDIA_TYPE, **_title(b.collection)}
            for b in sorted(bundles, key=lambda b: b.id)
        ],
        *_strip_structural(catalog.get("links", [])),
    ]
    for bundle in sorted(bundles, key=lambda b: b.id):
        coll = dict(bundle.collection)
        items = sorted(bundle.items, key=lambda it: it["id"])
        coll["links"] = [
            {"rel": "root", "href": "../catalog.json", "type": JSON_MEDIA_TYPE, **_title(catalog)},
            {"rel": "parent", "href": "../catalog.json", "type": JSON_MEDIA_TYPE, **_title(catalog)},
            *_strip_structural(coll.get("links", [])),
            *[
                {"rel": "item", "href": f"./{it['id']}/{it['id']}.json", "type": "application/geo+json",
                 **({"title": it["properties"]["title"]} if it["properties"].get("title") else {})}
                for it in items
            ],
        ]
        final = []
        for it in items:
            it = dict(it)
            it["collection"] = bundle.id
            it["links"] = [
                {"rel": "root", "href": "../../catalog.json", "type": JSON_MEDIA_TYPE, **_title(catalog)},
                {"rel": "parent", "href": "../collection.json", "type": JSON_MEDIA_TYPE, **_title(coll)},
                {"rel": "collection", "href": "../collection.json", "type": JSON_MEDIA_TYPE, **_title(coll)},
                *_strip_structural(it.get("links", [])),
            ]
            path = out / bundle.id / it["id"] / f"{it['id']}.json"
            write_json(path, it)
            written.append(path)
            final.append(it)
        if geoparquet and final:
            from stac_mmtp.raster.assets import file_fields
            from stac_mmtp.stac import FILE
            from stac_mmtp.stac.geoparquet import ITEMS_ASSET, PARQUET_MEDIA_TYPE, export_items

            pq = export_items(final, out / bundle.id)
            coll["assets"] = {**coll.get("assets", {}), ITEMS_ASSET: {
                "href": "./items.parquet", "type": PARQUET_MEDIA_TYPE, "roles": ["stac-items"],
                "title": f"All {len(final)} items of this collection as stac-geoparquet", **file_fields(pq)}}
            coll["stac_extensions"] = sorted({*coll.get("stac_extensions", []), FILE})
            written.append(pq)
        path = out / bundle.id / "collection.json"
        write_json(path, coll)
        written.append(path)
    written.append(ship_extension_schema(out))
    write_json(out / "catalog.json", catalog)
    written.append(out / "catalog.json")
    return written


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
