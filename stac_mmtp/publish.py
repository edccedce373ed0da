"""`stac-mmtp publish`: sync a built catalog tree to S3-compatible object storage or a local mirror.

Readers must never see a broken link, so uploads go in phases, each complete before the next:
data assets, then items, then collections (and sub-catalogs), then the root catalog; with
`--delete`, stale objects go only once the new root is in place and verified. Each object
carries the sha256 of its content in its metadata (`x-amz-meta-sha256`), so a re-run uploads
only what changed (and an interrupted run resumes where it stopped).
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import hashlib
import json
import logging
import mimetypes
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import click

from .atomic import staged_file
from .digests import Cache
from .errors import EXIT_FAILED, InputError, MmtpError
from .stac import COG_MEDIA_TYPE, GEOJSON_MEDIA_TYPE, JSON_MEDIA_TYPE, PNG_MEDIA_TYPE

log = logging.getLogger(__name__)

PHASES = ("assets", "items", "collections", "root")
META_KEY = "sha256"  # stored as x-amz-meta-sha256: the hex sha256 of the object's bytes
# JSON changes with every release: caches must revalidate soon. Asset files keep their bytes
# (a new product gets a new item directory), so caches may keep them for a year.
CACHE_JSON = "public, max-age=60, must-revalidate"
CACHE_ASSET = "public, max-age=31536000, immutable"
MB = 1024 * 1024
PART_SIZE = 8 * MB  # multipart threshold and part size (also what the ETag check assumes)
SUFFIX_TYPES = {
    ".tif": COG_MEDIA_TYPE, ".tiff": COG_MEDIA_TYPE, ".png": PNG_MEDIA_TYPE, ".json": JSON_MEDIA_TYPE,
    ".geojson": GEOJSON_MEDIA_TYPE, ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".xml": "application/xml",
    ".parquet": "application/vnd.apache.parquet", ".html": "text/html; charset=utf-8", ".txt": "text/plain; charset=utf-8",
}
ProgressFn = Callable[[str, int, int], None] | None


class PublishError(MmtpError):
    """An upload, delete or verification that failed: exit status 1."""


# --------------------------------------------------------------------------- the local tree
@dataclass(frozen=True)
class LocalObject:
    key: str  # path relative to the build directory, with '/' separators
    path: Path
    size: int
    sha256: str  # hex digest
    etag: str  # the MD5 ETag S3 computes for our upload (single or multipart)
    phase: str
    content_type: str
    cache_control: str


def hash_file(path: Path, part_size: int = PART_SIZE, block: int = MB) -> tuple[str, str, int]:
    """(sha256 hex, expected S3 ETag, size) in one read: the ETag of a multipart upload is the MD5
    of the parts' MD5s plus '-<parts>', and S3 splits at `part_size` from `part_size` bytes on.
    Reads 1 MiB at a time (part_size a multiple of it) to keep parallel hashing light on memory."""
    sha, whole, part = hashlib.sha256(), hashlib.md5(), hashlib.md5()  # noqa: S324 - MD5 is what S3 puts in ETags
    parts: list[bytes] = []
    size = in_part = 0
    with path.open("rb") as f:
        while data := f.read(block):
            sha.update(data)
            whole.update(data)
            part.update(data)
            size += len(data)
            in_part += len(data)
            if in_part >= part_size:
                parts.append(part.digest())
                part, in_part = hashlib.md5(), 0  # noqa: S324
    if in_part:
        parts.append(part.digest())
    if size >= part_size:
        etag = hashlib.md5(b"".join(parts)).hexdigest() + f"-{len(parts)}"  # noqa: S324
    else:
        etag = whole.hexdigest()
    return sha.hexdigest(), etag, size


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


def local_paths_in(text: str, obj: Any, build_dir: Path) -> list[str]:
    """Local references a published JSON must not hold: file:// URLs, the build directory, absolute paths."""
    found = []
    if "file://" in text:
        found.append("a file:// URL")
    for d in sorted({str(build_dir), str(build_dir.resolve())}):
        if d in text:
            found.append(f"the build directory {d}")
    if isinstance(obj, dict):
        hrefs = [lk.get("href", "") for lk in obj.get("links", []) if isinstance(lk, dict)]
        hrefs += [a.get("href", "") for a in (obj.get("assets") or {}).values() if isinstance(a, dict)]
        found += [f"absolute path href {h!r}" for h in hrefs if isinstance(h, str) and (h.startswith("/") or h[1:3] == ":\\")]
    return found


def scan_tree(build_dir: Path, jobs: int = 4) -> list[LocalObject]:
    """Every publishable file under `build_dir` with its phase, media type, cache policy and hashes.

    Hidden files (temporary `.name.part` files of an interrupted write) are left out. Asset media
    types come from the items that declare them; other files get one from their suffix.
    """
    build_dir = build_dir.resolve()
    files = sorted(p for p in build_dir.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(build_dir).parts))
    declared: dict[Path, str] = {}
    kinds: dict[Path, str | None] = {}
    problems: list[str] = []
    for p in files:
        if p.suffix.lower() not in (".json", ".geojson"):
            continue
        text = p.read_text(encoding="utf-8", errors="replace")
        obj = _read_json(p)
        kinds[p] = kind = obj.get("type") if isinstance(obj, dict) and "stac_version" in obj else None
        problems += [f"{p.relative_to(build_dir)}: holds {what}" for what in local_paths_in(text, obj, build_dir)]
        if kind in ("Feature", "Collection"):
            for asset in obj.get("assets", {}).values():
                href, media = asset.get("href", ""), asset.get("type")
                if media and "://" not in href:
                    declared[(p.parent / href).resolve()] = media
    if problems:
        raise InputError("refusing to publish local paths:\n  " + "\n  ".join(problems[:50]), build_dir)

    def describe(p: Path) -> LocalObject:
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
            media = declared.get(p) or SUFFIX_TYPES.get(p.suffix.lower()) or (
                mimetypes.guess_type(p.name)[0] or "application/octet-stream")
        is_json = media.startswith(("application/json", "application/geo+json")) or phase != "assets"
        key = cache.file_key(p, PART_SIZE)
        if (hit := cache.digest(key)) is not None:
            (sha, etag), size = hit, p.stat().st_size
        else:
            sha, etag, size = hash_file(p)
            cache.put_digest(key, sha, etag)
        return LocalObject(p.relative_to(build_dir).as_posix(), p, size, sha, etag, phase, media,
                           CACHE_JSON if is_json else CACHE_ASSET)

    cache = Cache()  # digests of untouched files (same path, size, mtime, inode) are not recomputed
    with cf.ThreadPoolExecutor(max(1, jobs)) as pool:
        return list(pool.map(describe, files))


# --------------------------------------------------------------------------- stores
@dataclass
class Remote:
    size: int
    sha256: str | None = None
    etag: str | None = None
    content_type: str | None = None
    cache_control: str | None = None


class Store(Protocol):
    url: str

    def list(self) -> dict[str, Remote] | None: ...  # key -> size (and ETag), None when listing is refused
    def head(self, key: str) -> Remote | None: ...
    def upload(self, obj: LocalObject) -> None: ...
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

    def __init__(self, root: Path):
        self.root = root
        self.url = root.as_uri()

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

    def upload(self, obj: LocalObject) -> None:
        with staged_file(self.root / obj.key) as tmp:
            shutil.copyfile(obj.path, tmp)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            p = self.root / key
            p.unlink(missing_ok=True)
            for parent in p.parents:  # drop directories the delete emptied
                if parent == self.root or any(parent.iterdir()):
                    break
                parent.rmdir()

    def close(self) -> None:
        pass


class S3Store:
    """An S3 bucket and prefix through boto3 (credentials from the standard AWS chain)."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None = None, jobs: int = 8, retries: int = 8,
                 anonymous: bool = False, public_base: str | None = None):
        import boto3
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
        self.client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
        self.transfer = create_transfer_manager(self.client, TransferConfig(
            multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, max_concurrency=jobs, use_threads=True,
            preferred_transfer_client="classic",  # the ETag check assumes our part size
        ))

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

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

    def upload(self, obj: LocalObject) -> None:
        extra = {"ContentType": obj.content_type, "CacheControl": obj.cache_control, "Metadata": {META_KEY: obj.sha256}}
        if obj.size < PART_SIZE:
            # Small objects (items, collections, thumbnails): one PUT from this thread, no hand-off to the
            # transfer manager's threads; Content-MD5 makes the server refuse bytes damaged in transit.
            md5 = base64.b64encode(bytes.fromhex(obj.etag)).decode()
            self.client.put_object(Bucket=self.bucket, Key=self.key(obj.key), Body=obj.path.read_bytes(),
                                   ContentMD5=md5, **extra)
            return
        self.transfer.upload(str(obj.path), self.bucket, self.key(obj.key), extra_args=extra).result()

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


def has_credentials() -> bool:
    import boto3

    return boto3.session.Session().get_credentials() is not None


def open_store(to: str, endpoint_url: str | None = None, jobs: int = 8, retries: int = 8,
               dry_run: bool = False, public_url: str | None = None) -> FileStore | S3Store:
    scheme, bucket, rest = parse_target(to)
    if scheme == "file":
        return FileStore(Path(rest))
    anonymous = not has_credentials()
    if anonymous and not dry_run:
        raise InputError("no AWS credentials found (environment AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
                         "~/.aws/credentials or an instance role); a --dry-run works without them on a public bucket")
    return S3Store(bucket, rest, endpoint_url, jobs, retries, anonymous=anonymous, public_base=public_url)


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
    deletes: list[tuple[str, int]] = field(default_factory=list)
    deleted: int = 0
    stale_unknown: bool = False  # the store does not let us list: stale objects cannot be found
    assets_changed_in_place: list[str] = field(default_factory=list)
    verified: int = 0
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
    # a changed media type or cache policy is a change too (S3 cannot edit metadata in place)
    return is_s3 and (remote.content_type != obj.content_type or remote.cache_control != obj.cache_control)


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


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def plan(objs: list[LocalObject], store: Store, jobs: int, progress: ProgressFn = None,
         trust_etags: bool = False) -> tuple[list[LocalObject], dict[str, Remote] | None]:
    """Which objects must be uploaded; plus the store's listing (for stale objects), None if unlisted.

    The listing settles absent keys and other sizes (and, with `trust_etags`, S3 ETags equal to the
    MD5 of our bytes); the rest are asked one HEAD (in parallel) for the sha256 in their metadata
    and their headers, which a listing does not show.
    """
    listing = store.list()
    is_s3 = isinstance(store, S3Store)
    if listing is not None:
        changed = [o for o in objs if o.key not in listing or listing[o.key].size != o.size]
        todo = [o for o in objs if o.key in listing and listing[o.key].size == o.size]
        if is_s3 and trust_etags:
            # A listed ETag equal to the MD5 (or multipart MD5) of our bytes proves the bytes, not the
            # headers: only safe when nothing but stac-mmtp writes the prefix (opt-in). It turns an
            # unchanged republish into one listing.
            todo = [o for o in todo if listing[o.key].etag != o.etag]
    else:
        todo, changed = objs, []
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
        return out

    done, failed = _run_parallel(check, objs, jobs, "verifying", progress)
    return [p for _, ps in done for p in ps] + [f"{o.key}: cannot verify ({_describe(e)})" for o, e in failed]


def verify_listing(objs: list[LocalObject], store: S3Store) -> list[str]:
    """`--trust-etags` verification: one listing, every object's size and ETag (the MD5 of the bytes
    the server stored) against the local file. Headers are not read back in this mode."""
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


def check_tree(build_dir: Path, schema_cache: Path | None = None) -> None:
    """Refuse a tree that does not pass `stac-mmtp validate` (InputError, nothing uploaded)."""
    from .validate import SchemaStore, validate_tree

    if not (build_dir / "catalog.json").is_file():
        raise InputError("no catalog.json: not a built catalog tree", build_dir)
    report = validate_tree(build_dir, SchemaStore(schema_cache))
    if report.problems:
        shown = "\n  ".join(str(p) for p in report.problems[:20])
        raise InputError(f"refusing to publish: {len(report.problems)} validation problem(s) "
                         f"(run stac-mmtp validate):\n  {shown}", build_dir)


def publish(build_dir: Path, store: Store, *, dry_run: bool = False, delete: bool = False, jobs: int = 8,
            public_check: bool = True, schema_cache: Path | None = None, progress: ProgressFn = None,
            validate: bool = True, trust_etags: bool = False) -> PublishReport:
    """Validate, plan, upload phase by phase, verify, then delete stale objects (with `delete`).

    `validate=False` is for callers that validated the tree already (the benchmark times the sync
    alone); the command line always validates."""
    # Validation (CPU, in worker processes) runs while the tree is hashed and the store listed (I/O);
    # nothing is written before it has passed.
    with cf.ThreadPoolExecutor(1) as bg:
        validated = bg.submit(check_tree, build_dir, schema_cache) if validate else None
        try:
            objs = scan_tree(build_dir, jobs)
            report = PublishReport(store.url, dry_run)
            for o in objs:
                report.phases[o.phase].objects += 1
            uploads, listing = plan(objs, store, jobs, progress, trust_etags)  # reads only
        finally:
            if validated is not None:
                validated.result()  # an invalid tree is the first error reported
    report.uploads = uploads
    keys = {o.key for o in objs}
    if listing is None:
        report.stale_unknown = True
    else:
        report.deletes = sorted((k, r.size) for k, r in listing.items() if k not in keys)
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

    for phase in PHASES:
        batch = [o for o in uploads if o.phase == phase]
        if not batch:
            continue
        done, failed = _run_parallel(store.upload, batch, jobs, phase, progress)
        stats = report.phases[phase]
        stats.uploaded = len(done)
        stats.bytes_uploaded = sum(o.size for o, _ in done)
        if failed:
            obj, exc = failed[0]
            later = [p for p in PHASES[PHASES.index(phase) + 1:] if any(o.phase == p for o in objs)]
            report.problems.append(
                f"{len(failed)} of {len(batch)} {phase} upload(s) failed, e.g. {obj.key}: {_describe(exc)}. "
                f"Nothing of the later phases ({', '.join(later) or 'none'}) was written; re-run to resume.")
            return report

    # the plan checked the unchanged objects (size, sha256 metadata, headers) in this same run
    if trust_etags and isinstance(store, S3Store):
        # the plan's listing already matched every object not uploaded; list again only for the uploads
        report.problems += verify_listing(uploads, store) if uploads else []
    else:
        report.problems += verify(uploads, store, jobs, progress)
    report.verified = len(objs)
    root = next((o for o in objs if o.phase == "root"), None)
    if public_check and isinstance(store, S3Store) and root is not None:
        url = store.public_url(root.key)
        report.public_check = url
        if problem := check_public_root(url, root):
            report.problems.append(problem)
    if report.problems:
        return report  # never delete while the new tree is not known good

    if delete and report.deletes:
        try:
            store.delete([k for k, _ in report.deletes])
            report.deleted = len(report.deletes)
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
@click.option("--delete", is_flag=True, help="Remove objects under the prefix that the tree no longer has (after the new root).")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=8, show_default=True, help="Parallel transfers.")
@click.option("--retries", type=click.IntRange(1, 20), default=8, show_default=True,
              help="Attempts per request (exponential backoff on throttling and connection errors).")
@click.option("--public-url", metavar="URL", help="Base URL readers use (CDN, website endpoint) for the anonymous check.")
@click.option("--no-public-check", is_flag=True, help="Skip the anonymous HTTP read of the root (private buckets).")
@click.option("--trust-etags", is_flag=True,
              help="Treat an object whose listed ETag is the MD5 of the local bytes as unchanged, with no HEAD of "
                   "its metadata and headers: fast republish, for prefixes only stac-mmtp writes.")
@click.option("--setup-bucket", "setup", is_flag=True,
              help="Create the bucket if needed; set anonymous read-only policy and CORS for STAC Browser and COG range reads.")
@click.option("--schema-cache", type=click.Path(path_type=Path), envvar="STAC_MMTP_SCHEMA_CACHE",
              help="Schema mirror for the validation that precedes publishing [env STAC_MMTP_SCHEMA_CACHE].")
def publish_command(build_dir: Path | None, target: str, endpoint_url: str | None, dry_run: bool, delete: bool,
                    jobs: int, retries: int, public_url: str | None, no_public_check: bool, trust_etags: bool,
                    setup: bool, schema_cache: Path | None) -> None:
    """Publish the built tree BUILD_DIR to object storage, incrementally and in a safe order.

    \b
    Order: data assets, items, collections, then the root catalog; with --delete, stale
    objects are removed only after the new root is in place and every object verified.
    Unchanged objects (same sha256 in x-amz-meta-sha256, same headers: one HEAD each) are skipped;
    with --trust-etags the bucket listing's ETags alone settle it.
    Exit codes: 0 published (or nothing to upload), 1 an upload or check failed (re-run to
    resume), 2 bad input (invalid tree, local paths in the JSON, bad --to): nothing written.
    """
    from . import console

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
                             trust_etags=trust_etags)
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
    from . import console

    if report.dry_run:
        rows: list[list[object]] = [["upload", o.key, o.size] for o in report.uploads]
        rows += [["delete" if delete else "stale (kept without --delete)", k, size] for k, size in report.deletes]
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
    if report.stale_unknown:
        lines.append("the store does not allow listing: stale objects are unknown")
    if report.assets_changed_in_place:
        lines.append(f"warning: {len(report.assets_changed_in_place)} asset(s) changed in place (e.g. "
                     f"{report.assets_changed_in_place[0]}); HTTP caches may serve the old bytes for up to a year")
    if report.verified:
        lines.append(f"verified {report.verified} object(s): size, sha256 metadata and headers; ETag = MD5 of "
                     "the bytes for the uploaded ones")
    if report.public_check and not report.problems:
        lines.append(f"root catalog readable anonymously at {report.public_check}")
    for p in report.problems:
        console.error(console_escape(p))
    if not console.quiet():
        for line in lines:
            console.err.print(line, highlight=False)


__all__ = ["publish_command", "publish", "setup_bucket", "scan_tree", "open_store", "PublishReport", "FileStore",
           "S3Store"]
