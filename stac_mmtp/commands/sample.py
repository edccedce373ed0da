"""`stac-mmtp sample DIR`: small but format-faithful products for real events of the inventory."""

from __future__ import annotations

from pathlib import Path

import click

from stac_mmtp.commands.common import json_option
from stac_mmtp.sources.samples import write_samples


@click.command("sample", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("directory", type=click.Path(path_type=Path), default=Path("build/samples"))
@click.option("--events", "events_dir", type=click.Path(path_type=Path), help="Inventory [default: catalog/events].")
@json_option
def sample_command(directory: Path, events_dir: Path | None) -> None:
    """Write small format-faithful sample products (Sentinel-2 SAFE, Sentinel-1 GRD, FLATSIM) for
    real events of the inventory into DIRECTORY [default: build/samples]. They are synthetic (not
    observations): each holds a STAC-MMTP-SYNTHETIC.json marker and its items say "Synthetic sample"."""
    from stac_mmtp import console

    paths = write_samples(directory, events_dir)
    console.table(f"{len(paths)} sample products in {directory}", ["product"], [[p.name] for p in paths], key="products")
