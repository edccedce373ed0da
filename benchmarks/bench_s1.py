"""Sentinel-1 geocoding + calibration vs a gdalwarp-equivalent `rasterio.warp.reproject`, same GCPs, same resampling.

A synthetic full-size IW GRD-HR measurement (25000 x 16700 uint16, tiled GeoTIFF with a 21 x 10 grid of
GCPs, like real products) is written once to a cache directory. Each side then runs in its own process
(so that peak RSS is its own), clipped to a 50 km x 50 km AOI at the scene centre, onto a 10 m UTM grid:

- ours: `source_window` + windowed read + thermal-noise removal and LUT calibration ((DN^2 - N) / A^2,
  float32) + `geocode` (TPS through the GCPs around the window);
- reference: `rasterio.warp.reproject(rasterio.band(src, 1), ...)` with the same GCPs as ours (the grid
  points around its window, in image coordinates), `SRC_METHOD=GCP_TPS`, bilinear, i.e. what
  `gdalwarp -tps -r bilinear -te ... -tr 10 10` does (it warps DN, no calibration).

Then the outputs are compared in dB (`compare`): ours against the reference's DN warp and against a
warp of DN^2 of the same window, each calibrated at its pixels' source positions.

Usage: python benchmarks/bench_s1.py [--cache DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

LINES, SAMPLES = 16700, 25000
AOI_M = 50_000.0
SITE = (3.37, 45.49)  # central France, like the real stactools product
HEADING = -14.16  # ascending


def _geometry():  # noqa: ANN202 - returns (lonlat function, utm epsg)
    from pyproj import Transformer

    from stac_mmtp.raster.geo import utm_epsg

    epsg = utm_epsg(*SITE)
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(*SITE)
    to_ll = Transformer.from_crs(epsg, 4326, always_xy=True)
    h = math.radians(HEADING)
    az, rg = np.array([math.sin(h), math.cos(h)]), np.array([math.cos(h), -math.sin(h)])
    origin = np.array([x, y]) - LINES / 2 * 10 * az - SAMPLES / 2 * 10 * rg

    def lonlat(line: np.ndarray, pixel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # a slight range-dependent stretch so that the geometry is not affine (as slant-to-ground range is not)
        p = pixel * (1 + 0.04 * pixel / SAMPLES)
        gx = origin[0] + line * 10 * az[0] + p * 10 * rg[0]
        gy = origin[1] + line * 10 * az[1] + p * 10 * rg[1]
        return to_ll.transform(gx, gy)

    return lonlat, epsg


def make_input(cache: Path) -> Path:
    import rasterio
    from rasterio.control import GroundControlPoint
    from rasterio.windows import Window

    path = cache / "s1-iw-grd-vv-synthetic-full.tiff"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    lonlat, _ = _geometry()
    gl, gp = np.meshgrid(np.linspace(0, LINES - 1, 10), np.linspace(0, SAMPLES - 1, 21), indexing="ij")
    lon, lat = lonlat(gl, gp)
    gcps = [GroundControlPoint(row=float(r), col=float(c), x=float(a), y=float(b), z=150.0, id=str(i + 1))
            for i, (r, c, a, b) in enumerate(zip(gl.ravel(), gp.ravel(), lon.ravel(), lat.ravel(), strict=True))]
    rng = np.random.default_rng(0)
    tmp = path.with_suffix(".part.tiff")
    with rasterio.open(tmp, "w", driver="GTiff", width=SAMPLES, height=LINES, count=1, dtype="uint16", gcps=gcps,
                       crs="EPSG:4326", tiled=True, blockxsize=512, blockysize=512, compress="deflate",
                       predictor=2) as ds:
        for r0 in range(0, LINES, 1024):
            h = min(1024, LINES - r0)
            block = (200 * np.sqrt(rng.gamma(4.4, 1 / 4.4, (h, SAMPLES)))).astype(np.uint16)
            block[:, :40] = 0
            ds.write(block, 1, window=Window(0, r0, SAMPLES, h))
    tmp.rename(path)
    return path


def _lut():  # noqa: ANN202
    from stac_mmtp.sources.sentinel1 import CalibrationLUT

    lines = np.arange(0, LINES + 667, 667, dtype=np.float64)
    pixels = np.arange(0, SAMPLES + 40, 40, dtype=np.float64)
    values = np.array([663.0 - 160.0 * pixels / SAMPLES * (1 + 1e-6 * li) for li in lines])
    return CalibrationLUT(lines, pixels, values)


def _noise():  # noqa: ANN202
    """A noise LUT shaped like IPF 3.x's: range vectors every 667 lines and 40 samples, and one
    azimuth block per IW sub-swath with a knot every 10 lines."""
    from stac_mmtp.sources.sentinel1 import CalibrationLUT, NoiseLUT

    lines = np.arange(0, LINES + 667, 667, dtype=np.float64)
    pixels = np.arange(0, SAMPLES + 40, 40, dtype=np.float64)
    values = np.array([2000.0 + 700.0 * np.cos(pixels / SAMPLES * 6 * np.pi) + 1e-3 * li for li in lines])
    az = np.arange(0, LINES + 10, 10, dtype=np.float64)
    edges = [0, SAMPLES // 3, 2 * SAMPLES // 3, SAMPLES]
    blocks = [(0, LINES - 1, edges[k] + (k > 0), edges[k + 1] - (k == 2), az, 1.0 + 0.05 * np.sin(az / 500 + k))
              for k in range(3)]
    return NoiseLUT(CalibrationLUT(lines, pixels, values), blocks)


def _grid():  # noqa: ANN202
    from pyproj import Transformer
    from rasterio.crs import CRS

    from stac_mmtp.sources.sentinel1 import snap_grid

    _, epsg = _geometry()
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(*SITE)
    h = AOI_M / 2
    return snap_grid((x - h, y - h, x + h, y + h), CRS.from_epsg(epsg), 10.0)


def run_ours(path: Path, keep: bool = False) -> dict:
    import rasterio

    from stac_mmtp.sources.sentinel1 import calibrate_window, geocode, source_window, window_gcps

    grid = _grid()
    t0 = time.perf_counter()
    with rasterio.open(path) as src:
        gcps = list(src.gcps[0])
        win = source_window(gcps, grid, (src.height, src.width))
        dn = src.read(1, window=win)
    sigma0 = calibrate_window(dn, _lut(), win, noise=_noise())
    del dn
    out = geocode(sigma0, window_gcps(gcps, win), grid)
    seconds = time.perf_counter() - t0
    res = {"seconds": seconds, "valid": float(np.isfinite(out).mean()), "window": [int(win.width), int(win.height)]}
    return {**res, "out": out} if keep else res


def same_gcps(path: Path) -> list:
    """The GCPs ours warps with (the grid points around its source window), in full-image coordinates:
    the reference gets exactly these (a TPS through all 210 points would be a different geometry)."""
    import rasterio
    from rasterio.control import GroundControlPoint

    from stac_mmtp.sources.sentinel1 import source_window, window_gcps

    with rasterio.open(path) as src:
        gcps = list(src.gcps[0])
        win = source_window(gcps, _grid(), (src.height, src.width))
    return [GroundControlPoint(row=g.row + win.row_off, col=g.col + win.col_off, x=g.x, y=g.y, z=g.z, id=g.id)
            for g in window_gcps(gcps, win)]


def reference_dn(path: Path, gcps: list) -> np.ndarray:
    import rasterio
    from rasterio.crs import CRS
    from rasterio.warp import Resampling, reproject

    grid = _grid()
    out = np.zeros(grid.shape, dtype=np.uint16)
    with rasterio.open(path) as src:
        reproject(rasterio.band(src, 1), out, gcps=gcps, src_crs=CRS.from_epsg(4326), src_nodata=0,
                  dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=0, resampling=Resampling.bilinear,
                  SRC_METHOD="GCP_TPS", num_threads=2)
    return out


def run_reference(path: Path) -> dict:
    gcps = same_gcps(path)  # not timed: picking them is part of ours
    t0 = time.perf_counter()
    out = reference_dn(path, gcps)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "valid": float((out > 0).mean()), "gcps": len(gcps)}


def _a_true(line: np.ndarray, pixel: np.ndarray) -> np.ndarray:
    """The calibration LUT of `_lut` as the function it samples (linear in pixel: its interpolation is exact)."""
    return 663.0 - 160.0 * pixel / SAMPLES * (1 + 1e-6 * line)


def _n_true(line: np.ndarray, pixel: np.ndarray) -> np.ndarray:
    """The noise of `_noise` as the function it samples (its knots are dense: interpolation error < 0.01 %)."""
    edges = [0, SAMPLES // 3, 2 * SAMPLES // 3]
    k = np.where(pixel <= edges[1], 0, np.where(pixel <= edges[2], 1, 2))
    rng = 2000.0 + 700.0 * np.cos(pixel / SAMPLES * 6 * np.pi) + 1e-3 * line
    return rng * (1.0 + 0.05 * np.sin(line / 500 + k))


def compare(path: Path, samples: int = 200_000) -> dict:
    """Ours against the reference's warp, same GCPs, same GDAL kernel, at `samples` random output pixels
    valid in both, in dB. Each warped output is calibrated at its pixel's source position (the GCPs' TPS
    inverse) with the analytic LUTs the bench's LUTs sample: (a) the reference as timed, which warps DN
    (what `gdalwarp` on a GRD gives); (b) the reference warping DN^2 (power) of the same window, which
    differs from ours only by calibrating after the warp instead of before (smooth LUTs: nearly commutes)."""
    import rasterio
    from pyproj import Transformer
    from rasterio.crs import CRS
    from rasterio.transform import GCPTransformer
    from rasterio.warp import Resampling, reproject

    from stac_mmtp.sources.sentinel1 import source_window, window_gcps

    grid = _grid()
    gcps = same_gcps(path)
    ours = run_ours(path, keep=True)["out"]
    dn_warp = reference_dn(path, gcps).astype(np.float64)
    with rasterio.open(path) as src:
        win = source_window(list(src.gcps[0]), grid, (src.height, src.width))
        dn = src.read(1, window=win).astype(np.float32)
    power = np.full(grid.shape, np.nan, dtype=np.float32)
    reproject(np.where(dn > 0, dn * dn, np.nan).astype(np.float32), power, gcps=window_gcps(list(gcps), win),
              src_crs=CRS.from_epsg(4326), src_nodata=np.nan, dst_transform=grid.transform, dst_crs=grid.crs,
              dst_nodata=np.nan, resampling=Resampling.bilinear, SRC_METHOD="GCP_TPS", num_threads=2)
    del dn
    rng = np.random.default_rng(1)
    cand = np.flatnonzero(np.isfinite(ours.ravel()) & (ours.ravel() > 0) & (dn_warp.ravel() > 0)
                          & np.isfinite(power.ravel()))
    pick = rng.choice(cand, size=min(samples, cand.size), replace=False)
    i, j = np.unravel_index(pick, grid.shape)
    x, y = rasterio.transform.xy(grid.transform, i, j)  # pixel centres
    lon, lat = Transformer.from_crs(grid.crs, 4326, always_xy=True).transform(np.asarray(x), np.asarray(y))
    rows, cols = GCPTransformer(gcps, tps=True).rowcol(lon, lat, op=lambda v: v)
    line, pix = np.asarray(rows) - 0.5, np.asarray(cols) - 0.5  # GDAL: pixel (r, c) is centred at (r + .5, c + .5)
    a2, n = _a_true(line, pix) ** 2, _n_true(line, pix)
    got = ours[i, j].astype(np.float64)

    def stats(other: np.ndarray) -> dict:
        ok = other > 0  # noise removal clamps to 0 where the noise exceeds the signal: no dB there
        d = np.abs(10 * np.log10(got[ok]) - 10 * np.log10(other[ok]))
        return {"pixels": int(ok.sum()), "mean_abs_db": round(float(d.mean()), 4),
                "p99_abs_db": round(float(np.percentile(d, 99)), 4), "max_abs_db": round(float(d.max()), 4)}
    return {"gcps": len(gcps), "a_reference_dn_warp": stats((dn_warp[i, j] ** 2 - n) / a2),
            "b_power_warp": stats((power[i, j].astype(np.float64) - n) / a2)}


def _hwm_mb() -> float:
    """Peak RSS of this process (VmHWM; ru_maxrss would include the parent's peak, it survives exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(which: str, path: Path) -> dict:
    if which == "compare":
        return compare(path)
    res = run_ours(path) if which == "ours" else run_reference(path)
    res["peak_rss_mb"] = _hwm_mb()
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, default=Path("build/bench-cache"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", choices=["ours", "reference", "compare"])
    ap.add_argument("--input", type=Path)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.input)))
        return
    t0 = time.perf_counter()
    path = make_input(args.cache)
    print(f"input {path} ({path.stat().st_size / 1e6:.0f} MB on disk, {LINES} x {SAMPLES} uint16), "
          f"ready in {time.perf_counter() - t0:.1f} s")
    results: dict[str, list[dict]] = {"ours": [], "reference": []}
    for _ in range(args.repeat):
        for which in ("reference", "ours"):  # alternate so that both see the same machine load
            out = subprocess.run([sys.executable, __file__, "--child", which, "--input", str(path)],
                                 check=True, capture_output=True, text=True)
            results[which].append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = {k: min(r["seconds"] for r in v) for k, v in results.items()}
    peak = {k: max(r["peak_rss_mb"] for r in v) for k, v in results.items()}
    print(json.dumps(results, indent=1))
    print(f"ours (window read + calibration + TPS warp): best {best['ours']:.2f} s, peak RSS {peak['ours']:.0f} MB")
    print(f"reference (reproject DN, same GCPs, TPS, bilinear): best {best['reference']:.2f} s, "
          f"peak RSS {peak['reference']:.0f} MB")
    print(f"time ratio ours / reference: {best['ours'] / best['reference']:.2f}")
    out = subprocess.run([sys.executable, __file__, "--child", "compare", "--input", str(path)],
                         check=True, capture_output=True, text=True)
    print("outputs compared (sigma0, dB):", out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
