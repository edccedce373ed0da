"""Benchmark: Sentinel-2 to COG. Our writer *is* GDAL's COG driver: `stac_mmtp.raster.cog.clip_to_cog` builds a
VRT of the clip window (band metadata added) and hands it to `rasterio.shutil.copy(vrt, dst, driver="COG")`.
So the figure that matters is not one band but the whole convert chain.

`--chain` (the figure of record): one L2A SAFE (the sample writer's format on a 30 km tile, 3000 x 3000
at 10 m, all 13 bands + SCL/AOT/WVP/TCI as JPEG 2000), one event, `--buffer` around its AOI.
- ours: `Sentinel2().read()` + `plan()` + `convert()` = metadata, clip of every band to the AOI window,
  COGs, thumbnail, STAC item (in a fresh process);
- reference: `gdal_translate -of COG -projwin <the same bounds> -co <the same options>` on each of the same
  JPEG 2000 files, one process per file, as a shell script would (Debian's gdal-bin; no item, no thumbnail).
Pixels of every band are compared (ours vs gdal_translate).

Default (single band): one full 10980 x 10980 uint16 JPEG 2000 band, `clip_to_cog` (full window, through
its VRT) against `rasterio.shutil.copy(src, dst, driver="COG")` straight from the file: the VRT's cost.

    python benchmarks/bench_s2_cog.py --chain [--tile-m 30000] [--buffer 5000] [--repeat 3]
    python benchmarks/bench_s2_cog.py [--size 10980] [--repeat 3] [--workdir /tmp/bench-s2]

Each measurement runs in a fresh subprocess so that its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

RUNNER = r"""
import sys, time, rasterio, rasterio.shutil
from pathlib import Path
from stac_mmtp.raster.cog import CogProfile, clip_to_cog
which, src, dst = sys.argv[1:4]
profile = CogProfile(overview_resampling="average")
t0 = time.perf_counter()
if which == "ours":
    clip_to_cog(src, Path(dst), profile=profile)
else:
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_CACHEMAX=512 * 1024 * 1024):
        rasterio.shutil.copy(src, dst, driver="COG", **profile.creation_options())
dt = time.perf_counter() - t0
print(dt, next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")))  # not ru_maxrss: it survives exec
"""


def make_band(path: Path, size: int) -> None:
    """A JP2 with S2-like texture: smooth fields + noise, reflectance-like DN, 0 nodata border."""
    if path.exists():
        return
    rng = np.random.default_rng(42)
    coarse = rng.integers(300, 4000, size=(size // 366 + 2, size // 366 + 2)).astype(np.float32)
    yy = np.linspace(0, coarse.shape[0] - 1.001, size)
    xx = np.linspace(0, coarse.shape[1] - 1.001, size)
    with rasterio.open(path, "w", driver="JP2OpenJPEG", width=size, height=size, count=1, dtype="uint16",
                       crs="EPSG:32632", transform=from_origin(600000, 6700020, 10, 10), nodata=0,
                       QUALITY=100, REVERSIBLE="YES", RESOLUTIONS=6, BLOCKXSIZE=1024, BLOCKYSIZE=1024) as ds:
        step = 1098
        for r0 in range(0, size, step):
            rows = yy[r0:r0 + step].astype(int)
            block = coarse[rows][:, xx.astype(int)]
            block += rng.normal(0, 60, size=block.shape).astype(np.float32)
            block = np.clip(block, 1, 10000).astype(np.uint16)
            block[:, : size // 20] = 0  # a nodata strip, like a tile at the swath edge
            ds.write(block, 1, window=rasterio.windows.Window(0, r0, size, block.shape[0]))


def sha256(path: Path) -> str:
    with rasterio.open(path) as ds:
        return hashlib.sha256(ds.read(1).tobytes()).hexdigest()


def run(which: str, src: Path, dst: Path) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, "-c", RUNNER, which, str(src), str(dst)], check=True,
                         capture_output=True, text=True, env=env).stdout.split()
    return float(out[0]), int(out[1]) / 1024  # seconds, MiB (VmHWM is in KiB)


CHAIN_RUNNER = r"""
import json, sys, time
from pathlib import Path
import stac_mmtp.sources.sentinel2  # timed import of the family (get_source would import it on first use)
from stac_mmtp.build import plan
from stac_mmtp.dataset.inventory import load_inventory
from stac_mmtp.sources import BuildOptions, get_source
product, events, event_id, out, buffer = sys.argv[1:6]
ev = [e for e in load_inventory(Path(events)) if e.id == event_id]
t0 = time.perf_counter()
src = get_source("sentinel-2")
meta = src.read(Path(product))
tasks, _ = plan(ev, [meta], BuildOptions(buffer_m=float(buffer)))
item = src.convert(tasks[0], Path(out))
(Path(out) / "item.json").write_text(json.dumps(item))
dt = time.perf_counter() - t0
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(dt, hwm)
"""


def chain(args: argparse.Namespace) -> None:
    import shutil as sh

    import stac_mmtp.sources.sentinel2.samples as samples
    from stac_mmtp.dataset.inventory import load_inventory
    from stac_mmtp.sources.sentinel2 import Sentinel2

    gt = sh.which("gdal_translate")
    if gt is None:
        raise SystemExit("gdal_translate not found: apt-get install -y gdal-bin")
    gt_version = subprocess.run([gt, "--version"], capture_output=True, text=True).stdout.strip()
    repo = Path(__file__).resolve().parents[1]
    events_dir = repo / "catalog" / "events"
    ev = next(e for e in load_inventory(events_dir) if e.id == args.event)
    work = args.workdir / f"chain-{args.tile_m}"
    prods = work / "products"
    existing = sorted(prods.glob("*.SAFE")) if prods.exists() else []
    t0 = time.perf_counter()
    if existing:
        product = existing[0]
    else:
        samples.TILE_M = args.tile_m  # a bigger tile than the samples' (real: 109800 m)
        product = samples.write_product(prods, ev, ev.end + timedelta(days=3, hours=10, minutes=44), "L2A", "S2B")
    print(f"input {product.name} ({sum(f.stat().st_size for f in product.rglob('*') if f.is_file()) / 2**20:.0f} MiB, "
          f"{time.perf_counter() - t0:.0f} s)")
    env = dict(os.environ, PYTHONPATH=str(repo))
    prod = Sentinel2().parse(product)
    times: dict[str, list[float]] = {"ours": [], "gdal_translate": []}
    mem: dict[str, float] = {"ours": 0.0, "gdal_translate": 0.0}
    item: dict = {}
    for _ in range(args.repeat):
        out = work / "ours"
        sh.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        res = subprocess.run([sys.executable, "-c", CHAIN_RUNNER, str(product), str(events_dir), ev.id, str(out),
                              str(args.buffer)], check=True, capture_output=True, text=True, env=env).stdout.split()
        times["ours"].append(float(res[0]))
        mem["ours"] = max(mem["ours"], int(res[1]) / 1024)
        item = json.loads((out / "item.json").read_text())
        ref = work / "gdal"
        sh.rmtree(ref, ignore_errors=True)
        ref.mkdir(parents=True)
        t = time.perf_counter()
        peak = 0
        for key, asset in item["assets"].items():
            if not asset["href"].endswith(".tif"):
                continue
            a, _, c, _, e, f = asset["proj:transform"][:6]
            h, w = asset["proj:shape"]
            resampling = "NEAREST" if key in ("scl", "visual") else "AVERAGE"
            cmd = [gt, "-q", "-of", "COG", "-projwin", repr(c), repr(f), repr(c + a * w), repr(f + e * h),
                   "-a_nodata", "0", "-co", "COMPRESS=DEFLATE", "-co", "PREDICTOR=2", "-co", "BLOCKSIZE=512",
                   "-co", f"OVERVIEW_RESAMPLING={resampling}", "-co", "OVERVIEWS=IGNORE_EXISTING",
                   "-co", "NUM_THREADS=ALL_CPUS", "-co", "BIGTIFF=IF_SAFER", "--config", "GDAL_CACHEMAX", "512",
                   str(product / prod.files[key].rel), str(ref / f"{key}.tif")]
            p = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], check=True, capture_output=True, text=True)
            peak = max(peak, int(p.stderr.strip().splitlines()[-1]))
        times["gdal_translate"].append(time.perf_counter() - t)
        mem["gdal_translate"] = max(mem["gdal_translate"], peak / 1024)
    same, differ = [], []
    for key, asset in item["assets"].items():
        if asset["href"].endswith(".tif"):
            with rasterio.open(work / "ours" / f"{key}.tif") as a, rasterio.open(work / "gdal" / f"{key}.tif") as b:
                ok = a.transform == b.transform and a.shape == b.shape and np.array_equal(a.read(), b.read())
            (same if ok else differ).append(key)
    best = {k: min(v) for k, v in times.items()}
    print(f"{'':15} {'best s':>8} {'all s':>24} {'peak MiB':>9}")
    for k in times:
        print(f"{k:15} {best[k]:8.2f} {' '.join(f'{t:.2f}' for t in times[k]):>24} {mem[k]:9.0f}")
    red = item["assets"]["red"]["proj:shape"]
    print(json.dumps({"tile_m": args.tile_m, "buffer_m": args.buffer, "event": ev.id, "red_clip_shape": red,
                      "cog_assets": len(same) + len(differ), "identical_pixels": same, "different_pixels": differ,
                      "time_ratio": round(best["ours"] / best["gdal_translate"], 3),
                      "memory_ratio": round(mem["ours"] / mem["gdal_translate"], 3),
                      "gdal_rasterio": rasterio.__gdal_version__, "gdal_translate": gt_version}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=10980)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench-s2"))
    ap.add_argument("--chain", action="store_true", help="the whole convert chain vs gdal_translate (see above)")
    ap.add_argument("--tile-m", type=int, default=30000)
    ap.add_argument("--buffer", type=float, default=5000.0)
    ap.add_argument("--event", default="gjerdrum-landslide-2020")
    args = ap.parse_args()
    if args.chain:
        return chain(args)
    args.workdir.mkdir(parents=True, exist_ok=True)
    src = args.workdir / f"B04_{args.size}.jp2"
    t0 = time.perf_counter()
    make_band(src, args.size)
    print(f"input {src} ({src.stat().st_size / 2**20:.0f} MiB, made in {time.perf_counter() - t0:.0f} s)")
    times: dict[str, list[float]] = {"ours": [], "gdal": []}
    mem: dict[str, float] = {"ours": 0.0, "gdal": 0.0}
    for _ in range(args.repeat):
        for which in ("gdal", "ours"):  # alternate so that cache warmth is shared fairly
            dt, rss = run(which, src, args.workdir / f"{which}.tif")
            times[which].append(dt)
            mem[which] = max(mem[which], rss)
    best = {k: min(v) for k, v in times.items()}
    same = sha256(args.workdir / "ours.tif") == sha256(args.workdir / "gdal.tif")
    print(f"{'':6} {'best s':>8} {'all s':>24} {'peak MiB':>9}")
    for k in ("gdal", "ours"):
        print(f"{k:6} {best[k]:8.2f} {' '.join(f'{t:.2f}' for t in times[k]):>24} {mem[k]:9.0f}")
    result = {"size": args.size, "time_ratio": round(best["ours"] / best["gdal"], 3),
              "memory_ratio": round(mem["ours"] / mem["gdal"], 3), "identical_pixels": same,
              "cpu": os.cpu_count(), "gdal": rasterio.__gdal_version__, "self_rss_mib": resource.getrusage(
                  resource.RUSAGE_SELF).ru_maxrss // 1024}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
