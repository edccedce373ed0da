"""Whole-product downloads into a local cache: resumable, checksummed, with a bearer token (CDSE).

For stores that do not allow range reads of the product's members (CDSE's OData `$value` download of a
SAFE zip), the product is downloaded once into the cache (`$STAC_MMTP_CACHE/safe`, default
~/.cache/stac-mmtp/safe) and the local reader runs on it. A transfer cut midway is continued with an
HTTP Range request on its `.part` file (also by the next build); the finished file is checked against
the checksum the source item gives (`file:checksum`, a multihash) before it is renamed into place, so
a file in the cache is always a whole, verified download. A mismatch deletes the `.part` this download
wrote, and only that. Concurrent builds wait on a lock file, so one product is fetched once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stac_mmtp.discover.redact import redact, redact_text
from stac_mmtp.errors import ProductError

CDSE_TOKEN_URL = "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"
CHUNK = 1 << 16  # what a cut transfer can lose: urllib3 drops the chunk being read when the connection ends
# multihash codes (https://github.com/multiformats/multicodec) of the digests hashlib computes
MULTIHASH = {0x12: "sha256", 0x13: "sha512", 0xD5: "md5", 0x11: "sha1"}


def cache_dir() -> Path:
    """`$STAC_MMTP_CACHE/safe`, default ~/.cache/stac-mmtp/safe (the project's cache root, as digests use)."""
    root = os.environ.get("STAC_MMTP_CACHE", "").strip()
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "stac-mmtp") / "safe"


@dataclass(frozen=True)
class Checksum:
    algorithm: str  # a hashlib name
    hexdigest: str

    @classmethod
    def from_multihash(cls, value: str, where: str) -> Checksum:
        """A STAC `file:checksum` (hex multihash: code varint, length, digest) -> Checksum."""
        try:
            raw = bytes.fromhex(value.strip())
            code, i, shift = 0, 0, 0
            while True:  # unsigned varint
                b = raw[i]
                code |= (b & 0x7F) << shift
                i += 1
                shift += 7
                if not b & 0x80:
                    break
            length, digest = raw[i], raw[i + 1:]
        except (ValueError, IndexError):
            raise ProductError(f"file:checksum {value!r} is not a hex multihash", where) from None
        if code not in MULTIHASH:
            raise ProductError(f"file:checksum uses multihash code 0x{code:x}, which is not supported "
                               f"({', '.join(MULTIHASH.values())})", where)
        if len(digest) != length:
            raise ProductError(f"file:checksum {value!r}: the digest is {len(digest)} bytes, not {length}", where)
        return cls(MULTIHASH[code], digest.hex())


_TOKEN: tuple[float, str] | None = None  # (expiry, access token), per process


def cdse_token(where: str) -> str:
    """A CDSE access token: `CDSE_ACCESS_TOKEN`, else one obtained from the CDSE identity server with
    `CDSE_USERNAME`/`CDSE_PASSWORD` (the OAuth password grant of the public `cdse-public` client; the
    endpoint can be changed with `CDSE_TOKEN_URL`). Tokens live 10 minutes; a new one is fetched as needed.
    The token and the password never reach a message."""
    global _TOKEN
    token = os.environ.get("CDSE_ACCESS_TOKEN", "").strip()
    if token:
        return token
    if _TOKEN and _TOKEN[0] > time.time() + 30:
        return _TOKEN[1]
    user, password = os.environ.get("CDSE_USERNAME", ""), os.environ.get("CDSE_PASSWORD", "")
    if not user or not password:
        raise ProductError("downloading from CDSE needs a token: set CDSE_ACCESS_TOKEN, or CDSE_USERNAME and "
                           "CDSE_PASSWORD (a free Copernicus Data Space account)", redact(where))
    import requests

    url = os.environ.get("CDSE_TOKEN_URL", CDSE_TOKEN_URL)
    try:
        resp = requests.post(url, data={"grant_type": "password", "client_id": "cdse-public", "username": user,
                                        "password": password}, timeout=30)
    except requests.RequestException as exc:
        raise ProductError(f"cannot reach the CDSE identity server: {redact_text(str(exc))[:200]}", redact(url)) from None
    if resp.status_code != 200:
        raise ProductError(f"the CDSE identity server refused the credentials (HTTP {resp.status_code})", redact(url))
    try:
        body = resp.json()
        token = str(body["access_token"])
    except (ValueError, KeyError):
        raise ProductError("the CDSE identity server answered without an access_token", redact(url)) from None
    _TOKEN = (time.time() + float(body.get("expires_in", 600)), token)
    return token


def download(href: str, dest: Path, checksum: Checksum | None, headers: Callable[[], dict[str, str]],
             what: str, attempts: int = 6) -> Path:
    """`dest`, downloaded from `href` unless it is already there (a finished file is a verified one).

    `headers()` gives the request headers (called per attempt, so an expired token is renewed). A cut
    connection or a 5xx is retried, continuing from the `.part` file's size with a Range request."""
    if dest.is_file():
        return dest
    headers()  # no token, no file: fail before anything is written
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with open(dest.with_name(dest.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be fetching the same product: wait for it
        if dest.is_file():
            return dest
        _fetch_to(href, part, headers, what, attempts)
        if checksum is not None:
            got = _digest(part, checksum.algorithm)
            if got != checksum.hexdigest:
                part.unlink()  # this download's bytes: the next build starts afresh
                raise ProductError(f"{what}: {checksum.algorithm} {got} does not match the source item's "
                                   f"{checksum.hexdigest}; the partial download was deleted", redact(href))
        os.replace(part, dest)
    return dest


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _fetch_to(href: str, part: Path, headers: Callable[[], dict[str, str]], what: str, attempts: int) -> None:
    import requests

    shown = redact(href)
    last = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
        have = part.stat().st_size if part.exists() else 0
        hdrs = dict(headers())
        if have:
            hdrs["Range"] = f"bytes={have}-"
        try:
            with _get(href, hdrs) as resp:
                if resp.status_code in (401, 403):
                    raise ProductError(f"cannot download {what}: HTTP {resp.status_code} (a missing, expired or "
                                       "invalid token?)", shown)
                if resp.status_code == 416 and have:  # the .part is already whole
                    return
                if resp.status_code == 429 or resp.status_code >= 500:
                    last = f"HTTP {resp.status_code}"
                    time.sleep(float(resp.headers.get("Retry-After", 0) or 0))
                    continue
                if resp.status_code not in (200, 206):
                    raise ProductError(f"cannot download {what}: HTTP {resp.status_code}", shown)
                total = _total(resp, have)
                mode = "ab" if resp.status_code == 206 else "wb"  # a 200 to a Range request: from the start
                with part.open(mode) as f:
                    for block in resp.iter_content(CHUNK):
                        f.write(block)
                size = part.stat().st_size
                if total is not None and size < total:
                    last = f"the transfer stopped at {size} of {total} bytes"
                    continue
                return
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            last = redact_text(str(exc))[:200]
    raise ProductError(f"cannot download {what} after {attempts} attempts ({last}); the partial file is kept "
                       "and the next build continues it", shown)


def keeps_token(old: str, new: str) -> bool:
    """Send the bearer token on to a redirect's target? Same host, or a sibling under a parent of at least
    three labels (catalogue.dataspace.copernicus.eu -> download.dataspace.copernicus.eu), never to http from
    https. requests drops it on any host change, and CDSE's catalogue redirects downloads to another host."""
    a, b = urllib.parse.urlsplit(old), urllib.parse.urlsplit(new)
    if a.scheme == "https" and b.scheme != "https":
        return False
    ha, hb = a.hostname or "", b.hostname or ""
    parent = ha.split(".", 1)[1] if "." in ha else ""
    return ha == hb or (parent.count(".") >= 2 and hb.endswith("." + parent))


def _get(href: str, headers: dict[str, str], hops: int = 5) -> Any:
    """A streamed GET following redirects itself, so that the token goes on to the download host only."""
    import requests

    for _ in range(hops):
        resp = requests.get(href, headers=headers, stream=True, timeout=60, allow_redirects=False)
        if resp.status_code not in (301, 302, 303, 307, 308) or "Location" not in resp.headers:
            return resp
        target = urllib.parse.urljoin(href, resp.headers["Location"])
        resp.close()
        if not keeps_token(href, target):
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        href = target
    raise ProductError(f"more than {hops} redirects", redact(href))


def _total(resp: Any, have: int) -> int | None:
    """The whole file's size: from Content-Range (206) or Content-Length (200)."""
    rng = resp.headers.get("Content-Range", "")
    if resp.status_code == 206 and "/" in rng and not rng.endswith("/*"):
        return int(rng.rsplit("/", 1)[1])
    length = resp.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def checksum_of(asset: dict[str, Any], where: str) -> Checksum | None:
    """The asset's `file:checksum`, if it gives one."""
    value = asset.get("file:checksum")
    return Checksum.from_multihash(str(value), where) if value else None
