"""The annotations collection: label items (label v1.0.1) and class masks on the imagery's own grids.

Per annotation set, one *vector* label item (the outlines as a GeoJSON asset, `source` links to
every imagery item it applies to) and, per such imagery item, one *raster* label item whose mask
COG has exactly the grid (CRS, transform, shape) of that item's finest data assets: pixel-aligned
pairs for training, no resampling at load time. Mask values: the class table of
`annotations.CLASSES`, 0 = examined and nothing there, 255 = ignore (outside the annotated area, or
no image data).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.transform import Affine
from shapely.geometry import mapping, shape

from stac_mmtp.atomic import write_json
from stac_mmtp.dataset.annotations import (
    CLASS_COLOURS,
    CLASS_DESCRIPTIONS,
    CLASSES,
    IGNORE,
    AnnotationSet,
    read_annotation,
)
from stac_mmtp.dataset.inventory import Event
from stac_mmtp.raster.assets import file_fields
from stac_mmtp.raster.cog import CogProfile, array_to_cog
from stac_mmtp.raster.geo import reproject
from stac_mmtp.stac import (
    CLASSIFICATION,
    COG_MEDIA_TYPE,
    FILE,
    GEOJSON_MEDIA_TYPE,
    LABEL,
    MMTP,
    PROJ,
    RASTER,
    SCIENTIFIC,
)
from stac_mmtp.stac.events import EVENTS_COLLECTION, collection_metadata, event_fields, rfc3339
from stac_mmtp.stac.synthetic import FIELD as SYNTHETIC
from stac_mmtp.stac.synthetic import PREFIX as SYNTHETIC_PREFIX
from stac_mmtp.stac.synthetic import mark_collection
from stac_mmtp.stac.tree import STAC_VERSION, CollectionBundle, bbox_of, item_href, set_extent, summarise

LABEL_COLLECTION = "annotations"
# Acquisitions that show the ground after (or during) the event: an outline describes them.
APPLIES_TO_ROLES = ("first-post-event", "first-usable-post-event", "post-event", "co-event")
TASKS = ["segmentation", "detection"]


def _parse(dt: str) -> datetime:
    return datetime.fromisoformat(dt.replace("Z", "+00:00"))


def item_time(item: dict[str, Any]) -> datetime:
    p = item["properties"]
    return _parse(p.get("datetime") or p["start_datetime"])


def applies_to(aset: AnnotationSet, item: dict[str, Any]) -> bool:
    """Does the annotation describe this imagery item? Same event, and either named in the outlines'
    imagery ids, or a post-/co-event acquisition from the event until `valid_days` after the observation."""
    p = item["properties"]
    if p.get("mmtp:event_id") != aset.event_id:
        return False
    product = item["id"].removeprefix(f"{aset.event_id}_")
    if any(im.id in (item["id"], product) for o in aset.outlines for im in o.imagery if im.id):
        return True
    if p.get("mmtp:temporal_role") not in APPLIES_TO_ROLES:
        return False
    return item_time(item) <= aset.observed + timedelta(days=aset.valid_days)


def pre_event_pair(coll: str, imagery: dict[str, Any], candidates: list[tuple[str, dict[str, Any]]]) -> dict[str, Any] | None:
    """The latest pre-event item of the same collection and event whose finest data assets lie on
    the grid of `imagery` (same keys, CRS, transform and shape): the "before" of a change-detection
    pair, readable pixel for pixel against the mask. None when there is none."""
    keys, code, tr, shp = reference_grid(imagery)
    event = imagery["properties"].get("mmtp:event_id")
    found = []
    for c, it in candidates:
        p = it["properties"]
        if c != coll or p.get("mmtp:event_id") != event or p.get("mmtp:temporal_role") != "pre-event":
            continue
        try:
            other_keys, other_code, other_tr, other_shp = reference_grid(it)
        except ValueError:
            continue
        if set(keys) <= set(other_keys) and (other_code, other_tr, other_shp) == (code, tr, shp):
            found.append(it)
    return max(found, key=item_time) if found else None


def reference_grid(item: dict[str, Any]) -> tuple[list[str], str, list[float], list[int]]:
    """(asset keys on the grid, proj:code, proj:transform, proj:shape) of the item's finest data assets."""
    grids: dict[tuple[str, tuple[float, ...], tuple[int, ...]], list[str]] = {}
    for key, a in sorted(item["assets"].items()):
        if "data" not in a.get("roles", []) or "proj:transform" not in a or "proj:shape" not in a:
            continue
        code = a.get("proj:code") or item["properties"].get("proj:code")
        grids.setdefault((code, tuple(a["proj:transform"]), tuple(a["proj:shape"])), []).append(key)
    if not grids:
        raise ValueError(f"item {item['id']}: no data asset with proj:transform and proj:shape")
    (code, transform, shp), keys = min(grids.items(), key=lambda kv: (abs(kv[0][1][0]), kv[1][0]))
    return keys, code, list(transform), list(shp)


def _valid_pixels(path: Path, shp: list[int]) -> np.ndarray | None:
    """True where the imagery asset has data (its nodata mask), None when it declares no nodata."""
    if not path.is_file():
        return None
    with rasterio.open(path) as ds:
        if [ds.height, ds.width] != shp:
            raise ValueError(f"{path}: shape {[ds.height, ds.width]} differs from its proj:shape {shp}")
        if ds.nodata is None:
            return None
        return ds.read_masks(1) > 0


def rasterise(aset: AnnotationSet, event: Event, crs: str, transform: Affine, shp: list[int],
              valid: np.ndarray | None = None) -> np.ndarray:
    """uint8 class mask on a grid: IGNORE outside the annotated area and where the image has no data."""
    area = shape(aset.annotated_area) if aset.annotated_area else event.shape
    out_shape = (shp[0], shp[1])
    mask = rasterize([(mapping(reproject(area, 4326, crs)), CLASSES["background"])], out_shape=out_shape,
                     transform=transform, fill=IGNORE, dtype="uint8")
    # Later outlines overwrite earlier ones where they overlap (file order, documented).
    shapes = [(mapping(reproject(o.shape, 4326, crs)), CLASSES[o.cls]) for o in aset.outlines if o.is_area]
    classes = rasterize(shapes, out_shape=out_shape, transform=transform, fill=IGNORE, dtype="uint8")
    mask = np.where(classes != IGNORE, classes, mask).astype(np.uint8)
    if valid is not None:
        mask[~valid] = IGNORE
    return mask


def class_table(counts: dict[int, int] | None = None) -> list[dict[str, Any]]:
    rows = [{"value": v, "name": n, "description": CLASS_DESCRIPTIONS[n],
             **({"color_hint": CLASS_COLOURS[n]} if n in CLASS_COLOURS else {})} for n, v in CLASSES.items()]
    rows.append({"value": IGNORE, "name": "ignore", "description": "not examined, or no image data", "nodata": True})
    if counts is not None:
        for r in rows:
            r["count"] = int(counts.get(r["value"], 0))
    return rows


def _annotation_fields(aset: AnnotationSet, event: Event) -> dict[str, Any]:
    artefacts = sorted({a for o in aset.outlines for a in o.artefacts})
    return {
        **event_fields(event),
        "mmtp:annotation_method": aset.method,
        "mmtp:annotator": "; ".join(aset.annotators),
        "mmtp:annotator_expertise": aset.expertise,
        "mmtp:confidence": aset.confidence,
        "mmtp:review_status": aset.review_status,
        **({"mmtp:artefacts": artefacts} if artefacts else {}),
    }


def _geometry(aset: AnnotationSet) -> dict[str, Any]:
    from shapely import union_all

    union = union_all([o.shape for o in aset.outlines])
    # Large sets (hundreds of flood polygons, thousands of graded buildings): the outlines are in the
    # asset already; the item's footprint is their convex hull, so that item JSON stays small.
    return mapping(union.convex_hull if len(aset.outlines) > 50 or union.geom_type == "MultiPoint" else union)


def vector_item(aset: AnnotationSet, event: Event, sources: list[tuple[str, dict[str, Any]]], item_dir: Path) -> dict[str, Any]:
    doc = _asset_doc(aset)
    write_json(item_dir / "labels.geojson", doc)
    geom = _geometry(aset)
    counts: dict[str, int] = {}
    for o in aset.outlines:
        counts[o.cls] = counts.get(o.cls, 0) + 1
    props: dict[str, Any] = {
        "title": aset.title,
        "description": aset.description or aset.title,
        "datetime": rfc3339(aset.observed),
        "license": "other",
        "label:type": "vector",
        "label:properties": ["class"],
        "label:classes": [{"name": "class", "classes": aset.classes}],
        "label:description": f"Outlines of {', '.join(aset.classes)} for event {event.id}",
        "label:tasks": TASKS if any(o.is_area for o in aset.outlines) else ["detection", "classification"],
        "label:methods": sorted({o.method for o in aset.outlines}),
        "label:overviews": [{"property_key": "class", "counts": [{"name": c, "count": counts[c]} for c in aset.classes]}],
        **_annotation_fields(aset, event),
    }
    if credit := aset.provenance.get("attribution"):
        props["description"] = f"{props['description']} {credit}."
    links = [
        {"rel": "source", "href": item_href(coll, it["id"]), "type": GEOJSON_MEDIA_TYPE, "title": it["id"]}
        for coll, it in sources
    ]
    links.append({"rel": "related", "href": item_href(EVENTS_COLLECTION, event.id), "type": GEOJSON_MEDIA_TYPE,
                  "title": "event"})
    links.append({"rel": "license", "href": _license_href(aset.license), "title": aset.license})
    if isinstance(aset.provenance.get("href"), str) and aset.provenance["href"].startswith("https://"):
        links.append({"rel": "via", "href": aset.provenance["href"], "type": "text/html",
                      "title": f"source product: {aset.provenance.get('product') or aset.provenance['href']}"})
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [LABEL, FILE, MMTP],
        "id": aset.item_id,
        "geometry": geom,
        "bbox": bbox_of(geom),
        "properties": props,
        "links": links,
        "assets": {
            "vector_labels": {"href": "./labels.geojson", "type": GEOJSON_MEDIA_TYPE, "title": "Outlines (GeoJSON)",
                              "roles": ["labels", "labels-vector"], **file_fields(item_dir / "labels.geojson")},
        },
    }


def _license_href(license_text: str) -> str:
    if license_text.upper().startswith("CC-BY"):
        return f"https://spdx.org/licenses/{license_text}.html"
    if "copernicus" in license_text.lower():
        return "https://emergency.copernicus.eu/mapping/ems/cite-copernicus-ems-mapping-portal"
    return "https://spdx.org/licenses/"


def _asset_doc(aset: AnnotationSet) -> dict[str, Any]:
    import json

    return json.loads(read_annotation(aset.path))


def mask_item(aset: AnnotationSet, event: Event, vector_id: str, coll: str, imagery: dict[str, Any], imagery_dir: Path,
              item_dir: Path, pre_event: dict[str, Any] | None = None) -> dict[str, Any]:
    keys, code, tr, shp = reference_grid(imagery)
    transform = Affine(*tr[:6])
    valid = _valid_pixels(imagery_dir / imagery["assets"][keys[0]]["href"], shp)
    mask = rasterise(aset, event, code, transform, shp, valid)
    values, n = np.unique(mask, return_counts=True)
    counts = dict(zip(values.tolist(), n.tolist(), strict=True))
    array_to_cog(mask, item_dir / "mask.tif", CRS.from_user_input(code), transform, nodata=IGNORE,
                 profile=CogProfile(overview_resampling="mode"), descriptions=["class"])
    product = imagery["id"].removeprefix(f"{event.id}_")
    p = imagery["properties"]
    names = {v: k for k, v in CLASSES.items()} | {IGNORE: "ignore"}
    props: dict[str, Any] = {
        "title": f"{aset.title}: mask on {product}",
        "description": f"Class mask of annotation {aset.item_id} on the grid of {imagery['id']} (assets {', '.join(keys)}).",
        "datetime": rfc3339(aset.observed),
        "license": "other",
        "label:type": "raster",
        "label:properties": None,
        "label:classes": [{"name": None, "classes": sorted(set(counts) | {CLASSES[c] for c in aset.classes})}],
        "label:description": f"uint8 class mask (0 background, {IGNORE} ignore) of {', '.join(aset.classes)}",
        "label:tasks": ["segmentation"],
        "label:methods": sorted({o.method for o in aset.outlines}),
        "label:overviews": [{"counts": [{"name": names[v], "count": counts[v]} for v in sorted(counts)]}],
        **_annotation_fields(aset, event),
        "mmtp:temporal_role": p.get("mmtp:temporal_role"),
        "mmtp:days_from_event": p.get("mmtp:days_from_event"),
    }
    props = {k: v for k, v in props.items() if v is not None or k == "label:properties"}
    if p.get(SYNTHETIC) is True:  # the grid and its no-data pixels come from a synthetic sample product
        props[SYNTHETIC] = True
        props["title"] = f"{SYNTHETIC_PREFIX} grid: {props['title']}"
        props["description"] = (f"{SYNTHETIC_PREFIX} grid: the outlines of {aset.item_id} rasterised on the grid of the "
                                f"synthetic sample item {imagery['id']} (its no-data pixels come from synthetic imagery, "
                                "not an observation). " + props["description"])
    links = [
        {"rel": "source", "href": item_href(coll, imagery["id"]), "type": GEOJSON_MEDIA_TYPE, "title": imagery["id"],
         "label:assets": keys},
        {"rel": "derived_from", "href": item_href(LABEL_COLLECTION, vector_id), "type": GEOJSON_MEDIA_TYPE,
         "title": "outlines"},
        {"rel": "license", "href": _license_href(aset.license), "title": aset.license},
    ]
    if pre_event is not None:  # change detection: the "before" image, on the mask's grid (labels.pre_event_pair)
        links.insert(1, {"rel": "related", "href": item_href(coll, pre_event["id"]), "type": GEOJSON_MEDIA_TYPE,
                         "title": f"pre-event image on the same grid: {pre_event['id']}", "ml-aoi:role": "feature",
                         "mmtp:temporal_role": "pre-event", "label:assets": keys})
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [LABEL, RASTER, PROJ, CLASSIFICATION, FILE, MMTP],
        "id": f"{aset.item_id}_{product}",
        "geometry": imagery["geometry"],
        "bbox": imagery.get("bbox") or bbox_of(imagery["geometry"]),
        "properties": props,
        "links": links,
        "assets": {
            "mask": {
                "href": "./mask.tif", "type": COG_MEDIA_TYPE, "title": "Class mask", "roles": ["data", "labels", "labels-raster"],
                "proj:code": code, "proj:transform": tr, "proj:shape": shp,
                "bands": [{"name": "class", "nodata": IGNORE, "data_type": "uint8", "raster:spatial_resolution": abs(tr[0])}],
                "classification:classes": class_table(counts),
                **file_fields(item_dir / "mask.tif"),
            },
        },
    }


def annotations_bundle(sets: list[AnnotationSet], events: list[Event], bundles: list[CollectionBundle],
                       stage: Path) -> CollectionBundle | None:
    """Write the label items' assets under `stage/annotations/` and return the collection bundle."""
    by_id = {ev.id: ev for ev in events}
    # Only the imagery of annotated events can be labelled (or be a pre-event pair): the build's other items
    # stream past (a bundle's items may be read from disk) and none is kept.
    annotated = {aset.event_id for aset in sets if aset.event_id in by_id}
    imagery = [(b.id, it) for b in bundles if b.id not in (EVENTS_COLLECTION, LABEL_COLLECTION) and annotated
               for it in b.items if it["properties"].get("mmtp:event_id") in annotated]
    items: list[dict[str, Any]] = []
    for aset in sets:
        ev = by_id.get(aset.event_id)
        if ev is None:
            continue
        sources = sorted([(c, it) for c, it in imagery if applies_to(aset, it)], key=lambda ci: ci[1]["id"])
        root = stage / LABEL_COLLECTION
        # Every annotation set becomes a vector label item, with source links to the imagery it labels
        # when the build holds some; masks need both imagery and outlines with an area (not points).
        vec = vector_item(aset, ev, sources, root / aset.item_id)
        items.append(vec)
        for coll, it in sources if any(o.is_area for o in aset.outlines) else ():
            mid = f"{aset.item_id}_{it['id'].removeprefix(f'{ev.id}_')}"
            items.append(mask_item(aset, ev, vec["id"], coll, it, stage / coll / it["id"], root / mid,
                                   pre_event_pair(coll, it, imagery)))
    if not items:
        return None
    coll = {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [LABEL, CLASSIFICATION, SCIENTIFIC, MMTP],
        **collection_metadata(LABEL_COLLECTION),
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
    }
    mark_collection(coll, items, None)
    set_extent(coll, items)
    coll["summaries"] = {
        "label:type": sorted({it["properties"]["label:type"] for it in items}),
        "label:tasks": sorted({t for it in items for t in it["properties"]["label:tasks"]}),
        **summarise(items, ["mmtp:phenomenon", "mmtp:event_id", "mmtp:annotation_method", "mmtp:review_status"]),
    }
    coll["item_assets"] = {
        "vector_labels": {"type": GEOJSON_MEDIA_TYPE, "roles": ["labels", "labels-vector"], "title": "Outlines (GeoJSON)"},
        "mask": {"type": COG_MEDIA_TYPE, "roles": ["data", "labels", "labels-raster"], "title": "Class mask",
                 "bands": [{"name": "class", "nodata": IGNORE, "data_type": "uint8"}], "classification:classes": class_table()},
    }
    return CollectionBundle(coll, items)
