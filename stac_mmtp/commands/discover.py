"""`stac-mmtp discover`: write the acquisition plan of each event (catalog/acquisitions/<event-id>.json)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape

from stac_mmtp import console
from stac_mmtp.commands.common import json_option
from stac_mmtp.errors import EXIT_FAILED, MmtpError


@click.command("discover", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--events", "events_dir", type=click.Path(path_type=Path), help="Inventory [default: catalog/events].")
@click.option("--provider", "providers", multiple=True, metavar="NAME|URL",
              help="earth-search, planetary-computer, cdse or a STAC API URL; repeat for fall-backs [default: earth-search].")
@click.option("--collection", "collections", multiple=True, metavar="MODALITY=ID",
              help="Collection id per modality (s2, s1) [default: the provider's own, Earth Search's for a URL].")
@click.option("--out", type=click.Path(path_type=Path), help="Plan directory [default: ./catalog/acquisitions].")
@click.option("--event", "event_ids", multiple=True, metavar="ID", help="Only this event (repeatable).")
@click.option("--modality", "modalities", multiple=True, type=click.Choice(["s2", "s1"]), help="Only this modality.")
@click.option("--update", is_flag=True, help="Keep what the plans hold, add only new acquisitions.")
@click.option("--all", "all_", is_flag=True, help="Also every other acquisition of the window (slow motion).")
@click.option("--aoi-cloud", is_flag=True, help="Cloud from the SCL window over the AOI instead of eo:cloud_cover.")
@click.option("--pre-event", type=click.IntRange(0), default=2, show_default=True, help="Pre-event images per stack.")
@click.option("--min-coverage", type=click.FloatRange(0, 1), default=0.9, show_default=True,
              help="AOI fraction a usable optical image covers.")
@click.option("--max-cloud", type=click.FloatRange(0, 100), default=20.0, show_default=True,
              help="Cloud percent a usable optical image may have.")
@click.option("--days-before", type=int, default=60, show_default=True, help="Search window before each event.")
@click.option("--days-after", type=int, default=90, show_default=True, help="Search window after each event.")
@click.option("--page-size", type=click.IntRange(1, 10000), help="Items per page [default: the provider's].")
@click.option("--rate-limit", type=float, help="Requests per second per provider [default: the provider's].")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds per HTTP request.")
@click.option("--retries", type=click.IntRange(0), default=5, show_default=True,
              help="Retries of a request answered 429/5xx or cut (exponential backoff, Retry-After honoured).")
@click.option("--server-filter/--no-server-filter", default=True, show_default=True,
              help="Send the S2 cloud filter (CQL2 JSON or query) to APIs that take one, past the cut-off.")
@click.option("--filter-cutoff-days", type=click.FloatRange(0), default=10.0, show_default=True,
              help="Days after the event before which every image comes back unfiltered.")
@json_option
def discover_command(events_dir: Path | None, providers: tuple[str, ...], collections: tuple[str, ...], out: Path | None,
                     event_ids: tuple[str, ...], modalities: tuple[str, ...], update: bool, all_: bool, aoi_cloud: bool,
                     pre_event: int, min_coverage: float, max_cloud: float, days_before: int, days_after: int,
                     page_size: int | None, rate_limit: float | None, timeout: float,
                     retries: int, server_filter: bool, filter_cutoff_days: float) -> None:
    """Search STAC APIs for the Sentinel-1/2 acquisitions of each event and write one plan per event.

    Per stack (S2: MGRS tile; S1: relative orbit, direction, mode, polarisations): the last
    pre-event images, the first post-event one and the first usable post-event one. Re-running on an
    unchanged API leaves the files byte-identical. Exit 1 when a provider failed (the events it was
    needed for are named and left unplanned), 2 on bad input.
    """
    from stac_mmtp.discover import DiscoverOptions, discover
    from stac_mmtp.discover.providers import MODALITIES, parse_collections, resolve
    from stac_mmtp.discover.selection import Selection
    from stac_mmtp.paths import default_events_dir

    try:
        provs = resolve(list(providers), parse_collections(collections), rate_limit, page_size)
        options = DiscoverOptions(
            days_before=days_before, days_after=days_after, modalities=tuple(modalities) or MODALITIES,
            selection=Selection(pre_event, min_coverage, max_cloud, all_, aoi_cloud), update=update, timeout=timeout, retries=retries,
            server_filter=server_filter, filter_cutoff_days=filter_cutoff_days,
        )
        # relative to the working directory: never into an installed package's own copy of catalog/
        out = out or Path("catalog") / "acquisitions"
        with console.progress_bar() as progress:
            report = discover(events_dir or default_events_dir(), provs, out, options, list(event_ids), progress)
    except MmtpError as exc:
        console.error(escape(str(exc)))
        sys.exit(exc.exit_code)
    mods = options.modalities
    if console.json_mode():
        console.record("out", str(out))
        console.record("events", [{"event": e.event_id, "found": {m: e.found[m] for m in mods if m in e.found},
                                   "selected": {m: e.selected[m] for m in mods if m in e.selected},
                                   "missing": [m for m in mods if not e.selected.get(m)], "plan": e.status}
                                  for e in report.events])
        console.record("requests", dict(report.requests))
    else:
        console.table(
            f"acquisition plans in {out}", ["event", *[f"{m} found/selected" for m in mods], "missing", "plan"],
            [[e.event_id, *[f"{e.found[m]}/{e.selected[m]}" if m in e.found else "-" for m in mods],
              ", ".join(m for m in mods if not e.selected.get(m)) or "", e.status] for e in report.events],
        )
    for msg in report.failures:
        console.error(escape(msg))
    if not console.quiet() and not console.json_mode():
        reqs = ", ".join(f"{k}: {v}" for k, v in report.requests.items())
        console.err.print(f"{len(report.events)} event(s), {len(report.failures)} problem(s); requests {reqs}", highlight=False)
    sys.exit(0 if report.ok else EXIT_FAILED)
