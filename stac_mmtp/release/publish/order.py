"""The upload order: an object goes once everything it links down to is in the store, the root
catalog last, so a reader never meets a broken link."""

from __future__ import annotations

import concurrent.futures as cf
import os
import queue
from collections import deque
from typing import TYPE_CHECKING

from stac_mmtp.digests import Cache
from stac_mmtp.errors import InputError
from stac_mmtp.release.publish.scan import MB, LocalObject, ProgressFn, ensure_digests

if TYPE_CHECKING:
    from stac_mmtp.release.publish.stores import Cancellable, Store

def _users(waits: dict[str, set[str]]) -> dict[str, list[str]]:
    """The reverse of `waits`: for each key, the uploads waiting for it."""
    users: dict[str, list[str]] = {}
    for k, v in waits.items():
        for d in v:
            users.setdefault(d, []).append(k)
    return users


def upload_order(uploads: list[LocalObject]) -> dict[str, set[str]]:
    """For each upload, the uploads it must wait for: what it links down to (child and item links,
    asset files) among this run's uploads, and for the root catalog every other upload (the root is
    what makes a release visible). What it links to that is not uploaded is in the store already."""
    keys = {o.key for o in uploads}
    roots = {o.key for o in uploads if o.phase == "root"}
    waits = {o.key: (keys - roots if o.key in roots else {k for k in o.needs if k in keys} - {o.key}) for o in uploads}
    # a cycle of child/item links would wait forever: refuse it before anything is written (Kahn)
    users = _users(waits)
    left = {k: len(v) for k, v in waits.items()}
    free = [k for k, n in left.items() if n == 0]
    while free:
        for u in users.get(free.pop(), []):
            left[u] -= 1
            if left[u] == 0:
                free.append(u)
    if stuck := sorted(k for k, n in left.items() if n):
        raise InputError(f"child/item links form a cycle through {', '.join(stuck[:5])}: no safe upload order")
    return waits


def upload_in_order(uploads: list[LocalObject], store: Store, progress: ProgressFn = None, jobs: int = 8,
                    ) -> tuple[list[LocalObject], list[tuple[LocalObject, BaseException]], list[LocalObject]]:
    """Upload each object as soon as everything it links down to is in the store, so a reader
    never meets a broken link, and the root catalog last: (uploaded, failed, not attempted).

    At most 2 x `jobs` uploads are handed to the store at a time, large files first but no more
    than half of them while small ones wait: large and small transfers overlap (the server and the
    network work on both) instead of all items queueing ahead of the data files. Files the store
    lacks were not hashed by the plan: their sha256 (object metadata) is computed here, on half
    the cores, while earlier uploads are in flight. After the first failure nothing new starts and
    queued uploads are cancelled: what depends on a failed object is never written; a re-run resumes."""
    waits = upload_order(uploads)
    by_key = {o.key: o for o in uploads}
    users = _users(waits)
    events: queue.SimpleQueue[tuple[str, LocalObject, BaseException | None]] = queue.SimpleQueue()
    handles: dict[str, Cancellable] = {}  # hashing or uploading
    big: deque[LocalObject] = deque()
    small: deque[LocalObject] = deque()
    window, big_share = 2 * max(1, jobs), max(1, jobs // 2)
    in_flight = big_in_flight = 0
    done: list[LocalObject] = []
    failed: list[tuple[LocalObject, BaseException]] = []
    skipped: list[LocalObject] = []
    cache = Cache()
    hasher = cf.ThreadPoolExecutor(max(1, (os.cpu_count() or 2) // 2))  # leave cores to the transfers
    stopping = False

    def on_hashed(o: LocalObject, fut: cf.Future) -> None:
        events.put(("hashed", o, cf.CancelledError() if fut.cancelled() else fut.exception()))

    def make_ready(objs: list[LocalObject]) -> None:
        for o in sorted(objs, key=lambda o: (-o.size, o.key)):
            if o.sha256:
                (big if o.size >= MB else small).append(o)
            else:
                handles[o.key] = fut = hasher.submit(ensure_digests, o, cache)
                fut.add_done_callback(lambda f, o=o: on_hashed(o, f))

    def pump() -> None:
        nonlocal in_flight, big_in_flight
        while in_flight < window and not stopping:
            if big and (big_in_flight < big_share or not small):
                o = big.popleft()
                big_in_flight += 1
            elif small:
                o = small.popleft()
            else:
                return
            in_flight += 1
            handles[o.key] = store.submit(o, lambda exc, o=o: events.put(("uploaded", o, exc)))

    if progress and uploads:
        progress("uploading", 0, len(uploads))
    finished = 0
    try:
        make_ready([o for o in uploads if not waits[o.key]])
        pump()
        while handles:
            stage, obj, exc = events.get()
            if stage == "hashed" and exc is None and not stopping:
                (big if obj.size >= MB else small).append(obj)
                del handles[obj.key]
                pump()
                continue
            del handles[obj.key]
            if stage == "uploaded":
                in_flight -= 1
                big_in_flight -= obj.size >= MB
            finished += 1
            if isinstance(exc, cf.CancelledError) or (stage == "hashed" and exc is None):
                skipped.append(obj)
            elif exc is not None:
                failed.append((obj, exc))
                if not stopping:
                    stopping = True
                    for handle in list(handles.values()):
                        handle.cancel()
            else:
                done.append(obj)
                ready = []
                for user in users.get(obj.key, []):
                    waits[user].discard(obj.key)
                    if not waits[user]:
                        ready.append(by_key[user])
                if not stopping:
                    make_ready(ready)
                    pump()
            if progress:
                progress("uploading", finished, len(uploads))
    finally:
        hasher.shutdown(cancel_futures=True)
    settled = {o.key for o in done} | {o.key for o in skipped} | {o.key for o, _ in failed}
    skipped += [o for o in uploads if o.key not in settled]
    return done, failed, skipped

