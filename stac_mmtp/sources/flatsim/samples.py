"""Small format-faithful FLATSIM packages (INT, TS, DAUX) at real slow-motion events of the inventory.

Written by the project: same package and file naming, float32 GeoTIFFs on a lat/lon grid (EPSG:4326)
with 0 as no data, `.meta` sidecars of `Key: value` lines, an NSBAS `list_images.txt` of perpendicular
baselines, and one radar-geometry raster without CRS (as delivered) that the converter must skip.
Pixels are synthetic but physically shaped: a Gaussian LOS velocity bowl (moving away from the
satellite) centred on the event site, a smooth stratified-atmosphere term proportional to a synthetic
DEM, coherence dropping over the moving area, and a no-data strip on the west edge. The acquisition
dates follow a 12-day repeat cycle but are not checked against the real Sentinel-1 archive.
"""

from __future__ import annotations

import hashlib
import shutil
import warnings
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_origin

from stac_mmtp.dataset.inventory import Event
from stac_mmtp.stac.synthetic import write_marker

PIXEL_DEG = 1 / 1200  # about 90 m x 65 m at 45 N: the 8-look geocoded grid spacing order of magnitude
SIZE = 320  # pixels per side (0.27 degrees)
WAVELENGTH_M = 0.05546576  # Sentinel-1 C band
LOOKS = 8
NODATA_COLS = 6  # no-data strip on the west edge (0, as FLATSIM writes it)


@dataclass(frozen=True)
class Track:
    region: str
    state: str  # "A" | "D"
    number: int
    velocity_mm_yr: float  # peak LOS velocity of the synthetic moving area (positive: away from the satellite)
    sigma_m: float  # its radius (Gaussian sigma)

    @property
    def id(self) -> str:
        return f"{self.region}-{self.state}{self.number:03d}"


# Event id -> (track, INT pair, zipped?). Tracks are Sentinel-1 relative orbits that cover the French Alps.
PLANS: dict[str, tuple[Track, tuple[datetime, datetime], bool]] = {
    "la-clapiere-landslide-2014": (Track("ALPES", "D", 139, 120.0, 500.0),
                                   (datetime(2015, 7, 5, tzinfo=UTC), datetime(2015, 7, 17, tzinfo=UTC)), False),
    "laurichard-rock-glacier-2014": (Track("ALPES", "A", 88, 600.0, 150.0),
                                     (datetime(2017, 8, 10, tzinfo=UTC), datetime(2017, 8, 16, tzinfo=UTC)), True),
}


def _grid(ev: Event) -> tuple[float, float]:
    lon, lat = ev.site
    ulx = np.floor((lon - SIZE / 2 * PIXEL_DEG) / PIXEL_DEG) * PIXEL_DEG
    uly = np.ceil((lat + SIZE / 2 * PIXEL_DEG) / PIXEL_DEG) * PIXEL_DEG
    return float(ulx), float(uly)


def _fields(ev: Event, track: Track) -> tuple[np.ndarray, np.ndarray]:
    """(LOS velocity mm/yr, DEM m) on the sample grid."""
    ulx, uly = _grid(ev)
    lon = ulx + (np.arange(SIZE) + 0.5) * PIXEL_DEG
    lat = uly - (np.arange(SIZE) + 0.5) * PIXEL_DEG
    lon2, lat2 = np.meshgrid(lon, lat)
    dx = (lon2 - ev.site[0]) * 111_320 * np.cos(np.radians(ev.site[1]))
    dy = (lat2 - ev.site[1]) * 110_540
    vel = track.velocity_mm_yr * np.exp(-(dx**2 + dy**2) / (2 * track.sigma_m**2))
    dem = 1800 + 700 * np.sin(dx / 3000) * np.cos(dy / 4000) + 300 * np.tanh(dy / 5000)
    return vel.astype(np.float32), dem.astype(np.float32)


def _rng(*parts: object) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha256(repr(parts).encode()).hexdigest()[:8], 16))


def _write_geo(path: Path, data: np.ndarray, ev: Event, descriptions: list[str] | None = None) -> Path:
    if data.ndim == 2:
        data = data[np.newaxis]
    data = data.astype(np.float32)
    data[:, :, :NODATA_COLS] = 0.0
    data[:, SIZE // 2 + 20 : SIZE // 2 + 25, SIZE // 2 - 30 : SIZE // 2 - 23] = 0.0  # a masked patch (e.g. layover)
    ulx, uly = _grid(ev)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=SIZE, height=SIZE, count=data.shape[0], dtype="float32",
                       crs="EPSG:4326", transform=from_origin(ulx, uly, PIXEL_DEG, PIXEL_DEG), compress="deflate",
                       predictor=3) as ds:
        ds.write(data)
        for i, d in enumerate(descriptions or [], start=1):
            ds.set_band_description(i, d)
    return path


def _write_radar(path: Path, data: np.ndarray) -> Path:
    """A radar-geometry raster: pixel (range, azimuth) grid, no CRS, no geotransform."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
                           dtype="float32", compress="deflate") as ds:
            ds.write(data.astype(np.float32), 1)
    return path


def _meta(path: Path, **fields: object) -> None:
    path.with_suffix(".meta").write_text("".join(f"{k}: {v}\n" for k, v in fields.items()), encoding="utf-8")


def _dates(first: datetime, n: int, step_days: int = 96) -> list[datetime]:
    return [first + timedelta(days=step_days * k) for k in range(n)]


def _baselines(dates: list[datetime], seed: object) -> dict[datetime, float]:
    rng = _rng("bperp", seed)
    return {d: round(float(rng.uniform(-120, 120)), 1) for d in dates}


def _list_images(dates: list[datetime], bperp: dict[datetime, float]) -> str:
    """NSBAS list_images.txt: index, YYYYMMDD, flag, decimal year, years since first date, Bperp (m)."""
    lines = []
    for i, d in enumerate(sorted(dates), start=1):
        year = d.year + (d.timetuple().tm_yday - 1) / (366 if d.year % 4 == 0 else 365)
        dt = (d - min(dates)).days / 365.25
        lines.append(f"{i} {d:%Y%m%d} 1 {year:.10f} {dt:.6f} {bperp[d]:g}")
    return "\n".join(lines) + "\n"


def write_int_package(out: Path, ev: Event, track: Track, d1: datetime, d2: datetime, zipped: bool = False) -> Path:
    """One interferogram package: InW, InWF (2 bands), InU, Coh on the geo grid, plus InW in radar geometry."""
    name = f"NSBAS_INT-PKG_S1_{track.id}_VV_{d1:%Y-%m-%d}_{d2:%Y-%m-%d}"
    pkg = out / name
    shutil.rmtree(pkg, ignore_errors=True)
    pkg.mkdir(parents=True)
    vel, dem = _fields(ev, track)
    rng = _rng(name)
    years = (d2 - d1).days / 365.25
    los_m = vel * years / 1000.0
    atmo = 0.004 * (dem - dem.mean())  # stratified delay residual, rad
    unw = (4 * np.pi / WAVELENGTH_M * los_m + atmo).astype(np.float32)
    coh = np.clip(0.85 - 0.55 * (vel / max(vel.max(), 1e-6)) + rng.normal(0, 0.05, vel.shape), 0.05, 0.99)
    noise = rng.normal(0, 1, vel.shape) * (1 - coh) * 1.5
    wrapped = np.angle(np.exp(1j * (unw + noise))).astype(np.float32)
    filtered = np.angle(np.exp(1j * unw)).astype(np.float32)
    stamp, suffix = f"{d1:%Y%m%d}_{d2:%Y%m%d}", f"sd_era_{LOOKS}rlks"
    common = {"Track": track.id, "Date1": f"{d1:%Y%m%d}", "Date2": f"{d2:%Y%m%d}", "Rlooks_unw": LOOKS, "Nodata": 0}
    files = {
        f"CNES_InW_geo_{stamp}_{suffix}.tiff": (wrapped, None, "rad"),
        f"CNES_InWF_geo_{stamp}_{suffix}.tiff": (np.stack([filtered, coh.astype(np.float32)]),
                                                 ["filtered_phase", "filter_coherence"], "rad"),
        f"CNES_InU_geo_{stamp}_{suffix}.tiff": (unw, None, "rad"),
        f"CNES_Coh_geo_{stamp}_{LOOKS}rlks.tiff": (coh.astype(np.float32), None, "1"),
    }
    for fname, (data, desc, unit) in files.items():
        path = _write_geo(pkg / fname, data, ev, desc)
        _meta(path, Product=fname.split("_")[1] + "_geo", Unit=unit, **common)
    radar = _write_radar(pkg / f"CNES_InW_radar_{stamp}_{suffix}.tiff", wrapped[::2, ::3])
    _meta(radar, Product="InW_radar", Unit="rad", **common)
    write_marker(pkg, "flatsim")
    if not zipped:
        return pkg
    archive = out / f"{name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:  # stored: GDAL reads members in place
        for p in sorted(pkg.rglob("*")):
            zi = zipfile.ZipInfo(f"{name}/{p.relative_to(pkg).as_posix()}", date_time=(d2.year, d2.month, d2.day, 0, 0, 0))
            zf.writestr(zi, p.read_bytes())
    shutil.rmtree(pkg)
    return archive


def write_ts_package(out: Path, ev: Event, track: Track, dates: list[datetime]) -> Path:
    """One time-series package: the LOS displacement cube (a band per date), the mean velocity, RMS files."""
    name = f"NSBAS_TS-PKG_S1_{track.id}_VV_{dates[0]:%Y%m%d}_{dates[-1]:%Y%m%d}"
    pkg = out / name
    shutil.rmtree(pkg, ignore_errors=True)
    pkg.mkdir(parents=True)
    vel, _ = _fields(ev, track)
    rng = _rng(name)
    cube = np.stack([vel * (d - dates[0]).days / 365.25 + rng.normal(0, 1.5, vel.shape) * (k > 0)
                     for k, d in enumerate(dates)]).astype(np.float32)
    cube[0] += 1e-3  # the reference date is 0 by construction; keep it distinct from the no-data value
    descriptions = [f"{d:%Y%m%d}" for d in dates]
    p = _write_geo(pkg / f"CNES_DTs_geo_{LOOKS}rlks.tiff", cube, ev, descriptions)
    _meta(p, Product="DTs_geo", Unit="mm", Track=track.id, Dates=" ".join(descriptions), Nodata=0)
    p = _write_geo(pkg / f"CNES_MV-LOS_geo_{LOOKS}rlks.tiff", vel + rng.normal(0, 0.5, vel.shape).astype(np.float32), ev)
    _meta(p, Product="MV-LOS_geo", Unit="mm/yr", Track=track.id, Nodata=0)
    (pkg / "RMSdate.txt").write_text("".join(f"{i} {d:%Y%m%d} {rng.uniform(0.5, 3):.3f}\n"
                                             for i, d in enumerate(dates, 1)), encoding="utf-8")
    (pkg / "RMSinterfero.txt").write_text("".join(f"{a:%Y%m%d} {b:%Y%m%d} {rng.uniform(0.2, 1.5):.3f}\n"
                                                  for a, b in zip(dates, dates[1:], strict=False)), encoding="utf-8")
    write_marker(pkg, "flatsim")
    return pkg


def write_daux_package(out: Path, ev: Event, track: Track, dates: list[datetime]) -> Path:
    """One auxiliary package: LOS unit vectors, DEM, temporal coherence, a radar look-up table, baselines."""
    name = f"NSBAS_DAUX-PKG_S1_{track.id}_VV"
    pkg = out / name
    shutil.rmtree(pkg, ignore_errors=True)
    pkg.mkdir(parents=True)
    vel, dem = _fields(ev, track)
    inc = np.radians(39.0)
    # ground-to-satellite unit vector of a right-looking SAR: heading ~ -14 deg ascending, ~ -166 deg descending
    az = np.radians(-14.0 - 90.0 if track.state == "A" else -166.0 - 90.0)
    enu = [np.sin(inc) * np.sin(az), np.sin(inc) * np.cos(az), np.cos(inc)]
    cos = np.stack([np.full(vel.shape, v, dtype=np.float32) for v in enu])
    p = _write_geo(pkg / f"CNES_CosENU_geo_{LOOKS}rlks.tiff", cos, ev, ["east", "north", "up"])
    _meta(p, Product="CosENU_geo", Track=track.id, Nodata=0)
    p = _write_geo(pkg / f"CNES_DEM_geo_{LOOKS}rlks.tiff", dem, ev)
    _meta(p, Product="DEM_geo", Unit="m", Track=track.id, Nodata=0)
    tcoh = np.clip(0.9 - 0.4 * vel / max(float(vel.max()), 1e-6), 0.1, 1.0)
    p = _write_geo(pkg / f"CNES_TCoh_geo_{LOOKS}rlks.tiff", tcoh, ev)
    _meta(p, Product="TCoh_geo", Track=track.id, Nodata=0)
    _write_radar(pkg / f"CNES_Lut_radar_{LOOKS}rlks.tiff", np.arange(160 * 107, dtype=np.float32).reshape(160, 107))
    (pkg / "list_images.txt").write_text(_list_images(dates, _baselines(dates, track.id)), encoding="utf-8")
    (pkg / "nsbas.proc").write_text(f"Rlooks_int=2\nRlooks_unw={LOOKS}\nratio=4\nSARMasterDir={dates[0]:%Y%m%d}\n",
                                    encoding="utf-8")
    write_marker(pkg, "flatsim")
    return pkg


def write_samples(out: Path, events: list[Event]) -> list[Path]:
    """Per event: an INT pair (zipped for the second event), and for the first a TS and a DAUX package."""
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for i, ev in enumerate(events):
        track, (d1, d2), zipped = PLANS.get(ev.id, (Track("REGION", "D", 139, 100.0, 400.0),
                                                      (ev.start + timedelta(days=30), ev.start + timedelta(days=42)), False))
        d1, d2 = (d.replace(hour=0, minute=0, second=0, microsecond=0) for d in (d1, d2))
        if i == 0:
            dates = sorted({*_dates(d1 - timedelta(days=96 * 2), 8), d1, d2})
            paths.append(write_ts_package(out, ev, track, dates))
            paths.append(write_daux_package(out, ev, track, dates))
        else:
            daux_dates = sorted({d1, d2, d1 - timedelta(days=12)})
            paths.append(write_daux_package(out, ev, track, daux_dates))
        paths.append(write_int_package(out, ev, track, d1, d2, zipped))
    return paths
