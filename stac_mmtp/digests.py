"""A small local cache that makes re-runs incremental: file digests and validation results.

- File digests (sha256 and the S3 ETag) keyed by (absolute path, size, mtime in ns, inode, part
  size): a rebuilt file has a new mtime, so only untouched files reuse their digests (as rsync,
  restic or rclone do).
- Validation results keyed by the sha256 of an object's bytes and a fingerprint of the schemas
  (the schema lock and our extension schema): content already found valid against the same schemas
  is valid again. Only *valid* results are stored; problems are always recomputed.

SQLite in `~/.cache/stac-mmtp/` (or `$STAC_MMTP_CACHE`); `STAC_MMTP_NO_CACHE=1` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    return Path(os.environ.get("STAC_MMTP_CACHE", Path.home() / ".cache" / "stac-mmtp"))


class Cache:
    def __init__(self, path: Path | None = None):
        self.enabled = os.environ.get("STAC_MMTP_NO_CACHE", "") not in ("1", "true", "yes")
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if self.enabled:
            try:
                path = path or cache_dir() / "digests.sqlite"
                path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")  # a lost entry is only recomputed: no fsync per insert
                self._db.execute("CREATE TABLE IF NOT EXISTS digest (key TEXT PRIMARY KEY, sha256 TEXT, etag TEXT)")
                self._db.execute("CREATE TABLE IF NOT EXISTS valid (key TEXT PRIMARY KEY)")
                # whole trees: what a scan found in a tree of untouched files, and trees found valid
                self._db.execute("CREATE TABLE IF NOT EXISTS tree (dir TEXT PRIMARY KEY, fingerprint TEXT, blob TEXT)")
                self._db.execute("CREATE TABLE IF NOT EXISTS valid_tree (key TEXT PRIMARY KEY, schemas TEXT)")
            except sqlite3.Error:
                self._db = None  # a read-only home or a locked file: work without the cache

    def digest(self, key: str) -> tuple[str, str] | None:
        if self._db is None:
            return None
        with self._lock:
            row = self._db.execute("SELECT sha256, etag FROM digest WHERE key = ?", (key,)).fetchone()
        return (row[0], row[1]) if row else None

    def digests(self, keys: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Many lookups in a few queries (a tree has thousands of files)."""
        if self._db is None:
            return {}
        keys = list(keys)
        found: dict[str, tuple[str, str]] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                q = f"SELECT key, sha256, etag FROM digest WHERE key IN ({','.join('?' * len(chunk))})"
                found.update((k, (sha, etag)) for k, sha, etag in self._db.execute(q, chunk))
        return found

    def put_digest(self, key: str, sha256: str, etag: str) -> None:
        if self._db is None:
            return
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO digest VALUES (?, ?, ?)", (key, sha256, etag))

    def put_digests(self, rows: list[tuple[str, str, str]]) -> None:
        """(key, sha256, etag) rows in one transaction."""
        if self._db is None or not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO digest VALUES (?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def valid_keys(self, keys: Iterable[str]) -> set[str]:
        if self._db is None:
            return set()
        keys = list(keys)
        found: set[str] = set()
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                q = f"SELECT key FROM valid WHERE key IN ({','.join('?' * len(chunk))})"
                found.update(r[0] for r in self._db.execute(q, chunk))
        return found

    def add_valid(self, keys: Iterable[str]) -> None:
        if self._db is None:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR IGNORE INTO valid VALUES (?)", [(k,) for k in keys])
            self._db.execute("COMMIT")


    def tree(self, directory: str, fingerprint: str) -> Any:
        """What was stored for `directory` when its files had this fingerprint (else None)."""
        if self._db is None:
            return None
        with self._lock:
            row = self._db.execute("SELECT fingerprint, blob FROM tree WHERE dir = ?", (directory,)).fetchone()
        return json.loads(row[1]) if row and row[0] == fingerprint else None

    def put_tree(self, directory: str, fingerprint: str, blob: Any) -> None:
        if self._db is not None:
            with self._lock:
                self._db.execute("INSERT OR REPLACE INTO tree VALUES (?, ?, ?)", (directory, fingerprint, json.dumps(blob)))

    def valid_tree(self, key: str) -> list[str] | None:
        """The schema URLs of a tree found valid under `key` (tree and schema fingerprints), else None."""
        if self._db is None:
            return None
        with self._lock:
            row = self._db.execute("SELECT schemas FROM valid_tree WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def add_valid_tree(self, key: str, schemas: list[str]) -> None:
        if self._db is not None:
            with self._lock:
                self._db.execute("INSERT OR REPLACE INTO valid_tree VALUES (?, ?)", (key, json.dumps(schemas)))


def stat_key(path: str, st: os.stat_result, variant: object) -> str:
    return f"{path}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{variant}"


def tree_fingerprint(file_keys: Iterable[str]) -> str:
    """One digest of a tree's file keys (path, size, mtime, inode): any touched, added or removed
    file changes it."""
    return hashlib.sha256("\n".join(sorted(file_keys)).encode()).hexdigest()


def content_key(data: bytes, fingerprint: str) -> str:
    return hashlib.sha256(fingerprint.encode() + b"\0" + data).hexdigest()
