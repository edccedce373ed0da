"""The build's dataset step: label items + masks from the expert annotations, then splits on every item."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import shapely

from stac_mmtp.dataset.annotations import load_annotations
from stac_mmtp.dataset.inventory import Event, load_inventory


def apply_splits(items: list[dict[str, Any]], assignment: dict[str, str]) -> None:
    """Set `ml-aoi:split` on every item that belongs to an event (its mmtp:event_id)."""
    from stac_mmtp.stac import ML_AOI

    for it in items:
        eid = it["properties"].get("mmtp:event_id")
        if eid not in assignment:
            continue
        it["properties"]["ml-aoi:split"] = assignment[eid]
        exts = it.setdefault("stac_extensions", [])
        if ML_AOI not in exts:
            exts.append(ML_AOI)


def dataset_hook(annotations_dir: Path | None, events_dir: Path, ratios: tuple[float, float, float] | None = None,
                 seed: str | None = None, gap_m: float | None = None):  # noqa: ANN201 - the build's extra_bundles callable
    """The `extra_bundles` step of `build.build`: label items + masks, then splits on every item.

    Annotations are loaded and checked now, before any conversion, so that a bad file stops the
    build with exit status 2 and nothing written.
    """
    from stac_mmtp.dataset.splits import (
        DEFAULT_GAP_M,
        DEFAULT_RATIOS,
        DEFAULT_SEED,
        MANIFEST,
        assign_splits,
        clip_footprints,
        write_manifest,
    )

    events = load_inventory(events_dir)
    sets = load_annotations(annotations_dir, events, only_known_events=True) if annotations_dir else []
    ratios = ratios or DEFAULT_RATIOS
    seed = seed or DEFAULT_SEED
    gap = DEFAULT_GAP_M if gap_m is None else gap_m

    def extra(evs: list[Event], bundles: list, stage: Path) -> list:
        from stac_mmtp.atomic import staged_file
        from stac_mmtp.build.spool import MappedItems, is_stream
        from stac_mmtp.stac.labels import annotations_bundle

        extra_bundles = []
        labels = annotations_bundle(sets, evs, bundles, stage)
        if labels is not None:
            extra_bundles.append(labels)
        every = [*bundles, *extra_bundles]
        # One pass over every item (a streamed bundle's are read back from disk, one at a time): the clips
        # (deduplicated per event: the split groups depend only on which outlines meet), and, of a streamed
        # bundle, its event ids (its split summary). The manifest reads a stream's ids off the spool's index.
        clips: dict[str, dict[bytes, Any]] = {}
        streamed: dict[str, Any] = {}  # bundle id -> its stream, as the reduce gave it (before the splits' mapping)
        event_ids: dict[str, set[str | None]] = {}
        for b in every:
            if is_stream(b.items):
                streamed[b.id], seen = b.items, event_ids.setdefault(b.id, set())
            for it in b.items:
                for eid, outlines in clip_footprints([it]).items():
                    mine = clips.setdefault(eid, {})
                    for g in outlines:
                        mine.setdefault(shapely.to_wkb(g), g)
                if b.id in streamed:
                    seen.add(it["properties"].get("mmtp:event_id"))
        clip_lists = {eid: list(gs.values()) for eid, gs in clips.items()}  # events whose written clips overlap share a split
        assignment = assign_splits(evs, ratios, seed, gap, clip_lists)
        for b in every:
            if not is_stream(b.items):
                apply_splits(b.items, assignment)
                found = sorted({it["properties"]["ml-aoi:split"] for it in b.items if "ml-aoi:split" in it["properties"]})
            else:
                b.items = MappedItems(b.items, partial(_with_split, assignment=assignment))
                found = sorted({assignment[eid] for eid in event_ids[b.id] if eid in assignment})
            if found:  # which splits a collection holds, without reading its items
                b.collection.setdefault("summaries", {})["ml-aoi:split"] = found

        keys = {bid: _ids_and_events(items) for bid, items in streamed.items()}

        def per_split(s: str) -> Iterator[str]:
            """Split s's "collection/item" ids in ascending order: each bundle's stream is in ascending id order,
            so the key with its collection's prefix is too, and the bundles' are merged."""
            def run(b: Any) -> Iterator[str]:
                if b.id in keys:
                    return (f"{b.id}/{iid}" for iid, eid in keys[b.id]() if assignment.get(eid) == s)
                return iter(sorted(f"{b.id}/{it['id']}" for it in b.items if it["properties"].get("ml-aoi:split") == s))

            return heapq.merge(*(run(b) for b in every))

        with staged_file(stage / MANIFEST) as tmp, open(tmp, "w", encoding="utf-8") as f:
            write_manifest(f, per_split, assignment, evs, ratios, seed, gap, clip_lists)
        return extra_bundles

    return extra


def _with_split(item: dict[str, Any], assignment: dict[str, str]) -> dict[str, Any]:
    apply_splits([item], assignment)
    return item


def _ids_and_events(items: Iterable[dict[str, Any]]) -> Callable[[], Iterator[tuple[str, str | None]]]:
    """(id, mmtp:event_id) of a stream's items in its order, as often as asked: off the spool's index
    (build/spool.py SpooledItems.keys) without reading an item, else read once and kept."""
    if callable(getattr(items, "keys", None)):
        return items.keys  # type: ignore[attr-defined,no-any-return]
    kept = [(it["id"], it["properties"].get("mmtp:event_id")) for it in items]
    return lambda: iter(kept)
