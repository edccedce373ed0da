"""Benchmark: clip a 20 km AOI out of a full-size remote COG band served over HTTP on 127.0.0.1.

Input: a synthetic 10980 x 10980 uint16 COG (512 x 512 internal tiles, DEFLATE, predictor 2,
overviews), with the texture of the real rio-tiler-pds B04 (29RKH, upsampled 10x bilinear) plus
noise, served by tests/range_server.py (single byte ranges, every request logged).

- **ours**: what `build` does for a plan entry (`stac_mmtp.sources.remote_s2`): the AOI window snapped
  to the 60 m grid, `clip_to_cog("/vsicurl/...")` under `VSI_OPTIONS` (no directory listing, merged
  consecutive ranges).
- **gdal_translate**: `gdal_translate -projwin <same bounds> -of COG <same creation options>
  /vsicurl/...` with `GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR`. The creation options are ours, from
  `CogProfile.creation_options()`, `OVERVIEWS=IGNORE_EXISTING` included: without it gdal_translate
  builds the output's overviews from the source's (more requests and bytes, one more level, other
  pixels), so the two outputs differ. Both outputs are compared, full resolution and every overview.
- **download**: fetch the whole file, then clip locally with `clip_to_cog`.

Each measurement runs in a fresh process (no /vsicurl/ cache shared between runs), the tools
interleaved per repeat; best of --repeat. Times: ours inside its process (the clip as `build` runs it,
imports done once per build) and its whole process (Python start + imports + clip); gdal_translate's
whole process and, in the same run, the start of a `gdal_translate --version` process, subtracted to
give its clip alone.

    PYTHONPATH=$PWD python benchmarks/bench_remote_clip.py [--repeat 3] [--workdir /tmp/bench-remote]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import from_origin

from stac_mmtp.raster.cog import CogProfile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from range_server import RangeServer  # noqa: E402

B04 = REPO.parent / "shared/fixtures/real/rio-tiler-pds/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A/B04.tif"
ULX, ULY, SIZE = 199980.0, 2800020.0, 10980
# a 20 km AOI, not aligned on the tile grid
AOI = (ULX + 41234.0, ULY - 61234.0 - 20000.0, ULX + 41234.0 + 20000.0, ULY - 61234.0)

OURS = r"""
import sys, time, rasterio
from pathlib import Path
from stac_mmtp.raster.cog import CogProfile, clip_to_cog
from stac_mmtp.sources.remote_s2 import VSI_OPTIONS, _window
url, dst = sys.argv[1:3]
bounds = tuple(float(v) for v in sys.argv[3:7])
t0 = time.perf_counter()
with rasterio.Env(**VSI_OPTIONS):  # the same calls as sources/remote_s2.py
    with rasterio.open("/vsicurl/" + url) as src:
        win = _window(src, bounds)
    clip_to_cog("/vsicurl/" + url, Path(dst), win, CogProfile(predictor=2, overview_resampling="average"), nodata=0)
print(time.perf_counter() - t0, int(win.col_off), int(win.row_off), int(win.width), int(win.height))
"""

IMPORTS = "import rasterio, stac_mmtp.raster.cog, stac_mmtp.sources.remote_s2"

DOWNLOAD = r"""
import sys, time, urllib.request, rasterio
from pathlib import Path
from stac_mmtp.raster.cog import CogProfile, clip_to_cog
from stac_mmtp.sources.remote_s2 import _window
url, dst, local = sys.argv[1:4]
bounds = tuple(float(v) for v in sys.argv[4:8])
t0 = time.perf_counter()
with urllib.request.urlopen(url) as r, open(local, "wb") as f:
    while chunk := r.read(1 << 20):
        f.write(chunk)
with rasterio.open(local) as src:
    win = _window(src, bounds)
clip_to_cog(local, Path(dst), win, CogProfile(predictor=2, overview_resampling="average"), nodata=0)
print(time.perf_counter() - t0)
"""


def make_band(path: Path) -> None:
    if path.exists():
        return
    from stac_mmtp.raster.cog import CogProfile, array_to_cog

    with rasterio.open(B04) as src:
        data = src.read(1, out_shape=(SIZE, SIZE), resampling=Resampling.bilinear).astype(np.int32)
    rng = np.random.default_rng(0)
    data += rng.integers(-40, 41, size=data.shape, dtype=np.int32)
    data = np.clip(data, 1, 65535).astype(np.uint16)
    array_to_cog(data, path, "EPSG:32629", from_origin(ULX, ULY, 10, 10), nodata=0,
                 profile=CogProfile(predictor=2, blocksize=512, overview_resampling="average"))


def same_cog(a_path: Path, b_path: Path) -> bool:
    """Same grid, same pixels at full resolution and at every overview level."""
    with rasterio.open(a_path) as a, rasterio.open(b_path) as b:
        if a.transform != b.transform or a.shape != b.shape or a.overviews(1) != b.overviews(1):
            return False
        if not np.array_equal(a.read(), b.read()):
            return False
    for level in range(len(rasterio.open(a_path).overviews(1))):
        with rasterio.open(a_path, overview_level=level) as a, rasterio.open(b_path, overview_level=level) as b:
            if not np.array_equal(a.read(), b.read()):
                return False
    return True


def needed_tile_bytes(path: Path, win: tuple[int, int, int, int]) -> tuple[int, int]:
    col, row, w, h = win
    total = tiles = 0
    with rasterio.open(path) as src:
        for r in range(row // 512, (row + h - 1) // 512 + 1):
            for c in range(col // 512, (col + w - 1) // 512 + 1):
                total += int(src.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=1))
                tiles += 1
    return total, tiles


def run(args: argparse.Namespace) -> dict:
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    band = work / "serve" / "band.tif"
    band.parent.mkdir(exist_ok=True)
    make_band(band)
    srv = RangeServer(band.parent)
    url = f"{srv.url}/band.tif"
    bounds = [str(v) for v in AOI]
    results: dict[str, list[tuple[float, int, int]]] = {"ours": [], "gdal_translate": [], "download": []}
    process: dict[str, list[float]] = {"ours": [], "gdal_start": [], "python_start": [], "python_imports": []}
    win = None
    try:
        for _ in range(args.repeat):
            for which in ("ours", "gdal_translate", "download"):
                srv.log.clear()
                dst = work / f"{which}.tif"
                dst.unlink(missing_ok=True)
                t0 = time.perf_counter()
                if which == "ours":
                    out = subprocess.run([sys.executable, "-c", OURS, url, str(dst), *bounds], check=True,
                                         capture_output=True, text=True).stdout.split()
                    wall = float(out[0])
                    process["ours"].append(time.perf_counter() - t0)
                    # where our process's time goes besides the clip: interpreter start, then the imports
                    for what, code in (("python_start", "pass"), ("python_imports", IMPORTS)):
                        t1 = time.perf_counter()
                        subprocess.run([sys.executable, "-c", code], check=True)
                        process[what].append(time.perf_counter() - t1)
                    win = tuple(int(v) for v in out[1:5])
                elif which == "gdal_translate":
                    subprocess.run(["gdal_translate", "--version"], check=True, capture_output=True)
                    process["gdal_start"].append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    c0, r0, w, h = win
                    ulx, uly = ULX + c0 * 10, ULY - r0 * 10
                    co = [f"-co={k}={v}" for k, v in CogProfile(predictor=2, overview_resampling="average")
                          .creation_options().items()]
                    cmd = ["gdal_translate", "-q", "-projwin", str(ulx), str(uly), str(ulx + w * 10), str(uly - h * 10),
                           "-of", "COG", *[x for c in co for x in c.split("=", 1)],
                           "--config", "GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR", "/vsicurl/" + url, str(dst)]
                    subprocess.run(cmd, check=True)
                    wall = time.perf_counter() - t0
                else:
                    local = work / "downloaded.tif"
                    out = subprocess.run([sys.executable, "-c", DOWNLOAD, url, str(dst), str(local), *bounds],
                                         check=True, capture_output=True, text=True).stdout.split()
                    wall = float(out[0])
                    local.unlink()
                reqs = [q for q in srv.log.requests if q.path.endswith("band.tif")]
                results[which].append((wall, sum(q.sent for q in reqs), len(reqs)))
    finally:
        srv.stop()
    same = same_cog(work / "ours.tif", work / "gdal_translate.tif")
    need, ntiles = needed_tile_bytes(band, win)
    best = {k: min(v) for k, v in results.items()}
    return {
        "window": win, "tiles_needed": ntiles, "tile_bytes_needed": need, "file_bytes": band.stat().st_size,
        "gdal": subprocess.run(["gdal_translate", "--version"], capture_output=True, text=True).stdout.strip(),
        "rasterio_gdal": rasterio.__gdal_version__, "identical_to_gdal_translate": same,
        **{f"{k}_wall_s": round(v[0], 3) for k, v in best.items()},
        **{f"{k}_bytes": v[1] for k, v in best.items()},
        **{f"{k}_requests": v[2] for k, v in best.items()},
        "ours_process_wall_s": round(min(process["ours"]), 3),
        "gdal_translate_start_s": round(min(process["gdal_start"]), 3),
        "python_start_s": round(min(process["python_start"]), 3),
        "python_start_and_imports_s": round(min(process["python_imports"]), 3),
        "wall_ratio_vs_gdal_translate": round(best["ours"][0] / best["gdal_translate"][0], 3),
        # the clips alone: ours in-process vs gdal_translate less its process start, paired per repeat
        "clip_ratio_vs_gdal_translate_less_start": round(min(
            o[0] / (g[0] - s) for o, g, s in zip(results["ours"], results["gdal_translate"], process["gdal_start"],
                                                 strict=True)), 3),
        "process_ratio_vs_gdal_translate": round(min(process["ours"]) / best["gdal_translate"][0], 3),
        "bytes_ratio_vs_needed_tiles": round(best["ours"][1] / need, 4),
        "all_runs": results,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/bench-remote")
    res = run(ap.parse_args())
    for k, v in res.items():
        if k != "all_runs":
            print(f"{k:32} {v}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
