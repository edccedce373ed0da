"""The build's task results (`tasks.TaskResult`, without their items): a list while there are few, in a
temporary SQLite file past `SPILL`, so that a million-task build does not keep a million of them in memory
(about 560 bytes each as the pool hands them back). Iterated in (collection, item id) order, ties in the
order they were added, as `sorted` gives them.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import fields
from typing import Any

from stac_mmtp.build.spool import scratch_db
from stac_mmtp.build.tasks import TaskResult

SPILL = 50_000  # results kept as objects up to this many, then moved to SQLite
BATCH = 5_000
_COLUMNS = [f.name for f in fields(TaskResult) if f.name != "item"]


class ResultLog:
    """Append-only task results, iterated sorted. `spill` is the count past which they go to SQLite
    (a file in the system's temporary directory, removed when the log is closed or collected)."""

    def __init__(self, spill: int | None = None) -> None:
        self._spill = SPILL if spill is None else spill
        self._mem: list[TaskResult] = []
        self._rows: list[tuple[Any, ...]] = []
        self._db: sqlite3.Connection | None = None
        self._n = 0
        self._indexed = False
        self._dir: str | None = None
        self._finalizer: weakref.finalize | None = None

    def append(self, r: TaskResult) -> None:
        self._n += 1
        if self._db is None:
            self._mem.append(r)
            if len(self._mem) > self._spill:
                self._open()
                self._rows = [self._row(x) for x in self._mem]
                self._mem = []
                self._flush()
            return
        self._rows.append(self._row(r))
        if len(self._rows) >= BATCH:
            self._flush()

    @staticmethod
    def _row(r: TaskResult) -> tuple[Any, ...]:
        return tuple(getattr(r, c) for c in _COLUMNS)

    def _open(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="stac-mmtp-results-")
        self._db = scratch_db(os.path.join(self._dir, "results.sqlite"))
        self._db.execute(f"CREATE TABLE results (seq INTEGER PRIMARY KEY, {', '.join(_COLUMNS)})")
        self._finalizer = weakref.finalize(self, _remove, self._db, self._dir)

    def _flush(self) -> None:
        if self._db is not None and self._rows:
            self._db.executemany(f"INSERT INTO results ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                                 self._rows)
            self._db.commit()
            self._rows.clear()
            self._indexed = False

    @property
    def spilled(self) -> bool:
        return self._db is not None

    def __len__(self) -> int:
        return self._n

    def __bool__(self) -> bool:
        return self._n > 0

    def __iter__(self) -> Iterator[TaskResult]:
        if self._db is None:
            yield from sorted(self._mem, key=lambda r: (r.collection, r.item_id))
            return
        self._flush()
        if not self._indexed:
            self._db.execute("CREATE INDEX IF NOT EXISTS results_order ON results (collection, item_id, seq)")
            self._indexed = True
        for row in self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM results ORDER BY collection, item_id, seq"):
            yield _result(row)

    def counts(self) -> tuple[int, int]:
        """(tasks run by this build, tasks reused)."""
        if self._db is None:
            reused = sum(1 for r in self._mem if r.reused)
            return self._n - reused, reused
        self._flush()
        reused = self._db.execute("SELECT count(*) FROM results WHERE reused").fetchone()[0]
        return self._n - reused, reused

    def per_worker(self) -> dict[str, tuple[int, int]]:
        """host:pid -> (tasks run, tasks failed), for the tasks this build ran."""
        if self._db is None:
            out: dict[str, tuple[int, int]] = {}
            for r in self._mem:
                if not r.reused:
                    ran, failed = out.get(r.worker, (0, 0))
                    out[r.worker] = (ran + 1, failed + (not r.ok))
            return out
        self._flush()
        rows = self._db.execute("SELECT worker, count(*), sum(NOT ok) FROM results WHERE NOT reused GROUP BY worker")
        return {w: (n, f) for w, n, f in rows}

    def failed(self) -> list[TaskResult]:
        """The results that are not ok, in iteration order."""
        if self._db is None:
            return [r for r in self if not r.ok]
        self._flush()
        return [_result(row) for row in self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM results WHERE NOT ok ORDER BY collection, item_id, seq")]

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()


def _result(row: tuple[Any, ...]) -> TaskResult:
    r = TaskResult(**dict(zip(_COLUMNS, row, strict=True)))
    r.ok, r.reused = bool(r.ok), bool(r.reused)  # SQLite keeps booleans as integers
    return r


def _remove(db: sqlite3.Connection, directory: str) -> None:
    db.close()
    shutil.rmtree(directory, ignore_errors=True)
