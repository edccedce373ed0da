"""The `stac-mmtp` command line: a thin layer that parses options, calls one function, prints, exits.

Exit codes: 0 success; 1 some work failed (a product, a validation error, an upload);
2 invalid input or usage (nothing was written).
"""

from __future__ import annotations

import importlib
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from stac_mmtp import __version__, console
from stac_mmtp.dataset.importers import SOURCES as IMPORT_SOURCES
from stac_mmtp.errors import EXIT_FAILED, MmtpError
from stac_mmtp.paths import default_events_dir

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# Commands that live in their own modules, as name -> "module:attribute". They are imported only when
# used: importing them all up front pulled in shapely/numpy and cost ~0.1 s on every invocation.
LAZY_COMMANDS = {
    "sample": "stac_mmtp.sources.samples:sample_command",
    "publish": "stac_mmtp.release.publish:publish_command",
    "annotations": "stac_mmtp.dataset.annotations:annotations_command",
    "splits": "stac_mmtp.dataset.splits:splits_command",
    "preview": "stac_mmtp.access.preview:preview_command",
    "serve": "stac_mmtp.access.serve:serve_command",
    "search": "stac_mmtp.access.search:search_command",
    "release": "stac_mmtp.commands.release:release_command",
    "verify": "stac_mmtp.commands.release:verify_command",
    "load-pgstac": "stac_mmtp.commands.pgstac:load_pgstac_command",
    "discover": "stac_mmtp.commands.discover:discover_command",
    "overview": "stac_mmtp.commands.overview:overview_command",
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when the command is looked up.

    click's "lazy loading of subcommands" pattern: `list_commands` names the lazy commands without
    importing anything, `get_command` imports one module on demand. A module that is not there
    (left out of a trimmed install) is left out of the listing, as the eager registration did;
    any other import error is a real bug and propagates.
    """

    def __init__(self, *args: Any, lazy_subcommands: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = dict(lazy_subcommands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_subcommands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_subcommands:
            cmd = self._load(cmd_name)
            if cmd is None:
                return None
            self.add_command(cmd, cmd_name)  # later look-ups are plain dictionary hits
        return super().get_command(ctx, cmd_name)

    def _load(self, cmd_name: str) -> click.Command | None:
        mod, _, attr = self.lazy_subcommands[cmd_name].partition(":")
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name == mod:
                del self.lazy_subcommands[cmd_name]  # absent: drop it from the listing too
                return None
            raise
        cmd = getattr(module, attr)
        if not isinstance(cmd, click.Command):
            raise TypeError(f"{mod}:{attr} is not a click command")
        return cmd


def fail(exc: MmtpError | str, code: int | None = None) -> None:
    console.error(escape(str(exc)))
    sys.exit(code if code is not None else getattr(exc, "exit_code", EXIT_FAILED))


@click.group(cls=LazyGroup, lazy_subcommands=LAZY_COMMANDS, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="stac-mmtp")
@click.option("-v", "--verbose", count=True, help="More detail (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors: no progress bar, no tables.")
def main(verbose: int, quiet: bool) -> None:
    """Build, validate and publish the stac-mmtp natural-hazard dataset (COGs + STAC 1.1).

    \b
    Typical run:
      stac-mmtp sample build/samples          # small format-faithful products
      stac-mmtp build --products build/samples
      stac-mmtp validate build/catalog

    Exit codes: 0 success, 1 some work failed, 2 invalid input or usage.
    """
    console.setup(verbose, quiet)


# --------------------------------------------------------------------------- events
@main.group(context_settings=CONTEXT)
def events() -> None:
    """Work with the event inventory (catalog/events/*.geojson)."""


@events.command("check", context_settings=CONTEXT)
@click.argument("directory", required=False, type=click.Path(path_type=Path))
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
    if candidates:
        console.err.print(f"{len(candidates)} candidate event(s), not built until reviewed: {', '.join(candidates)}",
                          highlight=False)
    counts = Counter(ev.phenomenon for ev in evs)
    console.table(
        f"{len(evs)} events in {directory}",
        ["phenomenon", "events", "examples"],
        [[p, n, ", ".join(ev.id for ev in evs if ev.phenomenon == p)[:90]] for p, n in sorted(counts.items())],
    )
    pairs = cascades(evs)
    console.table(f"{len(pairs)} cascades (trigger -> triggered)", ["trigger", "triggered"], [list(p) for p in pairs])


@events.command("summary", context_settings=CONTEXT)
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--markdown", is_flag=True, help="Print the Markdown table README.md's inventory block holds.")
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
    console.table(f"{len(evs)} events in {directory} per phenomenon and continent", header,
                  [[c.strip("*") for c in r] for r in rows])


@events.command("import", context_settings=CONTEXT)
@click.argument("source", type=click.Choice(list(IMPORT_SOURCES)))
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Output directory [default: catalog/candidates/SOURCE].")
@click.option("--events", "events_dir", type=click.Path(path_type=Path),
              help="Curated inventory the duplicates are looked for in [default: catalog/events].")
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


# --------------------------------------------------------------------------- build
@main.command(context_settings=CONTEXT)
@click.option("--events", "events_dir", type=click.Path(path_type=Path), help="Inventory directory [default: catalog/events].")
@click.option("--products", "product_dirs", multiple=True, type=click.Path(path_type=Path, exists=True),
              help="Directory of source products (SAFE dirs/zips, AWS layouts, FLATSIM packages); repeatable.")
@click.option("--allow-empty", is_flag=True, help="A --products directory without any product is not an error.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("build/catalog"), show_default=True,
              help="Output catalog directory, replaced atomically; only an empty directory or a previous build "
                   "is ever replaced.")
@click.option("--days-before", type=int, default=60, show_default=True, help="Time window before each event.")
@click.option("--days-after", type=int, default=90, show_default=True, help="Time window after each event.")
@click.option("--buffer", "buffer_m", type=click.FloatRange(min=0), default=1000.0, show_default=True,
              help="Buffer around the event AOI for clipping, in metres.")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=0, help="Parallel workers [default: all cores].")
@click.option("--annotations", "annotations_dir", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Annotations directory [default: catalog/annotations].")
@click.option("--split-ratios", default="0.7,0.15,0.15", show_default=True, help="train,validate,test ratios (in events).")
@click.option("--acquisitions", "acquisitions_dir", type=click.Path(path_type=Path),
              help="Acquisition plans of `discover` [default: catalog/acquisitions when it exists].")
def build(events_dir: Path | None, product_dirs: tuple[Path, ...], allow_empty: bool, out: Path, days_before: int,
          days_after: int, buffer_m: float, jobs: int, annotations_dir: Path | None, split_ratios: str,
          acquisitions_dir: Path | None) -> None:
    """Build the STAC catalog: events collection plus one item per (event, product).

    Each product is matched to the events whose AOI it intersects within the time window;
    its bands overlapping the AOI are written as clipped COGs. The tree is written to a
    temporary directory and moved into place; failed products are listed and the exit
    status is 1, a bad inventory stops everything with exit status 2.
    """
    from stac_mmtp.build import build as run_build
    from stac_mmtp.dataset.annotations import dataset_hook
    from stac_mmtp.dataset.splits import parse_ratios, split_gap_m
    from stac_mmtp.paths import default_annotations_dir
    from stac_mmtp.sources import BuildOptions

    options = BuildOptions(days_before=days_before, days_after=days_after, buffer_m=buffer_m, jobs=jobs)
    events_dir = events_dir or default_events_dir()
    annotations_dir = annotations_dir or default_annotations_dir()
    try:
        hook = dataset_hook(annotations_dir, events_dir, parse_ratios(split_ratios), gap_m=split_gap_m(buffer_m))
        with console.progress_bar() as progress:
            report = run_build(events_dir, list(product_dirs), out, options, progress, extra_bundles=hook,
                               protect=[annotations_dir], allow_empty=allow_empty,
                               acquisitions=acquisitions_dir or _default_acquisitions())
    except MmtpError as exc:
        fail(exc)
    if (out / "catalog.json").is_file():  # the dataset at a glance, linked from the root catalog
        from stac_mmtp.release.overview import link_from_root, write_overview

        try:
            link_from_root(out, write_overview(out, events_dir=events_dir))
        except MmtpError as exc:
            fail(exc)
    if report.results:
        console.table(
            "items built",
            ["collection", "item", "role", "status", "seconds"],
            [[r.collection, r.item_id, r.role, "ok" if r.ok else "FAILED", f"{r.seconds:.1f}"] for r in report.results],
        )
    console.table("catalog", ["collection", "items"], [[k, v] for k, v in sorted(report.collections.items())])
    for w in report.warnings:
        console.warn(escape(w))
    problems = report.failures + [r.message for r in report.results if not r.ok]
    for p in problems:
        console.error(escape(p))
    if not console.quiet():
        console.err.print(f"catalog written to {out} ({report.events} events, {len(problems)} problem(s))", highlight=False)
    sys.exit(EXIT_FAILED if problems else 0)


def _default_acquisitions() -> Path | None:
    from stac_mmtp.paths import catalog_source_dir

    d = catalog_source_dir() / "acquisitions"
    return d if d.is_dir() else None


# --------------------------------------------------------------------------- validate
@main.command(context_settings=CONTEXT)
@click.argument("directory", type=click.Path(path_type=Path, exists=True))
@click.option("--schema-cache", type=click.Path(path_type=Path), envvar="STAC_MMTP_SCHEMA_CACHE",
              help="Schema mirror laid out as HOST/PATH [env STAC_MMTP_SCHEMA_CACHE; default ~/.cache/stac-mmtp/schemas].")
@click.option("--fetch/--no-fetch", default=False, show_default=True,
              help="Download schemas missing from the cache over HTTPS (checked against the lock file).")
def validate(directory: Path, schema_cache: Path | None, fetch: bool) -> None:
    """Validate every STAC object of a built tree against the STAC 1.1 core schema and each of
    its extensions' schemas, offline; also check links, and each local asset's bytes against its
    metadata (file:size, file:checksum, COG validity, proj:* and band fields)."""
    from stac_mmtp.release.validate import SchemaStore, validate_tree

    store = SchemaStore(schema_cache, allow_fetch=fetch)
    try:
        report = validate_tree(directory, store)
    except MmtpError as exc:
        fail(exc)
    console.table(
        f"validated {report.objects} objects in {directory}" + (f" ({report.cached} unchanged since a previous validation)" if report.cached else ""),
        ["type", "count"],
        [[k, v] for k, v in sorted(report.by_type.items())] + [["schemas used", len(report.schemas)],
                                                               ["asset files checked", report.assets]],
    )
    for p in report.problems[:200]:
        console.error(escape(str(p)))
    if report.problems:
        fail(f"{len(report.problems)} problem(s) found", EXIT_FAILED)
    if not console.quiet():
        console.err.print("all objects valid", style="green")


# --------------------------------------------------------------------------- inspect
@main.command(context_settings=CONTEXT)
@click.argument("product", type=click.Path(path_type=Path, exists=True))
def inspect(product: Path) -> None:
    """Print the STAC item that PRODUCT's metadata alone yields (no pixel work), as JSON."""
    from stac_mmtp.sources import read_product

    try:
        meta = read_product(product)
    except MmtpError as exc:
        fail(exc)
    click.echo(json.dumps(meta.item, indent=2, ensure_ascii=False))


if __name__ == "__main__":  # pragma: no cover
    main()
