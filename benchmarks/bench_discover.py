"""Benchmark: `discover` over the whole inventory (catalog/events) against a local STAC API.

The API (stac-fastapi-geoparquet, as `stac-mmtp serve` runs it, and stac-fastapi-pgstac on PostgreSQL +
PostGIS, as Earth Search and Planetary Computer run it) holds the real Earth Search 29RKH L2A item and
the real Planetary Computer S1 GRD item, plus, for every event, copies of them moved in space (the
footprint centred on the event's AOI) and in time (S2: -21, -16, -11 days, then +2 (85 % cloud), +7,
+12 (90 % cloud), +17, +27, +47, +77 days; S1: every 12 days from -36 to +84), each said to be a copy
in its `description`. So every event finds pre- and post-event images, as with a real provider.

For each API: the run at the provider rate limit (`--rate-limit`, default Earth Search's 10 requests/s)
with the server-side cloud filter (the default), and unlimited with and without it (`--no-server-filter`),
the servers interleaved per configuration (the machine is shared: compare ratios within one run). Per run:
requests, wall time, and where it goes: waiting for the rate limiter, HTTP (server + transfer),
and the rest (client: JSON, selection, plan writing).

    PYTHONPATH=$PWD python benchmarks/bench_discover.py [--repeat 1] [--servers geoparquet,pgstac]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
FIX = REPO.parent / "shared" / "fixtures" / "real"
S2_REAL = FIX / "rio-tiler-pds/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A/S2A_29RKH_20200219_0_L2A.json"
S1_REAL = FIX / "stac-api-items/planetary-computer/sentinel-1-grd/S1A_IW_GRDH_1SDV_20250312T052236_20250312T052301_058267_073394.json"
S2_DAYS = [(-21, None), (-16, None), (-11, None), (2, 85.0), (7, None), (12, 90.0), (17, None), (27, None),
           (47, None), (77, None)]
S1_DAYS = list(range(-36, 85, 12))


def _fmt(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00").replace(" ", "T", 1))


def _moved(real: dict[str, Any], centre: tuple[float, float]) -> tuple[dict[str, Any], list[float]]:
    """The footprint translated so its bbox centre is `centre`, kept inside [-180, 180]."""
    b = real["bbox"]
    dx, dy = centre[0] - (b[0] + b[2]) / 2, centre[1] - (b[1] + b[3]) / 2
    dx -= max(0.0, b[2] + dx - 180.0) - max(0.0, -180.0 - (b[0] + dx))  # no ring across the antimeridian
    dy = max(-89.0 - b[1], min(89.0 - b[3], dy))

    def mv(ring: list[list[float]]) -> list[list[float]]:
        return [[x + dx, y + dy] for x, y, *_ in ring]

    g = real["geometry"]
    polys = [g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"]
    coords = [[mv(r) for r in p] for p in polys]
    geom = {"type": "Polygon", "coordinates": coords[0]} if g["type"] == "Polygon" else {"type": "MultiPolygon", "coordinates": coords}
    return geom, [b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy]


def inventory_items(events: list[Any]) -> dict[str, list[dict[str, Any]]]:
    import shapely.geometry

    s2r, s1r = json.loads(S2_REAL.read_text()), json.loads(S1_REAL.read_text())
    s2, s1 = [s2r], [s1r]
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    for n, ev in enumerate(sorted(events, key=lambda e: e.id)):
        c = shapely.geometry.shape(ev.geometry).centroid
        square = letters[n // len(letters) % len(letters)] + letters[n % len(letters)]
        geom2, bbox2 = _moved(s2r, (c.x, c.y))
        for days, cloud in S2_DAYS:
            it = copy.deepcopy(s2r)
            when = ev.end + timedelta(days=days) if days > 0 else ev.start + timedelta(days=days)
            when = when.replace(hour=11, minute=34, second=25, microsecond=405000)
            p = it["properties"]
            it["id"] = f"S2A_29R{square}_{when:%Y%m%d}_0_L2A"
            p.update({"datetime": _fmt(when), "created": _fmt(when + timedelta(days=1)), "mgrs:grid_square": square,
                      "description": f"benchmark copy of {s2r['id']} for {ev.id}, moved by {days} days"})
            if cloud is not None:
                p["eo:cloud_cover"] = cloud
            it["geometry"], it["bbox"] = geom2, bbox2
            s2.append(it)
        geom1, bbox1 = _moved(s1r, (c.x, c.y))
        for days in S1_DAYS:
            it = copy.deepcopy(s1r)
            p = it["properties"]
            base = ev.end if days > 0 else ev.start
            start = base + timedelta(days=days)
            start = start.replace(hour=5, minute=22, second=36, microsecond=0)
            p.update({"datetime": _fmt(start + timedelta(seconds=12)), "start_datetime": _fmt(start),
                      "end_datetime": _fmt(start + timedelta(seconds=25)), "sat:relative_orbit": 1 + n % 175,
                      "description": f"benchmark copy of {s1r['id']} for {ev.id}, moved by {days} days"})
            it["id"] = f"S1A_IW_GRDH_1SDV_{start:%Y%m%dT%H%M%S}_{start + timedelta(seconds=25):%Y%m%dT%H%M%S}_E{n:03d}"
            it["geometry"], it["bbox"] = geom1, bbox1
            s1.append(it)
    return {"sentinel-2-l2a": s2, "sentinel-1-grd": s1}


SERVE = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from stac_api import stac_api
items = json.loads(Path(sys.argv[2]).read_text())
with stac_api(items, Path(sys.argv[3]), port=int(sys.argv[4])) as url:
    print(url, flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
"""


@contextmanager
def geoparquet_process(items: dict[str, list[dict[str, Any]]], workdir: Path) -> Iterator[str]:
    """stac-fastapi-geoparquet in a process of its own (in a thread it would share the client's GIL),
    as pgstac runs in its own processes."""
    import subprocess

    from stac_api import _free_port

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "items.json").write_text(json.dumps(items))
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(REPO / "tests"), str(workdir / "items.json"),
                             str(workdir / "api"), str(_free_port())], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        yield proc.stdout.readline().strip()
    finally:
        proc.stdin.close()
        proc.wait(30)


class Timing:
    """Wraps LimitedIO.request: time waiting for the rate limiter vs in HTTP."""

    def __init__(self) -> None:
        self.wait = self.http = 0.0

    def install(self) -> None:
        from pystac_client.stac_api_io import StacApiIO

        from stac_mmtp.discover import search as s

        timing = self

        def request(io: Any, href: str, method: str | None = None, headers: Any = None, parameters: Any = None) -> str:
            with io._lock:
                wait = io._last + io.min_interval - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                    timing.wait += wait
                io._last = time.monotonic()
                io.requests += 1
            t = time.perf_counter()
            try:
                return StacApiIO.request(io, href, method=method, headers=headers, parameters=parameters)
            finally:
                timing.http += time.perf_counter() - t

        s.LimitedIO.request = request  # type: ignore[method-assign]


def run_once(events: list[Any], url: str, rate: float, server_filter: bool, timing: Timing) -> dict[str, Any]:
    from stac_mmtp.discover import DiscoverOptions, discover_events
    from stac_mmtp.discover.providers import resolve

    timing.wait = timing.http = 0.0
    out = Path(tempfile.mkdtemp(prefix="bench-discover-"))
    opts = DiscoverOptions(server_filter=server_filter, retries=2, backoff=0.1)
    t = time.perf_counter()
    report = discover_events(events, resolve([url], rate_limit=rate, page_size=100), out, opts)
    wall = time.perf_counter() - t
    sel = sum(sum(e.selected.values()) for e in report.events)
    return {"wall_s": round(wall, 2), "requests": sum(report.requests.values()), "wait_s": round(timing.wait, 2),
            "http_s": round(timing.http, 2), "client_s": round(wall - timing.wait - timing.http, 2),
            "events_ok": sum(e.status != "failed" for e in report.events), "selected": sel,
            "plans": sorted(p.name for p in out.iterdir()), "out": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--servers", default="geoparquet,pgstac")
    ap.add_argument("--rate-limit", type=float, default=10.0)
    ap.add_argument("--events", type=int, default=0, help="Only the first N events (a quick look; 0: all).")
    args = ap.parse_args()
    from contextlib import ExitStack

    from stac_api import any_stac_api

    from stac_mmtp.dataset.inventory import load_inventory

    events = load_inventory(REPO / "catalog" / "events")
    items = inventory_items(events)
    print(f"{len(events)} events; API items: {', '.join(f'{k} {len(v)}' for k, v in items.items())}", flush=True)
    timing = Timing()
    timing.install()
    # at the provider's rate limit as discover runs by default; unlimited with and without the cloud filter
    configs = [(args.rate_limit, True), (0.0, True), (0.0, False)]
    if args.events:
        events = events[: args.events]
    results: dict[tuple[str, float, bool], list[dict[str, Any]]] = {}
    with ExitStack() as stack:
        urls = {}
        for kind in args.servers.split(","):
            t = time.perf_counter()
            work = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-"))
            server = geoparquet_process(items, work) if kind == "geoparquet" else any_stac_api(kind, items, work)
            urls[kind] = stack.enter_context(server)
            print(f"{kind}: up and loaded in {time.perf_counter() - t:.1f} s", flush=True)
        for _ in range(args.repeat):
            for rate, flt in configs:
                for kind, url in urls.items():  # the servers interleaved, per configuration
                    r = run_once(events, url, rate, flt, timing)
                    results.setdefault((kind, rate, flt), []).append(r)
                    print(kind, f"rate={rate or 'unlimited'}", "filter" if flt else "no-filter",
                          {k: v for k, v in r.items() if k not in ("plans", "out")}, flush=True)
    # the plans must not depend on the server nor on the filter (but for the server's URL in them)
    ref = None
    for key, rs in results.items():
        for r in rs:
            acq = {p: json.loads((r["out"] / p).read_text().replace(urls[key[0]], "API"))["acquisitions"]
                   for p in r["plans"]}
            if ref is None:
                ref = acq
            assert acq == ref, f"plans of {key} differ"
    print("\n| server | rate limit | cloud filter | requests | wall s | rate wait s | HTTP s | client s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for (kind, rate, flt), rs in results.items():
        best = min(rs, key=lambda r: r["wall_s"])
        print(f"| {kind} | {f'{rate:g}/s' if rate else 'none'} | {'server' if flt else 'client'} | {best['requests']} | "
              f"{best['wall_s']} | {best['wait_s']} | {best['http_s']} | {best['client_s']} |")
    print(f"\nevery configuration wrote the same {len(ref or {})} plans")


if __name__ == "__main__":
    main()
