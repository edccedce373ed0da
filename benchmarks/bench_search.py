"""Benchmark: STAC queries on one release, against the tools a user would pick, same items, same run.

One collection of generated items (random 0.1 deg footprints worldwide over 10 years, six phenomena),
written as a static tree with its stac-geoparquet `items.parquet`. The same queries go to:

- `duckdb`: plain DuckDB SQL on `items.parquet` (`SELECT * ... WHERE bbox.xmin <= ...`), rows fetched;
- `rustac`: `rustac.DuckdbClient().search(items.parquet, bbox=, datetime=, filter=)`, items as dicts;
- `ours-search`: `stac_mmtp.stac.geoparquet.search(release, ...)` (rustac underneath, hrefs made absolute);
- `ours-serve`: `stac-mmtp serve` (stac-fastapi-geoparquet) queried with pystac-client;
- `pgstac`: stac-fastapi-pgstac on PostgreSQL + PostGIS loaded with pypgstac (what Planetary Computer
  and Earth Search run), queried with pystac-client: the reference STAC API server.

The in-process engines run each in a fresh subprocess (peak RSS = its own); the servers run as
subprocesses on 127.0.0.1 (peak RSS of the API process, and PSS of all postgres processes). Every
engine must return the same item ids for every query. The static-catalog walk (pystac-client's
fallback, one GET per item) is optional (`--walks N`) and reported as a footnote only.

    bash benchmarks/setup_pgstac.sh      # once: the pgstac venv (and PostgreSQL/PostGIS)
    PYTHONPATH=$PWD python benchmarks/bench_search.py [--items 10000] [--repeat 5] [--walks 0]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
from pgstac_server import free_port, pgstac_api, wait_http  # noqa: E402 (tests/pgstac_server.py)

PHENOMENA = ["landslide", "flood", "flash-flood", "volcanic-eruption", "earthquake", "glacier-collapse"]
PAGE = 1000  # page size asked of both APIs

# name -> (bbox, datetime, CQL2 JSON filter, the same in DuckDB SQL)
QUERIES: dict[str, tuple[list[float] | None, str | None, dict | None, str]] = {
    "bbox+datetime+cql2": (
        [-60.0, -30.0, 60.0, 30.0], "2018-01-01T00:00:00Z/2020-12-31T23:59:59Z",
        {"op": "=", "args": [{"property": "mmtp:phenomenon"}, "landslide"]},
        "bbox.xmin <= 60 AND bbox.xmax >= -60 AND bbox.ymin <= 30 AND bbox.ymax >= -30"
        " AND datetime >= TIMESTAMPTZ '2018-01-01 00:00:00+00' AND datetime <= TIMESTAMPTZ '2020-12-31 23:59:59+00'"
        " AND \"mmtp:phenomenon\" = 'landslide'"),
    "small bbox": (
        [5.0, 40.0, 15.0, 50.0], None, None,
        "bbox.xmin <= 15 AND bbox.xmax >= 5 AND bbox.ymin <= 50 AND bbox.ymax >= 40"),
    "cql2 and+in (~1,100 items)": (
        None, None,
        {"op": "and", "args": [{"op": "=", "args": [{"property": "mmtp:temporal_role"}, "first-post-event"]},
                               {"op": "in", "args": [{"property": "mmtp:phenomenon"}, ["flood", "flash-flood"]]}]},
        "\"mmtp:temporal_role\" = 'first-post-event' AND \"mmtp:phenomenon\" IN ('flood', 'flash-flood')"),
}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def make_items(n: int) -> list[dict]:
    rng = random.Random(7)
    t0 = datetime(2015, 1, 1, tzinfo=UTC)
    items = []
    for i in range(n):
        lon, lat = rng.uniform(-170, 170), rng.uniform(-60, 70)
        dt = t0 + timedelta(hours=rng.uniform(0, 10 * 365 * 24))
        items.append({
            "type": "Feature", "stac_version": "1.1.0", "stac_extensions": [], "id": f"item-{i:05d}",
            "geometry": {"type": "Polygon", "coordinates": [[[lon, lat], [lon + .1, lat], [lon + .1, lat + .1],
                                                              [lon, lat + .1], [lon, lat]]]},
            "bbox": [lon, lat, lon + .1, lat + .1],
            "properties": {"datetime": dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "mmtp:event_id": f"event-{i % 900}",
                           "mmtp:phenomenon": PHENOMENA[i % len(PHENOMENA)],
                           "mmtp:temporal_role": rng.choice(["pre-event", "first-post-event", "post-event"]),
                           "mmtp:days_from_event": round(rng.uniform(-60, 90), 3), "proj:code": "EPSG:32632"},
            "links": [], "assets": {"red": {"href": "./red.tif", "type": "image/tiff", "roles": ["data"]}},
        })
    return items


COLLECTION = {"type": "Collection", "stac_version": "1.1.0", "id": "bench", "description": "bench",
              "license": "CC-BY-4.0", "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                                                 "temporal": {"interval": [[None, None]]}}, "links": []}


def _digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]


def _timed(run, repeat: int) -> dict:
    """Per query: median / min latency over `repeat` runs (after one warm-up), count and digest of ids."""
    out = {}
    for name, q in QUERIES.items():
        ids = run(name, *q)  # warm-up (file cache, connection, plan)
        lat = []
        for _ in range(repeat):
            t = time.perf_counter()
            ids = run(name, *q)
            lat.append(time.perf_counter() - t)
        out[name] = {"median_ms": round(statistics.median(lat) * 1000, 1), "min_ms": round(min(lat) * 1000, 1),
                     "n": len(ids), "digest": _digest(ids)}
    return out


def engine_main(engine: str, release: Path, repeat: int) -> None:
    """One in-process engine in this (fresh) process: prints its timings and peak RSS as JSON."""
    parquet = release / "bench" / "items.parquet"
    t = time.perf_counter()
    if engine == "duckdb":
        import duckdb

        con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})

        def run(name, bbox, dt, cql2, sql):
            table = con.execute(f"SELECT * FROM read_parquet('{parquet}') WHERE {sql}").fetch_arrow_table()
            return table.column("id").to_pylist()  # every column fetched, as an API returns whole items
    elif engine == "rustac":
        from stac_mmtp.stac.geoparquet import (
            duckdb_client,  # rustac's client with the offline extensions only
        )

        client = duckdb_client()

        def run(name, bbox, dt, cql2, sql):
            kw = {k: v for k, v in {"bbox": bbox, "datetime": dt, "filter": cql2}.items() if v is not None}
            return [it["id"] for it in client.search(str(parquet), **kw)]
    elif engine == "ours-search":
        from stac_mmtp.stac.geoparquet import search

        def run(name, bbox, dt, cql2, sql):
            return [it["id"] for it in search(str(release), bbox=bbox, datetime=dt, filter=cql2)]
    else:
        raise SystemExit(f"unknown engine {engine}")
    setup_s = time.perf_counter() - t
    res = _timed(run, repeat)
    print(json.dumps({"setup_s": round(setup_s, 2), "queries": res,
                      "peak_rss_mib": round(_hwm_mib(os.getpid()))}))  # VmHWM: ru_maxrss survives exec


def _hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _pss_tree_mib(pid: int) -> float:
    """PSS of a process and its children (shared memory counted once across them)."""
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                    text=True).stdout.split()]
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _api_run(url: str):
    from pystac_client import Client

    api = Client.open(url)

    def run(name, bbox, dt, cql2, sql):
        kw = {k: v for k, v in {"bbox": bbox, "datetime": dt, "filter": cql2}.items() if v is not None}
        return [it.id for it in api.search(collections=["bench"], limit=PAGE, max_items=None, **kw).items()]
    return run


def bench_ours_serve(release: Path, repeat: int) -> dict:
    port = free_port()
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "stac_mmtp", "-q", "serve", str(release), "--port", str(port)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc, "stac-mmtp serve")
        start_s = time.perf_counter() - t
        res = _timed(_api_run(f"http://127.0.0.1:{port}"), repeat)
        return {"setup_s": round(start_s, 2), "queries": res, "peak_rss_mib": round(_hwm_mib(proc.pid))}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def bench_pgstac(items: list[dict], repeat: int, log: Path) -> dict:

    t = time.perf_counter()
    with pgstac_api([COLLECTION], [{**it, "collection": "bench"} for it in items], log=log) as srv:
        start_s = time.perf_counter() - t
        res = _timed(_api_run(srv.url), repeat)
        return {"setup_s": round(start_s, 2), "load_s": round(srv.load_s, 2), "queries": res,
                "peak_rss_mib": round(_hwm_mib(srv.api_pid)), "postgres_pss_mib": round(_pss_tree_mib(srv.postgres_pid))}


def bench_walk(release: Path, walks: int) -> dict:
    """Footnote: pystac-client on the static tree over HTTP, one GET per item, filtered in Python (query 1)."""
    from pystac_client import Client

    handler = functools.partial(_QuietHandler, directory=str(release))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    static = f"http://127.0.0.1:{httpd.server_address[1]}/catalog.json"
    bbox, _, _, _ = QUERIES["bbox+datetime+cql2"]
    lo, hi = datetime(2018, 1, 1, tzinfo=UTC), datetime(2020, 12, 31, 23, 59, 59, tzinfo=UTC)
    lat, ids = [], []
    for _ in range(walks):
        t = time.perf_counter()
        ids = [it.id for it in Client.open(static).get_collection("bench").get_items()
               if it.properties["mmtp:phenomenon"] == "landslide" and lo <= it.datetime <= hi
               and it.bbox[0] <= bbox[2] and it.bbox[2] >= bbox[0] and it.bbox[1] <= bbox[3] and it.bbox[3] >= bbox[1]]
        lat.append(time.perf_counter() - t)
    httpd.shutdown()
    return {"median_s": round(statistics.median(lat), 2), "n": len(ids), "digest": _digest(ids)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--walks", type=int, default=0, help="static-catalog walks (footnote; ~4 ms per item each)")
    ap.add_argument("--engines", default="duckdb,rustac,ours-search,ours-serve,pgstac")
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    ap.add_argument("--release", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.engine:
        return engine_main(args.engine, args.release, args.repeat)

    from stac_mmtp.stac.tree import CollectionBundle, write_tree

    results: dict = {"items": args.items, "repeat": args.repeat}
    with tempfile.TemporaryDirectory() as tmp:
        release = Path(tmp) / "release"
        items = make_items(args.items)
        t = time.perf_counter()
        write_tree(release, {"type": "Catalog", "stac_version": "1.1.0", "id": "bench", "description": "b",
                             "links": []}, [CollectionBundle(COLLECTION, json.loads(json.dumps(items)))], geoparquet=True)
        results["write_tree_and_parquet_s"] = round(time.perf_counter() - t, 1)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        for engine in args.engines.split(","):
            if engine == "ours-serve":
                res = bench_ours_serve(release, args.repeat)
            elif engine == "pgstac":
                res = bench_pgstac(items, args.repeat, Path(tmp) / "pgstac.log")
            else:
                p = subprocess.run([sys.executable, __file__, "--engine", engine, "--release", str(release),
                                    "--repeat", str(args.repeat)], cwd=REPO, env=env, capture_output=True, text=True)
                if p.returncode:
                    raise SystemExit(f"{engine} failed:\n{p.stderr}")
                res = json.loads(p.stdout.strip().splitlines()[-1])
            results[engine] = res
            print(engine, json.dumps(res), file=sys.stderr, flush=True)
        if args.walks:
            results["static_walk"] = bench_walk(release, args.walks)
    engines = [e for e in args.engines.split(",")]
    results["same_ids"] = {q: len({results[e]["queries"][q]["digest"] for e in engines}) == 1 for q in QUERIES}
    if "pgstac" in engines:
        results["ratio_vs_pgstac"] = {e: {q: round(results[e]["queries"][q]["median_ms"]
                                                 / results["pgstac"]["queries"][q]["median_ms"], 3) for q in QUERIES}
                                      for e in engines if e != "pgstac"}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
