"""The events collection: one item per inventory event, with cascade links in both directions."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stac_mmtp.dataset.inventory import Event
from stac_mmtp.paths import catalog_source_dir
from stac_mmtp.stac import FILE, MMTP, SCIENTIFIC
from stac_mmtp.stac.tree import STAC_VERSION, CollectionBundle, bbox_of, item_href, set_extent, summarise

EVENTS_COLLECTION = "events"
# Link relations for cascades (the names Monty uses between hazards).
REL_TRIGGERS = "triggers-hazard"
REL_TRIGGERED_BY = "triggered-by-hazard"


def rfc3339(dt: Any) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def collection_metadata(collection_id: str, source: Path | None = None) -> dict[str, Any]:
    """Collection metadata (title, licence, providers, citation) kept in `catalog/collections/<id>.json`."""
    path = (source or catalog_source_dir()) / "collections" / f"{collection_id}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def sample_collection_metadata(collection_id: str, source: Path | None = None) -> dict[str, Any] | None:
    """What a collection made only of synthetic sample items says instead (`catalog/collections/samples/<id>.json`)."""
    path = (source or catalog_source_dir()) / "collections" / "samples" / f"{collection_id}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def root_catalog_metadata(source: Path | None = None) -> dict[str, Any]:
    meta = json.loads(((source or catalog_source_dir()) / "catalog.json").read_text(encoding="utf-8"))
    return {"type": "Catalog", "stac_version": STAC_VERSION, **meta}


def event_fields(ev: Event) -> dict[str, Any]:
    """The `mmtp:` fields that every item about this event carries."""
    fields: dict[str, Any] = {"mmtp:event_id": ev.id, "mmtp:phenomenon": ev.phenomenon}
    if ev.instant:
        fields["mmtp:event_datetime"] = rfc3339(ev.start)
    else:
        fields["mmtp:event_start_datetime"] = rfc3339(ev.start)
        fields["mmtp:event_end_datetime"] = rfc3339(ev.end)
    return fields


def event_item(ev: Event, titles: dict[str, str] | None = None) -> dict[str, Any]:
    """The item of one event; `titles` (event id -> title) titles its cascade links, as STAC Browser lists them."""
    titles = titles or {}
    props: dict[str, Any] = {"title": ev.title, "description": ev.description}
    if ev.instant:
        props["datetime"] = rfc3339(ev.start)
    else:
        props.update(datetime=None, start_datetime=rfc3339(ev.start), end_datetime=rfc3339(ev.end))
    props.update(event_fields(ev))
    props["mmtp:state"] = ev.state
    if ev.hazard_codes:
        props["mmtp:hazard_codes"] = list(ev.hazard_codes)
    if ev.glide:
        props["mmtp:glide"] = ev.glide
    props["mmtp:countries"] = list(ev.countries)
    if ev.triggered_by:
        props["mmtp:triggered_by"] = list(ev.triggered_by)
    if ev.triggers:
        props["mmtp:triggers"] = list(ev.triggers)
    extensions = [MMTP]
    dois = [r for r in ev.references if r.doi]
    if dois:
        extensions.insert(0, SCIENTIFIC)
        props["sci:doi"] = dois[0].doi
        if len(dois) > 1:
            props["sci:publications"] = [{"doi": r.doi, "citation": r.title} for r in dois[1:]]
    links = [
        *[{"rel": REL_TRIGGERED_BY, "href": item_href(EVENTS_COLLECTION, t), "type": "application/geo+json",
           **({"title": titles[t]} if t in titles else {})} for t in ev.triggered_by],
        *[{"rel": REL_TRIGGERS, "href": item_href(EVENTS_COLLECTION, t), "type": "application/geo+json",
           **({"title": titles[t]} if t in titles else {})} for t in ev.triggers],
        *[
            {"rel": "cite-as" if r.doi else "about", "href": r.url, "title": r.title, "type": "text/html"}
            for r in ev.references
        ],
    ]
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": extensions,
        "id": ev.id,
        "geometry": ev.geometry,
        "bbox": bbox_of(ev.geometry),
        "properties": props,
        "links": links,
        "assets": {},
    }


def events_bundle(events: list[Event], source: Path | None = None) -> CollectionBundle:
    titles = {ev.id: ev.title for ev in events}
    items = [event_item(ev, titles) for ev in events]
    coll: dict[str, Any] = {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [SCIENTIFIC, MMTP],
        **collection_metadata(EVENTS_COLLECTION, source),
    }
    coll["extent"] = {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}}
    set_extent(coll, items)
    coll["summaries"] = summarise(items, ["mmtp:phenomenon", "mmtp:state", "mmtp:countries", "mmtp:hazard_codes"])
    coll.setdefault("links", [])
    coll["links"] = [*coll["links"], {"rel": "license", "href": "https://spdx.org/licenses/CC-BY-4.0.html", "type": "text/html"}]
    return CollectionBundle(coll, items)


# The order in which an event page lists its acquisitions (each temporal role is a link relation).
TEMPORAL_ROLES = ("pre-event", "co-event", "first-post-event", "first-usable-post-event", "post-event")
REL_ANNOTATION = "annotation"


@dataclass(frozen=True, slots=True)
class Acquisition:
    """What an event item's links need of one item the build made of the event (not the item itself)."""

    event_id: str
    when: str  # datetime or start_datetime: the order of an event page's list
    collection: str
    item_id: str
    rel: str  # a temporal role, or REL_ANNOTATION for a label item
    title: str
    thumbnail: dict[str, Any] | None  # its local thumbnail asset, linked from the event item


def acquisition(collection: str, item: dict[str, Any]) -> Acquisition | None:
    """The facts of one item for `link_acquisitions`, or None when it links to no event."""
    props = item["properties"]
    if (eid := props.get("mmtp:event_id")) is None:
        return None
    if "label:type" in props:
        rel = REL_ANNOTATION
    elif (rel := props.get("mmtp:temporal_role")) not in TEMPORAL_ROLES:
        return None
    else:
        rel = TEMPORAL_ROLES[TEMPORAL_ROLES.index(rel)]  # one shared string, not one per item
    thumb = (item.get("assets") or {}).get("thumbnail")
    if rel == REL_ANNOTATION or not thumb or "://" in thumb["href"]:
        thumb = None
    return Acquisition(eid, props.get("datetime") or props.get("start_datetime") or "", collection, item["id"], rel,
                       props.get("title") or item["id"], thumb)


def acquisitions(bundles: Iterable[CollectionBundle]) -> list[Acquisition]:
    """The `Acquisition` of every item of `bundles` that links to an event (the events collection aside)."""
    return [a for b in bundles if b.id != EVENTS_COLLECTION for it in b.items
            if (a := acquisition(b.id, it)) is not None]


# The order of an event item's acquisition links: by relation (temporal role, then the annotations), then
# by time and item id (then in the order they were found).
LINK_ORDER = (*TEMPORAL_ROLES, REL_ANNOTATION)


def link_order(a: Acquisition) -> tuple[int, str, str]:
    return LINK_ORDER.index(a.rel), a.when, a.item_id


def _nearer(a: Acquisition, best: Acquisition) -> bool:
    """Is `a` nearer the event than `best` (the same role): the latest before it, else the earliest; ties by id."""
    if a.when != best.when:
        return a.when > best.when if a.rel == "pre-event" else a.when < best.when
    return a.item_id < best.item_id


def linked_event(ev: dict[str, Any], found: Iterable[Acquisition]) -> dict[str, Any]:
    """The event item `ev` with its links to `found` (its acquisitions, in `link_order`) and their thumbnails.

    One link per acquisition; one thumbnail per (temporal role, collection), `thumbnail-<role>-<collection>`,
    the one of the acquisition nearest the event: the asset keys are the same across the collection's
    items (as STAC has them, and the events' `items.parquet` gets one struct field per key, not one per
    acquisition)."""
    links: list[dict[str, Any]] = []
    nearest: dict[tuple[int, str], Acquisition] = {}
    for a in found:
        links.append({"rel": a.rel, "href": item_href(a.collection, a.item_id), "type": "application/geo+json",
                      "title": a.title})
        if a.thumbnail is not None:
            key = (LINK_ORDER.index(a.rel), a.collection)
            if (best := nearest.get(key)) is None or _nearer(a, best):
                nearest[key] = a
    ev = {**ev, "links": [*ev["links"], *links]}
    if nearest:
        thumbs = {}
        for (_, coll), a in sorted(nearest.items(), key=lambda kv: kv[0]):
            thumb = a.thumbnail or {}
            thumbs[f"thumbnail-{a.rel}-{coll}"] = {
                **thumb, "href": f"../../{coll}/{a.item_id}/{thumb['href'].removeprefix('./')}",
                "title": f"{a.rel}: {a.title}", "roles": ["thumbnail"]}
        ev["assets"] = {**ev.get("assets", {}), **thumbs}
        if any("file:checksum" in t for t in thumbs.values()) and FILE not in ev["stac_extensions"]:
            ev["stac_extensions"] = [*ev["stac_extensions"], FILE]
    return ev


def link_acquisitions(events: CollectionBundle, bundles: list[CollectionBundle],
                      found: Iterable[Acquisition] | None = None) -> None:
    """Link each event item (in place) to what the build made of it, so that its page lists them by name: the
    acquisitions under one link relation per temporal role (with thumbnails as assets: `linked_event`), and the
    annotations (label items). `found`: their `Acquisition` facts, in bundle order, instead of reading them
    off `bundles`' items. The build's reduce keeps them in SQLite instead (build/spool.py `LinkedEvents`):
    the same items, without every item's facts in memory."""
    by_event: dict[str, list[Acquisition]] = {}
    for a in acquisitions(bundles) if found is None else found:
        by_event.setdefault(a.event_id, []).append(a)
    for ev in events.items:
        linked = linked_event(ev, sorted(by_event.get(ev["id"], []), key=link_order))
        ev.clear()
        ev.update(linked)
