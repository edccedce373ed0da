"""`stac-mmtp sample DIR`: small but format-faithful products for real events of the inventory.

The project writes these itself (nothing is copied from third-party data). They are synthetic: each
holds the `synthetic.MARKER` file, so that everything built from it says so. Each product family
contributes a writer `write_samples(out: Path, events: list[Event]) -> list[Path]` in its own
module; this module picks the events and calls them.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from .inventory import Event, load_inventory
from .paths import default_events_dir

# (writer, event ids it writes products for). Ids must exist in catalog/events.
WRITERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("stac_mmtp.sources.sentinel2_samples:write_samples", ("gjerdrum-landslide-2020", "veneto-flash-flood-2018")),
    ("stac_mmtp.sources.sentinel1_samples:write_samples", ("gjerdrum-landslide-2020", "veneto-flash-flood-2018")),
    ("stac_mmtp.sources.flatsim_samples:write_samples", ("la-clapiere-landslide-2014", "laurichard-rock-glacier-2014")),
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


def write_samples(out: Path, events_dir: Path | None = None) -> list[Path]:
    events = {ev.id: ev for ev in load_inventory(events_dir or default_events_dir())}
    written: list[Path] = []
    for spec, ids in WRITERS:
        writer = _resolve(spec)
        if writer is None:
            continue
        chosen: list[Event] = [events[i] for i in ids if i in events]
        written += writer(out, chosen)
    return written


@click.command("sample", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("directory", type=click.Path(path_type=Path), default=Path("build/samples"))
@click.option("--events", "events_dir", type=click.Path(path_type=Path), help="Inventory [default: catalog/events].")
def sample_command(directory: Path, events_dir: Path | None) -> None:
    """Write small format-faithful sample products (Sentinel-2 SAFE, Sentinel-1 GRD, FLATSIM) for
    real events of the inventory into DIRECTORY [default: build/samples]. They are synthetic (not
    observations): each holds a STAC-MMTP-SYNTHETIC.json marker and its items say "Synthetic sample"."""
    from . import console

    paths = write_samples(directory, events_dir)
    console.table(f"{len(paths)} sample products in {directory}", ["product"], [[p.name] for p in paths])
