"""Run the tasks on a dask.distributed cluster: the same signature and callbacks as `executor.run_tasks`.

dask.distributed is used as it is: `Client.submit` per task, `as_completed`, `retries=`, and, when the
workers advertise a `MEMORY` resource (`dask worker --resources MEMORY=4e9`), each task's memory
estimate so that a worker is never given more than fits. A worker lost mid-task is the scheduler's
business: it runs the task again elsewhere (run_task starts from an empty directory each time).
The workers must see the stage (or work) directory at the same path, a shared disk, unless the work
is on object storage (`--work s3://...`, build/workstore.py): then each task uploads its own outputs.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stac_mmtp.build.executor import Done, Progress, Results, malloc_for_gdal, threads_per_worker
from stac_mmtp.build.tasks import run_task
from stac_mmtp.errors import InputError
from stac_mmtp.raster.cog import THREADS_ENV
from stac_mmtp.sources.base import Task

MEMORY = "MEMORY"  # the resource name the workers declare
DEFAULT_TASK_MEMORY = 1 << 30  # bytes; a family may say better with a `memory_bytes` attribute


GDAL_PREFIXES = ("GDAL_", "CPL_", "VSI_")  # GDAL's cache and HTTP options; never credentials


def gdal_settings() -> dict[str, str]:
    """This process's GDAL settings, to apply on every worker (a remote worker has its own environment)."""
    out = {k: v for k, v in os.environ.items() if k.startswith(GDAL_PREFIXES)}
    if os.environ.get(THREADS_ENV):
        out[THREADS_ENV] = os.environ[THREADS_ENV]
    return out


def host_threads(workers: Any) -> dict[str, int]:
    """Task threads per host, from the scheduler's view of the workers (`scheduler_info()["workers"]`)."""
    out: dict[str, int] = {}
    for addr, w in workers.items():
        host = str(w.get("host") or _host(addr))
        out[host] = out.get(host, 0) + int(w.get("nthreads", 1) or 1)
    return out


def _host(address: str) -> str:
    """"tcp://10.0.0.5:40123" -> "10.0.0.5" (the `host` of the scheduler's worker info)."""
    return address.split("://")[-1].rsplit(":", 1)[0]


try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ModuleNotFoundError:  # run_tasks says what to install
    WorkerPlugin = object  # type: ignore[assignment,misc]


class GdalSettings(WorkerPlugin):
    """Applies the build's GDAL settings on each worker (also on one that joins the cluster later), and
    GDAL threads of the worker's share of its machine's cores: `host_threads` is the number of task
    threads of all the workers on each host (dask's own default for OpenMP/MKL is 1 thread); and glibc's
    large-allocation thresholds, which dask's nanny fixes (executor.malloc_for_gdal)."""

    name = "stac-mmtp-gdal-settings"

    def __init__(self, settings: dict[str, str], host_threads: dict[str, int] | None = None) -> None:
        self.settings = settings
        self.host_threads = host_threads or {}

    def setup(self, worker: Any) -> None:
        malloc_for_gdal()
        os.environ.update(self.settings)
        if THREADS_ENV not in self.settings and not os.environ.get(THREADS_ENV):
            host = _host(str(getattr(worker, "address", "")))
            share = self.host_threads.get(host) or int(getattr(worker, "nthreads", 1) or 1)
            os.environ[THREADS_ENV] = threads_per_worker(share)


def task_memory(task: Task) -> int:
    from stac_mmtp.sources.registry import get_source

    return int(getattr(get_source(task.product.source), "memory_bytes", DEFAULT_TASK_MEMORY))


def scheduler_address(scheduler: str | None) -> str | None:
    return scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None


def run_tasks(tasks: list[Task], stage: Path | Callable[[Task], Any], jobs: int, progress: Progress | None,
              on_result: Done | None = None, scheduler: str | None = None, results: Results | None = None) -> Any:
    """Run every task on the cluster at `scheduler` (or DASK_SCHEDULER_ADDRESS); without an address, on a
    LocalCluster of `jobs` single-threaded worker processes (0 = all cores). Returns `results` (a new list by
    default) with each result appended in completion order."""
    results = [] if results is None else results
    if not tasks:
        return results
    try:
        from distributed import Client, LocalCluster, as_completed
    except ModuleNotFoundError:
        raise InputError("--executor dask needs the `distributed` package (pip install 'stac-mmtp[dask]')",
                         Path("distributed")) from None
    where = stage if callable(stage) else (lambda t: stage)
    address = scheduler_address(scheduler)
    cluster = None
    try:
        if address:
            client = Client(address, timeout="30s")
        else:
            n = min(jobs or os.cpu_count() or 1, len(tasks))
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
    except OSError as exc:  # no scheduler there: one line, not a traceback
        raise InputError(f"cannot reach the dask scheduler ({exc})", Path(address or "LocalCluster")) from None
    finished = 0
    try:
        info = client.scheduler_info().get("workers", {})
        client.register_plugin(GdalSettings(gdal_settings(), host_threads(info)), name=GdalSettings.name)
        with_memory = any(MEMORY in w.get("resources", {}) for w in info.values())
        run = uuid.uuid4().hex[:8]  # keys unique to this build on a long-lived cluster
        futures = {}
        for t in tasks:
            extra = {"resources": {MEMORY: task_memory(t)}} if with_memory else {}
            fut = client.submit(run_task, t, where(t), pure=False, retries=2, key=f"convert-{t.item_id}-{run}",
                                **extra)
            futures[fut] = t
        for fut in as_completed(futures):
            r = fut.result()
            # popped (and the future released): the cluster keeps a task's result while the client holds its future
            t = futures.pop(fut)
            fut.release()
            finished += 1
            if on_result:
                on_result(t, r)
            results.append(r)
            if progress:
                progress("convert", finished, len(tasks))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return results

