"""The reduce step's items on disk: each finished task's item is appended to its collection's spool file
as it arrives, and read back one at a time, in ascending id order, by every pass that needs them.

A build holds no item dict: the spool keeps each item's bytes, and its index (id, event id, where its bytes
are) is in SQLite beside them.
The facts of the events' links (one `Acquisition` per item) go to SQLite beside them (`AcquisitionSpool`).
Items are stored as compact JSON (orjson; json where the two would differ: NaN, integers past 64
bits, non-string keys), which round-trips to the same dict as the work directory's own JSON records.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from stac_mmtp.stac.events import LINK_ORDER, Acquisition, linked_event


def _encode(item: dict[str, Any]) -> tuple[bytes, bool]:
    """(bytes, written by json?) of one item: orjson when it reads back the same, else json."""
    try:
        data = orjson.dumps(item)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(item).encode(), True
    if b"null" in data:  # orjson writes NaN/Infinity as null: json keeps them
        try:
            json.dumps(item, allow_nan=False)
        except ValueError:
            return json.dumps(item).encode(), True
    return data, False


def scratch_db(path: Path | str) -> sqlite3.Connection:
    """A SQLite file for the build's scratch facts (spool index, link facts, results): any file already at
    `path` is a previous run's and is replaced; no journal, no fsync (a crashed build's file is removed
    with its directory)."""
    Path(path).unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    return db


class ItemSpool:
    """Append-only item files under `root` (a scratch directory the caller removes), one per collection,
    and their index in SQLite beside them: where each item's bytes are, its id and event id. Nothing is
    kept in memory per item (a Python index was about 180 bytes per item)."""

    BATCH = 5_000

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, BinaryIO] = {}
        self._counts: dict[str, int] = {}
        self._db = scratch_db(self.root / "index.sqlite")
        # seq: the order of arrival, which breaks ties between equal ids as a stable sort would
        self._db.execute("CREATE TABLE items (seq INTEGER PRIMARY KEY, collection TEXT NOT NULL, id TEXT NOT NULL, "
                         "event_id TEXT, offset INTEGER NOT NULL, length INTEGER NOT NULL, json INTEGER NOT NULL)")
        self._rows: list[tuple[Any, ...]] = []
        self._indexed = False

    def _path(self, collection: str) -> str:
        return os.path.join(str(self.root), f"{collection}.jsonl")

    def add(self, collection: str, item: dict[str, Any]) -> None:
        f = self._files.get(collection)
        if f is None:
            f = self._files[collection] = open(self._path(collection), "ab")  # noqa: SIM115 (closed by close())
            self._counts[collection] = 0
        data, by_json = _encode(item)
        self._rows.append((collection, item["id"], (item.get("properties") or {}).get("mmtp:event_id"), f.tell(),
                           len(data), by_json))
        self._counts[collection] += 1
        f.write(data)
        f.write(b"\n")
        if len(self._rows) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._db.executemany("INSERT INTO items (collection, id, event_id, offset, length, json) "
                                 "VALUES (?, ?, ?, ?, ?, ?)", self._rows)
            self._db.commit()
            self._rows.clear()
            self._indexed = False

    def collections(self) -> list[str]:
        return sorted(self._counts)

    def count(self, collection: str) -> int:
        return self._counts.get(collection, 0)

    def items(self, collection: str) -> SpooledItems:
        """The items of `collection`, re-iterable: each pass reads them back from the file."""
        return SpooledItems(self, collection)

    def _ordered(self, collection: str, columns: str) -> Iterator[tuple[Any, ...]]:
        """Index rows of `collection` in ascending id order (SQLite compares text as UTF-8 bytes: code
        point order, as Python does), ties in the order they arrived."""
        self._flush()
        if not self._indexed:
            self._db.execute("CREATE INDEX IF NOT EXISTS items_order ON items (collection, id, seq)")
            self._indexed = True
        yield from self._db.execute(f"SELECT {columns} FROM items WHERE collection = ? ORDER BY id, seq", (collection,))

    def _iter(self, collection: str) -> Iterator[dict[str, Any]]:
        if collection not in self._files:
            return
        self._files[collection].flush()
        with open(self._path(collection), "rb") as f:
            for offset, length, by_json in self._ordered(collection, "offset, length, json"):
                f.seek(offset)
                data = f.read(length)
                yield json.loads(data) if by_json else orjson.loads(data)

    def keys(self, collection: str) -> Iterator[tuple[str, str | None]]:
        """(id, mmtp:event_id) of each item of `collection`, in the order `items` gives them, read off the
        index: no item is read."""
        if collection in self._files:
            yield from self._ordered(collection, "id, event_id")

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
        self._db.close()

    def __enter__(self) -> ItemSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SpooledItems:
    """A collection's spooled items in ascending id order, read back each time it is iterated
    (stac.tree.write_tree takes it as a stream: nothing is held)."""

    def __init__(self, spool: ItemSpool, collection: str) -> None:
        self.spool, self.collection = spool, collection

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.spool._iter(self.collection)

    def __len__(self) -> int:
        return self.spool.count(self.collection)

    def keys(self) -> Iterator[tuple[str, str | None]]:
        """(id, mmtp:event_id) of each item, in iteration order, without reading the items."""
        return self.spool.keys(self.collection)


class MappedItems:
    """`fn` applied to each item of a re-iterable stream as it is read (what an in-place edit of a list
    of items is for a stream): e.g. the dataset step's `ml-aoi:split`."""

    def __init__(self, items: Iterable[dict[str, Any]], fn: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.items, self.fn = items, fn

    def __iter__(self) -> Iterator[dict[str, Any]]:
        fn = self.fn
        for it in self.items:
            yield fn(it)

    def __len__(self) -> int:
        return len(self.items)  # type: ignore[arg-type]


def is_stream(items: object) -> bool:
    """A bundle's items that are not a list: read from disk on each pass, never to be edited in place."""
    return not isinstance(items, list)


class AcquisitionSpool:
    """The facts of the events' links (`stac.events.Acquisition`, one per item that links to an event) in a
    SQLite file under the spool's scratch directory, read back per event in `link_order`: the reduce holds
    none of them (about 1 kB per item in a list)."""

    BATCH = 5_000

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db = scratch_db(self.path)
        self._db.execute("CREATE TABLE acq (event_id TEXT NOT NULL, rel INTEGER NOT NULL, at TEXT NOT NULL, "
                         "item_id TEXT NOT NULL, seq INTEGER NOT NULL, collection TEXT NOT NULL, title TEXT NOT NULL, "
                         "thumbnail TEXT)")
        self._rows: list[tuple[Any, ...]] = []
        self._seq = 0
        self._indexed = False

    def add(self, a: Acquisition) -> None:
        # seq: the order they were found in, the last key of link_order's stable sort
        self._rows.append((a.event_id, LINK_ORDER.index(a.rel), a.when, a.item_id, self._seq, a.collection, a.title,
                           None if a.thumbnail is None else json.dumps(a.thumbnail)))
        self._seq += 1
        if len(self._rows) >= self.BATCH:
            self._flush()

    def extend(self, found: Iterable[Acquisition]) -> None:
        for a in found:
            self.add(a)

    def _flush(self) -> None:
        if self._rows:
            self._db.executemany("INSERT INTO acq VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self._rows)
            self._rows.clear()
            self._indexed = False

    def __len__(self) -> int:
        self._flush()
        return self._db.execute("SELECT count(*) FROM acq").fetchone()[0]

    def of_event(self, event_id: str) -> Iterator[Acquisition]:
        """The acquisitions of one event in `link_order` (SQLite compares text as UTF-8 bytes: code point
        order, as Python does), then in the order they were added."""
        self._flush()
        if not self._indexed:
            self._db.execute("CREATE INDEX IF NOT EXISTS acq_order ON acq (event_id, rel, at, item_id, seq)")
            self._indexed = True
        rows = self._db.execute("SELECT rel, at, collection, item_id, title, thumbnail FROM acq WHERE event_id = ? "
                                "ORDER BY rel, at, item_id, seq", (event_id,))
        for rel, at, coll, iid, title, thumb in rows:
            yield Acquisition(event_id, at, coll, iid, LINK_ORDER[rel], title, None if thumb is None else json.loads(thumb))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AcquisitionSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LinkedEvents:
    """The event items, each linked to its acquisitions (`stac.events.linked_event`) as it is read, in ascending
    id order: a re-iterable stream for stac.tree.write_tree that holds one event's links at a time. The
    items written are those of `link_acquisitions` on the same facts."""

    def __init__(self, items: list[dict[str, Any]], facts: AcquisitionSpool) -> None:
        self.items, self.facts = sorted(items, key=lambda it: it["id"]), facts

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for ev in self.items:
            yield linked_event(ev, self.facts.of_event(ev["id"]))

    def __len__(self) -> int:
        return len(self.items)
