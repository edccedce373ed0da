"""Benchmark: one full Sentinel-2 band (10980 x 10980 uint16 JPEG 2000) to COG.

Ours (`stac_mmtp.cog.clip_to_cog`, full window) against the reference, GDAL's own COG driver
(`rasterio.shutil.copy(src, dst, driver="COG")`) with the same creation options, on the same input
in the same run. Each measurement runs in a fresh subprocess so that its peak RSS is its own.

    python benchmarks/bench_s2_cog.py [--size 10980] [--repeat 3] [--workdir /tmp/bench-s2]

Prints a table and a JSON line; the figures recorded in benchmarks/README.md come from it.
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
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

RUNNER = r"""
import sys, time, resource, rasterio, rasterio.shutil
from pathlib import Path
from stac_mmtp.cog import CogProfile, clip_to_cog
which, src, dst = sys.argv[1:4]
profile = CogProfile(overview_resampling="average")
t0 = time.perf_counter()
if which == "ours":
    clip_to_cog(src, Path(dst), profile=profile)
else:
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_CACHEMAX=512 * 1024 * 1024):
        rasterio.shutil.copy(src, dst, driver="COG", **profile.creation_options())
dt = time.perf_counter() - t0
print(dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
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
    return float(out[0]), int(out[1]) / 1024  # seconds, MiB (ru_maxrss is KiB on Linux)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=10980)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench-s2"))
    args = ap.parse_args()
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
