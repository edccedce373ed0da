"""Keep credentials out of plans, logs and published files: signed URLs lose their query string."""

from __future__ import annotations

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
