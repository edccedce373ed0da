"""`stac-mmtp discover`: from the event inventory to a reviewable plan of the Sentinel products to build.

Per event and modality, one item search (AOI, time window) against the first provider that answers,
then a selection per stack (selection.py), written as `<out>/<event-id>.json` (plan.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stac_mmtp.dataset.inventory import Event, load_inventory
from stac_mmtp.discover.plan import PLAN_TYPE, PLAN_VERSION, acquisition_key, write_plan
from stac_mmtp.discover.providers import MODALITIES, Provider
from stac_mmtp.discover.selection import Selection, select
from stac_mmtp.errors import MmtpError

__all__ = ["DiscoverOptions", "DiscoverReport", "discover", "discover_events"]


@dataclass(frozen=True)
class DiscoverOptions:
    days_before: int = 60
    days_after: int = 90
    modalities: tuple[str, ...] = MODALITIES
    selection: Selection = field(default_factory=Selection)
    update: bool = False
    timeout: float = 30.0
    retries: int = 5
    backoff: float = 1.0
    server_filter: bool = True  # send the cloud filter when the API takes CQL2 JSON or `query` (filters.py)
    filter_cutoff_days: float = 10.0  # up to this long after the event, every image comes back unfiltered


@dataclass
class EventResult:
    event_id: str
    status: str  # written / updated / unchanged / failed
    found: dict[str, int] = field(default_factory=dict)
    selected: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@dataclass
class DiscoverReport:
    out: Path
    events: list[EventResult] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)  # provider -> HTTP requests made

    @property
    def ok(self) -> bool:
        return all(e.status != "failed" for e in self.events)

    @property
    def failures(self) -> list[str]:
        return [m for e in self.events for m in e.errors]


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Progress = Callable[[str, int, int], None]


def discover_events(events: list[Event], providers: list[Provider], out: Path, options: DiscoverOptions | None = None,
                    progress: Progress | None = None, now: Callable[[], datetime] | None = None) -> DiscoverReport:
    """Plan every event; a provider that is down fails only the (event, modality) it was needed for."""
    from stac_mmtp.discover.filters import filtered_search
    from stac_mmtp.discover.search import (  # pystac-client: only when something is searched
        ProviderError,
        Session,
    )

    options = options or DiscoverOptions()
    now = now or (lambda: datetime.now(UTC))
    sessions = [Session(p, options.timeout, options.retries, options.backoff) for p in providers]
    report = DiscoverReport(out=out)
    total = len(events) * len(options.modalities)
    done = 0
    for ev in sorted(events, key=lambda e: e.id):
        res = EventResult(ev.id, "failed")
        start = _iso(ev.start - timedelta(days=options.days_before))
        end = _iso(ev.end + timedelta(days=options.days_after))
        queries: list[dict[str, Any]] = []
        acquisitions: list[dict[str, Any]] = []
        for mod in options.modalities:
            errors = []
            for s in sessions:
                coll = s.provider.collections.get(mod)
                if not coll:
                    continue
                try:
                    when = _iso(now())
                    found, results = filtered_search(s, mod, coll, ev, start, end, options.selection,
                                                     options.filter_cutoff_days, options.server_filter)
                except ProviderError as exc:
                    errors.append(str(exc))
                    continue
                try:
                    recs = select(ev, mod, s.provider.name, coll, found, options.selection,
                                  _cloud_reader(ev, s.provider.name) if options.selection.aoi_cloud and mod == "s2" else None)
                except MmtpError as exc:  # e.g. an SCL window that cannot be read: not the provider's fault
                    errors.append(str(exc))
                    break
                queries += [{"modality": mod, "provider": r.provider, "url": r.url, "method": r.method,
                             "body": r.body, "pages": r.pages, "returned": len(r.items), "searched_at": when}
                            for r in results]
                acquisitions += recs
                res.found[mod], res.selected[mod] = len(found), len(recs)
                errors = []
                break
            else:
                if not errors:
                    errors.append(f"no provider has a collection for modality {mod}")
            if errors:
                res.errors.append(f"{ev.id}: {mod} not planned: " + "; ".join(errors))
            done += 1
            if progress:
                progress("discover", done, total)
        if res.errors:  # nothing half-written: the event's plan stays as it was
            report.events.append(res)
            continue
        sel = options.selection
        plan = {
            "type": PLAN_TYPE,
            "version": PLAN_VERSION,
            "event": ev.id,
            "event_start": _iso(ev.start),
            "event_end": _iso(ev.end),
            "window": {"start": start, "end": end},
            "selection": {"pre_event": sel.pre_event, "min_coverage": sel.min_coverage, "max_cloud": sel.max_cloud,
                          "all": sel.all, "cloud_method": "scl-over-aoi" if sel.aoi_cloud else "eo:cloud_cover"},
            "queries": queries,
            "acquisitions": sorted(acquisitions, key=acquisition_key),
        }
        res.status = write_plan(out / f"{ev.id}.json", plan, update=options.update)
        report.events.append(res)
    report.requests = {s.provider.name: s.requests for s in sessions}
    return report


def discover(events_dir: Path, providers: list[Provider], out: Path, options: DiscoverOptions | None = None,
             event_ids: list[str] | None = None, progress: Progress | None = None) -> DiscoverReport:
    """Load the inventory (InputError before anything is asked or written), then plan its events."""
    from stac_mmtp.errors import InputError

    events = load_inventory(events_dir)
    if event_ids:
        unknown = sorted(set(event_ids) - {e.id for e in events})
        if unknown:
            raise InputError(f"unknown event id(s): {', '.join(unknown)}", events_dir)
        events = [e for e in events if e.id in set(event_ids)]
    return discover_events(events, providers, out, options, progress)


def _cloud_reader(ev: Event, provider: str) -> Callable[[dict[str, Any]], float | None]:
    from stac_mmtp.discover.cloud import scl_cloud_percent

    return lambda item: scl_cloud_percent(item, ev.geometry, provider)
