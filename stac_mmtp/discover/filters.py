"""The cloud filter sent to the server, when the API can take one and the selection cannot change.

The first post-event image of a stack must be found even when it is cloudy: only the *usable* one may
be filtered by cloud. So the window is searched in two parts: up to a cut-off shortly after the event
(event end + cutoff_days) unfiltered, after it with the cloud filter, CQL2 JSON
`{"op": "<=", "args": [{"property": "eo:cloud_cover"}, max_cloud]}` or, for an API with the `query`
extension but no CQL2, `{"eo:cloud_cover": {"lte": max_cloud}}`. (One search with `datetime <= cut-off
OR eo:cloud_cover <= max_cloud` would do, but stac-fastapi-geoparquet 0.0.7 / rustac 0.9.17 then drops
the search's own collections, intersects and datetime constraints: it answers every clear item it holds.
A single comparison it applies correctly.) Then, if some stack's first usable
image is later than the cut-off (or it has none), one more unfiltered search from the cut-off to that
image (to the window's end when there is none) brings back the cloudy images that may come first. Every
image up to the latest first-usable one is then known unfiltered, so the selection is the unfiltered
selection, except for a stack with no image at all before the cut-off and no usable image in the
window (see docs/acquisition.md).

Not sent for Sentinel-1 (no cloud), with `--all` (every image is wanted) or `--aoi-cloud` (the scene's
cloud cover is not the AOI's); servers without filter nor query: everything is judged client-side.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from stac_mmtp.discover.selection import Selection, parse_dt, select, stack_key

if TYPE_CHECKING:
    from stac_mmtp.dataset.inventory import Event
    from stac_mmtp.discover.search import SearchResult, Session

CQL2_JSON = "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json"


def server_filter_kind(session: Session) -> str | None:
    """"cql2-json", "query" or None, from the API's conformance classes (the landing page read once)."""
    from pystac_client.conformance import ConformanceClasses

    client = session.open()
    conforms = set(client.get_conforms_to())
    if client.conforms_to(ConformanceClasses.FILTER) and CQL2_JSON in conforms:
        return "cql2-json"
    if client.conforms_to(ConformanceClasses.QUERY):
        return "query"
    return None


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _merge(results: list[SearchResult]) -> list[dict[str, Any]]:
    """The items of several searches, each id once, sorted by datetime then id (as one search gives them)."""
    seen: dict[str, dict[str, Any]] = {}
    for r in results:
        for it in r.items:
            seen.setdefault(it["id"], it)
    return sorted(seen.values(), key=lambda it: (it.get("properties", {}).get("datetime") or "", it.get("id", "")))


def _latest_first_usable(event: Event, items: list[dict[str, Any]], sel: Selection) -> datetime | None:
    """The latest of the stacks' first usable post-event images; None when some stack has none."""
    recs = select(event, "s2", "", "", items, Selection(0, sel.min_coverage, sel.max_cloud))
    usable = {r["stack"]: parse_dt(r["datetime"]) for r in recs if "first-usable-post-event" in r["roles"]}
    stacks = {stack_key("s2", it) for it in items}
    if not stacks or stacks - set(usable):
        return None
    return max(usable.values())


def filtered_search(session: Session, modality: str, collection: str, event: Event, start: str, end: str,
                    sel: Selection, cutoff_days: float, enabled: bool = True) -> tuple[list[dict[str, Any]], list[SearchResult]]:
    """The items the selection needs (sorted, each once) and the searches made to get them."""
    window_end = parse_dt(end)
    cutoff_dt = event.end + timedelta(days=cutoff_days)
    wanted = enabled and modality == "s2" and not sel.all and not sel.aoi_cloud and cutoff_dt < window_end
    kind = server_filter_kind(session) if wanted else None
    if kind is None:  # nothing to filter (or no way to): the whole window, one search
        r = session.search(collection, event.geometry, start, end)
        return r.items, [r]
    cutoff = _iso(cutoff_dt)
    if kind == "cql2-json":
        clear: dict[str, Any] = {"filter": {"op": "<=", "args": [{"property": "eo:cloud_cover"}, sel.max_cloud]}}
    else:
        clear = {"query": {"eo:cloud_cover": {"lte": sel.max_cloud}}}
    results = [session.search(collection, event.geometry, start, cutoff),
               session.search(collection, event.geometry, cutoff, end, **clear)]
    items = _merge(results)
    latest = _latest_first_usable(event, items, sel)
    upto = window_end if latest is None else latest
    if upto > cutoff_dt:
        # the cloudy images between the cut-off and the first usable one: one may be a first post-event
        results.append(session.search(collection, event.geometry, cutoff, _iso_ceil(upto)))
        items = _merge(results)
    return items, results


def _iso_ceil(dt: datetime) -> str:
    """`dt` to the next whole second (the search's interval is closed: the image at `dt` comes back)."""
    whole = dt.replace(microsecond=0)
    return _iso(whole if whole == dt else whole + timedelta(seconds=1))
