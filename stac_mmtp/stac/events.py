"""The events collection: one item per inventory event, with cascade links in both directions."""

from __future__ import annotations

import json
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


def link_acquisitions(events: CollectionBundle, bundles: list[CollectionBundle]) -> None:
    """Link each event item to what the build made of it, so that its page lists them by name: the acquisitions
    under one link relation per temporal role (with their thumbnails as assets), and the annotations (label items).
    """
    by_event: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for b in bundles:
        if b.id == EVENTS_COLLECTION:
            continue
        for it in b.items:
            if (eid := it["properties"].get("mmtp:event_id")) is not None:
                by_event.setdefault(eid, []).append((b.id, it))
    for ev in events.items:
        found = sorted(by_event.get(ev["id"], []), key=lambda ci: (ci[1]["properties"].get("datetime")
                                                                     or ci[1]["properties"].get("start_datetime") or "",
                                                                     ci[1]["id"]))
        links, thumbs = [], {}
        for coll, it in found:
            props = it["properties"]
            title = props.get("title") or it["id"]
            if "label:type" in props:
                rel = REL_ANNOTATION
            elif (rel := props.get("mmtp:temporal_role")) not in TEMPORAL_ROLES:
                continue
            links.append({"rel": rel, "href": item_href(coll, it["id"]), "type": "application/geo+json", "title": title})
            thumb = (it.get("assets") or {}).get("thumbnail")
            if rel != REL_ANNOTATION and thumb and "://" not in thumb["href"]:
                thumbs[f"thumbnail-{coll}-{it['id']}"] = {
                    **thumb, "href": f"../../{coll}/{it['id']}/{thumb['href'].removeprefix('./')}",
                    "title": f"{rel}: {title}", "roles": ["thumbnail"]}
        links.sort(key=lambda lk: (TEMPORAL_ROLES + (REL_ANNOTATION,)).index(lk["rel"]))
        ev["links"] = [*ev["links"], *links]
        if thumbs:
            ev["assets"] = {**ev.get("assets", {}), **thumbs}
            if any("file:checksum" in a for a in thumbs.values()) and FILE not in ev["stac_extensions"]:
                ev["stac_extensions"] = [*ev["stac_extensions"], FILE]
