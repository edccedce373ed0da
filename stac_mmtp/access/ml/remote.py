"""Bytes of a release's objects by range: local paths, http(s):// and s3:// behind one interface.

One pooled `requests` session per process for HTTP (urllib3 retries with backoff, honouring
Retry-After on 429/503), one boto3 client per process for `s3://bucket/key` (endpoint from the
`endpoint_url` option, else `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`; anonymous when no
credentials are found, signed otherwise). Both are dropped after a fork: connections are never
shared between DataLoader workers.
"""

from __future__ import annotations

import os
import urllib.parse
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from stac_mmtp.errors import InputError

_pid = -1
_session: Any = None
_s3: Any = None
_files: OrderedDict[str, Any] = OrderedDict()  # open local files, LRU-bounded (file descriptors are finite)
MAX_FILES = 256
S3_ENDPOINT: str | None = None  # set by `configure_s3` (the ChipDataset/Index option); else the environment


@dataclass(frozen=True)
class Part:
    """A byte range of an object, with what identifies the object's version (ETag, else its size)."""

    data: bytes
    version: str
    size: int


def redact(url: str) -> str:
    from stac_mmtp.release.publish import redact as _redact

    return _redact(url)


def configure_s3(endpoint_url: str | None) -> None:
    """The S3 endpoint for `s3://` hrefs of this process (None: the environment's, else AWS)."""
    global S3_ENDPOINT, _s3
    if endpoint_url != S3_ENDPOINT:
        S3_ENDPOINT, _s3 = endpoint_url, None


def s3_endpoint() -> str | None:
    return S3_ENDPOINT or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


def _fresh() -> None:
    global _pid, _session, _s3
    if _pid != os.getpid():
        _pid, _session, _s3 = os.getpid(), None, None
        _files.clear()  # a fresh set per process (pread needs no shared offset, but sockets must not be shared)


def close() -> None:
    """Close this process's open files and HTTP session (the next read opens them again)."""
    global _session
    _fresh()
    while _files:
        _files.popitem()[1].close()
    if _session is not None:
        _session.close()
        _session = None


def http_session() -> Any:
    global _session
    _fresh()
    if _session is None:
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        retry = Retry(total=5, backoff_factor=0.25, status_forcelist=(429, 500, 502, 503, 504),
                      allowed_methods=frozenset({"GET", "HEAD"}), respect_retry_after_header=True)
        _session = requests.Session()
        adapter = HTTPAdapter(pool_connections=16, pool_maxsize=16, max_retries=retry)
        _session.mount("http://", adapter)
        _session.mount("https://", adapter)
    return _session


def s3_client() -> Any:
    global _s3
    _fresh()
    if _s3 is None:
        from botocore import UNSIGNED
        from botocore.config import Config

        from stac_mmtp.release.publish import aws_session, has_credentials

        session = aws_session()
        endpoint = s3_endpoint()
        config = Config(retries={"max_attempts": 8, "mode": "standard"}, connect_timeout=10, read_timeout=60,
                        max_pool_connections=16, s3={"addressing_style": "path"} if endpoint else {},
                        signature_version=None if has_credentials(session) else UNSIGNED)
        _s3 = session.client("s3", endpoint_url=endpoint, config=config)
    return _s3


def split_s3(url: str) -> tuple[str, str]:
    u = urllib.parse.urlsplit(url)
    return u.netloc, urllib.parse.unquote(u.path.lstrip("/"))


def local_path(href: str) -> str | None:
    if href.startswith("file:"):
        return urllib.parse.unquote(urllib.parse.urlsplit(href).path)
    return None if "://" in href else href


def get_range(href: str, start: int, end: int) -> Part:
    """Bytes [start, end) of `href` (fewer at the end of the object)."""
    path = local_path(href)
    if path is not None:
        _fresh()
        fh = _files.get(path)
        try:
            if fh is None:
                fh = _files[path] = open(path, "rb")  # noqa: SIM115 - kept open for the process
                if len(_files) > MAX_FILES:
                    _files.popitem(last=False)[1].close()
            else:
                _files.move_to_end(path)
            st = os.fstat(fh.fileno())
            return Part(os.pread(fh.fileno(), end - start, start), f"{st.st_size}:{st.st_mtime_ns}", st.st_size)
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}", href) from exc
    if href.startswith("s3://"):
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = split_s3(href)
        try:
            r = s3_client().get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")
            data = r["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise InputError(f"cannot read range {start}-{end - 1}: {exc}", href) from exc
        size = int(str(r.get("ContentRange", "")).rpartition("/")[2] or start + len(data))
        return Part(data, r.get("ETag") or str(size), size)
    import requests

    try:
        r = http_session().get(href, headers={"Range": f"bytes={start}-{end - 1}"}, timeout=(10, 60))
    except requests.RequestException as exc:
        raise InputError(f"cannot read range {start}-{end - 1}: {exc}", redact(href)) from exc
    if r.status_code not in (200, 206):
        raise InputError(f"HTTP {r.status_code} for range {start}-{end - 1}", redact(href))
    data = r.content
    if r.status_code == 200:  # a server that ignores Range sends the whole object
        size, data = len(data), data[start:end]
    else:
        size = int(r.headers.get("Content-Range", "").rpartition("/")[2] or start + len(data))
    return Part(data, r.headers.get("ETag") or f"{size}:{r.headers.get('Last-Modified', '')}", size)


def get_all(href: str) -> bytes:
    """The whole object (JSON documents and parquet files of the index)."""
    path = local_path(href)
    if path is not None:
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}", href) from exc
    if href.startswith("s3://"):
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = split_s3(href)
        try:
            return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise InputError(f"cannot read: {exc}", href) from exc
    import requests

    try:
        r = http_session().get(href, timeout=(10, 120))
    except requests.RequestException as exc:
        raise InputError(f"cannot read: {exc}", redact(href)) from exc
    if r.status_code != 200:
        raise InputError(f"HTTP {r.status_code}", redact(href))
    return r.content


def join(base: str, href: str) -> str:
    """`href` resolved against `base` (a path or URL; urljoin does not resolve s3:// itself)."""
    if "://" in href or href.startswith("/"):
        return href
    if base.startswith("s3://"):
        return "s3://" + urllib.parse.urljoin("http://" + base[5:], href)[7:]
    if "://" in base:
        return urllib.parse.urljoin(base, href)
    return os.path.normpath(os.path.join(os.path.dirname(base), href))
