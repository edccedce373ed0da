"""`stac-mmtp splits`: the train/validate/test splits of the inventory or of a built catalog."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import click

from stac_mmtp.commands.common import json_option
from stac_mmtp.dataset.splits import (
    DEFAULT_BUFFER_M,
    DEFAULT_RATIOS,
    DEFAULT_SEED,
    MANIFEST,
    SPLITS,
    assign_splits,
    parse_ratios,
    split_gap_m,
)
from stac_mmtp.errors import MmtpError


def _read_catalog(directory: Path) -> list[tuple[str, dict[str, Any]]]:
    from stac_mmtp.release.validate import iter_tree

    out = []
    for _path, obj, _err in iter_tree(directory):
        if obj is not None and obj.get("type") == "Feature":
            out.append((obj.get("collection", "?"), obj))
    return out


@click.command("splits", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("catalog", required=False, type=click.Path(path_type=Path, exists=True))
@click.option("--events", "events_dir", type=click.Path(path_type=Path), help="Inventory [default: catalog/events].")
@click.option("--ratios", default=",".join(str(r) for r in DEFAULT_RATIOS), show_default=True,
              help="train,validate,test ratios (counted in events).")
@click.option("--seed", default=DEFAULT_SEED, show_default=True, help="Seed of the group order.")
@click.option("--buffer", "buffer_m", type=click.FloatRange(min=0), default=DEFAULT_BUFFER_M, show_default=True,
              help="The build's clip buffer (metres): events closer than 2 x (buffer + 250 m) share a split.")
@click.option("--gap", "gap_m", type=click.FloatRange(min=0), default=None,
              help="Override: events whose AOIs are closer than this (metres) share a split.")
@json_option
def splits_command(catalog: Path | None, events_dir: Path | None, ratios: str, seed: str, buffer_m: float,
                   gap_m: float | None) -> None:
    """Print the train/validate/test splits: per split x phenomenon x modality (collection) for a
    built CATALOG (its items' ml-aoi:split), or per split x phenomenon for the inventory."""
    from stac_mmtp import console
    from stac_mmtp.commands.common import fail
    from stac_mmtp.dataset.inventory import load_inventory
    from stac_mmtp.paths import default_events_dir

    try:
        if catalog is not None:
            items = _read_catalog(catalog)
            counts = Counter((it["properties"].get("ml-aoi:split", "-"), it["properties"].get("mmtp:phenomenon", "-"), coll)
                             for coll, it in items)
            console.table(f"{len(items)} items in {catalog} by split", ["split", "phenomenon", "collection", "items"],
                          [[*k, n] for k, n in sorted(counts.items())], key="items")
            console.record("catalog", str(catalog))
            console.record("total", len(items))
            path = catalog / MANIFEST
            if path.is_file() and console.json_mode():
                console.record("manifest_sha256", json.loads(path.read_text())["sha256"])
            elif path.is_file():
                console.out.print(f"manifest {MANIFEST}: sha256 {json.loads(path.read_text())['sha256']}", highlight=False)
            return
        events = load_inventory(events_dir or default_events_dir())
        assignment = assign_splits(events, parse_ratios(ratios), seed, split_gap_m(buffer_m) if gap_m is None else gap_m)
    except MmtpError as exc:
        fail(exc)
    phen = {ev.id: ev.phenomenon for ev in events}
    counts = Counter((assignment[e], phen[e]) for e in assignment)
    join = (lambda ids: ids) if console.json_mode() else ", ".join
    console.table(f"{len(events)} events by split", ["split", "phenomenon", "events", "ids"],
                  [[s, p, n, join(sorted(e for e in assignment if assignment[e] == s and phen[e] == p))]
                   for (s, p), n in sorted(counts.items(), key=lambda kv: (SPLITS.index(kv[0][0]), kv[0][1]))],
                  key="groups")
    totals = Counter(assignment.values())
    console.table("totals", ["split", "events"], [[s, totals.get(s, 0)] for s in SPLITS], key="totals")
