"""`--work URL`: the work store on object storage, for workers that do not share a disk.

One object per fact, no database: a task's outputs under `tasks/<key>/<collection>/<item-id>/`, its state
record `state/<key>.json` (the item, the outputs' SHA-256 digests and sizes) written last, after every
output, so a record's presence means the task finished; one run record per executed task under
`runs/<build>/<key>.json`. The worker that runs a task writes all three (`StoreTarget.run`); the build
lists `state/` once to know what is finished, and reads the items and outputs back from the store.

obstore (Rust object_store) talks to the store: s3://, gs://, az://, http(s):// and file:// URLs,
configured from the usual environment (AWS_ENDPOINT_URL, AWS_REGION, credentials...) on each machine,
so no credential travels with a task. Two builds at once on one prefix are not prevented (there is no
lock on object storage); they would write the same bytes under the same keys.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stac_mmtp.build.state import Finished, sha256_file
from stac_mmtp.build.tasks import TaskResult, run_task
from stac_mmtp.discover.redact import redact
from stac_mmtp.errors import InputError
from stac_mmtp.sources.base import Task

_STORES: dict[str, Any] = {}  # one client per URL per process (a worker reuses its connections)


def is_store_url(work: object) -> bool:
    return isinstance(work, str) and "://" in work


def open_store(url: str) -> Any:
    if url not in _STORES:
        try:
            from obstore.store import from_url
        except ModuleNotFoundError:
            raise InputError("--work URL needs the `obstore` package (pip install 'stac-mmtp[dask]')",
                             Path("obstore")) from None
        _STORES[url] = from_url(url)
    return _STORES[url]


def _first_line(exc: BaseException) -> str:
    return redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)


def _outputs_prefix(key: str, collection: str, item_id: str) -> str:
    return f"tasks/{key}/{collection}/{item_id}"


@dataclass(frozen=True)
class StoreTarget:
    """Where a task of a store-backed build goes; sent to the worker with the task (picklable)."""

    url: str
    key: str
    build: str

    def run(self, task: Task) -> TaskResult:
        """Run the task in a local scratch directory, then upload its outputs, its state record (last)
        and its run record. A store that cannot be written fails this task only, with its URL."""
        import obstore

        with tempfile.TemporaryDirectory(prefix="stac-mmtp-task-") as tmp:
            r = run_task(task, Path(tmp))
            r.key = self.key
            try:
                store = open_store(self.url)
                if r.ok:
                    root = Path(tmp) / r.collection / r.item_id
                    outputs: dict[str, str] = {}
                    sizes: dict[str, int] = {}
                    for p in sorted(root.rglob("*")):
                        if p.is_file():
                            rel = p.relative_to(root).as_posix()
                            outputs[rel], sizes[rel] = sha256_file(p), p.stat().st_size
                            obstore.put(store, f"{_outputs_prefix(self.key, r.collection, r.item_id)}/{rel}", p)
                    record = {"key": self.key, "event_id": task.event.id, "item_id": r.item_id,
                              "collection": r.collection, "role": task.temporal_role, "item": r.item,
                              "outputs": outputs, "sizes": sizes, "seconds": r.seconds, "finished": time.time(),
                              "build": self.build, "worker": r.worker}
                    # key order kept: the item is written as it was built
                    obstore.put(store, f"state/{self.key}.json", json.dumps(record).encode())
                run = {"build": self.build, "key": self.key, "event_id": task.event.id, "item_id": r.item_id,
                       "ok": r.ok, "seconds": r.seconds, "worker": r.worker, "message": r.message}
                obstore.put(store, f"runs/{self.build}/{self.key}.json", json.dumps(run, sort_keys=True).encode())
            except Exception as exc:  # the store, not the product: this task fails, the others go on
                r.ok, r.message = False, f"{redact(self.url)}: cannot write {r.item_id} to the work store: " \
                                         f"{_first_line(exc)}"
            r.item = None  # the build reads it back from the store
            return r


class StoreWork:
    """The work store at `url`, with the interface of state.WorkDir (see build/__init__.py)."""

    def __init__(self, url: str) -> None:
        import obstore

        self.url = url.rstrip("/")
        self.store = open_store(self.url)
        self.build_id = ""
        self._records: dict[str, dict[str, Any]] = {}
        try:
            self._finished = {m["path"][len("state/"):-len(".json")] for chunk in
                              obstore.list(self.store, prefix="state") for m in chunk
                              if m["path"].endswith(".json")}
        except Exception as exc:
            raise InputError(f"cannot use the work store ({_first_line(exc)})", redact(self.url)) from None

    def close(self) -> None:
        pass

    def __enter__(self) -> StoreWork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def keys(self) -> set[str]:
        """The keys of every finished task (one listing of `state/`)."""
        return set(self._finished)

    def begin(self) -> str:
        import obstore

        self.build_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:6]}"  # sorts by start
        obstore.put(self.store, f"builds/{self.build_id}.json", json.dumps({"started": time.time()}).encode())
        return self.build_id

    def _record(self, key: str) -> dict[str, Any] | None:
        import obstore

        try:
            return json.loads(bytes(obstore.get(self.store, f"state/{key}.json").bytes()))
        except FileNotFoundError:
            return None

    def finished(self, key: str, verify: bool = True) -> Finished | None:
        """The record of a finished task whose outputs are all listed in the store with their sizes."""
        import obstore

        if verify and key not in self._finished:
            return None
        rec = self._record(key)
        if rec is None:
            return None
        done = Finished(key, rec["collection"], rec["item_id"], rec["item"], rec["outputs"], rec["seconds"])
        if verify:
            prefix = _outputs_prefix(key, done.collection, done.item_id)
            listed = {m["path"][len(prefix) + 1:]: m["size"] for chunk in obstore.list(self.store, prefix=prefix)
                      for m in chunk}
            if any(listed.get(rel) != size for rel, size in rec["sizes"].items()):
                return None
        return done

    def place(self, done: Finished, stage: Path) -> bool:
        """Download a finished task's outputs into the stage, each checked against its digest (several
        objects at a time: obstore releases the GIL while it waits on the network)."""
        from concurrent.futures import ThreadPoolExecutor

        import obstore

        dest = stage / done.collection / done.item_id
        prefix = _outputs_prefix(done.key, done.collection, done.item_id)

        def fetch(rel: str) -> bool:
            try:
                data = bytes(obstore.get(self.store, f"{prefix}/{rel}").bytes())
            except FileNotFoundError:
                return False
            if hashlib.sha256(data).hexdigest() != done.outputs[rel]:
                return False
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(data)
            return True

        with ThreadPoolExecutor(max_workers=8) as pool:
            ok = all(list(pool.map(fetch, sorted(done.outputs))))
        if not ok:
            shutil.rmtree(dest, ignore_errors=True)
        return ok

    def prepare(self, key: str) -> None:
        """A task about to run: its old record goes first, so a run killed midway leaves none."""
        import obstore

        if key in self._finished:
            obstore.delete(self.store, f"state/{key}.json")
            self._finished.discard(key)

    def target(self, key: str) -> StoreTarget:
        return StoreTarget(self.url, key, self.build_id)

    def recorded(self, key: str, task: Task, result: TaskResult) -> None:
        """Nothing to do here: the worker wrote the records."""
        if result.ok:
            self._finished.add(key)

    def item(self, key: str) -> dict[str, Any]:
        rec = self._record(key)
        if rec is None:
            raise InputError("a finished task's state record is gone from the work store",
                             f"{redact(self.url)}/state/{key}.json")
        return rec["item"]

    def runs(self, build: str | None = None) -> list[dict[str, Any]]:
        """The run records (of one build, or of all), for reports and tests."""
        import obstore

        prefix = f"runs/{build}" if build else "runs"
        paths = sorted(m["path"] for chunk in obstore.list(self.store, prefix=prefix) for m in chunk)
        return [json.loads(bytes(obstore.get(self.store, p).bytes())) for p in paths]
