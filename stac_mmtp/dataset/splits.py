"""Leakage-safe train / validate / test splits, assigned per event group, written as `ml-aoi:split`.

All items of an event share its split. Events are grouped first, and a whole group goes to one
split: events linked by a cascade (an earthquake and the landslides it triggered), events whose
AOIs lie closer than `gap_m`, and (in a build) events whose written clips overlap are in the same
group, so no clip of one split overlaps a clip of another. The gap comes from the build's buffer:
each clip is the AOI's bounding box grown by the buffer and snapped outward to its product's pixel
grid (less than GRID_SNAP_M per side), so two AOIs further apart than split_gap_m(buffer) never
yield overlapping clips; the clips themselves are checked too, because a clip on a neighbouring
UTM zone's grid is rotated and so a little larger. Groups are visited in an order fixed by a hash of their ids and a
seed, and each goes to the split furthest below its target ratio (counted in events): the same
inventory, ratios and seed always give the same splits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import shapely
from shapely.geometry import box

from stac_mmtp.dataset.inventory import Event
from stac_mmtp.errors import InputError

SPLITS = ("train", "validate", "test")
DEFAULT_RATIOS = (0.7, 0.15, 0.15)
DEFAULT_SEED = "stac-mmtp"
# The coarsest output pixel a clip is snapped to (outward, so at most one pixel per side): the Sentinel-2
# tile's 60 m grid, Sentinel-1 GRD pixel spacing (<= 40 m), FLATSIM's 8-look lat/lon grid (about 92 m).
GRID_SNAP_M = 250.0
DEFAULT_BUFFER_M = 1000.0  # the build's default --buffer


def split_gap_m(buffer_m: float) -> float:
    """The distance under which two events share a split: each clip reaches buffer + snap beyond its AOI."""
    return 2 * (max(0.0, buffer_m) + GRID_SNAP_M)


DEFAULT_GAP_M = split_gap_m(DEFAULT_BUFFER_M)
MANIFEST = "splits.json"


def parse_ratios(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"expected three numbers train,validate,test (e.g. 0.7,0.15,0.15), got {text!r}",
                         field="--ratios") from None
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise InputError(f"expected three non-negative numbers train,validate,test, got {text!r}", field="--ratios")
    total = sum(parts)
    return (parts[0] / total, parts[1] / total, parts[2] / total)


def _grown_bbox(ev: Event, gap_m: float) -> shapely.Geometry:
    """The AOI's bounding box in its UTM zone (as the clips are cut) grown by gap_m / 2 on each side,
    back in lon/lat with densified edges (metres, not degrees at one latitude: a large buffer is exact)."""
    from stac_mmtp.raster.geo import reproject, utm_epsg

    epsg = utm_epsg(*ev.site)
    minx, miny, maxx, maxy = reproject(ev.shape, 4326, epsg).bounds
    half = gap_m / 2
    grown = shapely.segmentize(box(minx - half, miny - half, maxx + half, maxy + half), 500.0)
    return reproject(grown, epsg, 4326)


def clip_footprints(items: list[dict[str, Any]]) -> dict[str, list[shapely.Geometry]]:
    """event id -> the lon/lat outlines of its written clips: each asset's proj:bbox in its proj:code."""
    from stac_mmtp.raster.geo import reproject

    out: dict[str, list[shapely.Geometry]] = {}
    for it in items:
        eid = it.get("properties", {}).get("mmtp:event_id")
        if not eid:
            continue
        seen = set()
        for a in (it.get("assets") or {}).values():
            bbox, code = a.get("proj:bbox"), a.get("proj:code") or it["properties"].get("proj:code")
            if not bbox or not code or (tuple(bbox), code) in seen:
                continue
            seen.add((tuple(bbox), code))
            outline = box(*bbox)
            if code != "EPSG:4326":
                step = max(bbox[2] - bbox[0], bbox[3] - bbox[1]) / 20 or 1.0
                outline = reproject(shapely.segmentize(outline, step), code, 4326)
            out.setdefault(eid, []).append(outline)
    return out


def split_groups(events: list[Event], gap_m: float = DEFAULT_GAP_M,
                 clips: dict[str, list[shapely.Geometry]] | None = None) -> list[list[str]]:
    """Connected groups of events (cascade links, AOIs within gap_m, overlapping `clips`), each sorted,
    in a stable order."""
    parent = {ev.id: ev.id for ev in events}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for ev in events:
        for trig in ev.triggered_by:
            if trig in parent:
                union(ev.id, trig)
    boxes = [_grown_bbox(ev, gap_m) for ev in events]
    tree = shapely.STRtree(boxes)
    for i, j in zip(*tree.query(boxes, predicate="intersects"), strict=True):
        if i < j:
            union(events[i].id, events[j].id)
    owners = [(eid, g) for eid, geoms in sorted((clips or {}).items()) if eid in parent for g in geoms]
    if owners:
        outlines = [g for _, g in owners]
        ctree = shapely.STRtree(outlines)
        for i, j in zip(*ctree.query(outlines, predicate="intersects"), strict=True):
            union(owners[i][0], owners[j][0])
    groups: dict[str, list[str]] = {}
    for eid in sorted(parent):
        groups.setdefault(find(eid), []).append(eid)
    return sorted(groups.values())


def assign_splits(events: list[Event], ratios: tuple[float, float, float] = DEFAULT_RATIOS, seed: str = DEFAULT_SEED,
                  gap_m: float = DEFAULT_GAP_M, clips: dict[str, list[shapely.Geometry]] | None = None) -> dict[str, str]:
    """event id -> split."""
    groups = split_groups(events, gap_m, clips)
    order = sorted(groups, key=lambda g: hashlib.sha256(f"{seed}\0{g[0]}".encode()).hexdigest())
    counts = dict.fromkeys(SPLITS, 0)
    out: dict[str, str] = {}
    for g in order:
        total = sum(counts.values()) + len(g)
        # the split with the largest deficit once this group is counted; ties go to the earlier split
        best = max(SPLITS, key=lambda s: (ratios[SPLITS.index(s)] * total - counts[s], -SPLITS.index(s)))
        counts[best] += len(g)
        for eid in g:
            out[eid] = best
    return out


def manifest(items: Iterable[tuple[str, dict[str, Any]]], assignment: dict[str, str], events: list[Event],
             ratios: tuple[float, float, float], seed: str, gap_m: float,
             clips: dict[str, list[shapely.Geometry]] | None = None) -> dict[str, Any]:
    """Ids per split (collection/item), the groups, and a sha256 over the id lists to pin a release."""
    per_split: dict[str, list[str]] = {s: [] for s in SPLITS}
    for coll, it in items:
        s = it["properties"].get("ml-aoi:split")
        if s in per_split:
            per_split[s].append(f"{coll}/{it['id']}")
    per_split = {s: sorted(v) for s, v in per_split.items()}
    digest = hashlib.sha256(json.dumps(per_split, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return {
        "ratios": dict(zip(SPLITS, ratios, strict=True)),
        "seed": seed,
        "gap_m": gap_m,
        "groups": [{"split": assignment[g[0]], "events": g} for g in split_groups(events, gap_m, clips)],
        "items": per_split,
        "sha256": digest,
    }


def write_manifest(out: IO[str], per_split: Callable[[str], Iterator[str]], assignment: dict[str, str],
                   events: list[Event], ratios: tuple[float, float, float], seed: str, gap_m: float,
                   clips: dict[str, list[shapely.Geometry]] | None = None) -> None:
    """The same text as `dumps_json(manifest(...))`, written to `out` without holding the id lists:
    `per_split(s)` yields split s's "collection/item" ids in ascending order, and is called once per
    split for the digest, then once per split for the lists (a million ids are about 150 MB as a list)."""
    digest = hashlib.sha256(b"{")
    for i, s in enumerate(sorted(SPLITS)):  # json.dumps(per_split, sort_keys=True, separators=(",", ":"))
        digest.update((b"," if i else b"") + json.dumps(s).encode() + b":[")
        for j, key in enumerate(per_split(s)):
            digest.update((b"," if j else b"") + json.dumps(key).encode())
        digest.update(b"]")
    digest.update(b"}")
    marks = {s: f"\0split:{s}\0" for s in SPLITS}  # placeholders no id can hold (JSON escapes NUL)
    head = {
        "ratios": dict(zip(SPLITS, ratios, strict=True)),
        "seed": seed,
        "gap_m": gap_m,
        "groups": [{"split": assignment[g[0]], "events": g} for g in split_groups(events, gap_m, clips)],
        "items": marks,
        "sha256": digest.hexdigest(),
    }
    text = json.dumps(head, indent=2, ensure_ascii=False) + "\n"
    for s in SPLITS:
        before, text = text.split(json.dumps(marks[s]), 1)
        out.write(before)
        n = 0
        for key in per_split(s):
            out.write(("[\n      " if not n else ",\n      ") + json.dumps(key, ensure_ascii=False))
            n += 1
        out.write("\n    ]" if n else "[]")
    out.write(text)
