"""`stac-mmtp publish`: sync a built catalog tree to S3-compatible object storage or a local mirror.

Readers must never see a broken link: an object is uploaded only once everything it links down to
(its child and item links, its asset files) is in the store, and the root catalog goes last, after
every other upload (data assets before their item, items before their collection, collections
before the root, without waiting for unrelated uploads). With `--delete`, stale objects go only
once the new root is in place and verified, and only objects a previous `stac-mmtp publish` wrote
there: each publish leaves a manifest (MANIFEST_KEY) listing its keys, and a prefix without one is
never deleted from (exit 2). Each object carries the sha256 of its content in its
metadata (`x-amz-meta-sha256`), so a re-run uploads only what changed (and an interrupted run
resumes where it stopped).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import logging
import mimetypes
import os
import posixpath
import queue
import shutil
import stat
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import click

from stac_mmtp.atomic import staged_file
from stac_mmtp.digests import Cache, stat_key, tree_fingerprint
from stac_mmtp.errors import EXIT_FAILED, InputError, MmtpError
from stac_mmtp.stac import COG_MEDIA_TYPE, GEOJSON_MEDIA_TYPE, JSON_MEDIA_TYPE, PNG_MEDIA_TYPE

log = logging.getLogger(__name__)

PHASES = ("assets", "items", "collections", "root")
DOWN_RELS = ("child", "item")  # links a reader follows down from the root: their targets go first
META_KEY = "sha256"  # stored as x-amz-meta-sha256: the hex sha256 of the object's bytes
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


# The publish manifest at the prefix: the keys stac-mmtp publish wrote there (what --delete may remove).
MANIFEST_KEY = ".stac-mmtp-publish.json"
MANIFEST_FORMAT = "stac-mmtp-publish-manifest/1"
RELEASE_MARKER = "release.json"  # written by `stac-mmtp release` into each version (versions.py)

# what a file's cached digests depend on besides its bytes (the ETag's part size): shared with validate
DIGEST_VARIANT = f"{MULTIPART_THRESHOLD}/{PART_SIZE}"


class PublishError(MmtpError):
    """An upload, delete or verification that failed: exit status 1."""


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
                if (media := asset.get("type")) and isinstance(href, str) and "://" not in href:
                    declared[posixpath.normpath(posixpath.join(here, href))] = media
        needs[p] = [posixpath.normpath(posixpath.join(here, h)) for h in down if isinstance(h, str) and h and "://" not in h]
    cache.put_digests(new_digests)
    if problems:
        raise InputError("refusing to publish local paths:\n  " + "\n  ".join(problems[:50]), build_dir)

    in_tree = set(rel.values())
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



# --------------------------------------------------------------------------- stores
@dataclass
class Remote:
    size: int
    sha256: str | None = None
    etag: str | None = None
    content_type: str | None = None
    cache_control: str | None = None


DoneFn = Callable[[BaseException | None], None]  # called once per upload, from a worker thread


class Cancellable(Protocol):
    def cancel(self) -> Any: ...


class Store(Protocol):
    url: str

    def list(self) -> dict[str, Remote] | None: ...  # key -> size (and ETag), None when listing is refused
    def head(self, key: str) -> Remote | None: ...
    def read(self, key: str) -> bytes | None: ...  # a small object's bytes, None when absent
    def write(self, key: str, data: bytes, content_type: str) -> None: ...
    def submit(self, obj: LocalObject, done: DoneFn) -> Cancellable: ...
    def delete(self, keys: list[str]) -> None: ...
    def close(self) -> None: ...


def redact(url: str) -> str:
    """A URL without any user:password part (endpoints may carry credentials)."""
    u = urllib.parse.urlsplit(url)
    if u.username or u.password:
        u = u._replace(netloc=u.hostname + (f":{u.port}" if u.port else ""))
    return urllib.parse.urlunsplit(u)


class FileStore:
    """A local mirror (file:///path): the same ordering and incremental rules, no server."""

    def __init__(self, root: Path, jobs: int = 8):
        self.root = root
        self.url = root.as_uri()
        self.jobs = jobs
        self._pool: cf.ThreadPoolExecutor | None = None

    def list(self) -> dict[str, Remote]:
        if not self.root.is_dir():
            return {}
        return {p.relative_to(self.root).as_posix(): Remote(p.stat().st_size) for p in self.root.rglob("*")
                if p.is_file() and not p.name.startswith(".")}

    def head(self, key: str) -> Remote | None:
        p = self.root / key
        if not p.is_file():
            return None
        sha, etag, size = hash_file(p)
        return Remote(size, sha, etag)

    def read(self, key: str) -> bytes | None:
        p = self.root / key
        return p.read_bytes() if p.is_file() else None

    def write(self, key: str, data: bytes, content_type: str) -> None:
        with staged_file(self.root / key) as tmp:
            tmp.write_bytes(data)

    def upload(self, obj: LocalObject) -> None:
        with staged_file(self.root / obj.key) as tmp:
            shutil.copyfile(obj.path, tmp)

    def submit(self, obj: LocalObject, done: DoneFn) -> cf.Future:
        if self._pool is None:
            self._pool = cf.ThreadPoolExecutor(max(1, self.jobs))
        fut = self._pool.submit(self.upload, obj)
        fut.add_done_callback(lambda f: done(cf.CancelledError() if f.cancelled() else f.exception()))
        return fut

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            p = self.root / key
            p.unlink(missing_ok=True)
            for parent in p.parents:  # drop directories the delete emptied
                if parent == self.root or any(parent.iterdir()):
                    break
                parent.rmdir()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


class S3Store:
    """An S3 bucket and prefix through boto3 (credentials from the standard AWS chain)."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None = None, jobs: int = 8, retries: int = 8,
                 anonymous: bool = False, public_base: str | None = None, session: Any = None):
        from boto3.s3.transfer import TransferConfig, create_transfer_manager
        from botocore import UNSIGNED
        from botocore.config import Config

        self.bucket, self.prefix, self.endpoint_url = bucket, prefix.strip("/"), endpoint_url
        self.public_base = public_base.rstrip("/") if public_base else None
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        config = Config(
            retries={"max_attempts": max(1, retries), "mode": "standard"},  # exponential backoff with jitter
            max_pool_connections=max(10, 2 * jobs), connect_timeout=10, read_timeout=120,
            s3={"addressing_style": "path"} if endpoint_url else {},
            signature_version=UNSIGNED if anonymous else None,
        )
        self.client = (session or aws_session()).client("s3", endpoint_url=endpoint_url, config=config)
        # The ETag the server answers to each PutObject / CompleteMultipartUpload: the MD5 of what it
        # stored, compared with the local bytes by verify_responses.
        self.stored: dict[str, str] = {}
        self.client.meta.events.register("provide-client-params.s3.PutObject", self._remember_key)
        for op in ("PutObject", "CompleteMultipartUpload"):
            self.client.meta.events.register(f"after-call.s3.{op}", self._record_etag)
        self.transfer = create_transfer_manager(self.client, TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=PART_SIZE, max_concurrency=jobs, use_threads=True,
            preferred_transfer_client="classic",  # the ETag check assumes our part size
        ))

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    @staticmethod
    def _remember_key(params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
        context["mmtp_key"] = params.get("Key")

    def _record_etag(self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
        key = parsed.get("Key") or context.get("mmtp_key")
        if key and http_response.status_code == 200 and parsed.get("ETag"):
            self.stored[key] = parsed["ETag"].strip('"')

    def public_url(self, rel: str) -> str:
        """The anonymous HTTP URL of an object (path style on custom endpoints)."""
        if self.public_base:
            return f"{self.public_base}/{urllib.parse.quote(rel)}"
        key = urllib.parse.quote(self.key(rel))
        if self.endpoint_url:
            return f"{redact(self.endpoint_url).rstrip('/')}/{self.bucket}/{key}"
        region = self.client.meta.region_name or "us-east-1"
        return f"https://{self.bucket}.s3.{region}.amazonaws.com/{key}"

    def list(self) -> dict[str, Remote] | None:
        from botocore.exceptions import ClientError

        start = f"{self.prefix}/" if self.prefix else ""
        out: dict[str, Remote] = {}
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
                for o in page.get("Contents", []):
                    out[o["Key"][len(start):]] = Remote(o["Size"], etag=o.get("ETag", "").strip('"'))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("AccessDenied", "403"):
                return None  # anonymous or write-only credentials: fall back to one HEAD per object
            raise
        return out

    def head(self, rel: str) -> Remote | None:
        from botocore.exceptions import ClientError

        try:
            r = self.client.head_object(Bucket=self.bucket, Key=self.key(rel))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return Remote(r["ContentLength"], r.get("Metadata", {}).get(META_KEY), r.get("ETag", "").strip('"'),
                      r.get("ContentType"), r.get("CacheControl"))

    def read(self, rel: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key(rel))["Body"].read()
        except ClientError as exc:
            # AWS answers 403 for a missing key to whoever may not list the bucket: unknown = absent
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound", "AccessDenied", "403"):
                return None
            raise

    def write(self, rel: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.key(rel), Body=data, ContentType=content_type,
                               CacheControl="no-cache")

    def submit(self, obj: LocalObject, done: DoneFn) -> Any:
        """Queue the upload in the transfer manager: one bound on requests in flight (`jobs`) for
        small PUTs and the parts of large files alike, in submission order. Botocore adds a CRC32
        checksum to each PUT and part, so the server refuses bytes damaged in transit."""
        from s3transfer.subscribers import BaseSubscriber

        class OnDone(BaseSubscriber):
            def on_done(self, future: Any, **kwargs: Any) -> None:
                try:
                    future.result()
                except BaseException as exc:  # noqa: BLE001 - handed to the scheduler, with the key
                    done(exc)
                else:
                    done(None)

        extra = {"ContentType": obj.content_type, "CacheControl": obj.cache_control, "Metadata": {META_KEY: obj.sha256}}
        return self.transfer.upload(str(obj.path), self.bucket, self.key(obj.key), extra_args=extra,
                                    subscribers=[OnDone()])

    def delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            batch = [{"Key": self.key(k)} for k in keys[i:i + 1000]]
            r = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            if r.get("Errors"):
                e = r["Errors"][0]
                raise PublishError(f"could not delete {len(r['Errors'])} object(s), e.g. {e.get('Key')}: {e.get('Message')}")

    def close(self) -> None:
        self.transfer.shutdown()


def parse_target(url: str) -> tuple[str, str, str]:
    """('s3', bucket, prefix) or ('file', '', path) from --to."""
    u = urllib.parse.urlsplit(url)
    if u.scheme == "s3" and u.netloc:
        return "s3", u.netloc, u.path.strip("/")
    if u.scheme == "file" and u.path:
        return "file", "", urllib.parse.unquote(u.path)
    raise InputError(f"--to must be s3://bucket[/prefix] or file:///path, not {redact(url)!r}")


def aws_session() -> Any:
    """A boto3 session whose responses keep timestamps as text: nothing here reads LastModified, and
    parsing it cost a tenth of a second per 2,000 listed keys (awscli does the same)."""
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    return boto3.session.Session(botocore_session=core)


def has_credentials(session: Any = None) -> bool:
    return (session or aws_session()).get_credentials() is not None


def open_store(to: str, endpoint_url: str | None = None, jobs: int = 8, retries: int = 8,
               dry_run: bool = False, public_url: str | None = None) -> FileStore | S3Store:
    scheme, bucket, rest = parse_target(to)
    if scheme == "file":
        return FileStore(Path(rest), jobs)
    session = aws_session()  # one credential resolution for the check and the client
    anonymous = not has_credentials(session)
    if anonymous and not dry_run:
        raise InputError("no AWS credentials found (environment AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
                         "~/.aws/credentials or an instance role); a --dry-run works without them on a public bucket")
    return S3Store(bucket, rest, endpoint_url, jobs, retries, anonymous=anonymous, public_base=public_url,
                   session=session)


# --------------------------------------------------------------------------- plan, upload, verify
@dataclass
class PhaseStats:
    objects: int = 0
    uploaded: int = 0
    unchanged: int = 0
    bytes_uploaded: int = 0


@dataclass
class PublishReport:
    target: str
    dry_run: bool = False
    phases: dict[str, PhaseStats] = field(default_factory=lambda: {p: PhaseStats() for p in PHASES})
    uploads: list[LocalObject] = field(default_factory=list)
    deletes: list[tuple[str, int]] = field(default_factory=list)  # stale objects a previous publish wrote
    foreign: list[tuple[str, int]] = field(default_factory=list)  # objects under the prefix stac-mmtp did not write
    deleted: int = 0
    stale_unknown: bool = False  # the store does not let us list: stale objects cannot be found
    assets_changed_in_place: list[str] = field(default_factory=list)
    verified: int = 0
    verification: str = "size, sha256 metadata, ETag = MD5 of the bytes, headers (one HEAD each)"
    public_check: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def bytes_to_upload(self) -> int:
        return sum(o.size for o in self.uploads)

    @property
    def ok(self) -> bool:
        return not self.problems


def _needs_upload(obj: LocalObject, remote: Remote | None, is_s3: bool) -> bool:
    if remote is None or remote.size != obj.size or remote.sha256 != obj.sha256:
        return True
    # The sha256 metadata is what was sent; the ETag is the MD5 of what the server kept: an object
    # damaged on the way (see verify) keeps a wrong ETag under the right metadata. A changed media
    # type or cache policy is a change too (S3 cannot edit metadata in place).
    return is_s3 and (remote.etag != obj.etag or remote.content_type != obj.content_type
                      or remote.cache_control != obj.cache_control)


def _run_parallel(fn: Callable[[LocalObject], Any], objs: list[LocalObject], jobs: int, label: str,
                  progress: ProgressFn) -> tuple[list[tuple[LocalObject, Any]], list[tuple[LocalObject, BaseException]]]:
    done: list[tuple[LocalObject, Any]] = []
    failed: list[tuple[LocalObject, BaseException]] = []
    if progress and objs:
        progress(label, 0, len(objs))
    with cf.ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = {pool.submit(fn, o): o for o in objs}
        for n, fut in enumerate(cf.as_completed(futures), 1):
            obj = futures[fut]
            try:
                done.append((obj, fut.result()))
            except Exception as exc:  # noqa: BLE001 - collected and reported with the key
                failed.append((obj, exc))
            if progress:
                progress(label, n, len(objs))
    return done, failed


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


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _hash_all(objs: list[LocalObject], jobs: int, progress: ProgressFn = None) -> None:
    todo = [o for o in objs if not o.sha256]
    cache = Cache()
    _, failed = _run_parallel(lambda o: ensure_digests(o, cache), todo, jobs, "hashing", progress)
    if failed:
        obj, exc = failed[0]
        raise InputError(f"cannot read {obj.path}: {_describe(exc)}")


def header_samples(objs: list[LocalObject]) -> list[LocalObject]:
    """One object per (media type, cache policy): what a HEAD samples to see that the store keeps
    the headers this version of stac-mmtp sends."""
    first: dict[tuple[str, str], LocalObject] = {}
    for o in objs:
        first.setdefault((o.content_type, o.cache_control), o)
    return list(first.values())


def plan(objs: list[LocalObject], store: Store, jobs: int, progress: ProgressFn = None,
         check_every_object: bool = False) -> tuple[list[LocalObject], dict[str, Remote] | None]:
    """Which objects must be uploaded; plus the store's listing (for stale objects), None if unlisted.

    The listing settles absent keys and other sizes. On S3, a listed ETag equal to the MD5 (or
    multipart MD5) of the local bytes settles the content; the headers, which a listing does not
    show, are sampled with one HEAD per (media type, cache policy): a sample that differs (a new
    header policy, or another tool) sends its whole class to one HEAD per object. Those HEADs, and
    with `check_every_object` or on a file mirror every same-size object's, compare the sha256
    metadata, the ETag and the headers (_needs_upload).
    """
    listing = store.list()
    is_s3 = isinstance(store, S3Store)
    if listing is None:
        todo, changed = objs, []
        _hash_all(todo, jobs, progress)
    else:
        changed = [o for o in objs if o.key not in listing or listing[o.key].size != o.size]
        todo = [o for o in objs if o.key in listing and listing[o.key].size == o.size]
        _hash_all(todo, jobs, progress)  # what the store lacks is hashed later, while the uploads run
        if is_s3 and not check_every_object:
            same = [o for o in todo if listing[o.key].etag == o.etag]
            todo = [o for o in todo if listing[o.key].etag != o.etag]
            samples = header_samples(same)
            heads, failed = _run_parallel(lambda o: store.head(o.key), samples, jobs, "checking", progress)
            if failed:
                obj, exc = failed[0]
                raise PublishError(f"cannot read {obj.key} in {store.url}: {_describe(exc)}")
            wrong = {o.key for o, remote in heads if _needs_upload(o, remote, is_s3)}
            off = {(o.content_type, o.cache_control) for o in samples if o.key in wrong}
            changed += [o for o in samples if o.key in wrong]
            todo += [o for o in same if (o.content_type, o.cache_control) in off and o not in samples]
    heads, failed = _run_parallel(lambda o: store.head(o.key), todo, jobs, "checking", progress)
    if failed:
        obj, exc = failed[0]
        raise PublishError(f"cannot read {len(failed)} object(s) in {store.url}, e.g. {obj.key}: {_describe(exc)}")
    changed += [o for o, remote in heads if _needs_upload(o, remote, is_s3)]
    order = {o.key: i for i, o in enumerate(objs)}
    return sorted(changed, key=lambda o: order[o.key]), listing


def verify(objs: list[LocalObject], store: Store, jobs: int, progress: ProgressFn = None) -> list[str]:
    """Every object's size and checksum as the store reports them; for S3 also the ETag (MD5 of the
    bytes the server received), the media type and the cache policy."""
    is_s3 = isinstance(store, S3Store)

    def check(obj: LocalObject) -> list[str]:
        r = store.head(obj.key)
        if r is None:
            return [f"{obj.key}: missing after upload"]
        out = []
        if r.size != obj.size:
            out.append(f"{obj.key}: size {r.size} in the store, {obj.size} locally")
        if r.sha256 != obj.sha256:
            out.append(f"{obj.key}: sha256 {r.sha256} in the store, {obj.sha256} locally")
        if is_s3 and r.etag != obj.etag:
            out.append(f"{obj.key}: ETag {r.etag} in the store, expected {obj.etag} (content differs)")
        if is_s3 and r.content_type != obj.content_type:
            out.append(f"{obj.key}: Content-Type {r.content_type!r}, expected {obj.content_type!r}")
        if is_s3 and r.cache_control != obj.cache_control:
            out.append(f"{obj.key}: Cache-Control {r.cache_control!r}, expected {obj.cache_control!r}")
        return out

    done, failed = _run_parallel(check, objs, jobs, "verifying", progress)
    return [p for _, ps in done for p in ps] + [f"{o.key}: cannot verify ({_describe(e)})" for o, e in failed]


def verify_responses(objs: list[LocalObject], store: S3Store) -> list[str]:
    """Verification of uploads: the ETag the server answered for each object (the
    MD5 of the bytes it stored: content and size) against the local file. Objects whose answer
    carried no ETag (some S3-compatible stores) are checked by a listing instead."""
    out, unanswered = [], []
    for o in objs:
        etag = store.stored.get(store.key(o.key))
        if etag is None:
            unanswered.append(o)
        elif etag != o.etag:
            out.append(f"{o.key}: ETag {etag} in the store, expected {o.etag} (content differs)")
    return out + (verify_listing(unanswered, store) if unanswered else [])


def verify_listing(objs: list[LocalObject], store: S3Store) -> list[str]:
    """Verification by one listing: every object's size and ETag (the MD5 of the bytes the server
    stored) against the local file."""
    listing = store.list()
    if listing is None:
        return verify(objs, store, 8)
    out = []
    for o in objs:
        r = listing.get(o.key)
        if r is None:
            out.append(f"{o.key}: missing after upload")
        elif r.size != o.size:
            out.append(f"{o.key}: size {r.size} in the store, {o.size} locally")
        elif r.etag != o.etag:
            out.append(f"{o.key}: ETag {r.etag} in the store, expected {o.etag} (content differs)")
    return out


def check_public_root(url: str, root: LocalObject, timeout: float = 30) -> str | None:
    """GET the root catalog anonymously over plain HTTP(S); a problem or None."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url), timeout=timeout) as resp:  # noqa: S310 - our endpoint
            body, ctype = resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return f"anonymous GET {url}: HTTP {exc.code} (is the bucket public? see --setup-bucket)"
    except (urllib.error.URLError, OSError) as exc:
        return f"anonymous GET {url}: {exc}"
    if hashlib.sha256(body).hexdigest() != root.sha256:
        return f"anonymous GET {url}: content differs from the local root catalog"
    if not ctype.startswith(JSON_MEDIA_TYPE):
        return f"anonymous GET {url}: Content-Type {ctype!r}, expected {JSON_MEDIA_TYPE}"
    return None


def check_tree(build_dir: Path, schema_cache: Path | None = None, fingerprint: str | None = None) -> None:
    """Refuse a tree that does not pass `stac-mmtp validate` (InputError, nothing uploaded).

    A tree with this `fingerprint` (tree_keys: every file untouched) found valid before against the
    same schemas is not validated again; its schemas must still be in the mirror."""
    from stac_mmtp.release.asset_checks import CHECK_VERSION
    from stac_mmtp.release.validate import SchemaStore, schema_fingerprint, validate_tree

    if not (build_dir / "catalog.json").is_file():
        raise InputError("no catalog.json: not a built catalog tree", build_dir)
    store = SchemaStore(schema_cache)
    store.use_tree(build_dir.resolve())  # the tree's shipped copy of our schema comes first
    cache, key = Cache(), None
    if fingerprint:
        key = hashlib.sha256(f"{schema_fingerprint(store)}|{CHECK_VERSION}|{fingerprint}".encode()).hexdigest()
        if (schemas := cache.valid_tree(key)) is not None:
            for url in schemas:
                store.get(url)  # SchemaMissing if the mirror lost it
            return
    report = validate_tree(build_dir, store)
    if report.problems:
        shown = "\n  ".join(str(p) for p in report.problems[:20])
        raise InputError(f"refusing to publish: {len(report.problems)} validation problem(s) "
                         f"(run stac-mmtp validate):\n  {shown}", build_dir)
    if key:
        cache.add_valid_tree(key, sorted(report.schemas))


def read_manifest(store: Store) -> set[str] | None:
    """The keys the last `stac-mmtp publish` recorded at this prefix, or None without a manifest."""
    data = store.read(MANIFEST_KEY)
    if data is None:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT or not isinstance(doc.get("keys"), list):
        return None  # another tool's file of that name proves nothing
    return {k for k in doc["keys"] if isinstance(k, str)}


def write_manifest(store: Store, keys: Iterable[str]) -> None:
    from stac_mmtp import __version__

    doc = {"format": MANIFEST_FORMAT, "generator": f"stac-mmtp {__version__}",
           "description": "Objects written here by `stac-mmtp publish`: the only ones its --delete may remove.",
           "keys": sorted(set(keys))}
    store.write(MANIFEST_KEY, json.dumps(doc, indent=1).encode(), JSON_MEDIA_TYPE)


def publish(build_dir: Path, store: Store, *, dry_run: bool = False, delete: bool = False, jobs: int = 8,
            public_check: bool = True, schema_cache: Path | None = None, progress: ProgressFn = None,
            validate: bool = True, check_every_object: bool = False, into_release: bool = False) -> PublishReport:
    """Validate, plan, upload in link order (upload_in_order), verify, then delete stale objects (with `delete`).

    `validate=False` is for callers that validated the tree already (the benchmark times the sync
    alone); the command line always validates. A prefix that holds a released version (its
    `release.json`) is immutable: refused, unless `stac-mmtp release` itself is writing it
    (`into_release`, never with `delete`)."""
    if store.read(RELEASE_MARKER) is not None and not (into_release and not delete):
        raise InputError(f"{store.url} holds a released version ({RELEASE_MARKER}): released versions are immutable; "
                         "release a new version with `stac-mmtp release` instead")
    # Validation runs while the tree is scanned and the store listed; nothing is written before it
    # has passed.
    t0 = time.perf_counter()
    tree = tree_keys(build_dir)
    with cf.ThreadPoolExecutor(1) as bg:
        validated = bg.submit(check_tree, build_dir, schema_cache, tree[1]) if validate else None
        try:
            objs = scan_tree(build_dir, jobs, digests=False, tree=tree)  # hashes: see plan and upload_in_order
            report = PublishReport(store.url, dry_run)
            for o in objs:
                report.phases[o.phase].objects += 1
            uploads, listing = plan(objs, store, jobs, progress, check_every_object)  # reads only
        finally:
            if validated is not None:
                validated.result()  # an invalid tree is the first error reported
    report.uploads = uploads
    keys = {o.key for o in objs}
    ours = read_manifest(store)
    if listing is None:
        report.stale_unknown = True
    else:
        others = {k: r for k, r in listing.items() if k not in keys and k != MANIFEST_KEY}
        report.deletes = sorted((k, r.size) for k, r in others.items() if ours is not None and k in ours)
        report.foreign = sorted((k, r.size) for k, r in others.items() if ours is None or k not in ours)
        if delete and ours is None and report.foreign:
            raise InputError(
                f"--delete refused: {store.url} holds {len(report.foreign)} object(s) this tree does not have "
                f"(e.g. {report.foreign[0][0]}) and no {MANIFEST_KEY} manifest of a previous stac-mmtp publish, so "
                "they were not written by stac-mmtp publish; nothing was changed. Publish to a new or empty prefix, "
                "or run without --delete.")
    if listing:
        report.assets_changed_in_place = [o.key for o in uploads if o.phase == "assets" and o.key in listing
                                          and o.cache_control == CACHE_ASSET]
    upload_keys = {o.key for o in uploads}
    for o in objs:
        if o.key not in upload_keys:
            report.phases[o.phase].unchanged += 1
    if dry_run:
        return report
    if delete and listing is None:
        raise InputError(f"--delete needs permission to list {store.url}")

    t1 = time.perf_counter()
    log.info("validated, scanned and planned in %.2f s: %d of %d object(s) to upload", t1 - t0, len(uploads), len(objs))
    # The manifest names what we are about to write before we write it: an interrupted publish still
    # owns its objects. Stale objects of ours stay listed until they are deleted.
    still_ours = (ours or set()) & set(listing or ()) - keys
    if uploads or ours is None or not keys <= ours:
        write_manifest(store, keys | still_ours)
    done, failed, skipped = upload_in_order(uploads, store, progress, jobs)
    t2 = time.perf_counter()
    log.info("uploaded %d object(s), %d bytes, in %.2f s", len(done), sum(o.size for o in done), t2 - t1)
    for o in done:
        report.phases[o.phase].uploaded += 1
        report.phases[o.phase].bytes_uploaded += o.size
    if failed:
        obj, exc = failed[0]
        report.problems.append(
            f"{len(failed)} of {len(uploads)} upload(s) failed, e.g. {obj.key}: {_describe(exc)}; "
            f"{len(skipped)} not attempted. Nothing that links to them was written"
            f"{' (the root catalog was not updated)' if any(o.phase == 'root' for o in uploads) else ''}; "
            "re-run to resume.")
        return report

    # the plan checked the unchanged objects in this same run
    if isinstance(store, S3Store) and not check_every_object:
        # every upload by the ETag the server answered, the headers it kept by one HEAD per class
        samples = header_samples(uploads)
        report.problems += verify(samples, store, jobs) + verify_responses([o for o in uploads if o not in samples], store)
        report.verification = ("ETag = MD5 of the stored bytes (listing or upload answer), headers sampled "
                               "per media type")
    else:
        report.problems += verify(uploads, store, jobs, progress)
    report.verified = len(objs)
    root = next((o for o in objs if o.phase == "root"), None)
    if public_check and isinstance(store, S3Store) and root is not None:
        url = store.public_url(root.key)
        report.public_check = url
        if problem := check_public_root(url, root):
            report.problems.append(problem)
    log.info("verified%s in %.2f s", " and read the root anonymously" if report.public_check else "",
             time.perf_counter() - t2)
    if report.problems:
        return report  # never delete while the new tree is not known good

    if delete and report.deletes:
        try:
            store.delete([k for k, _ in report.deletes])
            report.deleted = len(report.deletes)
            write_manifest(store, keys)
        except Exception as exc:  # noqa: BLE001
            report.problems.append(f"deleting stale objects: {_describe(exc)}")
    return report


# --------------------------------------------------------------------------- bucket setup
def public_read_policy(bucket: str, prefix: str = "") -> dict[str, Any]:
    """Anonymous GetObject on the published prefix only: no listing, no writes, no ACL reads."""
    resource = f"arn:aws:s3:::{bucket}/{prefix.strip('/')}/*" if prefix.strip("/") else f"arn:aws:s3:::{bucket}/*"
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "PublicReadObjects", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": resource}],
    }


CORS_RULES: dict[str, Any] = {
    "CORSRules": [{
        "AllowedMethods": ["GET", "HEAD"],
        "AllowedOrigins": ["*"],
        "AllowedHeaders": ["Range", "If-None-Match", "If-Modified-Since"],  # COG range reads, revalidation
        "ExposeHeaders": ["Content-Range", "Content-Length", "ETag", "Accept-Ranges", "Last-Modified"],
        "MaxAgeSeconds": 3600,
    }]
}


def setup_bucket(store: S3Store) -> list[str]:
    """Create the bucket if needed, allow a public policy, set it and the CORS rules. Returns what was done."""
    from botocore.exceptions import ClientError

    c, bucket, done = store.client, store.bucket, []
    try:
        c.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        region = c.meta.region_name
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        c.create_bucket(**kwargs)
        done.append(f"created bucket {bucket}")
    try:
        # New AWS buckets block public policies; ACLs stay blocked (we grant through the policy only).
        c.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
        done.append("public access block: ACLs blocked, bucket policy allowed")
    except ClientError as exc:
        log.warning("public access block not set (%s); S3-compatible stores often lack it", exc.response["Error"]["Code"])
    c.put_bucket_policy(Bucket=bucket, Policy=json.dumps(public_read_policy(bucket, store.prefix)))
    done.append(f"policy: anonymous s3:GetObject on {store.url}/*, no listing, no writes")
    c.put_bucket_cors(Bucket=bucket, CORSConfiguration=CORS_RULES)
    done.append("CORS: GET/HEAD from any origin, Range allowed, Content-Range/Content-Length/ETag exposed")
    try:
        c.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [{
            "ID": "abort-interrupted-uploads", "Status": "Enabled", "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}]})
        done.append("lifecycle: parts of interrupted multipart uploads removed after 7 days")
    except ClientError as exc:
        log.warning("lifecycle rule not set (%s)", exc.response["Error"]["Code"])
    return done


# --------------------------------------------------------------------------- command line
def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _quiet_sdk_logs() -> None:
    # botocore's debug log prints request headers (the access key id in Authorization): never show it.
    for name in ("botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)


@click.command("publish", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("build_dir", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option("--to", "target", required=True, metavar="URL", help="s3://bucket[/prefix] or file:///path (a local mirror).")
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL_S3", metavar="URL",
              help="S3-compatible endpoint (MinIO, SeaweedFS, OVH, Scaleway...) [env AWS_ENDPOINT_URL_S3].")
@click.option("--dry-run", is_flag=True, help="List what would be uploaded and deleted, with byte counts; change nothing.")
@click.option("--delete", is_flag=True,
              help="Remove objects a previous stac-mmtp publish wrote under the prefix that the tree no longer has "
                   "(after the new root); refused on a prefix without its publish manifest.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=8, show_default=True, help="Parallel transfers.")
@click.option("--retries", type=click.IntRange(1, 20), default=8, show_default=True,
              help="Attempts per request (exponential backoff on throttling and connection errors).")
@click.option("--public-url", metavar="URL", help="Base URL readers use (CDN, website endpoint) for the anonymous check.")
@click.option("--no-public-check", is_flag=True, help="Skip the anonymous HTTP read of the root (private buckets).")
@click.option("--check-every-object", is_flag=True,
              help="One HEAD per object, before and after uploading (sha256 metadata, ETag, media type, cache "
                   "policy) instead of the listing's ETags and one HEAD per media type: for prefixes other tools "
                   "also write.")
@click.option("--setup-bucket", "setup", is_flag=True,
              help="Create the bucket if needed; set anonymous read-only policy and CORS for STAC Browser and COG range reads.")
@click.option("--schema-cache", type=click.Path(path_type=Path), envvar="STAC_MMTP_SCHEMA_CACHE",
              help="Schema mirror for the validation that precedes publishing [env STAC_MMTP_SCHEMA_CACHE].")
def publish_command(build_dir: Path | None, target: str, endpoint_url: str | None, dry_run: bool, delete: bool,
                    jobs: int, retries: int, public_url: str | None, no_public_check: bool, check_every_object: bool,
                    setup: bool, schema_cache: Path | None) -> None:
    """Publish the built tree BUILD_DIR to object storage, incrementally and in a safe order.

    \b
    Order: an object goes once what it links down to is stored (assets before their item, items
    before their collection...), the root catalog last; with --delete, stale objects are removed
    only after the new root is in place and every object verified.
    Unchanged objects are skipped: same size and ETag (the MD5 of the stored bytes) in the bucket
    listing, and the headers of one object per media type as expected (else HEADs for that type);
    --check-every-object HEADs each object (sha256 in x-amz-meta-sha256, ETag, headers).
    Exit codes: 0 published (or nothing to upload), 1 an upload or check failed (re-run to
    resume), 2 bad input (invalid tree, local paths in the JSON, bad --to): nothing written.
    """
    from stac_mmtp import console

    _quiet_sdk_logs()

    def fail(exc: BaseException | str, code: int = EXIT_FAILED) -> None:
        console.error(console_escape(str(exc)))
        sys.exit(getattr(exc, "exit_code", code))

    try:
        store = open_store(target, endpoint_url, jobs, retries, dry_run, public_url)
    except MmtpError as exc:
        fail(exc)
    try:
        if setup:
            if not isinstance(store, S3Store):
                fail(InputError("--setup-bucket needs an s3:// target"))
            if dry_run:
                console.out.print(json.dumps({"Policy": public_read_policy(store.bucket, store.prefix), **CORS_RULES},
                                             indent=2))
            else:
                for line in setup_bucket(store):
                    console.err.print(line, highlight=False)
            if build_dir is None:
                return
        if build_dir is None:
            fail(InputError("BUILD_DIR is required (only --setup-bucket runs without it)"))
        with console.progress_bar() as progress:
            report = publish(build_dir, store, dry_run=dry_run, delete=delete, jobs=jobs,
                             public_check=not no_public_check, schema_cache=schema_cache, progress=progress,
                             check_every_object=check_every_object)
    except MmtpError as exc:
        fail(exc)
    except Exception as exc:  # noqa: BLE001 - botocore errors: name them, no traceback
        fail(f"{type(exc).__name__}: {exc}")
    finally:
        store.close()
    _print_report(report, delete)
    sys.exit(EXIT_FAILED if report.problems else 0)


def console_escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _print_report(report: PublishReport, delete: bool) -> None:
    from stac_mmtp import console

    if report.dry_run:
        rows: list[list[object]] = [["upload", o.key, o.size] for o in report.uploads]
        rows += [["delete" if delete else "stale (kept without --delete)", k, size] for k, size in report.deletes]
        rows += [["not published by stac-mmtp (kept)", k, size] for k, size in report.foreign]
        console.table(f"dry run: {report.target}", ["action", "key", "bytes"], rows)
    console.table(
        f"{'would publish' if report.dry_run else 'published'} to {report.target}",
        ["phase", "objects", "unchanged", "to upload" if report.dry_run else "uploaded", "bytes"],
        [[p, s.objects, s.unchanged, sum(1 for o in report.uploads if o.phase == p) if report.dry_run else s.uploaded,
          sum(o.size for o in report.uploads if o.phase == p) if report.dry_run else s.bytes_uploaded]
         for p, s in report.phases.items()],
    )
    stale = sum(size for _, size in report.deletes)
    lines = []
    if not report.uploads:
        lines.append("nothing to upload: the store already holds this tree")
    else:
        lines.append(f"{'would upload' if report.dry_run else 'uploaded'} {len(report.uploads)} object(s), "
                     f"{_size(report.bytes_to_upload)} ({report.bytes_to_upload} bytes)")
    if report.deletes:
        verb = "would delete" if report.dry_run and delete else "deleted" if report.deleted else "stale, kept (no --delete)"
        lines.append(f"{verb}: {len(report.deletes)} object(s), {stale} bytes")
    if report.foreign:
        lines.append(f"kept: {len(report.foreign)} object(s) under the prefix that stac-mmtp publish did not write")
    if report.stale_unknown:
        lines.append("the store does not allow listing: stale objects are unknown")
    if report.assets_changed_in_place:
        lines.append(f"warning: {len(report.assets_changed_in_place)} asset(s) changed in place (e.g. "
                     f"{report.assets_changed_in_place[0]}); HTTP caches may serve the old bytes for up to a year")
    if report.verified:
        lines.append(f"verified {report.verified} object(s): {report.verification}")
    if report.public_check and not report.problems:
        lines.append(f"root catalog readable anonymously at {report.public_check}")
    for p in report.problems:
        console.error(console_escape(p))
    if not console.quiet():
        for line in lines:
            console.err.print(line, highlight=False)


__all__ = ["publish_command", "publish", "setup_bucket", "scan_tree", "open_store", "PublishReport", "FileStore",
           "S3Store"]
