"""One unit of work (event x product), run in a worker: convert, title the item, report the result."""

from __future__ import annotations

import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stac_mmtp.errors import MmtpError
from stac_mmtp.sources.base import Task
from stac_mmtp.sources.registry import get_source
from stac_mmtp.stac.synthetic import PREFIX, is_synthetic_item


@dataclass(slots=True)
class TaskResult:
    """What the build keeps of one task: small facts only. `item` carries the item from the worker to the
    build, which writes it to its spool (build/spool.py) as it arrives and clears it."""

    event_id: str
    product: str
    collection: str
    item_id: str
    role: str
    ok: bool
    seconds: float
    message: str = ""
    item: dict[str, Any] | None = field(default=None, repr=False)
    reused: bool = False  # taken from the work directory of a previous build, not converted again
    worker: str = ""  # host:pid of the process that ran it (the summary per worker, on every executor)
    key: str = ""  # the task's key in the work directory or store of an incremental build


ROLE_WORDS = {"pre-event": "before the event", "first-post-event": "first image after the event",
              "first-usable-post-event": "first usable image after the event",
              "post-event": "after the event", "co-event": "spanning the event"}


def item_title(task: Task, collection_id: str, item: dict[str, Any]) -> str:
    """A human title for lists (STAC Browser shows it instead of the long id): event, modality, date, role."""
    level = item["properties"].get("processing:level") or item["properties"].get("product:type") or ""
    start, end = task.product.start.date().isoformat(), task.product.end.date().isoformat()
    when = start if start == end else f"{start}/{end}"
    role = ROLE_WORDS.get(task.temporal_role, task.temporal_role)
    return f"{task.event.title}: {collection_id} {level} {when}, {role}".replace("  ", " ")


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_task(task: Task, stage: Path | Any) -> TaskResult:
    """Run one unit of work; its outputs appear in `stage/<collection>/<item-id>/` only on success.
    `stage` may instead be a target on object storage (build/workstore.py StoreTarget), which runs
    the task in a scratch directory and uploads what it wrote."""
    if not isinstance(stage, Path):
        return stage.run(task)
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
        # a remote source only learns it is synthetic while converting: the item's marker counts too
        if (task.product.synthetic or is_synthetic_item(item)) and not props["title"].startswith(PREFIX):
            props["title"] = f"{PREFIX}: {props['title']}"
        shutil.rmtree(final, ignore_errors=True)  # a previous attempt of this task (a lost worker's)
        os.replace(part, final)
        return TaskResult(task.event.id, task.product.id, source.collection_id, task.item_id, task.temporal_role,
                          True, time.perf_counter() - t0, item=item, worker=_worker())
    except Exception as exc:  # a failed product must not stop the others
        shutil.rmtree(part, ignore_errors=True)
        msg = str(exc) if isinstance(exc, MmtpError) else f"{task.product.path}: {type(exc).__name__}: {exc}"
        return TaskResult(task.event.id, task.product.id, source.collection_id, task.item_id, task.temporal_role,
                          False, time.perf_counter() - t0, message=msg, worker=_worker())
