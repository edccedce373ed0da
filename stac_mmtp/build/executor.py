"""Run the tasks on all cores (a process pool), reporting progress as each one finishes."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Protocol

from stac_mmtp.build.tasks import TaskResult, run_task
from stac_mmtp.raster.cog import THREADS_ENV
from stac_mmtp.sources.base import Task

Progress = Callable[[str, int, int], None]  # (phase, done, total)


def _die_with_parent() -> None:
    """Worker initializer: a build killed outright (SIGKILL) must not leave its workers converting for
    nobody; Linux delivers SIGKILL to them when the build process dies (elsewhere this does nothing)."""
    import contextlib
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# What glibc's dynamic thresholds grow to (its DEFAULT_MMAP_THRESHOLD_MAX on 64 bits, and twice that to trim)
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD


def malloc_for_gdal() -> bool:
    """Give glibc back its large-allocation thresholds in a process started with a fixed
    MALLOC_TRIM_THRESHOLD_ (dask's nanny sets 65536 in every worker it spawns, and in the environment of
    the process that started it). A fixed threshold turns glibc's dynamic mmap threshold off, so every
    buffer of GDAL's multi-threaded compression is a fresh mmap that is zeroed and unmapped again: a COG
    write on 2 threads took 1.1 s instead of 0.5 s (benchmarks/README.md). Left alone when
    MALLOC_MMAP_THRESHOLD_ is set too (the user chose both) and off glibc. True when it changed them."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux") or "MALLOC_TRIM_THRESHOLD_" not in os.environ \
            or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl and other libcs: no mallopt
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(mallopt(m_mmap_threshold, MMAP_THRESHOLD)) and bool(mallopt(m_trim_threshold, TRIM_THRESHOLD))


def _worker_init(gdal_threads: str) -> None:
    """Worker initializer: die with the build, glibc's thresholds for GDAL, and GDAL threads of this
    worker's share of the cores (unless the user chose them: THREADS_ENV is inherited from the build's
    environment)."""
    _die_with_parent()
    malloc_for_gdal()
    os.environ.setdefault(THREADS_ENV, gdal_threads)


def threads_per_worker(workers: int) -> str:
    return str(max(1, (os.cpu_count() or 1) // max(1, workers)))


Done = Callable[[Task, TaskResult], None]  # called in this process as each task finishes


class Results(Protocol):
    """Where a runner puts each result: a list, or the build's `results.ResultLog` (on disk past a size)."""

    def append(self, r: TaskResult, /) -> None: ...


def run_tasks(tasks: list[Task], stage: Path | Callable[[Task], Any], jobs: int, progress: Progress | None,
              on_result: Done | None = None, results: Results | None = None) -> Any:
    """Run every task, in `jobs` processes (0 = all cores); returns `results` (a new list by default) with
    each result appended in completion order.

    `stage` is the directory the outputs go to, or a function giving each task its own (the work
    directory of an incremental build, or a target on object storage); `on_result` sees each result as it arrives (to record it).
    """
    results = [] if results is None else results
    if not tasks:
        return results
    jobs = jobs or os.cpu_count() or 1
    where = stage if callable(stage) else (lambda t: stage)
    finished = 0

    def done(t: Task, r: TaskResult) -> None:
        nonlocal finished
        finished += 1
        if on_result:
            on_result(t, r)
        results.append(r)
        if progress:
            progress("convert", finished, len(tasks))

    if jobs == 1 or len(tasks) == 1:
        for t in tasks:
            done(t, run_task(t, where(t)))
        return results
    # "spawn", not fork: a forked child inherits GDAL's worker-thread pool in whatever state the
    # parent left it (locked mutexes), and GDALRegenerateOverviews then waits forever.
    ctx = multiprocessing.get_context("spawn")
    workers = min(jobs, len(tasks))
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                             initargs=(threads_per_worker(workers),)) as pool:
        futures = {pool.submit(run_task, t, where(t)): t for t in tasks}
        for fut in as_completed(futures):
            done(futures.pop(fut), fut.result())  # popped: a finished future no longer holds its result
    return results
