"""Benchmark: a bbox + datetime + phenomenon query on a 20,000-item release.

`stac-mmtp serve` (stac-fastapi-geoparquet over the collection's stac-geoparquet file) queried with
pystac-client, against the reference way to query a static catalog: pystac-client opening the
static release over HTTP and walking its items (its pystac fallback), filtering in Python.
Both read the same release, served on 127.0.0.1, in the same run. Also reports the time to write
the tree and export the parquet, and peak RSS.

    python benchmarks/bench_search.py [--items 20000] [--repeat 20] [--walks 2]
"""

from __future__ import annotations

import argparse
import copy
import functools
import http.server
import json
import random
import resource
import socket
import statistics
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stac_mmtp.stac.tree import CollectionBundle, write_tree

PHENOMENA = ["landslide", "flood", "flash-flood", "volcanic-eruption", "earthquake", "glacier-collapse"]



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


def serve_static(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/catalog.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--walks", type=int, default=2)
    args = ap.parse_args()
    import uvicorn
    from pystac_client import Client

    from stac_mmtp.serve import create_app

    bbox, window = [-60.0, -30.0, 60.0, 30.0], "2018-01-01T00:00:00Z/2020-12-31T23:59:59Z"
    cql2 = {"op": "=", "args": [{"property": "mmtp:phenomenon"}, "landslide"]}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "release"
        items = make_items(args.items)
        coll = {"type": "Collection", "stac_version": "1.1.0", "id": "bench", "description": "bench",
                "license": "CC-BY-4.0", "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                                                    "temporal": {"interval": [[None, None]]}}, "links": []}
        t = time.perf_counter()
        write_tree(out, {"type": "Catalog", "stac_version": "1.1.0", "id": "bench", "description": "b", "links": []},
                   [CollectionBundle(coll, copy.deepcopy(items))], geoparquet=True)
        write_s = time.perf_counter() - t
        httpd, static = serve_static(out)
        t = time.perf_counter()
        app = create_app(static, Path(tmp) / "serve")
        start_s = time.perf_counter() - t
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        api = Client.open(f"http://127.0.0.1:{port}")
        lat = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            got = sorted(it.id for it in api.search(bbox=bbox, datetime=window, filter=cql2, max_items=None,
                                                    limit=1000).items())
            lat.append(time.perf_counter() - t)
        walk = []
        for _ in range(args.walks):
            t = time.perf_counter()
            lo, hi = datetime(2018, 1, 1, tzinfo=UTC), datetime(2020, 12, 31, 23, 59, 59, tzinfo=UTC)
            ref = sorted(
                it.id for it in Client.open(static).get_collection("bench").get_items()
                if it.properties["mmtp:phenomenon"] == "landslide" and lo <= it.datetime <= hi
                and it.bbox[0] <= bbox[2] and it.bbox[2] >= bbox[0] and it.bbox[1] <= bbox[3] and it.bbox[3] >= bbox[1])
            walk.append(time.perf_counter() - t)
        server.should_exit = True
        httpd.shutdown()
    p95 = sorted(lat)[max(0, int(round(0.95 * len(lat))) - 1)]
    result = {"items": args.items, "matches": len(got), "same_result": got == ref,
              "api_median_ms": round(statistics.median(lat) * 1000, 1), "api_p95_ms": round(p95 * 1000, 1),
              "static_walk_median_s": round(statistics.median(walk), 2),
              "speedup": round(statistics.median(walk) / statistics.median(lat), 1),
              "write_tree_and_parquet_s": round(write_s, 1), "serve_start_s": round(start_s, 1),
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
