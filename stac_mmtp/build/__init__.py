"""Plan (event x product) tasks, run them on all cores, reduce into the catalog tree, atomically.

The stages live in their own modules (`plan`, `tasks`, `executor`); this one is the `build()` entry
point and the reduce step. Their names are re-exported here for existing callers.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stac_mmtp.atomic import staged_dir
from stac_mmtp.build.executor import Progress, run_tasks
from stac_mmtp.build.plan import Selection, plan, temporal_role
from stac_mmtp.build.results import ResultLog
from stac_mmtp.build.spool import AcquisitionSpool, ItemSpool, LinkedEvents, is_stream
from stac_mmtp.build.state import WorkDir, task_key
from stac_mmtp.build.tasks import ROLE_WORDS, TaskResult, item_title, run_task
from stac_mmtp.dataset.inventory import Event, load_inventory
from stac_mmtp.errors import InputError, OutputError, ProductError
from stac_mmtp.sources.base import BuildOptions, ProductMeta, Task
from stac_mmtp.sources.registry import discover, get_source
from stac_mmtp.stac import MMTP
from stac_mmtp.stac.events import (
    acquisition,
    acquisitions,
    events_bundle,
    root_catalog_metadata,
    sample_collection_metadata,
)
from stac_mmtp.stac.synthetic import is_synthetic_item, mark_catalog, mark_collection
from stac_mmtp.stac.tree import ROWS_PER_GROUP, CollectionBundle, ItemStats, set_extent, write_tree

__all__ = ["BUILD_MARKER", "ROLE_WORDS", "BuildReport", "Progress", "TaskResult", "build", "check_out_dir",
           "Selection", "item_title", "plan", "run_task", "run_tasks", "temporal_role"]


# The dataset step (build/labels.py): more bundles from the events, the collections and the stage. A
# collection's items may be a stream read from disk (build/spool.py): it reads them, and edits them by
# mapping (spool.MappedItems), never in place.
ExtraBundles = Callable[[list[Event], list[CollectionBundle], Path], list[CollectionBundle]]


@dataclass
class BuildReport:
    out: Path
    events: int = 0
    results: ResultLog = field(default_factory=ResultLog)  # sorted by (collection, item id); on disk past a size
    failures: list[str] = field(default_factory=list)  # product-level problems, each naming its file
    warnings: list[str] = field(default_factory=list)  # worth saying, not a failure (e.g. an allowed empty input)
    collections: dict[str, int] = field(default_factory=dict)
    planned: list[tuple[str, str, str]] = field(default_factory=list)  # (collection, item id, "run" | "reuse")
    dry_run: bool = False

    @property
    def ran(self) -> int:
        return self.results.counts()[0]

    @property
    def reused(self) -> int:
        return self.results.counts()[1]

    def per_worker(self) -> dict[str, tuple[int, int]]:
        """host:pid -> (tasks run, tasks failed), for the tasks this build ran."""
        return self.results.per_worker()

    @property
    def ok(self) -> bool:
        return not self.failures and not self.results.failed()


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
    extra_bundles: ExtraBundles | None = None,
    protect: list[Path] | None = None,
    allow_empty: bool = False,
    acquisitions: Path | None = None,
    work: Path | str | None = None,
    select: Selection | None = None,
    dry_run: bool = False,
    executor: str = "local",
    scheduler: str | None = None,
    overview: bool = False,
) -> BuildReport:
    """Build the catalog tree into `out` (replaced atomically). Raises InputError for a bad inventory
    or an `out` that may not be replaced (see `check_out_dir`; `protect` adds inputs it must not hold),
    OutputError when `out` cannot be written. A products directory without any product is a failure
    unless `allow_empty`.

    With `work`, the build is incremental (see build/state.py): a task whose key is unchanged since a
    previous build with the same work directory is reused, not converted again. A URL (s3://bucket/prefix)
    is a work store on object storage, for workers without a shared disk (build/workstore.py). `select` runs part of
    the plan; `dry_run` only fills `report.planned` and writes nothing. `executor` is "local" (a process
    pool of `options.jobs` processes) or "dask" (the cluster at `scheduler`, DASK_SCHEDULER_ADDRESS, or a
    LocalCluster); the catalog is the same on every executor. `overview` also writes overview/ (PNG,
    HTML, JSON; see build/overview.py) linked from the root catalog: off by default, it costs seconds."""
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
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r} (one of {', '.join(EXECUTORS)})", Path(executor))
    if select is not None:
        tasks = select.apply(tasks)
    if dry_run:
        report.dry_run = True
        report.planned = _dry_run(tasks, work)
        return report
    try:
        # the output's directory first: a read-only location is named as the output, not as the work
        # directory that usually sits beside it
        out.resolve().parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryDirectory(dir=out.resolve().parent, prefix=f".{out.name}.probe.").cleanup()
        if work is None:
            _write(out, events, tasks, report, options, progress, extra_bundles, None, _runner(executor, scheduler),
                   overview)
        else:
            with _open_work(work) as wd:
                _write(out, events, tasks, report, options, progress, extra_bundles, wd, _runner(executor, scheduler),
                       overview)
    except OSError as exc:  # read-only or full disk: one line naming the directory, not a traceback
        raise OutputError(f"cannot write the output directory ({exc.strerror or exc})", out) from None
    return report


def _write(out: Path, events: list[Event], tasks: list[Task], report: BuildReport, options: BuildOptions,
           progress: Progress | None, extra_bundles: ExtraBundles | None, work: Any, runner: Runner,
           overview: bool = False) -> None:
    with staged_dir(out) as stage:
        (stage / BUILD_MARKER).write_text("written by stac-mmtp build; its directory is replaced by the next build\n")
        # inside the stage: a killed build leaves it where it leaves the rest of its unfinished tree
        spool = ItemSpool(stage / SPOOL)
        try:
            _reduce_in_stage(stage, events, tasks, report, options, progress, extra_bundles, work, runner, spool)
        finally:
            spool.close()
            shutil.rmtree(stage / SPOOL, ignore_errors=True)
        if overview:  # in the stage: the tree moves into place with the root catalog already linking it
            from stac_mmtp.build.overview import link_from_root, write_overview

            link_from_root(stage, write_overview(stage, events=events))


SPOOL = ".stac-mmtp-items"  # the reduce step's item spool, in the stage until the tree is written
ACQUISITIONS = "acquisitions.sqlite"  # in the spool: the facts of the events' links


def _reduce_in_stage(stage: Path, events: list[Event], tasks: list[Task], report: BuildReport, options: BuildOptions,
                     progress: Progress | None, extra_bundles: ExtraBundles | None, work: Any, runner: Runner,
                     spool: ItemSpool) -> None:
    def arrived(t: Task, r: TaskResult) -> None:  # each item to disk as it comes: no result keeps one
        if r.ok and r.item is not None:
            spool.add(r.collection, r.item)
        r.item = None

    if work is None:
        runner(tasks, stage, options.jobs, progress, on_result=arrived, results=report.results)
    else:
        _run_incremental(tasks, stage, work, options.jobs, progress, runner, spool, report.results)
    for d in stage.iterdir():  # a collection whose every task failed leaves no empty directory
        if d.is_dir() and d.name != SPOOL and not any(d.iterdir()):
            d.rmdir()
    report.collections = reduce_tree(stage, events, sorted({t.product.source for t in tasks}), spool,
                                     extra_bundles)


def reduce_tree(stage: Path, events: list[Event], sources: list[str], spool: ItemSpool,
                extra_bundles: ExtraBundles | None = None, rows_per_group: int = ROWS_PER_GROUP) -> dict[str, int]:
    """The reduce step: the catalog tree of the spooled items of `sources` (family names) written into `stage`;
    returns the items per collection. It streams: one pass over each collection's items, read back from the
    spool, reduces what needs them all (extent, summaries, synthetic counts, the events' links to their
    acquisitions: their facts go to SQLite in the spool, and each event item is linked as it is written), then
    `write_tree` reads them back once more, one at a time. `extra_bundles` (the dataset
    step, build/labels.py) sees the collections' items as re-iterable streams and edits them by mapping."""
    bundles = [events_bundle(events)]
    with AcquisitionSpool(spool.root / ACQUISITIONS) as found:  # the facts of the events' links, not in memory
        counts: dict[str, tuple[int, int]] = {}  # collection -> (synthetic, items)
        for src_name in sources:
            source = get_source(src_name)
            cid = source.collection_id
            if not spool.count(cid) or cid in {b.id for b in bundles}:  # local and remote S2 share one
                continue
            items = spool.items(cid)
            stats = ItemStats()  # one pass: the collection's metadata is reduced, not read off a list
            for it in items:
                stats.add(it)
                if (a := acquisition(cid, it)) is not None:
                    found.add(a)
            coll = source.collection(stats)
            mark_collection(coll, stats, sample_collection_metadata(cid))
            set_extent(coll, stats)
            bundles.append(CollectionBundle(coll, items))
            counts[cid] = (stats.synthetic, stats.count)
        if extra_bundles:
            extras = extra_bundles(events, bundles, stage)
            bundles += extras
            found.extend(acquisitions(b for b in extras if not is_stream(b.items)))
        synthetic = total = 0
        for b in bundles:
            n, m = counts[b.id] if is_stream(b.items) else (sum(is_synthetic_item(it) for it in b.items), len(b.items))
            synthetic, total = synthetic + n, total + m
        # each event item gets its links as write_tree reads it (the links do not change what it counted)
        bundles[0].items = LinkedEvents(bundles[0].items, found)
        catalog = root_catalog_metadata()
        mark_catalog(catalog, (synthetic, total), MMTP)
        written = write_tree(stage, catalog, bundles, geoparquet=True, rows_per_group=rows_per_group)
    return {b.id: written.items[b.id] for b in bundles}


def _open_work(work: Path | str) -> Any:
    """The local work directory (SQLite state) or, for a URL, the work store on object storage."""
    from stac_mmtp.build.workstore import StoreWork, is_store_url

    return StoreWork(str(work)) if is_store_url(work) else WorkDir(Path(work))


EXECUTORS = ("local", "dask")
Runner = Callable[..., Any]  # executor.run_tasks(tasks, stage, jobs, progress, on_result=None, results=None)


def _runner(executor: str, scheduler: str | None) -> Runner:
    if executor == "dask":
        from functools import partial

        from stac_mmtp.build.dask_executor import run_tasks as run_on_dask

        return partial(run_on_dask, scheduler=scheduler)
    return run_tasks


def _dry_run(tasks: list[Task], work: Path | str | None) -> list[tuple[str, str, str]]:
    from stac_mmtp.build.state import STATE
    from stac_mmtp.build.workstore import is_store_url

    out: list[tuple[str, str, str]] = []
    if work is None or (not is_store_url(work) and not (Path(work) / STATE).is_file()):
        return [(get_source(t.product.source).collection_id, t.item_id, "run") for t in tasks]
    cache: dict[Path, str] = {}
    with _open_work(work) as wd:
        done = wd.keys()  # one query (one listing of a store): what the records say, no output is read
        for t in tasks:
            source = get_source(t.product.source)
            out.append((source.collection_id, t.item_id, "reuse" if task_key(t, source, cache) in done else "run"))
    return out


def _run_incremental(tasks: list[Task], stage: Path, work: Any, jobs: int, progress: Progress | None, runner: Runner,
                     spool: ItemSpool, results: ResultLog) -> None:
    """Reuse every finished task whose key is unchanged; run the others into the work directory (or
    store), recording each as it finishes; then place all outputs into the stage (hard links locally,
    downloads checked against their digests from a store). Each finished task's item goes to `spool`
    as it comes (from its record: a store's worker returns none), and no result keeps it; each result goes to
    `results`."""
    work.begin()
    cache: dict[Path, str] = {}
    keys = {id(t): task_key(t, get_source(t.product.source), cache) for t in tasks}
    todo: list[Task] = []
    for t in tasks:
        done = work.finished(keys[id(t)])
        if done is None or not work.place(done, stage):
            todo.append(t)
            continue
        spool.add(done.collection, done.item)
        results.append(TaskResult(t.event.id, t.product.id, done.collection, t.item_id, t.temporal_role, True,
                                  0.0, reused=True, key=done.key))
    for t in todo:
        work.prepare(keys[id(t)])

    def finished(t: Task, r: TaskResult) -> None:
        r.key = keys[id(t)]
        work.recorded(r.key, t, r)
        if r.ok:
            done = work.finished(r.key, verify=False)
            if done is None or not work.place(done, stage):
                r.ok, r.message = False, f"{t.product.path}: the outputs of {r.item_id} are missing from the work store"
            else:
                spool.add(r.collection, r.item if r.item is not None else done.item)
        r.item = None

    runner(todo, lambda t: work.target(keys[id(t)]), jobs, progress, on_result=finished, results=results)
