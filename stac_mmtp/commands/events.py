"""`stac-mmtp events`: check, count and import the event inventory."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import click
from rich.markup import escape

from stac_mmtp import console
from stac_mmtp.commands.common import CONTEXT, fail, json_option
from stac_mmtp.dataset.importers import SOURCES as IMPORT_SOURCES
from stac_mmtp.errors import EXIT_FAILED, MmtpError
from stac_mmtp.paths import default_events_dir


@click.group("events", context_settings=CONTEXT)
def events_command() -> None:
    """Work with the event inventory (catalog/events/*.geojson)."""


@events_command.command("check", context_settings=CONTEXT)
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@json_option
def events_check(directory: Path | None) -> None:
    """Check the inventory in DIRECTORY (default catalog/events) and print a summary.

    Checks: URL-safe unique ids, valid AOIs containing the real site and under 50 km across,
    dates not in the future with start <= end, known phenomenon types, references, and
    triggers that exist and do not happen after what they trigger, and the Sentinel era of the
    curated events: an event after Sentinel-2's first images (23 June 2015) has both modalities,
    one between Sentinel-1A's launch and then is SAR-only (modalities: ["sentinel-1"]), nothing
    earlier but slow motion still active. Candidate events (review_status: candidate) are
    checked, listed and never built. Problems are listed with their file and field; the exit
    status is then 2.
    """
    from stac_mmtp.dataset.inventory import cascades, check_inventory, load_inventory

    directory = directory or default_events_dir()
    try:
        evs = check_inventory(directory)
        candidates = [ev.id for ev in load_inventory(directory, include_candidates=True) if ev.review_status != "curated"]
    except MmtpError as exc:
        fail(exc)
    console.record("directory", str(directory))
    console.record("candidates", candidates)
    if candidates and not console.json_mode():
        console.err.print(f"{len(candidates)} candidate event(s), not built until reviewed: {', '.join(candidates)}",
                          highlight=False)
    counts = Counter(ev.phenomenon for ev in evs)
    ids = {p: [ev.id for ev in evs if ev.phenomenon == p] for p in counts}
    console.record("events", len(evs))
    if console.json_mode():  # every id, where the table shows the first ones
        console.record("phenomena", [{"phenomenon": p, "events": n, "ids": ids[p]} for p, n in sorted(counts.items())])
    else:
        console.table(f"{len(evs)} events in {directory}", ["phenomenon", "events", "examples"],
                      [[p, n, ", ".join(ids[p])[:90]] for p, n in sorted(counts.items())])
    pairs = cascades(evs)
    console.table(f"{len(pairs)} cascades (trigger -> triggered)", ["trigger", "triggered"], [list(p) for p in pairs],
                  key="cascades")


@events_command.command("summary", context_settings=CONTEXT)
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--markdown", is_flag=True, help="Print the Markdown table README.md's inventory block holds.")
@json_option
def events_summary(directory: Path | None, markdown: bool) -> None:
    """Count the events of DIRECTORY (default catalog/events) per phenomenon and continent."""
    from stac_mmtp.dataset.inventory import load_inventory, summary_markdown, summary_table

    directory = directory or default_events_dir()
    try:
        evs = load_inventory(directory)
        if markdown:
            click.echo(summary_markdown(evs), nl=False)
            return
        header, rows = summary_table(evs)
    except MmtpError as exc:
        fail(exc)
    console.record("directory", str(directory))
    console.record("events", len(evs))
    console.table(f"{len(evs)} events in {directory} per phenomenon and continent", header,
                  [[c.strip("*") for c in r] for r in rows], key="rows")


@events_command.command("import", context_settings=CONTEXT)
@click.argument("source", type=click.Choice(list(IMPORT_SOURCES)))
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Output directory [default: catalog/candidates/SOURCE].")
@click.option("--events", "events_dir", type=click.Path(path_type=Path),
              help="Curated inventory the duplicates are looked for in [default: catalog/events].")
@json_option
def events_import(source: str, file: Path, out: Path | None, events_dir: Path | None) -> None:
    """Import FILE of a public catalogue as candidate events (review_status: candidate).

    \b
    SOURCE: nasa-glc (NASA Global Landslide Catalog CSV), gvp (GVP eruption list CSV),
            hma-glof (HMAGLOFDB.csv), usgs (ComCat GeoJSON or the M>=5.5 earthquakes.csv).

    One GeoJSON Feature per event in OUT. Events before the Sentinel era (Oct 2014) are skipped;
    duplicates of known events (same family of phenomena, sites within 5 km or the location
    uncertainty, dates within 3 days) are reported, not written; files already in OUT are never
    overwritten. Exit status 1 if some rows failed (each named by file and line), 2 for a bad FILE.
    """
    from stac_mmtp.dataset.importers import import_catalogue

    try:
        report = import_catalogue(source, file, out, events_dir)
    except MmtpError as exc:
        fail(exc)
    for exc in report.errors:
        console.error(escape(str(exc)))
    if console.json_mode():
        console.record("source", source)
        console.record("file", str(file))
        console.record("out", str(report.out))
        console.record("counts", {"rows read": report.rows, "written": len(report.written),
                                  "already in the output (kept)": len(report.existing),
                                  "duplicates": len(report.duplicates), "skipped": dict(sorted(report.skipped.items())),
                                  "errors": len(report.errors)})
        console.record("written", list(report.written))
        console.record("duplicates", [{"candidate": d[0], "duplicates": d[1]} for d in report.duplicates])
        if report.errors:
            sys.exit(EXIT_FAILED)
        return
    rows = [["rows read", report.rows], ["written", len(report.written)],
            ["already in the output (kept)", len(report.existing)], ["duplicates", len(report.duplicates)]]
    rows += [[f"skipped: {reason}", n] for reason, n in sorted(report.skipped.items())]
    rows.append(["errors", len(report.errors)])
    if report.duplicates:
        console.table(f"{len(report.duplicates)} duplicates (not written)", ["candidate", "duplicates"],
                      [list(d) for d in report.duplicates])
    console.table(f"{source} import of {file} into {report.out}", ["", "count"], rows)
    if report.errors:
        sys.exit(EXIT_FAILED)
