"""The local side of a publish: every publishable file of a built tree, with its phase, media type,
cache policy, the keys it links down to, and its digests (sha256 and the ETag S3 computes).

The digests are what `validate` (asset_checks) caches too: DIGEST_VARIANT and hash_file live here,
below both, so validate never needs the rest of publish.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import mimetypes
import os
import posixpath
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stac_mmtp.digests import Cache, stat_key, tree_fingerprint
from stac_mmtp.errors import InputError
from stac_mmtp.stac import COG_MEDIA_TYPE, GEOJSON_MEDIA_TYPE, JSON_MEDIA_TYPE, PNG_MEDIA_TYPE

PHASES = ("assets", "items", "collections", "root")
DOWN_RELS = ("child", "item")  # links a reader follows down from the root: their targets go first
# JSON changes with every release: caches must revalidate soon. Asset files keep their bytes
# (a new product gets a new item directory), so caches may keep them for a year.
CACHE_JSON = "public, max-age=60, must-revalidate"
CACHE_ASSET = "public, max-age=31536000, immutable"
MB = 1024 * 1024
# Files from 64 MiB on go in 16 MiB parts (the ETag check assumes both). aws s3 sync splits from 8 MiB,
# which makes a 20 MB COG five requests (create, 3 parts, complete) instead of one PUT; rclone only
# splits from 200 MiB. One PUT of tens of MB is what S3 serves best, and parallelism comes from the
# many files of a release.
MULTIPART_THRESHOLD = 64 * MB
PART_SIZE = 16 * MB
SUFFIX_TYPES = {
    ".tif": COG_MEDIA_TYPE, ".tiff": COG_MEDIA_TYPE, ".png": PNG_MEDIA_TYPE, ".json": JSON_MEDIA_TYPE,
    ".geojson": GEOJSON_MEDIA_TYPE, ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".xml": "application/xml",
    ".parquet": "application/vnd.apache.parquet", ".html": "text/html; charset=utf-8", ".txt": "text/plain; charset=utf-8",
}
ProgressFn = Callable[[str, int, int], None] | None

# what a file's cached digests depend on besides its bytes (the ETag's part size): shared with validate
DIGEST_VARIANT = f"{MULTIPART_THRESHOLD}/{PART_SIZE}"


# --------------------------------------------------------------------------- the local tree
@dataclass
class LocalObject:
    key: str  # path relative to the build directory, with '/' separators
    path: Path
    size: int
    phase: str  # what it is (assets, items, collections, root): the summary's rows
    content_type: str
    cache_control: str
    needs: tuple[str, ...] = ()  # keys it links down to (child and item links, asset files): uploaded before it
    sha256: str = ""  # hex digest; "" until hashed (a file the store lacks is hashed just before its upload)
    etag: str = ""  # the MD5 ETag S3 computes for our upload (single or multipart)
    cache_key: str = ""  # its digests.Cache key: path, size, mtime, inode


def ensure_digests(obj: LocalObject, cache: Cache) -> LocalObject:
    """Fill in sha256 and ETag (from one read of the file), and remember them for untouched files."""
    if not obj.sha256:
        obj.sha256, obj.etag, _ = hash_file(obj.path)
        cache.put_digest(obj.cache_key, obj.sha256, obj.etag)
    return obj


def digests_of(chunks: Iterable[bytes], size: int) -> tuple[str, str]:
    """(sha256 hex, the ETag S3 gives these bytes uploaded by us) in one pass over `chunks` of
    `size` bytes in all: a multipart upload's ETag is the MD5 of its PART_SIZE parts' MD5s plus
    '-<parts>'."""
    sha, md5 = hashlib.sha256(), hashlib.md5()  # noqa: S324 - MD5 is what S3 puts in ETags
    if size < MULTIPART_THRESHOLD:
        for data in chunks:
            sha.update(data)
            md5.update(data)
        return sha.hexdigest(), md5.hexdigest()
    parts: list[bytes] = []
    in_part = 0
    for data in chunks:
        sha.update(data)
        view = memoryview(data)
        while view:
            take = view[:PART_SIZE - in_part]
            md5.update(take)
            in_part += len(take)
            view = view[len(take):]
            if in_part == PART_SIZE:
                parts.append(md5.digest())
                md5, in_part = hashlib.md5(), 0  # noqa: S324
    if in_part:
        parts.append(md5.digest())
    return sha.hexdigest(), hashlib.md5(b"".join(parts)).hexdigest() + f"-{len(parts)}"  # noqa: S324


def hash_file(path: Path, block: int = MB) -> tuple[str, str, int]:
    """(sha256 hex, expected S3 ETag, size) in one read, 1 MiB at a time to keep parallel hashing
    light on memory."""
    size = path.stat().st_size
    with path.open("rb") as f:
        sha, etag = digests_of(iter(lambda: f.read(block), b""), size)
    return sha, etag, size


def local_paths_in(text: str, obj: Any, build_dir: Path, build_dirs: list[str] | None = None) -> list[str]:
    """Local references a published JSON must not hold: file:// URLs, the build directory (as given
    and resolved: `build_dirs`, computed once by callers checking many files), absolute paths."""
    found = []
    if "file://" in text:
        found.append("a file:// URL")
    for d in build_dirs or sorted({str(build_dir), str(build_dir.resolve())}):
        if d in text:
            found.append(f"the build directory {d}")
    if isinstance(obj, dict):
        hrefs = [lk.get("href", "") for lk in obj.get("links", []) if isinstance(lk, dict)]
        hrefs += [a.get("href", "") for a in (obj.get("assets") or {}).values() if isinstance(a, dict)]
        found += [f"absolute path href {h!r}" for h in hrefs if isinstance(h, str) and (h.startswith("/") or h[1:3] == ":\\")]
    return found


def iter_files(root: str, skip_hidden_dirs: bool = True) -> Iterator[tuple[str, str, os.stat_result]]:
    """(path, name, stat) of every regular file under `root` whose name does not start with "." (and,
    with `skip_hidden_dirs`, outside directories whose name does), as os.walk finds them (symlinked
    directories not followed), depth first. Unlike os.walk it never lists a directory whole: the
    million item directories of one collection directory were ~130 MB of names."""
    stack = [os.scandir(root)]
    try:
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop().close()
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if not entry.is_symlink() and not (skip_hidden_dirs and entry.name.startswith(".")):
                    with contextlib.suppress(OSError):  # os.walk skips an unreadable directory too
                        stack.append(os.scandir(entry.path))
                continue
            if entry.name.startswith("."):
                continue
            st = os.stat(entry.path)
            if stat.S_ISREG(st.st_mode):
                yield entry.path, entry.name, st
    finally:
        for it in stack:
            it.close()


def tree_keys(build_dir: Path) -> tuple[dict[Path, str], str]:
    """Every publishable file under `build_dir` (resolved) with its digests.Cache key, and the tree's
    fingerprint. Hidden files (temporary `.name.part` files of an interrupted write) are left out."""
    build_dir = build_dir.resolve()
    variant = DIGEST_VARIANT
    found: list[tuple[str, str]] = []
    for top, dirs, names in os.walk(build_dir):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if not name.startswith("."):
                path = os.path.join(top, name)
                st = os.stat(path)
                if stat.S_ISREG(st.st_mode):
                    found.append((path, stat_key(path, st, variant)))
    keys = {Path(path): key for path, key in sorted(found)}
    return keys, tree_fingerprint(keys.values())


def scan_tree(build_dir: Path, jobs: int = 4, digests: bool = True,
              tree: tuple[dict[Path, str], str] | None = None) -> list[LocalObject]:
    """Every publishable file under `build_dir` with its phase, media type, cache policy, the keys
    it links down to, and (with `digests`, else only for JSON and untouched files) its hashes.

    Asset media types come from the items that declare them; other files get one from their
    suffix. A tree whose files are all untouched since the last scan (digests.Cache) is not read.
    """
    build_dir = build_dir.resolve()
    keys, fingerprint = tree or tree_keys(build_dir)
    files = list(keys)
    cache = Cache()  # digests of untouched files (same path, size, mtime, inode) are not recomputed
    known = cache.digests(keys.values())
    if (saved := cache.tree(str(build_dir), fingerprint)) is not None:
        objs = []
        for key, size, phase, media, cache_control, needs in saved:
            fkey = keys[build_dir / key]
            objs.append(LocalObject(key, build_dir / key, size, phase, media, cache_control, tuple(needs),
                                    *known.get(fkey, ("", "")), fkey))
        if digests:
            _hash_all(objs, jobs)
        return objs
    # Links are joined lexically on the keys (relative POSIX paths): the tree is resolved once, and
    # resolving every href (a stat per path component) took most of a cold scan.
    cut = len(str(build_dir)) + 1
    rel = {p: str(p)[cut:].replace(os.sep, "/") for p in files}
    # Each key once: links and asset hrefs are stored as the tree's own key strings, and only when they
    # name a file of the tree (the only ones used below). At 100,000 items of 14 assets, the copies made
    # per href (and of each asset's media type) were most of publish's memory (1 GiB).
    in_tree = {r: r for r in rel.values()}
    medias: dict[str, str] = {}
    dirs = sorted({str(build_dir), str(build_dir.resolve())})
    declared: dict[str, str] = {}
    kinds: dict[Path, str | None] = {}
    needs: dict[Path, list[str]] = {}
    problems: list[str] = []
    new_digests: list[tuple[str, str, str]] = []
    for p in files:
        if p.suffix.lower() not in (".json", ".geojson"):
            continue
        data = p.read_bytes()
        if keys[p] not in known:  # already in memory: hashing it costs nothing more
            known[keys[p]] = digest = digests_of([data], len(data))
            new_digests.append((keys[p], *digest))
        text = data.decode("utf-8", errors="replace")
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        kinds[p] = kind = obj.get("type") if isinstance(obj, dict) and "stac_version" in obj else None
        problems += [f"{rel[p]}: holds {what}" for what in local_paths_in(text, obj, build_dir, dirs)]
        if kind is None:
            continue
        here = posixpath.dirname(rel[p])
        down = [lk.get("href", "") for lk in obj.get("links", []) if isinstance(lk, dict) and lk.get("rel") in DOWN_RELS]
        for asset in (obj.get("assets") or {}).values():
            if isinstance(asset, dict):
                down.append(href := asset.get("href", ""))
                if (media := asset.get("type")) and isinstance(href, str) and "://" not in href and (
                        q := in_tree.get(posixpath.normpath(posixpath.join(here, href)))):
                    declared[q] = medias.setdefault(media, media) if isinstance(media, str) else media
        needs[p] = [q for h in down if isinstance(h, str) and h and "://" not in h
                    and (q := in_tree.get(posixpath.normpath(posixpath.join(here, h))))]
    cache.put_digests(new_digests)
    if problems:
        raise InputError("refusing to publish local paths:\n  " + "\n  ".join(problems[:50]), build_dir)

    objs = []
    for p in files:
        kind = kinds.get(p)
        if p == build_dir / "catalog.json":
            phase = "root"
        elif kind == "Feature":
            phase = "items"
        elif kind in ("Collection", "Catalog"):
            phase = "collections"
        else:
            phase = "assets"
        if phase == "items":
            media = GEOJSON_MEDIA_TYPE
        elif phase in ("collections", "root"):
            media = JSON_MEDIA_TYPE
        else:
            media = declared.get(rel[p]) or SUFFIX_TYPES.get(p.suffix.lower()) or (
                mimetypes.guess_type(p.name)[0] or "application/octet-stream")
        is_json = media.startswith(("application/json", "application/geo+json")) or phase != "assets"
        down = tuple(sorted({q for q in needs.get(p, ()) if q in in_tree and q != rel[p]}))
        sha, etag = known.get(keys[p], ("", ""))
        objs.append(LocalObject(rel[p], p, int(keys[p].rsplit("|", 4)[1]), phase, media,
                                CACHE_JSON if is_json else CACHE_ASSET, down, sha, etag, keys[p]))
    cache.put_tree(str(build_dir), fingerprint,
                   [[o.key, o.size, o.phase, o.content_type, o.cache_control, list(o.needs)] for o in objs])
    if digests:
        _hash_all(objs, jobs)
    return objs


# The parallel map of hashing, the plan's HEADs and verify: here, at the bottom of the package, so that
# order and verify import it downwards (scan imports none of its siblings).
def _run_parallel(fn: Callable[[LocalObject], Any], objs: list[LocalObject], jobs: int, label: str,
                  progress: ProgressFn) -> tuple[list[tuple[LocalObject, Any]], list[tuple[LocalObject, BaseException]]]:
    done: list[tuple[LocalObject, Any]] = []
    failed: list[tuple[LocalObject, BaseException]] = []
    if progress and objs:
        progress(label, 0, len(objs))
    # At most 4 x jobs futures at a time: a future per object of a million-file tree at once was
    # about 1 KiB each (its condition and lock), most of the peak of verify.
    todo, window, n = iter(objs), 4 * max(1, jobs), 0
    with cf.ThreadPoolExecutor(max(1, jobs)) as pool:
        futures: dict[cf.Future, LocalObject] = {}
        while True:
            for o in todo:
                futures[pool.submit(fn, o)] = o
                if len(futures) >= window:
                    break
            if not futures:
                break
            finished, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                obj = futures.pop(fut)
                n += 1
                try:
                    done.append((obj, fut.result()))
                except Exception as exc:  # noqa: BLE001 - collected and reported with the key
                    failed.append((obj, exc))
                if progress:
                    progress(label, n, len(objs))
    return done, failed


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _hash_all(objs: list[LocalObject], jobs: int, progress: ProgressFn = None) -> None:
    todo = [o for o in objs if not o.sha256]
    cache = Cache()
    _, failed = _run_parallel(lambda o: ensure_digests(o, cache), todo, jobs, "hashing", progress)
    if failed:
        obj, exc = failed[0]
        raise InputError(f"cannot read {obj.path}: {_describe(exc)}")
