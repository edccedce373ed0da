"""`stac-mmtp annotations`: check expert annotations, import Copernicus EMS products."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from stac_mmtp import console
from stac_mmtp.commands.common import fail, json_option
from stac_mmtp.dataset.annotations import _date, area_m2, load_annotations
from stac_mmtp.dataset.inventory import load_inventory
from stac_mmtp.errors import InputError, MmtpError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group("annotations", context_settings=CONTEXT)
def annotations_command() -> None:
    """Expert annotations (catalog/annotations/<event-id>/*.geojson): check, import."""


@annotations_command.command("check", context_settings=CONTEXT)
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--events", "events_dir", type=click.Path(path_type=Path), help="Inventory [default: catalog/events].")
@json_option
def check_command(directory: Path | None, events_dir: Path | None) -> None:
    """Check the annotations in DIRECTORY [default: catalog/annotations] against the inventory.

    Checks: valid polygons overlapping the event's AOI, known classes, observation and image dates
    consistent with the event, the provenance fields (method, annotator, expertise, confidence,
    review status). Problems are listed with their file and feature; the exit status is then 2.
    """
    from stac_mmtp.paths import default_annotations_dir, default_events_dir

    directory = directory or default_annotations_dir()
    try:
        if not directory.is_dir():
            raise InputError("no such annotations directory", directory)
        events = load_inventory(events_dir or default_events_dir())
        sets = load_annotations(directory, events)
    except MmtpError as exc:
        fail(exc)
    console.table(
        f"{len(sets)} annotation sets in {directory}",
        ["event", "annotation", "features", "classes", "observed", "method", "review", "area km2"],
        [[s.event_id, s.id, len(s.outlines), ", ".join(s.classes), f"{s.observed:%Y-%m-%d}", s.method, s.review_status,
          f"{sum(area_m2(o.shape) for o in s.outlines) / 1e6:.3f}"] for s in sets]
        if not console.json_mode() else
        [[s.event_id, s.id, len(s.outlines), list(s.classes), f"{s.observed:%Y-%m-%d}", s.method, s.review_status,
          round(sum(area_m2(o.shape) for o in s.outlines) / 1e6, 3)] for s in sets],
        key="annotations", fields=["event", "annotation", "features", "classes", "observed", "method", "review",
                                   "area_km2"],
    )


@annotations_command.command("import-ems", context_settings=CONTEXT)
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@click.option("--event", "event_id", help="Inventory event the product maps (required without --new-event).")
@click.option("--new-event", is_flag=True,
              help="Create the event (catalog/events/<id>.geojson, review_status candidate) from the product's AOI, "
                   "image dates and activation code, unless the inventory has it.")
@click.option("--event-id", "new_id", help="Id of the event --new-event creates [default: <emsr>-<aoi>-<locality>].")
@click.option("--country", "countries", multiple=True, help="ISO 3166-1 alpha-3 code of the new event (repeatable).")
@click.option("--observed", help="Observation date (YYYY-MM-DD) when the product lacks its source table.")
@click.option("--source", "source", help="Where the product copy comes from: OWNER/REPO@COMMIT:PATH (recorded in the provenance).")
@click.option("--decimals", type=click.IntRange(5, 7), default=7, show_default=True,
              help="Coordinate decimals (6 = 0.1 m) for very large products.")
@click.option("--out", type=click.Path(path_type=Path), help="Annotations directory [default: catalog/annotations].")
@click.option("--events", "events_dir", type=click.Path(path_type=Path), help="Inventory [default: catalog/events].")
@click.option("--confidence", type=click.FloatRange(0, 1), default=0.9, show_default=True,
              help="Confidence to record (EMS products do not state one).")
@json_option
def import_ems_command(path: Path, event_id: str | None, new_event: bool, new_id: str | None, countries: tuple[str, ...],
                       observed: str | None, source: str | None, decimals: int, out: Path | None, events_dir: Path | None,
                       confidence: float) -> None:
    """Import a Copernicus EMS rapid-mapping delineation/grading product (shapefile set, directory
    or zip; a GeoJSON or KMZ layer) as annotation GeoJSON with its provenance: EMSR code, AOI,
    product type and version, detection method and source images (joined through dmg_src_id / or_src_id)."""
    from stac_mmtp.dataset.ems import import_ems
    from stac_mmtp.paths import default_annotations_dir, default_events_dir

    try:
        if new_event and event_id:
            raise InputError("give either --event (an existing event) or --new-event [--event-id ID]", path, "--event")
        if not new_event and not event_id:
            raise InputError("which event? give --event ID, or --new-event", path, "--event")
        when = _date(observed, path, "--observed") if observed else None
        events_dir = events_dir or default_events_dir()
        events = load_inventory(events_dir)
        written = import_ems(path, new_id if new_event else event_id, events, out or default_annotations_dir(),
                             confidence=confidence, observed=when, provenance=_source(source, path) if source else None,
                             digits=decimals, new_event_dir=events_dir if new_event else None, countries=countries)
    except MmtpError as exc:
        fail(exc)
    console.table(f"{len(written)} file(s) written", ["file"], [[str(p)] for p in written], key="written")


def _source(text: str, path: Path) -> dict[str, Any]:
    import re

    m = re.fullmatch(r"(?P<repo>[\w.-]+/[\w.-]+)@(?P<commit>[0-9a-f]{7,40}):(?P<path>.+)", text)
    if not m:
        raise InputError(f"--source {text!r}: expected OWNER/REPO@COMMIT:PATH", path, "--source")
    return {"source": {"repository": f"https://github.com/{m['repo']}", "commit": m["commit"], "path": m["path"]}}
