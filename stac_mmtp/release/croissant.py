"""MLCommons Croissant 1.0 metadata (`croissant.json`) for a built tree or a release.

The distribution is the stac-geoparquet files the build writes (one `items.parquet` per collection):
the same index the search and the loaders read. Record sets: the events, one per imagery collection
(its acquisitions), the label items, and the splits (one record per event). Written as plain JSON-LD
(no run-time dependency); the tests validate it and load records with `mlcroissant`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
# The context mlcroissant 1.x writes for Croissant 1.0 documents.
CONTEXT: dict[str, Any] = {
    "@language": "en", "@vocab": "https://schema.org/", "citeAs": "cr:citeAs", "column": "cr:column",
    "conformsTo": "dct:conformsTo", "cr": "http://mlcommons.org/croissant/", "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"}, "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/", "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"}, "extract": "cr:extract", "field": "cr:field",
    "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject", "fileSet": "cr:fileSet", "format": "cr:format",
    "includes": "cr:includes", "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath", "key": "cr:key",
    "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path", "recordSet": "cr:recordSet",
    "references": "cr:references", "regex": "cr:regex", "repeated": "cr:repeated", "replace": "cr:replace",
    "samplingRate": "cr:samplingRate", "sc": "https://schema.org/", "separator": "cr:separator", "source": "cr:source",
    "subField": "cr:subField", "transform": "cr:transform",
}
PARQUET = "application/x-parquet"
# (column, Croissant data type, description) per record set kind; only columns present are declared
EVENT_FIELDS = (
    ("id", "sc:Text", "event id (catalog/events/<id>.geojson)"),
    ("title", "sc:Text", "event name"),
    ("mmtp:phenomenon", "sc:Text", "phenomenon class (mmtp extension vocabulary)"),
    ("mmtp:state", "sc:Text", "state of the phenomenon (ended, active...)"),
    ("datetime", "sc:Date", "time of an instantaneous event (UTC)"),
    ("start_datetime", "sc:Date", "start of an event that lasts (UTC)"),
    ("end_datetime", "sc:Date", "end of an event that lasts (UTC)"),
    ("ml-aoi:split", "sc:Text", "train / validate / test split (leakage-safe: cascades and neighbours share one)"),
)
IMAGERY_FIELDS = (
    ("id", "sc:Text", "STAC item id: <event id>_<product id>"),
    ("datetime", "sc:Date", "acquisition time (UTC)"),
    ("mmtp:event_id", "sc:Text", "the event this acquisition observes"),
    ("mmtp:temporal_role", "sc:Text", "pre-event, first-post-event, first-usable-post-event, post-event or co-event"),
    ("mmtp:days_from_event", "sc:Float", "days from the event (negative before it)"),
    ("platform", "sc:Text", "satellite"),
    ("ml-aoi:split", "sc:Text", "split"),
    ("mmtp:synthetic", "sc:Boolean", "true for the built-in synthetic sample products (never real data)"),
)
LABEL_FIELDS = (
    ("id", "sc:Text", "label item id"),
    ("mmtp:event_id", "sc:Text", "the event annotated"),
    ("label:type", "sc:Text", "vector or raster"),
    ("mmtp:annotator_expertise", "sc:Text", "expert, trained or draft"),
    ("mmtp:review_status", "sc:Text", "review status of the annotation"),
    ("ml-aoi:split", "sc:Text", "split"),
)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _record_set(rs_id: str, description: str, file_id: str, columns: set[str],
                spec: tuple[tuple[str, str, str], ...]) -> dict[str, Any]:
    fields = [{"@type": "cr:Field", "@id": f"{rs_id}/{col}", "name": col, "description": desc, "dataType": dtype,
               "source": {"fileObject": {"@id": file_id}, "extract": {"column": col}}}
              for col, dtype, desc in spec if col in columns]
    return {"@type": "cr:RecordSet", "@id": rs_id, "name": rs_id, "description": description, "field": fields}


def croissant(tree: Path, version: str | None = None, url: str | None = None, cite_as: str | None = None,
              date_published: str | None = None) -> dict[str, Any]:
    """The Croissant document of a built tree (paths relative to the tree root)."""
    import pyarrow.parquet as pq

    root = json.loads((tree / "catalog.json").read_text(encoding="utf-8"))
    distribution: list[dict[str, Any]] = []
    record_sets: list[dict[str, Any]] = []
    licences: dict[str, str] = {}
    for link in root.get("links", []):
        if link.get("rel") != "child":
            continue
        coll_path = (tree / link["href"]).resolve()
        coll = json.loads(coll_path.read_text(encoding="utf-8"))
        asset = next((a for a in coll.get("assets", {}).values() if "stac-items" in a.get("roles", [])), None)
        if asset is None:
            continue
        parquet = (coll_path.parent / asset["href"]).resolve()
        rel = parquet.relative_to(tree.resolve()).as_posix()
        cid = coll["id"]
        file_id = f"{cid}-items"
        licence_link = next((lk["href"] for lk in coll.get("links", []) if lk.get("rel") == "license"), None)
        licence = licence_link or coll.get("license", "")
        licences.setdefault(licence, cid)
        distribution.append({
            "@type": "cr:FileObject", "@id": file_id, "name": file_id,
            "description": f"stac-geoparquet items of the {cid} collection ({coll.get('title', cid)}); "
                           f"licence: {coll.get('license')}" + (f" ({licence_link})" if licence_link else ""),
            "contentUrl": rel, "encodingFormat": PARQUET, "sha256": _sha256(parquet),
        })
        columns = set(pq.read_schema(parquet).names)
        if cid == "events":
            record_sets.append(_record_set("events", "The inventory's events (one record per event).", file_id,
                                           columns, EVENT_FIELDS))
            if "ml-aoi:split" in columns:
                record_sets.append(_record_set("splits", "The split of each event (its imagery and labels share it).",
                                               file_id, columns, (EVENT_FIELDS[0], EVENT_FIELDS[-1])))
        elif cid == "annotations":
            record_sets.append(_record_set("labels", "Label items: vector delineations and raster masks on each "
                                           "imagery grid.", file_id, columns, LABEL_FIELDS))
        else:
            record_sets.append(_record_set(cid, f"Acquisitions of the {cid} collection around each event; the "
                                           "COG assets are listed in the items (parquet column `assets`).", file_id,
                                           columns, IMAGERY_FIELDS))
    doc: dict[str, Any] = {
        "@context": CONTEXT, "@type": "sc:Dataset", "conformsTo": CONFORMS_TO,
        "name": root.get("id", "stac-mmtp"), "description": root.get("description", ""),
        "license": sorted(h for h in licences if h.startswith("http")) or sorted(licences),
        "url": url or "https://github.com/stac-mmtp/stac-mmtp",
        "distribution": distribution, "recordSet": record_sets,
    }
    if version:
        doc["version"] = version
    if cite_as or root.get("sci:citation"):
        doc["citeAs"] = cite_as or root["sci:citation"]
    if date_published:
        doc["datePublished"] = date_published
    return doc
