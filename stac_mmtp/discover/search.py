"""One STAC item search, paged to the end, through a retrying, rate-limited, timed-out HTTP client."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import urllib3
from pystac_client.stac_api_io import StacApiIO

from stac_mmtp.discover.providers import Provider
from stac_mmtp.discover.redact import redact, redact_text
from stac_mmtp.errors import MmtpError

log = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)


class ProviderError(MmtpError):
    """A provider that does not answer (down, refusing, or answering errors after the retries)."""


class LimitedIO(StacApiIO):
    """pystac-client's HTTP layer with a request rate limit and a count of the requests made.

    Retries (urllib3: 429/5xx/connection errors, every method since item search is a POST, with
    exponential backoff and Retry-After honoured) happen inside one `request` call; the rate limit
    spaces the calls themselves, which is what a provider's quota counts.
    """

    def __init__(self, rate_limit: float, timeout: float, retries: int, backoff: float) -> None:
        retry = urllib3.Retry(
            total=retries, backoff_factor=backoff, status_forcelist=list(RETRY_STATUSES), allowed_methods=None,
            respect_retry_after_header=True, raise_on_status=False,
        )
        super().__init__(timeout=timeout, max_retries=retry)
        self.session.trust_env = False  # a proxy from the environment must not see our queries or tokens
        self.min_interval = 1.0 / rate_limit if rate_limit > 0 else 0.0
        self.requests = 0
        self._last = 0.0
        self._lock = threading.Lock()

    def request(self, href: str, method: str | None = None, headers: dict[str, str] | None = None,
                parameters: dict[str, Any] | None = None) -> str:
        with self._lock:
            wait = self._last + self.min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last = time.monotonic()
            self.requests += 1
        return super().request(href, method=method, headers=headers, parameters=parameters)


@dataclass
class SearchResult:
    provider: str
    collection: str
    url: str
    method: str
    body: dict[str, Any]
    items: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0


@dataclass
class Session:
    """One client per provider for the whole run (landing page fetched once, one rate limiter)."""

    provider: Provider
    timeout: float = 30.0
    retries: int = 5
    backoff: float = 1.0
    io: LimitedIO | None = None
    client: Any = None
    down: str | None = None  # the first error, once the provider is known not to answer

    def open(self) -> Any:
        if self.down:
            raise ProviderError(self.down)
        if self.client is None:
            from pystac_client import Client

            self.io = LimitedIO(self.provider.rate_limit, self.timeout, self.retries, self.backoff)
            try:
                self.client = Client.open(self.provider.url, stac_io=self.io)
            except Exception as exc:  # APIError, connection errors after the retries, bad JSON
                self.down = f"provider {self.provider.name} ({redact(self.provider.url)}) does not answer: {_reason(exc)}"
                raise ProviderError(self.down) from exc
        return self.client

    @property
    def requests(self) -> int:
        return self.io.requests if self.io else 0

    def search(self, collection: str, intersects: dict[str, Any], start: str, end: str,
               filter: dict[str, Any] | None = None, query: dict[str, Any] | None = None) -> SearchResult:  # noqa: A002
        """One search paged to the end; `filter` (CQL2 JSON) and `query` are sent only when given."""
        client = self.open()  # raises at once for a provider already found down
        body: dict[str, Any] = {"collections": [collection], "intersects": intersects, "datetime": f"{start}/{end}",
                                "limit": self.provider.page_size}
        extra: dict[str, Any] = {}
        if filter is not None:
            extra = {"filter": filter, "filter_lang": "cql2-json"}
        if query is not None:
            extra["query"] = query
        try:
            search = client.search(method="POST", **body, **extra)
            url = search.url
            # the plan records the body as sent (the wire spells it "filter-lang")
            sent = {**body, **{k.replace("_", "-"): v for k, v in extra.items()}}
            result = SearchResult(self.provider.name, collection, redact(url), "POST", sent)
            for page in search.pages_as_dicts():
                result.pages += 1
                result.items.extend(page.get("features", []))
        except Exception as exc:
            msg = f"provider {self.provider.name}: search of {collection} at {redact(self.provider.url)} failed: {_reason(exc)}"
            status = getattr(exc, "status_code", None)
            if status is None or status == 429 or status >= 500:
                # down (or refusing us) after the retries: later searches fail fast instead of waiting again
                self.down = msg
            raise ProviderError(msg) from exc
        # client-side sort: servers' sortby is optional and not always honoured
        result.items.sort(key=lambda it: (it.get("properties", {}).get("datetime") or "", it.get("id", "")))
        return result


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    status = getattr(exc, "status_code", None)
    if status is not None:
        text = f"HTTP {status}" + (f" {text}" if text != type(exc).__name__ else "")
    return redact_text(text)[:300]
