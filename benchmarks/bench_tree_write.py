"""Writing the catalog tree at 10k / 100k / 1M items: time and peak RSS, against pystac.

    PYTHONPATH=$PWD python benchmarks/bench_tree_write.py --sizes 10000,100000,1000000 --pystac 10000 \
        --workdir /tmp/bench-tree

The items are SYNTHETIC (every one says so: `mmtp:synthetic: true`, a title starting "Synthetic sample"),
made here with the shape of a built Sentinel-2 item: a dozen assets with bands, proj/eo/sat/mmtp fields, and
a few properties present in some items only (so `items.parquet` row groups must share one unified schema).
Each measurement runs in a child process (`--child`) so its peak RSS is its own (`os.wait4`). At each size
`stac-mmtp` writes the tree twice, streaming the items from a generator: JSON only (what pystac writes) and
with `items.parquet`; the child also times generating the items alone, so the writer's own time is the
difference. pystac (`Catalog.add_child`/`add_items`, `normalize_hrefs`, `save(SELF_CONTAINED)`) gets the
same items already in memory (it holds them anyway), and its items are then compared with ours: the same
parsed JSON, links aside (pystac gives structural links no title), and the same structural link targets.
The tool order alternates per repeat, so a load change on the shared machine hits both alike. Everything
written under --workdir is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BANDS = [("coastal", "B01", 60), ("blue", "B02", 10), ("green", "B03", 10), ("red", "B04", 10),
         ("rededge071", "B05", 20), ("rededge075", "B06", 20), ("rededge078", "B07", 20), ("nir", "B08", 10),
         ("nir08", "B8A", 20), ("nir09", "B09", 60), ("swir16", "B11", 20), ("swir22", "B12", 20)]
PHENOMENA = ["landslide", "flood", "earthquake", "wildfire", "volcanic-eruption", "glacier-collapse"]
COLLECTION_ID = "bench-synthetic"


def make_item(i: int) -> dict[str, Any]:
    """Synthetic item number `i` (deterministic): the shape of a built Sentinel-2 L2A item."""
    rng = random.Random(i)
    lon, lat = round(rng.uniform(-170, 170), 6), round(rng.uniform(-60, 70), 6)
    day = 1 + i % 28
    ev = f"event-{i % 900:03d}"
    iid = f"{ev}_{i:07d}_S2A_MSIL2A_2020{1 + i % 12:02d}{day:02d}T104441_N0510_R008_T32VPM"
    epsg = 32600 + 1 + int((lon + 180) // 6)
    x0, y0 = 300000 + 10 * (i % 1000), 5000000 + 10 * (i % 777)
    assets: dict[str, Any] = {}
    for name, band, gsd in BANDS:
        w = 10980 // (gsd // 10) // 20
        assets[name] = {
            "href": f"./{name}.tif", "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data", "reflectance"], "title": f"{band} ({name}) {gsd} m", "gsd": gsd,
            "proj:shape": [w, w], "proj:transform": [gsd, 0, x0, 0, -gsd, y0],
            "bands": [{"name": band, "eo:common_name": name, "nodata": 0, "data_type": "uint16",
                       "raster:scale": 0.0001, "raster:offset": -0.1, "raster:spatial_resolution": gsd}],
            "file:size": 100000 + rng.randrange(900000), "file:checksum": f"1220{rng.getrandbits(256):064x}",
        }
    assets["scl"] = {"href": "./scl.tif", "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                     "roles": ["data", "cloud"], "title": "Scene classification", "gsd": 20,
                     "file:size": 20000 + rng.randrange(9000)}
    assets["thumbnail"] = {"href": "./thumbnail.png", "type": "image/png", "roles": ["thumbnail"],
                           "title": "Thumbnail"}
    props: dict[str, Any] = {
        "title": f"Synthetic sample: Sentinel-2 L2A {iid}",
        "description": "Synthetic sample made by benchmarks/bench_tree_write.py: not an observation.",
        "datetime": f"2020-{1 + i % 12:02d}-{day:02d}T10:44:41.{1 + i % 999:03d}000Z",
        "platform": "sentinel-2a" if i % 2 else "sentinel-2b", "constellation": "sentinel-2", "instruments": ["msi"],
        "processing:level": "L2A", "eo:cloud_cover": round(rng.uniform(0, 100), 2),
        "sat:relative_orbit": 1 + i % 143, "proj:code": f"EPSG:{epsg}",
        "mmtp:event_id": ev, "mmtp:phenomenon": PHENOMENA[i % len(PHENOMENA)],
        "mmtp:temporal_role": ("pre-event", "first-post-event", "post-event")[i % 3],
        "mmtp:days_from_event": round(rng.uniform(-60, 90), 3), "mmtp:synthetic": True,
        "license": "CC-BY-4.0",
    }
    if i % 7 == 0:
        props["view:sun_elevation"] = round(rng.uniform(5, 70), 4)
    if i % 5000 == 4999:  # a column that only later row groups see
        props["s2:degraded_msi_data_percentage"] = 0.0
    return {
        "type": "Feature", "stac_version": "1.1.0",
        "stac_extensions": ["https://stac-extensions.github.io/eo/v2.0.0/schema.json",
                            "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
                            "https://stac-extensions.github.io/file/v2.1.0/schema.json"],
        "id": iid,
        "geometry": {"type": "Polygon", "coordinates": [[[lon, lat], [lon + .1, lat], [lon + .1, lat + .1],
                                                          [lon, lat + .1], [lon, lat]]]},
        "bbox": [lon, lat, round(lon + .1, 6), round(lat + .1, 6)],
        "properties": props,
        "links": [{"rel": "license", "href": "https://spdx.org/licenses/CC-BY-4.0.html", "type": "text/html"}],
        "assets": assets,
    }


CATALOG = {"type": "Catalog", "stac_version": "1.1.0", "id": "bench-tree", "title": "Synthetic benchmark tree",
           "description": "Synthetic items written by benchmarks/bench_tree_write.py", "links": []}
COLLECTION = {"type": "Collection", "stac_version": "1.1.0", "id": COLLECTION_ID,
              "title": "Synthetic sample items (benchmark)", "description": "Synthetic, not observations.",
              "license": "CC-BY-4.0", "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                                                 "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]}},
              "links": []}


def stream_in_id_order(n: int):  # noqa: ANN201
    """The items as a stream in ascending id order without holding them: ids are `event-EEE_IIIIIII_...`,
    so they sort by event, then by item number; walk the events in order."""
    for ev in range(min(n, 900)):
        for i in range(ev, n, 900):
            yield make_item(i)


def child(tool: str, n: int, out: Path) -> dict[str, Any]:
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in stream_in_id_order(n):
        pass
    gen_s, gen_cpu = time.perf_counter() - t0, time.process_time() - c0
    if tool.startswith("ours"):
        from stac_mmtp.stac.tree import CollectionBundle, write_tree

        t0, c0 = time.perf_counter(), time.process_time()
        write_tree(out, CATALOG, [CollectionBundle(COLLECTION, stream_in_id_order(n))],
                   geoparquet=tool == "ours+parquet")
        return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0 - gen_cpu, "generate_s": gen_s}
    import pystac

    data = [make_item(i) for i in range(n)]
    t0, c0 = time.perf_counter(), time.process_time()
    cat = pystac.Catalog.from_dict(CATALOG)
    coll = pystac.Collection.from_dict(COLLECTION)
    cat.add_child(coll)
    coll.add_items([pystac.Item.from_dict(d, preserve_dict=False) for d in data])
    cat.normalize_hrefs(str(out))
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return {"wall_s": time.perf_counter() - t0 + gen_s, "cpu_s": time.process_time() - c0, "generate_s": gen_s}


def child_validate_publish(tool: str, tree: Path, dest: Path) -> dict[str, Any]:
    """`validate` (schemas and links; the synthetic items' asset files do not exist, so no byte checks)
    or `publish` to a file:// mirror (validated just before, so validate=False) of a written tree."""
    t0 = time.perf_counter()
    if tool == "validate":
        from stac_mmtp.release.validate import SchemaStore, validate_tree

        report = validate_tree(tree, SchemaStore(), check_assets=False)
        if not report.ok:
            raise SystemExit(f"invalid: {report.problems[:3]}")
        return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time(), "generate_s": 0.0,
                "objects": report.objects}
    from stac_mmtp.release.publish import publish
    from stac_mmtp.release.publish.stores import FileStore

    dest.mkdir(parents=True, exist_ok=False)
    report = publish(tree, FileStore(dest), public_check=False, validate=False, jobs=4)
    if not report.ok:
        raise SystemExit(f"publish failed: {report.problems[:3]}")
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time(), "generate_s": 0.0,
            "objects": len(report.uploads)}


def run_child(tool: str, n: int, out: Path, tree: Path | None = None) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, __file__, "--child", tool, "--items", str(n), "--out", str(out),
                             *(["--tree", str(tree)] if tree else [])], stdout=subprocess.PIPE, env=env)
    data = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"{tool} at {n} items failed (status {status})")
    res = json.loads(data)
    res["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)  # KiB on Linux
    res["write_s"] = res["wall_s"] - res["generate_s"]
    return res


def same_items(ours: Path, theirs: Path, n: int) -> str:
    """Our items equal pystac's, parsed, links aside; structural link targets the same."""
    checked = 0
    for it in (make_item(i) for i in range(0, n, max(1, n // 500))):
        a = json.loads((ours / COLLECTION_ID / it["id"] / f"{it['id']}.json").read_text())
        b = json.loads((theirs / COLLECTION_ID / it["id"] / f"{it['id']}.json").read_text())
        la, lb = a.pop("links"), b.pop("links")
        if a != b:
            return f"item {it['id']} differs"
        if {(lk["rel"], lk["href"]) for lk in la} != {(lk["rel"], lk["href"]) for lk in lb}:
            return f"item {it['id']} links differ: {la} vs {lb}"
        checked += 1
    ca = json.loads((ours / COLLECTION_ID / "collection.json").read_text())
    cb = json.loads((theirs / COLLECTION_ID / "collection.json").read_text())
    ia = sorted(lk["href"] for lk in ca["links"] if lk["rel"] == "item")
    ib = sorted(lk["href"] for lk in cb["links"] if lk["rel"] == "item")
    if ia != ib or len(ia) != n:
        return f"collection item links differ ({len(ia)} vs {len(ib)})"
    return f"same ({checked} items compared, {n} item links)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child")
    ap.add_argument("--items", type=int)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--pystac", default="10000", help="sizes (comma-separated) pystac is also run at")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench-tree"))
    ap.add_argument("--tools", default="ours,ours+parquet", help="of ours, ours+parquet (pystac: see --pystac)")
    ap.add_argument("--keep", type=Path, help="move the tree of the last of --tools here (to validate/publish it)")
    ap.add_argument("--tree", type=Path, help="validate and publish (file://) this tree written with --keep")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child_validate_publish(a.child, a.tree, a.out) if a.tree else child(a.child, a.items, a.out)))
        return
    if a.tree:
        import ijson  # the 1M collection.json parsed whole is over 1 GiB: stream its links

        with (a.tree / COLLECTION_ID / "collection.json").open("rb") as f:
            n = sum(1 for lk in ijson.items(f, "links.item") if lk["rel"] == "item")
        a.workdir.mkdir(parents=True, exist_ok=False)
        try:
            for tool in ("validate", "publish"):
                res = run_child(tool, n, a.workdir / "mirror", a.tree)
                print(f"{n:>9,d} items  {tool:9s} {res['wall_s']:7.1f} s, CPU {res['cpu_s']:7.1f} s  "
                      f"{res['objects']:,d} objects  "
                      f"peak RSS {res['peak_rss_mib']:7.1f} MiB", flush=True)
        finally:
            shutil.rmtree(a.workdir, ignore_errors=True)
        return
    pystac_sizes = {int(s) for s in a.pystac.split(",") if s}
    a.workdir.mkdir(parents=True, exist_ok=False)  # never reuse (nor delete) a directory we did not make
    try:
        for n in (int(s) for s in a.sizes.split(",")):
            tools = a.tools.split(",") + (["pystac"] if n in pystac_sizes else [])
            runs: dict[str, list[dict[str, Any]]] = {t: [] for t in tools}
            for r in range(a.repeat):
                for tool in tools if r % 2 == 0 else tools[::-1]:
                    res = run_child(tool, n, a.workdir / tool)
                    runs[tool].append(res)
                    print(f"{n:>9,d} items  {tool:13s} write {res['write_s']:7.1f} s, CPU {res['cpu_s']:7.1f} s  "
                          f"(+ generating {res['generate_s']:.1f} s)  peak RSS {res['peak_rss_mib']:7.1f} MiB",
                          flush=True)
            if "pystac" in runs and "ours" in runs:
                best = {t: min(x["write_s"] for x in v) for t, v in runs.items()}
                cpu = {t: min(x["cpu_s"] for x in v) for t, v in runs.items()}
                print(f"{n:>9,d} items  pystac / ours (JSON tree) = {best['pystac'] / best['ours']:.1f}x wall, "
                      f"{cpu['pystac'] / cpu['ours']:.1f}x CPU;  "
                      f"outputs: {same_items(a.workdir / 'ours', a.workdir / 'pystac', n)}", flush=True)
            if a.keep:
                shutil.rmtree(a.keep, ignore_errors=True)
                os.replace(a.workdir / a.tools.split(",")[-1], a.keep)
            for tool in tools:
                shutil.rmtree(a.workdir / tool, ignore_errors=True)
    finally:
        shutil.rmtree(a.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
