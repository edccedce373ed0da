"""Plan the units of work: match each product to the events it observes, with its temporal role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from stac_mmtp.dataset.inventory import Event
from stac_mmtp.sources.base import BuildOptions, ProductMeta, Task


def temporal_role(event: Event, product: ProductMeta) -> tuple[str, float]:
    """Role of an acquisition relative to its event, and days from the event (start)."""
    days = round((product.start - event.start).total_seconds() / 86400, 3)
    if product.end < event.start:
        return "pre-event", days
    if product.start > event.end:
        return "post-event", round((product.start - event.end).total_seconds() / 86400, 3)
    return "co-event", days


def plan(events: list[Event], products: list[ProductMeta], options: BuildOptions) -> tuple[list[Task], list[ProductMeta]]:
    """Match each product to the events whose AOI it intersects within the time window.

    The earliest post-event acquisition of each (event, collection) is marked `first-post-event`:
    for emergency mapping the first available image is the one that matters.
    """
    from shapely.geometry import shape

    before, after = timedelta(days=options.days_before), timedelta(days=options.days_after)
    tasks: list[Task] = []
    unmatched: list[ProductMeta] = []
    shapes = {ev.id: ev.shape for ev in events}
    for prod in products:
        footprint = shape(prod.geometry)
        matched = False
        for ev in events:
            if prod.end < ev.start - before or prod.start > ev.end + after:
                continue
            if not footprint.intersects(shapes[ev.id]):
                continue
            role, days = temporal_role(ev, prod)
            tasks.append(Task(ev, prod, role, days, options))
            matched = True
        if not matched:
            unmatched.append(prod)
    first: dict[tuple[str, str], Task] = {}
    for t in tasks:
        if t.temporal_role == "post-event":
            key = (t.event.id, t.product.source)
            if key not in first or t.product.start < first[key].product.start:
                first[key] = t
    firsts = {id(t) for t in first.values()}
    tasks = [Task(t.event, t.product, "first-post-event", t.days_from_event, t.options) if id(t) in firsts else t for t in tasks]
    return sorted(tasks, key=lambda t: (t.product.source, t.item_id)), unmatched


@dataclass(frozen=True)
class Selection:
    """A partial run: only these events, only acquisitions starting at or after `since`, at most `limit` tasks."""

    events: tuple[str, ...] = ()
    since: datetime | None = None
    limit: int | None = None

    def apply(self, tasks: list[Task]) -> list[Task]:
        since = self.since if self.since is None or self.since.tzinfo else self.since.replace(tzinfo=UTC)
        chosen = [t for t in tasks if (not self.events or t.event.id in self.events)
                  and (since is None or t.product.start >= since)]
        return chosen if self.limit is None else chosen[: self.limit]
