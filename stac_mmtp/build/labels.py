"""The build's dataset step: label items + masks from the expert annotations, then splits on every item."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
        manifest,
    )

    events = load_inventory(events_dir)
    sets = load_annotations(annotations_dir, events, only_known_events=True) if annotations_dir else []
    ratios = ratios or DEFAULT_RATIOS
    seed = seed or DEFAULT_SEED
    gap = DEFAULT_GAP_M if gap_m is None else gap_m

    def extra(evs: list[Event], bundles: list, stage: Path) -> list:
        from stac_mmtp.atomic import write_json
        from stac_mmtp.stac.labels import annotations_bundle

        extra_bundles = []
        labels = annotations_bundle(sets, evs, bundles, stage)
        if labels is not None:
            extra_bundles.append(labels)
        everything = [(b.id, it) for b in [*bundles, *extra_bundles] for it in b.items]
        clips = clip_footprints([it for _, it in everything])  # events whose written clips overlap share a split
        assignment = assign_splits(evs, ratios, seed, gap, clips)
        apply_splits([it for _, it in everything], assignment)
        for b in [*bundles, *extra_bundles]:  # which splits a collection holds, without reading its items
            if found := sorted({it["properties"]["ml-aoi:split"] for it in b.items if "ml-aoi:split" in it["properties"]}):
                b.collection.setdefault("summaries", {})["ml-aoi:split"] = found
        write_json(stage / MANIFEST, manifest(everything, assignment, evs, ratios, seed, gap, clips))
        return extra_bundles

    return extra
