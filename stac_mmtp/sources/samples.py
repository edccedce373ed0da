"""`stac-mmtp sample DIR`: small but format-faithful products for real events of the inventory.

The project writes these itself (nothing is copied from third-party data). They are synthetic: each
holds the `synthetic.MARKER` file, so that everything built from it says so. Each product family
contributes a writer `write_samples(out: Path, events: list[Event]) -> list[Path]` in its own
module; this module picks the events and calls them.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from pathlib import Path

from stac_mmtp.dataset.inventory import Event, load_inventory
from stac_mmtp.paths import default_events_dir

# (writer, event ids it writes products for). Ids must exist in catalog/events.
WRITERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("stac_mmtp.sources.sentinel2.samples:write_samples", ("gjerdrum-landslide-2020", "veneto-flash-flood-2018")),
    ("stac_mmtp.sources.sentinel1.samples:write_samples", ("gjerdrum-landslide-2020", "veneto-flash-flood-2018")),
    ("stac_mmtp.sources.flatsim.samples:write_samples", ("la-clapiere-landslide-2014", "laurichard-rock-glacier-2014")),
)


def _resolve(spec: str):  # noqa: ANN202 - a callable from "module:function"
    mod, func = spec.split(":")
    try:
        module = importlib.import_module(mod)
    except ModuleNotFoundError as exc:
        if exc.name == mod:
            return None
        raise
    return getattr(module, func)


def _move_into_place(staged: Path, final: Path) -> None:
    """Rename a finished product over `final` (a directory product is swapped, its old copy removed last)."""
    if final.is_dir() and not final.is_symlink():
        aside = final.with_name(f".{final.name}.old")
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(final, aside)
        os.replace(staged, final)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(staged, final)


def write_samples(out: Path, events_dir: Path | None = None) -> list[Path]:
    """Each writer works in a hidden staging directory inside `out` (same file system, so the moves are
    renames); a product appears in `out` only once it is complete, and an interrupted run leaves none
    half-written (the staging directory is removed; discovery skips hidden entries anyway)."""
    events = {ev.id: ev for ev in load_inventory(events_dir or default_events_dir())}
    written: list[Path] = []
    out.mkdir(parents=True, exist_ok=True)
    for spec, ids in WRITERS:
        writer = _resolve(spec)
        if writer is None:
            continue
        chosen: list[Event] = [events[i] for i in ids if i in events]
        stage = Path(tempfile.mkdtemp(prefix=".sample-", suffix=".part", dir=out))
        try:
            for staged in writer(stage, chosen):
                final = out / staged.relative_to(stage)
                final.parent.mkdir(parents=True, exist_ok=True)
                _move_into_place(staged, final)
                written.append(final)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return written
