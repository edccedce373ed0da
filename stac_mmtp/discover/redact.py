"""Keep credentials out of plans, logs and published files: signed URLs lose their query string."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit


def redact(href: str) -> str:
    """`href` without user:password and without a query string (SAS tokens, X-Amz-Signature, ?token=).

    The query string is dropped whole rather than filtered by parameter name: a signing scheme we
    do not know about must not leak either, and STAC asset hrefs do not need one to be found again.
    """
    if "://" not in href:
        return href
    parts = urlsplit(href)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def redact_text(text: str) -> str:
    """Redact every URL inside an error message (GDAL and requests quote the URL they failed on)."""
    return re.sub(r"https?://[^\s'\"<>)]+", lambda m: redact(m.group(0)), text)
