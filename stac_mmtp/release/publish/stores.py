"""Where a publish writes: a local mirror (FileStore) or an S3 bucket and prefix (S3Store), behind
one Store protocol; the --to URL parsing, the AWS session, and the publish manifest each publish
leaves at the prefix (the keys it wrote: the only ones --delete may remove).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import shutil
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from stac_mmtp.atomic import staged_file
from stac_mmtp.errors import InputError, MmtpError
from stac_mmtp.release.publish.scan import MULTIPART_THRESHOLD, PART_SIZE, LocalObject, hash_file, iter_files
from stac_mmtp.stac import JSON_MEDIA_TYPE

META_KEY = "sha256"  # stored as x-amz-meta-sha256: the hex sha256 of the object's bytes

# The publish manifest at the prefix: the keys stac-mmtp publish wrote there (what --delete may remove).
MANIFEST_KEY = ".stac-mmtp-publish.json"
MANIFEST_FORMAT = "stac-mmtp-publish-manifest/1"
RELEASE_MARKER = "release.json"  # written by `stac-mmtp release` into each version (versions.py)


class PublishError(MmtpError):
    """An upload, delete or verification that failed: exit status 1."""



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

    def iter_list(self) -> Iterator[tuple[str, Remote]]:
        """list()'s entries one at a time (the publish of a large tree keeps them on disk)."""
        if not self.root.is_dir():
            return
        cut = len(str(self.root)) + 1
        for path, _, st in iter_files(str(self.root), skip_hidden_dirs=False):
            yield path[cut:].replace(os.sep, "/"), Remote(st.st_size)

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

    def iter_list(self) -> Iterator[tuple[str, Remote]] | None:
        """list()'s entries one page at a time (the publish of a large tree keeps them on disk); None
        when the first page is refused, as list() (a refusal on a later page raises)."""
        from botocore.exceptions import ClientError

        start = f"{self.prefix}/" if self.prefix else ""
        pages = iter(self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start))
        try:
            first = next(pages, None)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("AccessDenied", "403"):
                return None
            raise

        def entries() -> Iterator[tuple[str, Remote]]:
            for page in ([first] if first is not None else []):
                yield from ((o["Key"][len(start):], Remote(o["Size"], etag=o.get("ETag", "").strip('"')))
                            for o in page.get("Contents", []))
            for page in pages:
                yield from ((o["Key"][len(start):], Remote(o["Size"], etag=o.get("ETag", "").strip('"')))
                            for o in page.get("Contents", []))
        return entries()

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
