"""The work directory that outlives one build: a key per task, finished outputs, a SQLite state table.

A task's key hashes everything its outputs depend on (the event's feature bytes and its triggers,
the product metadata or plan entry, the temporal role, the options that affect conversion, the
package version and the source code of every package module the converter imports). A finished task's
outputs stay in `tasks/<key>/` with their SHA-256 digests in `state.sqlite`; a rebuild hard-links (or
copies) them into the new stage instead of converting again. Each state row is committed as its task
finishes, so a build killed at any point resumes from there. On object storage (`--work s3://...`) the
same interface keeps one JSON record per key instead (build/workstore.py).
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stac_mmtp import __version__
from stac_mmtp.errors import InputError
from stac_mmtp.sources.base import Source, Task

STATE = "state.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    key TEXT PRIMARY KEY, event_id TEXT, item_id TEXT, collection TEXT, role TEXT,
    item TEXT, outputs TEXT, seconds REAL, finished REAL);
CREATE TABLE IF NOT EXISTS runs (
    build INTEGER, key TEXT, event_id TEXT, item_id TEXT, ok INTEGER, seconds REAL);
CREATE TABLE IF NOT EXISTS builds (build INTEGER PRIMARY KEY AUTOINCREMENT, started REAL);
"""

_CONVERTER: dict[str, str] = {}
# module name -> SHA-256 of its source file, read once per process (a test may set an entry)
MODULE_DIGESTS: dict[str, str] = {}
PACKAGE = "stac_mmtp"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _module_file(name: str) -> Path | None:
    """The source file of a module of this package (a package's __init__.py), or None for a name
    that is not a module (`from stac_mmtp.raster import cog`'s `stac_mmtp.raster.cog` is; an imported
    function's dotted name is not)."""
    rel = Path(*name.split(".")[1:]) if name != PACKAGE else Path()
    for cand in (_PACKAGE_DIR / rel / "__init__.py", (_PACKAGE_DIR / rel).with_suffix(".py")):
        if cand.is_file():
            return cand
    return None


def _imported(name: str, path: Path) -> set[str]:
    """The package's modules `path` imports (at module level or inside functions), and its parents."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        for n in names:
            if n == PACKAGE or n.startswith(PACKAGE + "."):
                parts = n.split(".")
                found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {n for n in found if n != name and _module_file(n) is not None}


def code_closure(module: str) -> list[str]:
    """Every module of the package that `module` runs: itself and what it imports, transitively
    (the shared raster/, stac/ and sources/ modules a converter uses), sorted."""
    seen, todo = {module}, [module]
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if path is None:
            continue
        for dep in _imported(name, path) - seen:
            seen.add(dep)
            todo.append(dep)
    return sorted(seen)


def module_digest(name: str) -> str:
    if name not in MODULE_DIGESTS:
        path = _module_file(name)
        MODULE_DIGESTS[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path else "absent"
    return MODULE_DIGESTS[name]


def converter_version(source: Source) -> str:
    """The package version and a digest of the source code of every module the family's converter
    runs (its own and the shared ones it imports): editing a shared module re-runs exactly the tasks
    of the families that use it."""
    name = type(source).__module__
    if name not in _CONVERTER:
        code = "\n".join(f"{m} {module_digest(m)}" for m in code_closure(name))
        _CONVERTER[name] = f"{__version__}+{hashlib.sha256(code.encode()).hexdigest()[:16]}"
    return _CONVERTER[name]


def task_key(task: Task, source: Source, event_bytes: dict[Path, str] | None = None) -> str:
    """SHA-256 of the task's inputs (`event_bytes` caches the digest of each event file)."""
    cache = event_bytes if event_bytes is not None else {}
    path = task.event.path
    if path not in cache:
        cache[path] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    doc = {
        "event": [task.event.id, cache[path], list(task.event.triggers)],
        "product": [task.product.source, task.product.id, str(task.product.path), task.product.synthetic,
                    task.product.item],
        "role": [task.temporal_role, task.days_from_event],
        "options": {"buffer_m": task.options.buffer_m},  # days_before/after act through the role and days
        "converter": converter_version(source),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Finished:
    key: str
    collection: str
    item_id: str
    item: dict[str, Any]
    outputs: dict[str, str]  # relative path -> sha256
    seconds: float


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def place(src: Path, dest: Path) -> None:
    """Put a finished task's outputs into the stage: hard links (no bytes copied), a copy across devices."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in sorted(src.rglob("*")):
        target = dest / p.relative_to(src)
        if p.is_dir():
            target.mkdir(exist_ok=True)
            continue
        try:
            os.link(p, target)
        except OSError:
            shutil.copy2(p, target)


class WorkDir:
    """One build's view of the work directory; only one build may hold it at a time.

    The interface the build uses (build/__init__.py), shared with workstore.StoreWork (object storage):
    begin, finished, place, prepare, target, recorded, item, keys."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.root / ".lock", "w")  # noqa: SIM115 (held for the build's lifetime)
        except OSError as exc:
            raise InputError(f"cannot use the work directory ({exc.strerror or exc})", self.root) from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise InputError("the work directory is in use by another build", self.root) from None
        self.db = sqlite3.connect(self.root / STATE)
        self.db.executescript(SCHEMA)
        self.build_id: int | None = None

    def close(self) -> None:
        self.db.close()
        self._lock.close()

    def __enter__(self) -> WorkDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def begin(self) -> int:
        cur = self.db.execute("INSERT INTO builds (started) VALUES (?)", (time.time(),))
        self.db.commit()
        self.build_id = int(cur.lastrowid or 0)
        return self.build_id

    def output_dir(self, key: str) -> Path:
        return self.root / "tasks" / key

    def finished(self, key: str, verify: bool = True) -> Finished | None:
        """The record of a finished task whose outputs are all still there, byte for byte (else None)."""
        row = self.db.execute("SELECT collection, item_id, item, outputs, seconds FROM tasks WHERE key = ?",
                              (key,)).fetchone()
        if row is None:
            return None
        done = Finished(key, row[0], row[1], json.loads(row[2]), json.loads(row[3]), row[4])
        root = self.output_dir(key) / done.collection / done.item_id
        if not root.is_dir():
            return None
        if verify and _digests(root) != done.outputs:
            return None
        return done

    def keys(self) -> set[str]:
        return {k for (k,) in self.db.execute("SELECT key FROM tasks")}

    def place(self, done: Finished, stage: Path) -> bool:
        place(self.output_dir(done.key) / done.collection / done.item_id, stage / done.collection / done.item_id)
        return True

    def target(self, key: str) -> Path:
        return self.output_dir(key)

    def recorded(self, key: str, task: Task, result: Any) -> None:
        """Commit a result that came back from the executor (a TaskResult)."""
        self.record(key, task, result.collection, result.item, result.ok, result.seconds)

    def item(self, key: str) -> dict[str, Any]:
        row = self.db.execute("SELECT item FROM tasks WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0])

    def prepare(self, key: str) -> Path:
        """An empty output root for a task about to run (a killed run's leftovers are discarded)."""
        self.db.execute("DELETE FROM tasks WHERE key = ?", (key,))
        self.db.commit()
        out = self.output_dir(key)
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        return out

    def record(self, key: str, task: Task, collection: str, item: dict[str, Any] | None, ok: bool,
               seconds: float) -> None:
        """Commit one task's execution (and, on success, its outputs' digests) as soon as it finishes."""
        if ok and item is not None:
            root = self.output_dir(key) / collection / task.item_id
            self.db.execute(
                "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, task.event.id, task.item_id, collection, task.temporal_role,
                 json.dumps(item), json.dumps(_digests(root), sort_keys=True), seconds, time.time()))
        self.db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                        (self.build_id, key, task.event.id, task.item_id, int(ok), seconds))
        self.db.commit()
