"""Checks after an upload: what the store reports for each object (size, sha256 metadata, ETag,
headers) against the local file, and the anonymous read of the root catalog."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request

from stac_mmtp.release.publish.scan import LocalObject, ProgressFn, _describe, _run_parallel
from stac_mmtp.release.publish.stores import S3Store, Store
from stac_mmtp.stac import JSON_MEDIA_TYPE


def header_samples(objs: list[LocalObject]) -> list[LocalObject]:
    """One object per (media type, cache policy): what a HEAD samples to see that the store keeps
    the headers this version of stac-mmtp sends."""
    first: dict[tuple[str, str], LocalObject] = {}
    for o in objs:
        first.setdefault((o.content_type, o.cache_control), o)
    return list(first.values())


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
