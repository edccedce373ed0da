"""Sentinel-1 Level-1 GRD (IW, EW, SM): SAFE directories or zips, and the AWS `sentinel-s1-l1c` layout.

`read()` parses metadata only (manifest.safe, product annotation, or the AWS productInfo.json);
`convert()` removes the thermal noise (noise LUT) and calibrates each polarisation to sigma0 from
the calibration LUT, georeferences it from
the GCPs (the annotation's geolocation grid) into the event's UTM zone, clips it to the AOI plus
buffer and writes float32 linear-power COGs (nodata NaN, overviews averaged in linear power).

Only the source window covering the AOI is read and calibrated (uint16 -> float32), so a full
25000 x 16700 scene is never held in memory.
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError
from rasterio.transform import Affine, GCPTransformer, from_origin
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window
from shapely.geometry import Polygon, box, mapping

from stac_mmtp import __version__
from stac_mmtp.errors import ProductError, UnsupportedProduct
from stac_mmtp.raster.assets import file_fields, stretch_to_uint8, write_overview_cog, write_png
from stac_mmtp.raster.cog import CogProfile, array_to_cog
from stac_mmtp.raster.geo import (
    footprint_from_geojson,
    footprint_polygon,
    geometry_bbox,
    round_geometry,
    utm_epsg,
)
from stac_mmtp.raster.geo import reproject as reproject_geom
from stac_mmtp.sources.base import ProductMeta, Task
from stac_mmtp.sources.product_fs import ProductFS
from stac_mmtp.sources.safe_xml import esa_providers, license_link
from stac_mmtp.sources.safe_xml import iso as _iso
from stac_mmtp.sources.safe_xml import parse_xml as _parse_xml
from stac_mmtp.sources.safe_xml import utc as _dt
from stac_mmtp.stac import (
    COG_MEDIA_TYPE,
    FILE,
    MMTP,
    PNG_MEDIA_TYPE,
    PROCESSING,
    PRODUCT,
    PROJ,
    RASTER,
    SAR,
    SAT,
    VIEW,
)
from stac_mmtp.stac.events import collection_metadata, event_fields
from stac_mmtp.stac.synthetic import is_synthetic, mark_item
from stac_mmtp.stac.tree import STAC_VERSION

COLLECTION = "sentinel-1"
CENTER_FREQUENCY_GHZ = 5.405
# COSPAR ids of the platforms (the manifest's safe:nssdcIdentifier); used when only productInfo.json exists.
INTERNATIONAL_DESIGNATOR = {"A": "2014-016A", "B": "2016-025A"}
# Relative orbit from the absolute orbit (175 orbits per 12-day cycle; offsets per platform).
ORBIT_OFFSET = {"A": 73, "B": 27}
# Sentinel-1 Product Definition (S1-RS-MDA-52-7440), table 5-1, per mode and resolution class:
# (resolution range, azimuth m; pixel spacing range, azimuth m; looks range, azimuth; ENL)
GRD_CHARACTERISTICS: dict[tuple[str, str], tuple[float, float, float, float, int, int, float]] = {
    ("SM", "F"): (9, 9, 3.5, 3.5, 2, 2, 3.7),
    ("SM", "H"): (23, 23, 10, 10, 6, 6, 29.7),
    ("SM", "M"): (84, 84, 40, 40, 22, 22, 398.4),
    ("IW", "H"): (20, 22, 10, 10, 5, 1, 4.4),
    ("IW", "M"): (88, 87, 40, 40, 22, 5, 81.8),
    ("EW", "H"): (50, 50, 25, 25, 3, 1, 2.7),
    ("EW", "M"): (93, 87, 40, 40, 6, 2, 10.7),
}
# S1A_IW_GRDH_1SDV_20210809T173953_20210809T174018_039156_049F13_6FF8
NAME_RE = re.compile(
    r"^(S1[A-D])_(IW|EW|S[1-6]|WV)_(GRD|SLC|OCN|RAW)([FHM_])_([0-2])([SA])(SH|SV|DH|DV|HH|VV|HV|VH)_"
    r"(\d{8}T\d{6})_(\d{8}T\d{6})_(\d{6})_([0-9A-F]{6})_([0-9A-F]{4})$"
)
POLARISATIONS = {"SH": ["HH"], "SV": ["VV"], "DH": ["HH", "HV"], "DV": ["VV", "VH"], "HH": ["HH"], "VV": ["VV"],
                 "HV": ["HV"], "VH": ["VH"]}
# annotation/measurement names: SAFE `s1a-iw-grd-vv-<start>-<stop>-<orbit>-<dtid>-001.xml`, AWS `iw-vv.xml`
FILE_RE = re.compile(r"^(?:s1[a-d]-)?(iw|ew|s[1-6]|wv)[1-3]?-(?:(grd|slc)-)?(hh|hv|vh|vv)(?:-.*)?\.(xml|tiff)$")


@dataclass
class GridPoint:
    line: float
    pixel: float
    lat: float
    lon: float
    height: float
    incidence: float | None


@dataclass
class Annotation:
    """What one polarisation's product annotation says (only what we use)."""

    rel: str
    polarisation: str
    pass_: str | None
    heading: float | None
    radar_frequency: float | None
    samples: int
    lines: int
    range_spacing: float
    azimuth_spacing: float
    incidence_mid: float | None
    grid: list[GridPoint]


@dataclass
class S1Product:
    fs: ProductFS
    id: str
    layout: str  # "SAFE" | "AWS"
    platform: str  # "A", "B"...
    mode: str
    product_type: str  # GRD
    resolution_class: str  # H, M, F
    polarisations: list[str]
    start: datetime
    stop: datetime
    absolute_orbit: int
    relative_orbit: int
    orbit_state: str | None
    datatake: int | None
    footprint: Polygon  # lon/lat
    international_designator: str | None = None
    timeliness: str | None = None
    product_class: str | None = None
    slice_number: int | None = None
    total_slices: int | None = None
    ipf_version: str | None = None
    facility: str | None = None
    processing_time: datetime | None = None
    measurements: dict[str, str] = field(default_factory=dict)  # pol -> rel path
    annotations: dict[str, Annotation] = field(default_factory=dict)
    calibrations: dict[str, str] = field(default_factory=dict)  # pol -> rel path
    noises: dict[str, str] = field(default_factory=dict)  # pol -> rel path of the thermal noise LUT
    synthetic: bool = False  # a `stac-mmtp sample` product (marker file at its root)

    @property
    def characteristics(self) -> tuple[float, float, float, float, int, int, float] | None:
        mode = "SM" if self.mode.startswith("S") else self.mode  # stripmap: mode SM, swaths S1..S6
        return GRD_CHARACTERISTICS.get((mode, self.resolution_class))

    @property
    def platform_name(self) -> str:
        return "sentinel-1" + self.platform.lower()


# ---------------------------------------------------------------- XML helpers


def _text(root: ET.Element, path: str, where: str, required: bool = True) -> str | None:
    el = root.find(path)
    if el is None or el.text is None or not el.text.strip():
        if required:
            raise ProductError(f"malformed metadata: element <{path.split('/')[-1]}> is missing", where)
        return None
    return el.text.strip()


def relative_orbit(platform: str, absolute: int) -> int:
    return (absolute - ORBIT_OFFSET.get(platform, 73)) % 175 + 1


def parse_annotation(fs: ProductFS, rel: str) -> Annotation:
    root = _parse_xml(fs, rel)
    w = fs.display(rel)
    grid = []
    for p in root.iter("geolocationGridPoint"):
        try:
            grid.append(GridPoint(
                line=float(_text(p, "line", w)), pixel=float(_text(p, "pixel", w)),
                lat=float(_text(p, "latitude", w)), lon=float(_text(p, "longitude", w)),
                height=float(_text(p, "height", w, False) or 0.0),
                incidence=float(v) if (v := _text(p, "incidenceAngle", w, False)) else None,
            ))
        except ValueError:
            raise ProductError("malformed geolocation grid point", w) from None
    if len(grid) < 3:
        raise ProductError(f"the geolocation grid has {len(grid)} points (at least 3 needed to georeference)", w)
    heading = _text(root, ".//productInformation/platformHeading", w, False)
    freq = _text(root, ".//productInformation/radarFrequency", w, False)
    inc = _text(root, ".//imageInformation/incidenceAngleMidSwath", w, False)
    try:
        return Annotation(
            rel=rel,
            polarisation=_text(root, "adsHeader/polarisation", w).upper(),
            pass_=(_text(root, ".//productInformation/pass", w, False) or "").lower() or None,
            heading=float(heading) if heading else None,
            radar_frequency=float(freq) if freq else None,
            samples=int(_text(root, ".//imageInformation/numberOfSamples", w)),
            lines=int(_text(root, ".//imageInformation/numberOfLines", w)),
            range_spacing=float(_text(root, ".//imageInformation/rangePixelSpacing", w)),
            azimuth_spacing=float(_text(root, ".//imageInformation/azimuthPixelSpacing", w)),
            incidence_mid=float(inc) if inc else None,
            grid=grid,
        )
    except ValueError as exc:
        raise ProductError(f"malformed annotation value ({exc})", w) from None


@dataclass
class CalibrationLUT:
    """The sparse sigma0 calibration LUT of one polarisation: A at (lines x pixels) knots."""

    lines: np.ndarray  # (n,)
    pixels: np.ndarray  # (m,) shared by every vector (checked)
    values: np.ndarray  # (n, m)

    def window(self, row_off: int, col_off: int, height: int, width: int) -> np.ndarray:
        """A (float32) over a pixel window: bilinear between the LUT's knots (linear in pixel, then in line)."""
        cols = np.arange(col_off, col_off + width, dtype=np.float64)
        # first along the pixel axis for each vector (n x width), then along lines for each output row
        per_vec = np.stack([np.interp(cols, self.pixels, v) for v in self.values])
        rows = np.arange(row_off, row_off + height, dtype=np.float64)
        idx = np.clip(np.searchsorted(self.lines, rows, side="right") - 1, 0, len(self.lines) - 2)
        l0, l1 = self.lines[idx], self.lines[idx + 1]
        t = np.clip((rows - l0) / (l1 - l0), 0.0, 1.0).astype(np.float32)[:, None]
        lo = per_vec[idx].astype(np.float32)
        hi = per_vec[idx + 1].astype(np.float32)
        return lo + (hi - lo) * t


def _vector_lut(vectors: Iterable[ET.Element], value_tag: str, what: str, w: str) -> CalibrationLUT:
    """A LUT from vectors of (line, pixel knots, values): the calibration and noise range LUTs."""
    lines, pixels, values = [], None, []
    for vec in vectors:
        try:
            line = int(_text(vec, "line", w))
            pix = np.array(_text(vec, "pixel", w).split(), dtype=np.float64)
            val = np.array(_text(vec, value_tag, w).split(), dtype=np.float64)
        except ValueError:
            raise ProductError(f"malformed {what} vector", w) from None
        if len(pix) != len(val):
            raise ProductError(f"{what} vector at line {line}: {len(pix)} pixels but {len(val)} {value_tag} values", w)
        if pixels is None:
            pixels = pix
        elif len(pix) != len(pixels) or not np.array_equal(pix, pixels):
            val = np.interp(pixels, pix, val)  # vectors on different pixel knots: resample onto the first ones
        lines.append(line)
        values.append(val)
    if len(lines) < 2 or pixels is None:
        raise ProductError(f"the {what} LUT needs at least 2 {what} vectors", w)
    order = np.argsort(lines)
    return CalibrationLUT(np.asarray(lines, dtype=np.float64)[order], pixels, np.asarray(values)[order])


def parse_calibration(fs: ProductFS, rel: str) -> CalibrationLUT:
    return calibration_lut(_parse_xml(fs, rel), fs.display(rel))


def calibration_lut(root: ET.Element, where: str) -> CalibrationLUT:
    """The sigma0 LUT of a parsed calibration XML (`where` names it in errors)."""
    return _vector_lut(root.iter("calibrationVector"), "sigmaNought", "calibration", where)


@dataclass
class NoiseLUT:
    """Thermal noise power (DN^2 units) of one polarisation: the range LUT, interpolated as the
    calibration LUT, times the azimuth LUT of each sub-swath block (IPF 2.9 on; before, range only)."""

    range: CalibrationLUT
    # (first line, last line, first sample, last sample, knot lines, values) per azimuth block
    blocks: list[tuple[int, int, int, int, np.ndarray, np.ndarray]] = field(default_factory=list)

    def window(self, row_off: int, col_off: int, height: int, width: int) -> np.ndarray:
        n = self.range.window(row_off, col_off, height, width)
        rows = np.arange(row_off, row_off + height, dtype=np.float64)
        for l0, l1, p0, p1, lines, values in self.blocks:
            c0, c1 = max(p0, col_off), min(p1, col_off + width - 1)
            sel = (rows >= l0) & (rows <= l1)
            if c0 <= c1 and sel.any():
                n[sel, c0 - col_off:c1 - col_off + 1] *= np.interp(rows[sel], lines, values).astype(np.float32)[:, None]
        return n


def parse_noise(fs: ProductFS, rel: str) -> NoiseLUT:
    """The noise LUT: `noiseRangeVector`s (IPF 2.9 on) or `noiseVector`s (before), and the azimuth
    blocks when present."""
    return noise_lut(_parse_xml(fs, rel), fs.display(rel))


def noise_lut(root: ET.Element, w: str) -> NoiseLUT:
    """The noise LUT of a parsed noise XML (`w` names it in errors)."""
    if any(True for _ in root.iter("noiseRangeVector")):
        rng = _vector_lut(root.iter("noiseRangeVector"), "noiseRangeLut", "noise range", w)
    else:
        rng = _vector_lut(root.iter("noiseVector"), "noiseLut", "noise", w)
    blocks = []
    for vec in root.iter("noiseAzimuthVector"):
        try:
            first_line, last_line = int(_text(vec, "firstAzimuthLine", w)), int(_text(vec, "lastAzimuthLine", w))
            first_px, last_px = int(_text(vec, "firstRangeSample", w)), int(_text(vec, "lastRangeSample", w))
            lines = np.array(_text(vec, "line", w).split(), dtype=np.float64)
            values = np.array(_text(vec, "noiseAzimuthLut", w).split(), dtype=np.float64)
        except ValueError:
            raise ProductError("malformed noise azimuth vector", w) from None
        if len(lines) != len(values) or not len(lines):
            raise ProductError(f"noise azimuth vector: {len(lines)} lines but {len(values)} values", w)
        blocks.append((first_line, last_line, first_px, last_px, lines, values))
    return NoiseLUT(rng, blocks)


def calibrate(dn: np.ndarray, a: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
    """sigma0 (linear power, float32) = (DN^2 - N) / A^2, with N the thermal noise power (none
    without a noise LUT); what noise removal takes below zero is 0 (as ESA SNAP does); DN 0 (no data) -> NaN."""
    out = dn.astype(np.float32)
    np.square(out, out=out)
    if noise is not None:
        out -= noise
        np.maximum(out, 0, out=out)
    out /= np.square(a, dtype=np.float32)
    out[dn == 0] = np.nan
    return out


def calibrate_window(dn: np.ndarray, lut: CalibrationLUT, win: Window, strip: int = 512,
                     noise: NoiseLUT | None = None) -> np.ndarray:
    """sigma0 of a source window, computed in strips of rows so that A and N never exist for the whole window."""
    out = np.empty(dn.shape, dtype=np.float32)
    row_off, col_off = int(win.row_off), int(win.col_off)
    for r in range(0, dn.shape[0], strip):
        h = min(strip, dn.shape[0] - r)
        n = noise.window(row_off + r, col_off, h, dn.shape[1]) if noise is not None else None
        out[r:r + h] = calibrate(dn[r:r + h], lut.window(row_off + r, col_off, h, dn.shape[1]), n)
    return out


# ---------------------------------------------------------------- geocoding


def measurement_gcps(src: Any, where: str, why: str) -> list[GroundControlPoint]:
    """The GCPs of an opened measurement TIFF, which must be in EPSG:4326 (`why` completes the error
    saying there are none)."""
    gcps, crs = src.gcps
    if not gcps:
        raise ProductError(f"measurement has no GCPs {why}", where)
    if crs is not None and crs.to_epsg() != 4326:
        raise ProductError(f"measurement GCPs are in {crs}, expected EPSG:4326", where)
    return list(gcps)


def grid_gcps(grid: list[GridPoint]) -> list[GroundControlPoint]:
    # Annotation line/pixel are image coordinates as GDAL's SAFE driver and the measurement
    # TIFF's own GCPs use them (no half-pixel shift).
    return [GroundControlPoint(row=p.line, col=p.pixel, x=p.lon, y=p.lat, z=p.height, id=str(i + 1))
            for i, p in enumerate(grid)]


@dataclass(frozen=True)
class Grid:
    crs: CRS
    transform: Affine
    shape: tuple[int, int]  # rows, cols

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        t, (h, w) = self.transform, self.shape
        return (t.c, t.f + t.e * h, t.c + t.a * w, t.f)


def snap_grid(bounds: tuple[float, float, float, float], crs: CRS, res: float) -> Grid:
    """A north-up grid over `bounds` whose edges are multiples of `res` (same grid for every product)."""
    minx, miny, maxx, maxy = bounds
    minx, miny = math.floor(minx / res) * res, math.floor(miny / res) * res
    maxx, maxy = math.ceil(maxx / res) * res, math.ceil(maxy / res) * res
    return Grid(crs, from_origin(minx, maxy, res, res), (round((maxy - miny) / res), round((maxx - minx) / res)))


def source_window(gcps: list[GroundControlPoint], grid: Grid, size: tuple[int, int], margin: int = 8) -> Window | None:
    """The window of the source image (rows, cols = `size`) that the output grid needs, or None."""
    minx, miny, maxx, maxy = grid.bounds
    n = 16
    xs = np.concatenate([np.linspace(minx, maxx, n), np.full(n, maxx), np.linspace(maxx, minx, n), np.full(n, minx)])
    ys = np.concatenate([np.full(n, maxy), np.linspace(maxy, miny, n), np.full(n, miny), np.linspace(miny, maxy, n)])
    poly = Polygon(zip(xs, ys, strict=True))
    ll = reproject_geom(poly, grid.crs, "EPSG:4326")
    lon, lat = np.asarray(ll.exterior.coords).T
    rows, cols = GCPTransformer(gcps).rowcol(list(lon), list(lat), op=lambda v: v)
    rows, cols = np.asarray(rows, dtype=np.float64), np.asarray(cols, dtype=np.float64)
    r0, r1 = max(0, math.floor(rows.min()) - margin), min(size[0], math.ceil(rows.max()) + margin)
    c0, c1 = max(0, math.floor(cols.min()) - margin), min(size[1], math.ceil(cols.max()) + margin)
    if r1 <= r0 or c1 <= c0:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)


def window_gcps(gcps: list[GroundControlPoint], win: Window) -> list[GroundControlPoint]:
    """GCPs shifted into `win`'s coordinates, keeping the grid points around it (a local TPS is faster)."""
    rows = sorted({g.row for g in gcps})
    cols = sorted({g.col for g in gcps})
    dr = max(np.diff(rows).max() if len(rows) > 1 else 0, 1)
    dc = max(np.diff(cols).max() if len(cols) > 1 else 0, 1)
    r0, c0 = win.row_off - dr, win.col_off - dc
    r1, c1 = win.row_off + win.height + dr, win.col_off + win.width + dc
    near = [g for g in gcps if r0 <= g.row <= r1 and c0 <= g.col <= c1]
    chosen = near if len(near) >= 6 else gcps
    return [GroundControlPoint(row=g.row - win.row_off, col=g.col - win.col_off, x=g.x, y=g.y, z=g.z, id=g.id)
            for g in chosen]


def geocode(data: np.ndarray, gcps: list[GroundControlPoint], grid: Grid, gcp_crs: CRS | str = "EPSG:4326",
            resampling: Resampling = Resampling.bilinear) -> np.ndarray:
    """Warp a float32 radar-geometry array (NaN = no data) onto `grid` from its GCPs.

    A thin-plate spline through the GCPs (GDAL's GCP_TPS) honours every geolocation grid point
    exactly; a global polynomial drifts by a pixel or more across a 250 km scene.
    """
    out = np.full(grid.shape, np.nan, dtype=np.float32)
    reproject(
        source=data, destination=out, gcps=gcps, src_crs=CRS.from_user_input(gcp_crs), src_nodata=np.nan,
        dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan, resampling=resampling,
        SRC_METHOD="GCP_TPS", num_threads=2,
    )
    return out


def ground_spacing(gcps: list[GroundControlPoint]) -> tuple[float, float]:
    """(range, azimuth) ground distance per image pixel, estimated from the GCPs (metres)."""
    from pyproj import Geod

    geod = Geod(ellps="WGS84")

    def metres_per_pixel(line: str, step: str) -> float:
        """Median ground distance per pixel between neighbouring GCPs of the same `line` ("row"/"col")."""
        groups: dict[float, list[GroundControlPoint]] = {}
        for g in gcps:
            groups.setdefault(round(getattr(g, line), 3), []).append(g)
        out = []
        for pts in groups.values():
            pts.sort(key=lambda g: getattr(g, step))
            for a, b in zip(pts, pts[1:], strict=False):
                if (d := getattr(b, step) - getattr(a, step)) > 0:
                    out.append(geod.inv(a.x, a.y, b.x, b.y)[2] / d)
        return float(np.median(out)) if out else 0.0

    return metres_per_pixel("row", "col"), metres_per_pixel("col", "row")


def orbit_state_from_gcps(gcps: list[GroundControlPoint]) -> str | None:
    """Lines follow the flight direction: latitude grows with line on an ascending pass."""
    first = [g.y for g in gcps if g.row == min(h.row for h in gcps)]
    last = [g.y for g in gcps if g.row == max(h.row for h in gcps)]
    if not first or not last or np.mean(first) == np.mean(last):
        return None
    return "ascending" if np.mean(last) > np.mean(first) else "descending"


def event_grid(task: Task, res: float) -> Grid:
    """The output grid: the event's UTM zone, over the AOI plus buffer, edges on multiples of `res`."""
    ev = task.event
    lon, lat = ev.shape.centroid.coords[0]
    epsg = utm_epsg(lon, lat)
    aoi = reproject_geom(ev.shape, 4326, epsg).buffer(task.options.buffer_m)
    return snap_grid(aoi.bounds, CRS.from_epsg(epsg), res)


def resolution_from_gcps(gcps: list[GroundControlPoint], nominal: float | None) -> float:
    """The ground spacing the GCPs show: the product's `nominal` spacing when within 10 % of it (a
    full-size raster), else the estimate rounded to the metre (a reduced-resolution one)."""
    rng, azi = ground_spacing(gcps)
    est = max(rng, azi)
    if nominal and abs(est - nominal) <= 0.1 * nominal:
        return float(nominal)
    return float(max(1, round(est)))


def sigma0_cog(dn: np.ndarray, win: Window, gcps: list[GroundControlPoint], lut: CalibrationLUT,
               noise: NoiseLUT | None, grid: Grid, pol: str, item_dir: Path, event_id: str,
               where: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """The chain on one polarisation's source window `win` (DN as read): noise removal and calibration,
    geocoding onto `grid`, the float32 COG `<pol>.tif` in `item_dir`; returns the plane and its asset."""
    sigma0 = calibrate_window(dn, lut, win, noise=noise)
    data = geocode(sigma0, window_gcps(gcps, win), grid)
    del sigma0
    if not np.isfinite(data).any():
        raise ProductError(f"no valid pixel of this scene falls in the AOI of {event_id}", where)
    dst = item_dir / f"{pol.lower()}.tif"
    array_to_cog(data, dst, grid.crs, grid.transform, nodata=float("nan"),
                 profile=CogProfile(overview_resampling="average", predictor=3),
                 descriptions=[f"sigma0_{pol.lower()}"],
                 band_tags=[{"UNITS": "linear power (sigma0)", "POLARISATION": pol}])
    return data, {**Sentinel1._asset(pol, grid), **file_fields(dst)}


def display_assets(planes: dict[str, np.ndarray], grid: Grid, item_dir: Path) -> dict[str, Any]:
    """The dB false-colour overview COG and the thumbnail PNG of the sigma0 planes."""
    rgb, what = Sentinel1._false_colour(planes, 1)
    out = {"overview": {**write_overview_cog(rgb, item_dir / "overview.tif", grid.crs, grid.transform,
                                             f"Overview: {what}", "8-bit rendering for display (percentile "
                                             "stretch of each channel), not for analysis; 0 = no data"),
                        "type": COG_MEDIA_TYPE}}
    Sentinel1._thumbnail(planes, item_dir / "thumbnail.png")
    out["thumbnail"] = {"href": "./thumbnail.png", "type": PNG_MEDIA_TYPE, "roles": ["thumbnail"],
                        "title": "sigma0 in dB (R: VV, G: VH, B: VV/VH)" if {"VV", "VH"} <= set(planes)
                        else "sigma0 in dB", **file_fields(item_dir / "thumbnail.png")}
    return out


def item_geometry(planes: dict[str, np.ndarray], grid: Grid, footprint: Any) -> Any:
    """Lon/lat geometry of the valid pixels (the grid's box when none), within the product footprint."""
    valid = _valid_footprint(planes, grid)
    geom = valid if valid is not None and not valid.is_empty else reproject_geom(box(*grid.bounds), grid.crs, 4326)
    return geom.intersection(footprint) if geom.intersects(footprint) else geom


def lineage(denoised: bool, georeference: str, grid: Grid, buffer_m: float) -> str:
    """processing:lineage of a sigma0 item; `georeference` names where the GCPs came from."""
    return (
        "Sentinel-1 GRD digital numbers calibrated to sigma0 ("
        + ("(DN^2 - N) / A^2, thermal noise N from the noise LUT (range times azimuth vectors) removed and "
           "negative results set to 0, " if denoised else "DN^2 / A^2, no thermal-noise removal (no noise LUT), ")
        + f"A bilinearly interpolated from the calibration LUT), georeferenced from {georeference} "
        "(thin-plate spline through the GCPs, ellipsoid heights, no terrain correction), bilinear resampling "
        f"onto a {grid.transform.a:g} m grid in {grid.crs.to_string()}, clipped to the event AOI plus "
        f"{buffer_m:g} m.")


# ---------------------------------------------------------------- the source


def _is_s1_name(name: str) -> bool:
    return bool(re.match(r"^S1[A-D]_(IW|EW|S[1-6]|WV)_(GRD|SLC|OCN|RAW)", name))


class Sentinel1:
    name = "sentinel-1"
    collection_id = COLLECTION

    def detect(self, path: Path) -> bool:
        path = Path(path)
        if path.is_dir():
            if (path / "manifest.safe").exists() and _is_s1_name(path.name):
                return True
            info = path / "productInfo.json"
            return info.exists() and (path / "measurement").is_dir() and not (path / "tileInfo.json").exists()
        return path.suffix.lower() == ".zip" and _is_s1_name(path.name)

    # ---------------------------------------------------------------- metadata
    def parse(self, path: Path) -> S1Product:
        path = Path(path)
        if path.suffix.lower() == ".zip":
            fs = ProductFS.open(path, root_marker=None)
            if not any(n.endswith("manifest.safe") for n in fs.names):
                raise ProductError("no manifest.safe in the archive", path)
            fs = ProductFS.open(path, root_marker="manifest.safe")
        else:
            fs = ProductFS.open(path)
        if fs.exists("productInfo.json"):
            prod = self._parse_aws(fs)
        elif fs.exists("manifest.safe"):
            prod = self._parse_safe(fs)
        else:
            raise ProductError("missing manifest.safe (SAFE) or productInfo.json (AWS layout)", fs.path)
        self._find_files(prod)
        prod.synthetic = is_synthetic(fs)
        return prod

    def _parse_safe(self, fs: ProductFS) -> S1Product:
        root = _parse_xml(fs, "manifest.safe")
        w = fs.display("manifest.safe")
        product_type = _text(root, ".//standAloneProductInformation/productType", w)
        if product_type != "GRD":
            raise UnsupportedProduct(f"Sentinel-1 {product_type} products are not supported (GRD only)", fs.path)
        family = _text(root, ".//platform/familyName", w)
        if family != "SENTINEL-1":
            raise ProductError(f"platform {family!r} is not SENTINEL-1", w)
        platform = _text(root, ".//platform/number", w)
        mode = _text(root, ".//instrumentMode/mode", w)
        pols = [el.text.strip() for el in root.iter("transmitterReceiverPolarisation") if el.text]
        absolute = int(_text(root, ".//orbitReference/orbitNumber", w))
        rel_text = _text(root, ".//orbitReference/relativeOrbitNumber", w, False)
        coords = _text(root, ".//frameSet/frame/footPrint/coordinates", w)
        name = fs.path.name
        if name.lower().endswith(".zip"):
            name = name[:-4]
        ident = name.removesuffix(".SAFE")
        m = NAME_RE.match(ident)
        software = root.find(".//processing/facility/software")
        facility = root.find(".//processing/facility")
        processing = root.find(".//metadataObject[@ID='processing']//processing")
        slice_no = _text(root, ".//standAloneProductInformation/sliceNumber", w, False)
        total = _text(root, ".//standAloneProductInformation/totalSlices", w, False)
        dtid = _text(root, ".//standAloneProductInformation/missionDataTakeID", w, False)
        return S1Product(
            fs=fs,
            id=ident,
            layout="SAFE",
            platform=platform,
            mode=mode,
            product_type=product_type,
            resolution_class=m.group(4) if m else "H",
            polarisations=pols,
            start=_dt(_text(root, ".//acquisitionPeriod/startTime", w)),
            stop=_dt(_text(root, ".//acquisitionPeriod/stopTime", w)),
            absolute_orbit=absolute,
            relative_orbit=int(rel_text) if rel_text else relative_orbit(platform, absolute),
            orbit_state=(_text(root, ".//orbitProperties/pass", w, False) or "").lower() or None,
            datatake=int(dtid) if dtid else None,
            footprint=_footprint_latlon(coords, w),
            international_designator=_text(root, ".//platform/nssdcIdentifier", w, False),
            timeliness=_text(root, ".//standAloneProductInformation/productTimelinessCategory", w, False),
            product_class=_text(root, ".//standAloneProductInformation/productClass", w, False),
            slice_number=int(slice_no) if slice_no else None,
            total_slices=int(total) if total else None,
            ipf_version=software.get("version") if software is not None else None,
            facility=facility.get("name") if facility is not None else None,
            processing_time=_dt(processing.get("stop")) if processing is not None and processing.get("stop") else None,
        )

    def _parse_aws(self, fs: ProductFS) -> S1Product:
        w = fs.display("productInfo.json")
        try:
            info = json.loads(fs.read_bytes("productInfo.json"))
        except json.JSONDecodeError as exc:
            raise ProductError(f"malformed JSON ({exc})", w) from None
        try:
            ident = info["id"]
            product_type = info["productType"]
            platform = str(info["missionId"])[-1]
            absolute = int(info["absoluteOrbitNumber"])
            start, stop = _dt(info["startTime"]), _dt(info["stopTime"])
            geom = info["footprint"]
            pol_code = info["polarization"]
            mode = info["mode"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ProductError(f"productInfo.json lacks or mangles {exc}", w) from None
        if product_type != "GRD":
            raise UnsupportedProduct(f"Sentinel-1 {product_type} products are not supported (GRD only)", fs.path)
        m = NAME_RE.match(ident)
        prod = S1Product(
            fs=fs, id=ident, layout="AWS", platform=platform, mode=mode, product_type=product_type,
            resolution_class=m.group(4) if m else "H", polarisations=POLARISATIONS.get(pol_code, []),
            start=start, stop=stop, absolute_orbit=absolute, relative_orbit=relative_orbit(platform, absolute),
            orbit_state=None, datatake=info.get("missionDataTakeId"),
            footprint=footprint_from_geojson(geom, w),  # a Polygon, or a MultiPolygon across the antimeridian
            international_designator=INTERNATIONAL_DESIGNATOR.get(platform),
            product_class=m.group(6) if m else None,
        )
        if fs.exists("manifest.safe"):  # the AWS bucket keeps the manifest: take what it knows better
            safe = self._parse_safe(fs)
            for attr in ("orbit_state", "relative_orbit", "international_designator", "timeliness", "slice_number",
                         "total_slices", "ipf_version", "facility", "processing_time", "datatake"):
                setattr(prod, attr, getattr(safe, attr) or getattr(prod, attr))
        return prod

    def _find_files(self, prod: S1Product) -> None:
        fs = prod.fs
        for rel in fs.names:
            parts = rel.split("/")
            m = FILE_RE.match(parts[-1])
            if not m:
                continue
            pol = m.group(3).upper()
            if parts[0] == "measurement" and len(parts) == 2 and m.group(4) == "tiff":
                prod.measurements[pol] = rel
            elif parts[0] == "annotation" and len(parts) == 2 and m.group(4) == "xml":
                ann = parse_annotation(fs, rel)
                if ann.polarisation != pol:
                    raise ProductError(f"annotation polarisation {ann.polarisation} does not match its file name ({pol})",
                                       fs.display(rel))
                prod.annotations[pol] = ann
        for rel in fs.names:  # annotation/calibration/{calibration,noise}-<name of the annotation>.xml
            for kind, found in (("calibration-", prod.calibrations), ("noise-", prod.noises)):
                if rel.startswith(f"annotation/calibration/{kind}"):
                    mm = FILE_RE.match(rel.rsplit("/", 1)[-1].removeprefix(kind))
                    if mm:
                        found[mm.group(3).upper()] = rel
        if prod.orbit_state is None:
            for ann in prod.annotations.values():
                prod.orbit_state = ann.pass_
        if prod.orbit_state is None:  # AWS layout without annotation: the measurement's GCPs tell the direction
            for rel in prod.measurements.values():
                if fs.size(rel) > 0:
                    try:
                        with rasterio.open(fs.gdal_path(rel)) as src:
                            prod.orbit_state = orbit_state_from_gcps(list(src.gcps[0])) if src.gcps[0] else None
                    except RasterioIOError as exc:
                        raise ProductError(f"unreadable or truncated measurement file ({exc})", fs.display(rel)) from None
                    break
        if not prod.polarisations:
            prod.polarisations = sorted(prod.measurements)
        for pol in prod.measurements:
            if pol not in prod.polarisations:
                raise ProductError(f"measurement polarisation {pol} is not one of the product's {prod.polarisations}",
                                   fs.display(prod.measurements[pol]))

    # ---------------------------------------------------------------- STAC
    def read(self, path: Path) -> ProductMeta:
        prod = self.parse(path)
        item = self._base_item(prod)
        assets: dict[str, Any] = {}
        for pol, rel in sorted(prod.measurements.items()):
            # file:size shows at a glance a 0-byte placeholder measurement (the build reports it as unusable)
            assets[pol.lower()] = {"href": f"./{rel}", "type": "image/tiff; application=geotiff", "roles": ["data"],
                                   "title": f"{pol} measurement (uint16 DN, radar geometry)",
                                   "file:size": prod.fs.size(rel)}
        for pol, ann in sorted(prod.annotations.items()):
            assets[f"annotation-{pol.lower()}"] = {"href": f"./{ann.rel}", "type": "application/xml",
                                                   "roles": ["metadata"], "title": f"{pol} product annotation"}
        for pol, rel in sorted(prod.calibrations.items()):
            assets[f"calibration-{pol.lower()}"] = {"href": f"./{rel}", "type": "application/xml",
                                                    "roles": ["metadata"], "title": f"{pol} calibration LUT"}
        for pol, rel in sorted(prod.noises.items()):
            assets[f"noise-{pol.lower()}"] = {"href": f"./{rel}", "type": "application/xml",
                                              "roles": ["metadata"], "title": f"{pol} thermal noise LUT"}
        item["assets"] = assets
        item["stac_extensions"].append(FILE)
        ann = self._first_annotation(prod)
        if ann is not None:
            props = item["properties"]
            props["s1:shape"] = [ann.samples, ann.lines]
            props["s1:geolocation_grid_points"] = len(ann.grid)
            if ann.heading is not None:
                props["s1:platform_heading"] = round(ann.heading, 6)
        if prod.synthetic:
            mark_item(item, self.name, MMTP)
        return ProductMeta(Path(path), self.name, prod.id, item["geometry"], prod.start, prod.stop, item, prod.synthetic)

    @staticmethod
    def _first_annotation(prod: S1Product) -> Annotation | None:
        for pol in prod.polarisations:
            if pol in prod.annotations:
                return prod.annotations[pol]
        return next(iter(prod.annotations.values()), None)

    def _base_item(self, prod: S1Product) -> dict[str, Any]:
        mid = prod.start + (prod.stop - prod.start) / 2
        props: dict[str, Any] = {
            "datetime": _iso(mid),
            "start_datetime": _iso(prod.start),
            "end_datetime": _iso(prod.stop),
            "platform": prod.platform_name,
            "constellation": "sentinel-1",
            "instruments": ["c-sar"],
            "sar:instrument_mode": prod.mode,
            "sar:frequency_band": "C",
            "sar:center_frequency": CENTER_FREQUENCY_GHZ,
            "sar:polarizations": list(prod.polarisations),
            "sar:observation_direction": "right",
            "product:type": prod.product_type,
            "sat:absolute_orbit": prod.absolute_orbit,
            "sat:relative_orbit": prod.relative_orbit,
        }
        ann = self._first_annotation(prod)
        if ann and ann.radar_frequency:
            props["sar:center_frequency"] = round(ann.radar_frequency / 1e9, 4)
        ch = prod.characteristics
        if ch:
            (props["sar:resolution_range"], props["sar:resolution_azimuth"], props["sar:pixel_spacing_range"],
             props["sar:pixel_spacing_azimuth"], props["sar:looks_range"], props["sar:looks_azimuth"],
             props["sar:looks_equivalent_number"]) = ch
        if ann:  # the annotation's spacing is authoritative
            props["sar:pixel_spacing_range"] = ann.range_spacing
            props["sar:pixel_spacing_azimuth"] = ann.azimuth_spacing
        if prod.orbit_state:
            props["sat:orbit_state"] = prod.orbit_state
        if prod.international_designator:
            props["sat:platform_international_designator"] = prod.international_designator
        if ann and ann.incidence_mid is not None:
            props["view:incidence_angle"] = round(ann.incidence_mid, 6)
        props["processing:level"] = "L1"
        if prod.ipf_version:
            props["processing:version"] = prod.ipf_version
            props["processing:software"] = {"Sentinel-1 IPF": prod.ipf_version}
        if prod.facility:
            props["processing:facility"] = prod.facility
        if prod.processing_time:
            props["processing:datetime"] = _iso(prod.processing_time)
        props["s1:product_identifier"] = prod.id
        if prod.datatake is not None:
            props["s1:datatake_id"] = str(prod.datatake)
        if prod.timeliness:
            props["s1:product_timeliness"] = prod.timeliness
        if prod.slice_number is not None:
            props["s1:slice_number"] = str(prod.slice_number)
            props["s1:total_slices"] = str(prod.total_slices)
        if prod.resolution_class:
            props["s1:resolution"] = {"F": "full", "H": "high", "M": "medium"}.get(prod.resolution_class, prod.resolution_class)
        exts = [SAR, SAT, PRODUCT, PROCESSING]
        if "view:incidence_angle" in props:
            exts.append(VIEW)
        return {
            "type": "Feature",
            "stac_version": STAC_VERSION,
            "stac_extensions": exts,
            "id": prod.id,
            "geometry": round_geometry(mapping(prod.footprint)),
            "bbox": geometry_bbox(prod.footprint),
            "properties": props,
            "links": [_source_link(prod)],
            "assets": {},
        }

    # ---------------------------------------------------------------- conversion
    def _gcps_and_size(self, prod: S1Product, pol: str, src: rasterio.io.DatasetReader) -> list[GroundControlPoint]:
        ann = prod.annotations.get(pol)
        where = prod.fs.display(prod.measurements[pol])
        if ann is not None:
            if (src.width, src.height) != (ann.samples, ann.lines):
                raise ProductError(f"measurement is {src.width} x {src.height} pixels but its annotation says "
                                   f"{ann.samples} x {ann.lines}", where)
            return grid_gcps(ann.grid)
        return measurement_gcps(src, where, "and no annotation with a geolocation grid")

    def output_grid(self, prod: S1Product, task: Task, gcps: list[GroundControlPoint]) -> Grid:
        return event_grid(task, self.output_resolution(prod, gcps))

    @staticmethod
    def output_resolution(prod: S1Product, gcps: list[GroundControlPoint]) -> float:
        """The nominal pixel spacing; estimated from the GCPs when the raster is not at full size."""
        ann = next(iter(prod.annotations.values()), None)
        if ann is not None:
            return float(max(ann.range_spacing, ann.azimuth_spacing))
        ch = prod.characteristics
        return resolution_from_gcps(gcps, max(ch[2], ch[3]) if ch else None)

    def convert(self, task: Task, item_dir: Path) -> dict[str, Any]:
        prod = self.parse(task.product.path)
        ev = task.event
        if not prod.measurements:
            raise ProductError("no measurement TIFF found under measurement/", prod.fs.path)
        for pol in prod.polarisations:  # check everything before writing anything
            rel = prod.measurements.get(pol)
            if rel is None:
                raise ProductError(f"the {pol} measurement listed by the product is missing", prod.fs.path)
            if prod.fs.size(rel) == 0:
                raise ProductError("0-byte measurement file (unusable)", prod.fs.display(rel))
            if pol not in prod.calibrations:
                raise ProductError(f"missing calibration file for {pol} (annotation/calibration/calibration-*-{pol.lower()}*.xml)",
                                   prod.fs.path)
        item = self._base_item(prod)
        item["id"] = task.item_id
        assets: dict[str, Any] = {}
        grid: Grid | None = None
        planes: dict[str, np.ndarray] = {}
        incidence: list[float] = []
        denoised = True  # every polarisation had its thermal noise LUT
        for pol in prod.polarisations:
            rel = prod.measurements[pol]
            lut = parse_calibration(prod.fs, prod.calibrations[pol])
            noise = parse_noise(prod.fs, prod.noises[pol]) if pol in prod.noises else None
            denoised = denoised and noise is not None
            try:
                with rasterio.open(prod.fs.gdal_path(rel, verify=True)) as src:
                    gcps = self._gcps_and_size(prod, pol, src)
                    if grid is None:
                        grid = self.output_grid(prod, task, gcps)
                    win = source_window(gcps, grid, (src.height, src.width))
                    if win is None:
                        raise ProductError(f"the event AOI of {ev.id} does not overlap this scene", prod.fs.path)
                    dn = src.read(1, window=win)
            except RasterioIOError as exc:
                raise ProductError(f"unreadable or truncated measurement file ({exc})", prod.fs.display(rel)) from None
            planes[pol], assets[pol.lower()] = sigma0_cog(dn, win, gcps, lut, noise, grid, pol, item_dir,
                                                          ev.id, prod.fs.path)
            del dn
            if not incidence:
                ann = prod.annotations.get(pol)
                if ann is not None:
                    incidence = _incidence_in(ann, win)
        assert grid is not None
        assets.update(display_assets(planes, grid, item_dir))
        geom = item_geometry(planes, grid, prod.footprint)
        item["geometry"] = round_geometry(mapping(geom))
        item["bbox"] = [round(v, 6) for v in geom.bounds]
        props = item["properties"]
        if incidence:
            props["view:incidence_angle"] = round(float(np.mean(incidence)), 3)
            if VIEW not in item["stac_extensions"]:
                item["stac_extensions"].append(VIEW)
        props.update(event_fields(ev))
        props["mmtp:temporal_role"] = task.temporal_role
        props["mmtp:days_from_event"] = task.days_from_event
        props["processing:level"] = "GEC"
        props["processing:lineage"] = lineage(denoised, "the annotation geolocation grid", grid, task.options.buffer_m)
        software = dict(props.get("processing:software", {}))
        software["stac-mmtp"] = __version__
        props["processing:software"] = software
        props["proj:code"] = grid.crs.to_string()
        props["license"] = "other"
        props["providers"] = esa_providers("sentinel-1")
        item["stac_extensions"] = [*item["stac_extensions"], PROJ, RASTER, FILE, MMTP]
        item["links"] = [
            _source_link(prod),
            {"rel": "derived_from", "href": _source_href(prod), "type": "application/json",
             "title": f"Source product {prod.id}"},
            license_link(),
            {"rel": "related", "href": f"../../events/{ev.id}/{ev.id}.json", "type": "application/geo+json",
             "title": f"Event: {ev.title}"},
        ]
        item["assets"] = assets
        return mark_item(item, self.name, MMTP) if prod.synthetic else item

    @staticmethod
    def _asset(pol: str, grid: Grid) -> dict[str, Any]:
        t = grid.transform
        return {
            "href": f"./{pol.lower()}.tif",
            "type": COG_MEDIA_TYPE,
            "title": f"{pol} sigma0 (linear power)",
            "roles": ["data", "backscatter"],
            "gsd": t.a,
            "sar:polarizations": [pol],
            "proj:code": grid.crs.to_string(),
            "proj:shape": list(grid.shape),
            "proj:transform": [t.a, t.b, t.c, t.d, t.e, t.f],
            "proj:bbox": list(grid.bounds),
            "bands": [{
                "name": f"sigma0_{pol.lower()}",
                "description": f"Radar backscatter coefficient sigma0 {pol}, linear power (dB = 10 * log10(value))",
                "nodata": "nan",
                "data_type": "float32",
                "unit": "m^2/m^2",
                "raster:spatial_resolution": t.a,
                "raster:sampling": "area",
            }],
        }

    @staticmethod
    def _false_colour(planes: dict[str, np.ndarray], step: int) -> tuple[np.ndarray, str]:
        """sigma0 in dB as a (3, rows, cols) uint8 picture (0 = no data), every `step`-th pixel; what it shows."""
        def db(a: np.ndarray) -> np.ndarray:
            small = a[::step, ::step]
            with np.errstate(divide="ignore", invalid="ignore"):
                return 10 * np.log10(np.where(small > 0, small, np.nan))

        for co, cross in (("VV", "VH"), ("HH", "HV")):
            if co in planes and cross in planes:
                a, b = db(planes[co]), db(planes[cross])
                valid = np.isfinite(a) & np.isfinite(b)
                return (np.stack([stretch_to_uint8(a, valid), stretch_to_uint8(b, valid), stretch_to_uint8(a - b, valid)]),
                        f"sigma0 in dB (R: {co}, G: {cross}, B: {co}/{cross})")
        g = stretch_to_uint8(db(next(iter(planes.values()))))
        return np.stack([g, g, g]), "sigma0 in dB"

    @classmethod
    def _thumbnail(cls, planes: dict[str, np.ndarray], png: Path) -> None:
        step = max(1, math.ceil(max(next(iter(planes.values())).shape) / 256))
        write_png(cls._false_colour(planes, step)[0], png)

    def collection(self, items: Any) -> dict[str, Any]:  # a list of items or a stac.tree.ItemStats
        from stac_mmtp.stac.tree import distinct, summarise
        from stac_mmtp.stac.tree import item_assets as derive_item_assets

        meta = collection_metadata(COLLECTION)
        item_assets = derive_item_assets(items, ("gsd", "sar:polarizations"), ("raster:spatial_resolution",))
        return {
            "type": "Collection",
            "stac_version": STAC_VERSION,
            "stac_extensions": [SAR, SAT, RASTER, PROJ, MMTP],
            **meta,
            "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
            "summaries": {
                "platform": sorted(distinct(items, "platform")),
                "constellation": ["sentinel-1"],
                "instruments": ["c-sar"],
                "sar:frequency_band": ["C"],
                "sar:center_frequency": sorted(distinct(items, "sar:center_frequency")),
                "sar:instrument_mode": sorted(distinct(items, "sar:instrument_mode")),
                "sar:polarizations": sorted(distinct(items, "sar:polarizations")),
                **summarise(items, ["mmtp:phenomenon", "mmtp:temporal_role", "mmtp:event_id", "product:type",
                                    "sat:orbit_state", "sat:relative_orbit", "proj:code", "view:incidence_angle"]),
            },
            "item_assets": dict(sorted(item_assets.items())),
            "links": [license_link(item=False)],
        }


def _incidence_in(ann: Annotation, win: Window) -> list[float]:
    """Incidence angles of the geolocation grid points inside (or, failing that, nearest to) the window."""
    pts = [p for p in ann.grid if p.incidence is not None]
    if not pts:
        return []
    r0, c0 = win.row_off, win.col_off
    r1, c1 = r0 + win.height, c0 + win.width
    inside = [p.incidence for p in pts if r0 <= p.line <= r1 and c0 <= p.pixel <= c1]
    if inside:
        return inside
    rc, cc = r0 + win.height / 2, c0 + win.width / 2
    pts.sort(key=lambda p: (p.line - rc) ** 2 + (p.pixel - cc) ** 2)
    return [p.incidence for p in pts[:4]]


def _valid_footprint(planes: dict[str, np.ndarray], grid: Grid) -> Any:
    """Lon/lat polygon of the pixels that hold data (from a coarse mask, simplified)."""
    from rasterio.features import shapes
    from shapely.geometry import shape
    from shapely.ops import unary_union

    data = next(iter(planes.values()))
    mask = np.isfinite(data).astype(np.uint8)
    if not mask.any():
        return None
    polys = [shape(g) for g, v in shapes(mask, mask=mask.astype(bool), transform=grid.transform) if v == 1]
    geom = unary_union(polys).simplify(grid.transform.a, preserve_topology=True)
    return reproject_geom(geom, grid.crs, 4326)


def _footprint_latlon(coords: str, where: str) -> Polygon:
    """The manifest footprint: "lat,lon lat,lon ..." (latitude first, ring not closed)."""
    try:
        pts = [tuple(float(v) for v in pair.split(",")) for pair in coords.split()]
    except ValueError:
        raise ProductError("malformed footprint gml:coordinates", where) from None
    return footprint_polygon([(lon, lat) for lat, lon in pts], where)




def _source_href(prod: S1Product) -> str:
    query = urllib.parse.quote(f"Name eq '{prod.id}.SAFE'")
    return f"https://catalogue.dataspace.copernicus.eu/odata/v1/Products?$filter={query}"


def _source_link(prod: S1Product) -> dict[str, Any]:
    return {"rel": "via", "href": _source_href(prod), "type": "application/json",
            "title": f"Source product {prod.id}.SAFE (Copernicus Data Space Ecosystem)"}


SOURCE = Sentinel1()  # listed in sources/registry.py
