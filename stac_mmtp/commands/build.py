"""`stac-mmtp build`: the STAC catalog from the inventory and the source products."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click
from rich.markup import escape

from stac_mmtp import console
from stac_mmtp.commands.common import CONTEXT, fail, json_option
from stac_mmtp.errors import EXIT_FAILED, MmtpError
from stac_mmtp.paths import default_events_dir


@click.command("build", context_settings=CONTEXT)
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
@click.option("--work", metavar="DIR|URL",
              help="Work directory that outlives one build: finished tasks are recorded there and reused when "
                   "their inputs are unchanged [default: `work` beside --out, e.g. build/work]. A URL "
                   "(s3://bucket/prefix, gs://, az://) keeps outputs and state on object storage, for workers "
                   "that do not share a disk.")
@click.option("--no-work", is_flag=True, help="Not incremental: convert every task, keep no work directory.")
@click.option("--dry-run", is_flag=True, help="Print which tasks would run and which would be reused; write nothing.")
@click.option("--event", "event_ids", multiple=True, help="Only the tasks of this event (repeatable).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="Only acquisitions starting at or after this date (UTC).")
@click.option("--limit", type=click.IntRange(min=1), help="At most N tasks.")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="Where tasks run: this machine's process pool, or a Dask cluster.")
@click.option("--scheduler", envvar="DASK_SCHEDULER_ADDRESS", metavar="tcp://HOST:PORT",
              help="Dask scheduler [env DASK_SCHEDULER_ADDRESS; default: a LocalCluster on this machine].")
@json_option
def build_command(events_dir: Path | None, product_dirs: tuple[Path, ...], allow_empty: bool, out: Path, days_before: int,
          days_after: int, buffer_m: float, jobs: int, annotations_dir: Path | None, split_ratios: str,
          acquisitions_dir: Path | None, work: str | None, no_work: bool, dry_run: bool, event_ids: tuple[str, ...],
          since: datetime | None, limit: int | None, executor: str, scheduler: str | None) -> None:
    """Build the STAC catalog: events collection plus one item per (event, product).

    Each product is matched to the events whose AOI it intersects within the time window;
    its bands overlapping the AOI are written as clipped COGs. The tree is written to a
    temporary directory and moved into place; failed products are listed and the exit
    status is 1, a bad inventory stops everything with exit status 2.
    """
    from stac_mmtp.build import Selection
    from stac_mmtp.build import build as run_build
    from stac_mmtp.build.labels import dataset_hook
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
                               acquisitions=acquisitions_dir or _default_acquisitions(),
                               work=None if no_work else _work(work, out),
                               select=Selection(tuple(event_ids), since, limit) if (event_ids or since or limit) else None,
                               dry_run=dry_run, executor=executor, scheduler=scheduler, overview=True)
    except MmtpError as exc:
        fail(exc)
    if dry_run:
        console.table(f"dry run: {sum(1 for p in report.planned if p[2] == 'run')} task(s) to run, "
                      f"{sum(1 for p in report.planned if p[2] == 'reuse')} to reuse",
                      ["collection", "item", "action"], [list(p) for p in report.planned], key="planned")
        console.record("dry_run", True)
        return
    if report.results or console.json_mode():  # --json: the key is there, empty or not
        secs = (lambda s: round(s, 1)) if console.json_mode() else (lambda s: f"{s:.1f}")
        console.table(
            "items built",
            ["collection", "item", "role", "status", "seconds"],
            [[r.collection, r.item_id, r.role, "ok" if r.ok else "FAILED", secs(r.seconds)] for r in report.results],
            key="items",
        )
    console.table("catalog", ["collection", "items"], [[k, v] for k, v in sorted(report.collections.items())],
                  key="collections")
    console.record("catalog", str(out))
    console.record("events", report.events)
    console.record("warnings", list(report.warnings))
    console.record("ran", report.ran)
    console.record("reused", report.reused)
    if report.results and not console.json_mode():
        console.table("tasks per worker", ["worker", "ran", "failed"],
                      [[w, n, f] for w, (n, f) in sorted(report.per_worker().items())] + [["(reused)", report.reused, 0]])
    for w in report.warnings:
        console.warn(escape(w))
    problems = report.failures + [r.message for r in report.results if not r.ok]
    for p in problems:
        console.error(escape(p))
    if not console.quiet() and not console.json_mode():
        console.err.print(f"catalog written to {out} ({report.events} events, {len(problems)} problem(s))", highlight=False)
    sys.exit(EXIT_FAILED if problems else 0)


def _work(work: str | None, out: Path) -> Path | str:
    """A URL stays a string (a Path would fold its `//`); anything else is a directory."""
    if work is None:
        return out.parent / "work"
    return work if "://" in work else Path(work)


def _default_acquisitions() -> Path | None:
    from stac_mmtp.paths import catalog_source_dir

    d = catalog_source_dir() / "acquisitions"
    return d if d.is_dir() else None
