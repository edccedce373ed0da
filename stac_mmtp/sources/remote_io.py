"""Reading remote sources: GDAL's /vsicurl/ and /vsis3/ settings, and whole-object fetches of STAC items
and XML over HTTP(S) (one pooled session per process, retries honouring Retry-After) or S3 (boto3, the
environment's credentials, requester pays where the bucket demands it). Shared by remote_s2, remote_s1
and download.
"""

from __future__ import annotations

import json
import os
from typing import Any

from stac_mmtp.discover.redact import redact, redact_text
from stac_mmtp.errors import ProductError

# GDAL settings for remote COGs: no directory listing (one GET per file, not a crawl of the bucket),
# consecutive tile ranges merged into one request, a few retries on 429/5xx and cut connections.
VSI_OPTIONS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
    "GDAL_HTTP_TIMEOUT": "60",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF",
    "VSI_CACHE": "TRUE",
}


def vsi(href: str) -> str:
    if href.startswith(("http://", "https://")):
        return "/vsicurl/" + href
    if href.startswith("s3://"):
        return "/vsis3/" + href[5:]
    return href


_SESSION: tuple[int, Any] | None = None  # (pid, requests.Session): one connection pool per process


def _session() -> Any:
    """This process's HTTP session (kept across fetches so that a task's item and XML reuse connections;
    a new one after a fork, since sockets must not be shared between processes)."""
    global _SESSION
    if _SESSION is None or _SESSION[0] != os.getpid():
        import requests
        import urllib3

        session = requests.Session()
        session.trust_env = False
        retry = urllib3.Retry(total=5, backoff_factor=0.5, status_forcelist=[429, 500, 502, 503, 504],
                              allowed_methods=None, respect_retry_after_header=True)
        session.mount("http://", requests.adapters.HTTPAdapter(max_retries=retry))
        session.mount("https://", requests.adapters.HTTPAdapter(max_retries=retry))
        _SESSION = (os.getpid(), session)
    return _SESSION[1]


def fetch_bytes(href: str, what: str, timeout: float = 30.0, *, requester_pays: bool = False,
                region: str | None = None) -> bytes:
    """GET `href` whole, retrying 429/5xx (honouring Retry-After) and cut connections; a short body
    (fewer bytes than Content-Length) is an error. Errors name `what` and the href, redacted of tokens.
    An s3:// href is read with boto3 and the environment's credentials (`requester_pays`: the requester
    pays the transfer, as Earth Search's sentinel-s1-l1c bucket demands)."""
    import requests

    if href.startswith("s3://"):
        return _fetch_s3(href, what, requester_pays, region)
    try:
        resp = _session().get(href, timeout=timeout)
        if resp.status_code == 403:  # what Azure and S3 answer to an expired SAS token or presigned URL
            raise ProductError(f"cannot read {what}: HTTP 403 Forbidden (an expired or invalid signature?)",
                               redact(href))
        resp.raise_for_status()
        return resp.content
    except requests.RequestException as exc:
        raise ProductError(f"cannot read {what}: {redact_text(str(exc))[:300]}", redact(href)) from None


# ---------------------------------------------------------------- s3:// (Earth Search S1, CDSE eodata)
S3_CREDENTIALS_HELP = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for temporary keys) "
                       "or AWS_PROFILE")
NO_CREDENTIALS = (f"reading s3:// needs credentials and none were found: {S3_CREDENTIALS_HELP} "
                  "(requester-pays reads are billed to that account)")
_FALSE = ("NO", "FALSE", "OFF", "0")


def s3_endpoint_url() -> str | None:
    """The S3 endpoint both GDAL and boto3 use: GDAL's AWS_S3_ENDPOINT (host[:port], with AWS_HTTPS),
    else boto3's AWS_ENDPOINT_URL; None for AWS itself."""
    host = os.environ.get("AWS_S3_ENDPOINT", "").strip()
    if host:
        if "://" in host:
            return host
        https = os.environ.get("AWS_HTTPS", "YES").strip().upper() not in _FALSE
        return f"{'https' if https else 'http'}://{host}"
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_gdal_options(requester_pays: bool, region: str | None) -> dict[str, str]:
    """GDAL /vsis3/ settings for one source item. Credentials are NOT among them: GDAL reads them from the
    environment (or AWS_PROFILE's files) itself, so no secret goes through a config option or a log."""
    opts: dict[str, str] = {}
    if requester_pays:
        opts["AWS_REQUEST_PAYER"] = "requester"
    if region and not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        opts["AWS_REGION"] = region
    url = s3_endpoint_url()
    if url and not os.environ.get("AWS_S3_ENDPOINT"):  # boto3's variable only: tell GDAL the same endpoint
        scheme, _, host = url.partition("://")
        opts.update({"AWS_S3_ENDPOINT": host.rstrip("/"), "AWS_HTTPS": "YES" if scheme == "https" else "NO",
                     "AWS_VIRTUAL_HOSTING": os.environ.get("AWS_VIRTUAL_HOSTING", "FALSE")})
    return opts


def has_s3_credentials() -> bool:
    from botocore.exceptions import BotoCoreError

    try:
        return _s3_session().get_credentials() is not None
    except BotoCoreError:
        return False


def require_s3_credentials(href: str) -> None:
    """One clear error before any read when no AWS credentials are found (requester-pays and CDSE buckets
    refuse anonymous reads)."""
    from botocore.exceptions import BotoCoreError

    try:
        found = _s3_session().get_credentials() is not None
    except BotoCoreError as exc:  # e.g. an AWS_PROFILE that no config file defines
        raise ProductError(f"reading s3:// needs credentials: {exc}", redact(href)) from None
    if not found:
        raise ProductError(NO_CREDENTIALS, redact(href))


_S3: dict[tuple[int, str | None, str | None], Any] = {}


def _s3_session() -> Any:
    import boto3

    return boto3.session.Session()  # a session of its own: boto3's default one keeps its first credentials


def _s3_client(region: str | None) -> Any:
    """This process's S3 client for (endpoint, region), with retries (429/5xx, cut connections)."""
    from botocore.config import Config

    url = s3_endpoint_url()
    key = (os.getpid(), url, region)
    if key not in _S3:
        virtual = os.environ.get("AWS_VIRTUAL_HOSTING", "TRUE").strip().upper() not in _FALSE
        config = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=30, read_timeout=60,
                        s3={"addressing_style": "virtual" if virtual and not url else "path"})
        _S3[key] = _s3_session().client("s3", endpoint_url=url, region_name=region or None, config=config)
    return _S3[key]


def s3_list(prefix: str, requester_pays: bool, region: str | None) -> list[str]:
    """The s3:// hrefs of the objects under `prefix` (an s3:// folder), sorted."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = prefix[5:].partition("/")
    extra = {"RequestPayer": "requester"} if requester_pays else {}
    out: list[str] = []
    try:
        for page in _s3_client(region).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key, **extra):
            out += [f"s3://{bucket}/{o['Key']}" for o in page.get("Contents", [])]
    except (BotoCoreError, ClientError) as exc:
        raise ProductError(f"cannot list the product's XML: {redact_text(str(exc))[:300]}", redact(prefix)) from None
    return sorted(out)


def _fetch_s3(href: str, what: str, requester_pays: bool, region: str | None) -> bytes:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    bucket, _, key = href[5:].partition("/")
    extra = {"RequestPayer": "requester"} if requester_pays else {}
    try:
        return _s3_client(region).get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
    except ClientError as exc:
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        hint = ""
        if status == 403:
            hint = (" (keys without access to this bucket, or a requester-pays bucket read without "
                    "x-amz-request-payer?)")
        raise ProductError(f"cannot read {what}: HTTP {status} {err.get('Code', '')}{hint}", redact(href)) from None
    except NoCredentialsError:  # the client's own finding: no session and credential lookup per fetch
        raise ProductError(NO_CREDENTIALS, redact(href)) from None
    except BotoCoreError as exc:
        raise ProductError(f"cannot read {what}: {redact_text(str(exc))[:300]}", redact(href)) from None


def fetch_json(href: str, timeout: float = 30.0) -> dict[str, Any]:
    data = fetch_bytes(href, "the source STAC item", timeout)
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ProductError(f"cannot read the source STAC item: not JSON ({exc})", redact(href)) from None


