"""Plan (event x product) tasks, run them on all cores, reduce into the catalog tree, atomically."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from stac_mmtp.atomic import staged_dir
from stac_mmtp.dataset.inventory import Event, load_inventory
from stac_mmtp.errors import InputError, MmtpError, OutputError, ProductError
from stac_mmtp.sources import BuildOptions, ProductMeta, Task, discover, get_source
from stac_mmtp.stac import MMTP
from stac_mmtp.stac.events import (
    events_bundle,
    link_acquisitions,
    root_catalog_metadata,
    sample_collection_metadata,
)
from stac_mmtp.stac.synthetic import PREFIX, mark_catalog, mark_collection
from stac_mmtp.stac.tree import CollectionBundle, set_extent, write_tree


@dataclass
class TaskResult:
    event_id: str
    product: str
    collection: str
    item_id: str
    role: str
    ok: bool
    seconds: float
    message: str = ""
    item: dict[str, Any] | None = field(default=None, repr=False)


@dataclass
class BuildReport:
    out: Path
    events: int = 0
    results: list[TaskResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # product-level problems, each naming its file
    warnings: list[str] = field(default_factory=list)  # worth saying, not a failure (e.g. an allowed empty input)
    collections: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures and all(r.ok for r in self.results)


def temporal_role(event: Event, product: ProductMeta) -> tuple[str, float]:
    """Role of an acquisition relative to its event, and days from the event (start)."""
    days = round((product.start - event.start).total_seconds() / 86400, 3)
    if product.end < event.start:
        return "pre-event", days
    if product.start > event.end:
        return "post-event", round((product.start - event.end).total_seconds() / 86400, 3)
    return "co-event", days


def plan(events: list[Event], products: list[ProductMeta], options: BuildOptions) -> tuple[list[Task], list[ProductMeta]]:
    """Match each product to the events whose AOI it intersects within the time window.

    The earliest post-event acquisition of each (event, collection) is marked `first-post-event`:
    for emergency mapping the first available image is the one that matters.
    """
    from shapely.geometry import shape

    before, after = timedelta(days=options.days_before), timedelta(days=options.days_after)
    tasks: list[Task] = []
    unmatched: list[ProductMeta] = []
    shapes = {ev.id: ev.shape for ev in events}
    for prod in products:
        footprint = shape(prod.geometry)
        matched = False
        for ev in events:
            if prod.end < ev.start - before or prod.start > ev.end + after:
                continue
            if not footprint.intersects(shapes[ev.id]):
                continue
            role, days = temporal_role(ev, prod)
            tasks.append(Task(ev, prod, role, days, options))
            matched = True
        if not matched:
            unmatched.append(prod)
    first: dict[tuple[str, str], Task] = {}
    for t in tasks:
        if t.temporal_role == "post-event":
            key = (t.event.id, t.product.source)
            if key not in first or t.product.start < first[key].product.start:
                first[key] = t
    firsts = {id(t) for t in first.values()}
    tasks = [Task(t.event, t.product, "first-post-event", t.days_from_event, t.options) if id(t) in firsts else t for t in tasks]
    return sorted(tasks, key=lambda t: (t.product.source, t.item_id)), unmatched


ROLE_WORDS = {"pre-event": "before the event", "first-post-event": "first image after the event",
              "post-event": "after the event", "co-event": "spanning the event"}


def item_title(task: Task, collection_id: str, item: dict[str, Any]) -> str:
    """A human title for lists (STAC Browser shows it instead of the long id): event, modality, date, role."""
    level = item["properties"].get("processing:level") or item["properties"].get("product:type") or ""
    start, end = task.product.start.date().isoformat(), task.product.end.date().isoformat()
    when = start if start == end else f"{start}/{end}"
    role = ROLE_WORDS.get(task.temporal_role, task.temporal_role)
    return f"{task.event.title}: {collection_id} {level} {when}, {role}".replace("  ", " ")


def run_task(task: Task, stage: Path) -> TaskResult:
    """Run one unit of work; its outputs appear in `stage/<collection>/<item-id>/` only on success."""
    source = get_source(task.product.source)
    t0 = time.perf_counter()
    final = stage / source.collection_id / task.item_id
    part = final.with_name(final.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    try:
        item = source.convert(task, part)
        props = item["properties"]
        props.setdefault("title", item_title(task, source.collection_id, item))
        if task.product.synthetic and not props["title"].startswith(PREFIX):
            props["title"] = f"{PREFIX}: {props['title']}"
        os.replace(part, final)
        return TaskResult(task.event.id, task.product.id, source.collection_id, task.item_id, task.temporal_role,
                          True, time.perf_counter() - t0, item=item)
    except Exception as exc:  # a failed product must not stop the others
        shutil.rmtree(part, ignore_errors=True)
        msg = str(exc) if isinstance(exc, MmtpError) else f"{task.product.path}: {type(exc).__name__}: {exc}"
        return TaskResult(task.event.id, task.product.id, source.collection_id, task.item_id, task.temporal_role,
                          False, time.perf_counter() - t0, message=msg)


Progress = Callable[[str, int, int], None]  # (phase, done, total)

# Written at the root of every build: `build` replaces an existing directory only when it holds this
# file (or is empty), so `--out catalog` or `--out .` can never wipe what build did not create.
BUILD_MARKER = ".stac-mmtp-build"


def check_out_dir(out: Path, inputs: list[Path]) -> None:
    """Refuse (InputError, nothing touched) an output directory that a build may not replace."""
    target = out.resolve()
    for d in inputs:
        src = Path(d).resolve()
        if src == target or target in src.parents:
            raise InputError(f"the output directory holds the input {d}: choose another --out", out)
    if target == Path.cwd().resolve() or target in Path.cwd().resolve().parents:
        raise InputError("the output directory holds the current directory: choose another --out", out)
    if not target.exists():
        return
    if not target.is_dir():
        raise InputError("the output path exists and is not a directory", out)
    if (target / BUILD_MARKER).is_file() or not any(target.iterdir()):
        return
    raise InputError(f"not empty and not a previous build (no {BUILD_MARKER}): refusing to replace it; "
                     "remove it yourself or choose another --out", out)


def build(
    events_dir: Path,
    product_dirs: list[Path],
    out: Path,
    options: BuildOptions | None = None,
    progress: Progress | None = None,
    extra_bundles: Callable[[list[Event], list[CollectionBundle], Path], list[CollectionBundle]] | None = None,
    protect: list[Path] | None = None,
    allow_empty: bool = False,
    acquisitions: Path | None = None,
) -> BuildReport:
    """Build the catalog tree into `out` (replaced atomically). Raises InputError for a bad inventory
    or an `out` that may not be replaced (see `check_out_dir`; `protect` adds inputs it must not hold),
    OutputError when `out` cannot be written. A products directory without any product is a failure
    unless `allow_empty`."""
    options = options or BuildOptions()
    check_out_dir(out, [events_dir, *product_dirs, *(protect or []), *([acquisitions] if acquisitions else [])])
    events = load_inventory(events_dir)  # raises before anything is written
    report = BuildReport(out=out, events=len(events))
    found, unknown = discover(product_dirs)
    report.failures += [
        f"{p}: not a readable Sentinel product (no manifest.safe or MTD_*.xml: an interrupted download?)"
        if p.suffix.lower() == ".safe" else f"{p}: not a product of a supported family" for p in unknown
    ]
    for d in product_dirs:
        seen = [p for p in [*(f for f, _ in found), *unknown] if p == d or d in p.parents]
        if not seen:
            (report.warnings if allow_empty else report.failures).append(f"{d}: no product found in this directory")
    products: list[ProductMeta] = []
    for i, (path, source) in enumerate(found):
        try:
            products.append(source.read(path))
        except ProductError as exc:
            report.failures.append(str(exc))
        except Exception as exc:  # a reader bug on a product in the wild: name it, go on with the others
            report.failures.append(f"{path}: {type(exc).__name__}: {exc}")
        if progress:
            progress("read", i + 1, len(found))
    tasks, unmatched = plan(events, products, options)
    if acquisitions is not None:  # plan entries of `stac-mmtp discover`: remote products, one task each
        from stac_mmtp.sources.remote_s2 import tasks_from_plans

        remote, problems = tasks_from_plans(events, acquisitions, options)
        tasks, report.failures = tasks + remote, report.failures + problems
    report.failures += [
        f"{p.path}: does not intersect any event within -{options.days_before}/+{options.days_after} days" for p in unmatched
    ]
    try:
        _write(out, events, tasks, report, options, progress, extra_bundles)
    except OSError as exc:  # read-only or full disk: one line naming the directory, not a traceback
        raise OutputError(f"cannot write the output directory ({exc.strerror or exc})", out) from None
    return report


def _write(out: Path, events: list[Event], tasks: list[Task], report: BuildReport, options: BuildOptions,
           progress: Progress | None,
           extra_bundles: Callable[[list[Event], list[CollectionBundle], Path], list[CollectionBundle]] | None) -> None:
    with staged_dir(out) as stage:
        (stage / BUILD_MARKER).write_text("written by stac-mmtp build; its directory is replaced by the next build\n")
        results = _run_all(tasks, stage, options.jobs, progress)
        report.results = sorted(results, key=lambda r: (r.collection, r.item_id))
        for d in stage.iterdir():  # a collection whose every task failed leaves no empty directory
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
        bundles = [events_bundle(events)]
        by_coll: dict[str, list[dict[str, Any]]] = {}
        for r in report.results:
            if r.ok and r.item is not None:
                by_coll.setdefault(r.collection, []).append(r.item)
        for src_name in sorted({t.product.source for t in tasks}):
            source = get_source(src_name)
            items = by_coll.get(source.collection_id, [])
            if items and source.collection_id not in {b.id for b in bundles}:  # local and remote S2 share one
                coll = source.collection(items)
                mark_collection(coll, items, sample_collection_metadata(source.collection_id))
                set_extent(coll, items)
                bundles.append(CollectionBundle(coll, items))
        if extra_bundles:
            bundles += extra_bundles(events, bundles, stage)
        link_acquisitions(bundles[0], bundles)
        catalog = root_catalog_metadata()
        mark_catalog(catalog, [it for b in bundles for it in b.items], MMTP)
        write_tree(stage, catalog, bundles, geoparquet=True)
        report.collections = {b.id: len(b.items) for b in bundles}


def _run_all(tasks: list[Task], stage: Path, jobs: int, progress: Progress | None) -> list[TaskResult]:
    if not tasks:
        return []
    jobs = jobs or os.cpu_count() or 1
    results: list[TaskResult] = []
    if jobs == 1 or len(tasks) == 1:
        for i, t in enumerate(tasks):
            results.append(run_task(t, stage))
            if progress:
                progress("convert", i + 1, len(tasks))
        return results
    # "spawn", not fork: a forked child inherits GDAL's worker-thread pool in whatever state the
    # parent left it (locked mutexes), and GDALRegenerateOverviews then waits forever.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=ctx) as pool:
        futures = [pool.submit(run_task, t, stage) for t in tasks]
        for i, fut in enumerate(as_completed(futures)):
            results.append(fut.result())
            if progress:
                progress("convert", i + 1, len(tasks))
    return results
