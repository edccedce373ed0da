"""Choose, per stack of comparable acquisitions, the images an event needs.

A stack groups acquisitions that share their geometry so that pre/post pairs compare like with
like: Sentinel-2 by MGRS tile, Sentinel-1 by relative orbit + orbit direction + mode + polarisations.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stac_mmtp.dataset.inventory import Event
from stac_mmtp.discover.geometry import aoi_coverage
from stac_mmtp.discover.redact import redact

ROLE_ORDER = ("pre-event", "co-event", "first-post-event", "first-usable-post-event", "post-event")


@dataclass(frozen=True)
class Selection:
    pre_event: int = 2
    min_coverage: float = 0.9  # fraction of the AOI an optical image must cover to be usable
    max_cloud: float = 20.0  # percent of cloud an optical image may have to be usable
    all: bool = False
    aoi_cloud: bool = False


def parse_dt(value: str) -> datetime:
    # Planetary Computer writes some date-times with a space instead of "T" (a real quirk)
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1))


def iso(dt: datetime) -> str:
    """One spelling of a date-time whatever the server wrote: UTC, "Z", no trailing zero digits."""
    text = dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


def item_times(item: dict[str, Any]) -> tuple[datetime, datetime]:
    p = item.get("properties", {})
    start = p.get("start_datetime") or p.get("datetime")
    end = p.get("end_datetime") or p.get("datetime") or start
    return parse_dt(start), parse_dt(end)


_TILE = re.compile(r"_T?(\d{2}[C-X][A-Z]{2})_")


def mgrs_tile(item: dict[str, Any]) -> str:
    p = item.get("properties", {})
    if p.get("mgrs:utm_zone") is not None:
        return f"{int(p['mgrs:utm_zone']):02d}{p.get('mgrs:latitude_band', '')}{p.get('mgrs:grid_square', '')}"
    if p.get("s2:mgrs_tile"):
        return str(p["s2:mgrs_tile"])
    if p.get("sentinel:utm_zone") is not None:
        return f"{int(p['sentinel:utm_zone']):02d}{p.get('sentinel:latitude_band', '')}{p.get('sentinel:grid_square', '')}"
    if str(p.get("grid:code", "")).startswith("MGRS-"):
        return p["grid:code"][5:]
    m = _TILE.search(item.get("id", ""))
    return m.group(1) if m else "unknown"


def stack_key(modality: str, item: dict[str, Any]) -> str:
    p = item.get("properties", {})
    if modality == "s2":
        return f"MGRS-{mgrs_tile(item)}"
    pols = "+".join(p.get("sar:polarizations") or []) or "unknown"
    orbit = p.get("sat:relative_orbit", "unknown")
    return f"{p.get('sat:orbit_state', 'unknown')}-{orbit}-{p.get('sar:instrument_mode', 'unknown')}-{pols}"


def platform(item: dict[str, Any]) -> str:
    p = item.get("properties", {})
    return str(p.get("platform") or item.get("id", "")[:3]).lower()


def datatake_key(modality: str, item: dict[str, Any]) -> tuple[str, ...]:
    """Reprocessings of one acquisition share this key (same platform, stack and sensing minute)."""
    start, _ = item_times(item)
    return (platform(item), stack_key(modality, item), start.strftime("%Y-%m-%dT%H:%M"))


def version_key(item: dict[str, Any]) -> tuple[str, str, str]:
    """Newest first: the highest processing baseline, then the latest creation, then the id."""
    p = item.get("properties", {})
    baseline = str(p.get("s2:processing_baseline") or p.get("sentinel:processing_baseline") or p.get("processing:version") or "")
    created = str(p.get("created") or p.get("updated") or "")
    return (baseline, created, item.get("id", ""))


def dedupe(modality: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    best: dict[tuple[str, ...], dict[str, Any]] = {}
    for it in items:
        k = datatake_key(modality, it)
        if k not in best or version_key(it) > version_key(best[k]):
            best[k] = it
    return sorted(best.values(), key=lambda it: (item_times(it)[0], it["id"]))


def _assets(item: dict[str, Any]) -> dict[str, str]:
    """The assets a conversion reads: COG/GeoTIFF rasters and XML metadata, never JP2 duplicates or previews."""
    out = {}
    for key, a in sorted(item.get("assets", {}).items()):
        mt = str(a.get("type", "")).lower()
        href = str(a.get("href", ""))
        path = href.split("?", 1)[0].lower()
        if "tiff" in mt or "xml" in mt or path.endswith((".tif", ".tiff", ".xml", ".safe")):
            if "jp2" in mt or path.endswith(".jp2") or "thumbnail" in (a.get("roles") or []):
                continue
            out[key] = redact(href)
    return out


def _self_href(item: dict[str, Any]) -> str | None:
    for link in item.get("links", []):
        if link.get("rel") == "self":
            return redact(link["href"])
    return None


SOURCE_ID_KEYS = ("s2:product_uri", "s2:granule_id", "s2:datatake_id", "sentinel:product_id", "s1:product_identifier",
                  "s1:datatake_id", "s1:product_timeliness")


def select(event: Event, modality: str, provider: str, collection: str, items: list[dict[str, Any]],
           sel: Selection, cloud_reader: Callable[[dict[str, Any]], float | None] | None = None) -> list[dict[str, Any]]:
    """The acquisition records of one (event, modality) search, sorted by stack, time and id."""
    stacks: dict[str, list[dict[str, Any]]] = {}
    for it in dedupe(modality, items):
        stacks.setdefault(stack_key(modality, it), []).append(it)
    records: list[dict[str, Any]] = []
    for stack, members in sorted(stacks.items()):
        roles: dict[str, list[str]] = {}
        info: dict[str, dict[str, Any]] = {}
        pre, post, co = [], [], []
        for it in members:
            start, end = item_times(it)
            cov = aoi_coverage(it.get("geometry") or {}, event.geometry)
            cloud, method = None, None
            if modality == "s2":
                if sel.aoi_cloud and cloud_reader is not None:
                    cloud, method = cloud_reader(it), "scl-over-aoi"
                else:
                    cc = it.get("properties", {}).get("eo:cloud_cover")
                    cloud, method = (round(float(cc), 4) if cc is not None else None), "eo:cloud_cover"
            if end < event.start:
                role, days = "pre-event", (start - event.start).total_seconds() / 86400
                pre.append(it)
            elif start > event.end:
                role, days = "post-event", (start - event.end).total_seconds() / 86400
                post.append(it)
            else:
                role, days = "co-event", (start - event.start).total_seconds() / 86400
                co.append(it)
            info[it["id"]] = {"item": it, "role": role, "days": round(days, 3), "coverage": cov, "cloud": cloud,
                              "cloud_method": method}
            if sel.all:
                roles.setdefault(it["id"], []).append(role)
        for it in pre[-sel.pre_event:] if sel.pre_event > 0 else []:
            roles.setdefault(it["id"], []).append("pre-event")
        if co and "co-event" not in roles.get(co[0]["id"], []):  # the earliest image during a lasting event
            roles.setdefault(co[0]["id"], []).append("co-event")
        if post:
            roles.setdefault(post[0]["id"], []).append("first-post-event")
        for it in post:
            d = info[it["id"]]
            usable = modality != "s2" or (
                d["coverage"] >= sel.min_coverage and d["cloud"] is not None and d["cloud"] <= sel.max_cloud)
            if usable:
                roles.setdefault(it["id"], []).append("first-usable-post-event")
                break
        for iid, rs in roles.items():
            d = info[iid]
            it = d["item"]
            props = it.get("properties", {})
            rec: dict[str, Any] = {
                "modality": modality,
                "provider": provider,
                "collection": collection,
                "item_id": iid,
                "datetime": iso(item_times(it)[0] if not props.get("datetime") else parse_dt(props["datetime"])),
                "roles": sorted(set(rs), key=ROLE_ORDER.index),
                "days_from_event": d["days"],
                "stack": stack,
                "aoi_coverage": d["coverage"],
            }
            if modality == "s2":
                rec["cloud"] = {"percent": d["cloud"], "method": d["cloud_method"]}
            rec["source_ids"] = {k: props[k] for k in SOURCE_ID_KEYS if props.get(k) is not None}
            rec["self_href"] = _self_href(it)
            rec["assets"] = _assets(it)
            records.append(rec)
    records.sort(key=lambda r: (r["stack"], r["datetime"] or "", r["item_id"]))
    return records
