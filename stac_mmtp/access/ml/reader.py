"""Reading one band of a COG onto a chip grid: a header-cached tile reader, GDAL for the rest.

A chip grid is (CRS, affine transform, width, height). When a COG lies on the same CRS and pixel
lattice, the chip is a plain window read (clipped to the file, the rest filled as nodata), done by
`cog`: the file's header and tile offsets are cached (in memory, and on disk for remote files), so
a chip costs one range read per run of adjacent tiles it touches and not yet decoded, locally or
over http(s):// and s3://. Otherwise (another CRS or lattice, or a file `cog` does not read
exactly as GDAL) rasterio reads it: a WarpedVRT reprojects on the fly (nearest for classes and
masks, bilinear when upsampling, average when downsampling).

Handles and connections are per process (dropped after a fork), never stored on a dataset
object, so a dataset pickles to DataLoader workers with no open file or socket.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# GDAL settings for COGs over HTTP(S)/S3: no directory listing on open, multi-range and merged
# range requests, a VSI cache so a header (and a re-read tile) costs no second request.
GDAL_OPTIONS: dict[str, Any] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff",
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": 64 * 1024 * 1024,
    "GDAL_HTTP_MAX_RETRY": 3,
    "GDAL_HTTP_RETRY_DELAY": 1,
    "GDAL_CACHEMAX": 256 * 1024 * 1024,  # bytes: rasterio.Env passes it to GDALSetCacheMax (256 would be 256 B)
}
FAST_READS = True  # False: every read through GDAL (the reference path; benchmarks compare both)
MAX_HANDLES = 256
_handles: OrderedDict[str, Any] = OrderedDict()
_env: Any = None
_env_s3: str | None = None  # the S3 endpoint _env was entered with
_pid = -1

NEAREST_ROLES = {"labels", "labels-raster", "classification", "cloud", "snow-ice", "water-mask", "data-mask"}


@dataclass(frozen=True)
class Grid:
    """A pixel grid: CRS (e.g. "EPSG:32632"), transform (a, b, c, d, e, f), width, height."""

    crs: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int

    @property
    def res(self) -> float:
        return self.transform[0]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        a, _, c, _, e, f = self.transform
        return (c, f + e * self.height, c + a * self.width, f)

    def window(self, col: int, row: int, width: int, height: int) -> Grid:
        a, b, c, d, e, f = self.transform
        return Grid(self.crs, (a, b, c + col * a, d, e, f + row * e), width, height)

    @classmethod
    def from_bounds(cls, crs: str, bounds: tuple[float, float, float, float], res: float) -> Grid:
        """The grid of `res` pixels inside `bounds`, snapped to multiples of `res` (so grids of
        different items of one zone share a lattice and align without resampling)."""
        left, bottom = math.ceil(bounds[0] / res - 1e-6) * res, math.ceil(bounds[1] / res - 1e-6) * res
        right, top = math.floor(bounds[2] / res + 1e-6) * res, math.floor(bounds[3] / res + 1e-6) * res
        return cls(crs, (res, 0.0, left, 0.0, -res, top), max(0, round((right - left) / res)),
                   max(0, round((top - bottom) / res)))


def _process_state() -> None:
    """Forget handles inherited from a parent process (a forked DataLoader worker): GDAL handles
    and their caches must not be shared across processes."""
    global _pid, _env
    if _pid != os.getpid():
        _handles.clear()
        _env = None
        _pid = os.getpid()


def _gdal_env() -> Any:
    """One rasterio.Env per process, entered once and kept: the GDAL options above for every read."""
    global _env, _env_s3
    from stac_mmtp.access.ml import remote

    _process_state()
    if _env is not None and _env_s3 != remote.s3_endpoint():
        close_all()
    if _env is None:
        import rasterio

        _env_s3 = remote.s3_endpoint()
        _env = rasterio.Env(**GDAL_OPTIONS, **_s3_gdal_options())
        _env.__enter__()
    return _env


def _s3_gdal_options() -> dict[str, Any]:
    """/vsis3/ settings for an `s3://` release on a custom endpoint (moto, MinIO, SeaweedFS), and
    unsigned requests when no credentials are found (as `remote.s3_client`)."""
    import urllib.parse

    from stac_mmtp.access.ml import remote

    out: dict[str, Any] = {}
    endpoint = remote.s3_endpoint()
    if endpoint:
        u = urllib.parse.urlsplit(endpoint)
        out.update(AWS_S3_ENDPOINT=u.netloc, AWS_HTTPS="YES" if u.scheme == "https" else "NO",
                   AWS_VIRTUAL_HOSTING="FALSE")
    from stac_mmtp.release.publish import has_credentials

    if not has_credentials():
        out["AWS_NO_SIGN_REQUEST"] = "YES"
    return out


def open_dataset(href: str) -> Any:
    """The process's open rasterio dataset for `href` (opened on first use, LRU-bounded)."""
    import rasterio

    _gdal_env()
    src = _handles.get(href)
    if src is not None:
        _handles.move_to_end(href)
        return src
    try:
        src = rasterio.open(href)
    except rasterio.errors.RasterioIOError as exc:
        from stac_mmtp.errors import InputError

        raise InputError(f"cannot open raster: {exc}", href) from exc
    _handles[href] = src
    if len(_handles) > MAX_HANDLES:
        _handles.popitem(last=False)[1].close()
    return src


def close_all() -> None:
    """Close this process's cached handles, files, HTTP session, tile and header caches (in memory) and
    GDAL environment (the next read re-enters `GDAL_OPTIONS`, so a change to them applies)."""
    global _env
    from stac_mmtp.access.ml import cog, remote

    _process_state()
    cog.clear()
    remote.close()
    while _handles:
        _handles.popitem()[1].close()
    if _env is not None:
        _env.__exit__(None, None, None)
        _env = None


def resampling_for(asset: dict[str, Any], dst_res: float) -> str:
    """nearest for classes and masks; bilinear when upsampling; average when downsampling.

    The source resolution in metres is the band's `raster:spatial_resolution` (also right for a
    lat/lon grid such as FLATSIM's), else the asset's `gsd`, else its `proj:transform` pixel size."""
    roles = set(asset.get("roles", []))
    bands = asset.get("bands") or [{}]
    if roles & NEAREST_ROLES or "classification:classes" in asset or "classification:classes" in bands[0]:
        return "nearest"
    src_res = bands[0].get("raster:spatial_resolution") or asset.get("gsd") or abs(
        (asset.get("proj:transform") or [dst_res])[0])
    return "average" if float(src_res) < dst_res * 0.999 else "bilinear"


def read_on_grid(href: str, grid: Grid, band: int = 1, resampling: str = "bilinear") -> tuple[np.ndarray, np.ndarray]:
    """Band `band` of `href` on `grid`: (values in the file's dtype, float32 when interpolated; valid mask).

    Pixels outside the file or equal to its nodata are invalid (their value is 0 or NaN). The values
    may be a read-only view of a cached tile: copy them before writing.
    """
    if FAST_READS:
        fast = _read_tiles(href, grid, band)
        if fast is not None:
            return fast
    from affine import Affine
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window

    src = open_dataset(href)
    nodata = src.nodata
    dtype = src.dtypes[band - 1]
    st = src.transform
    gt = Affine(*grid.transform)
    aligned = (src.crs is not None and src.crs.to_string() == grid.crs and st.b == 0 and st.d == 0
               and math.isclose(st.a, gt.a) and math.isclose(st.e, gt.e))
    if aligned:
        col = (gt.c - st.c) / st.a
        row = (gt.f - st.f) / st.e
        aligned = abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6
    if aligned:
        col, row = round(col), round(row)
        c0, r0 = max(col, 0), max(row, 0)
        c1, r1 = min(col + grid.width, src.width), min(row + grid.height, src.height)
        out = np.zeros((grid.height, grid.width), dtype=dtype)
        valid = np.zeros((grid.height, grid.width), dtype=bool)
        if c1 > c0 and r1 > r0:
            part = src.read(band, window=Window(c0, r0, c1 - c0, r1 - r0))
            sl = (slice(r0 - row, r1 - row), slice(c0 - col, c1 - col))
            out[sl] = part
            valid[sl] = True
    else:
        # interpolate in float32 (an average of integer DN is not rounded), except classes (nearest)
        work = dtype if resampling == "nearest" else "float32"
        dst_nodata = nodata if nodata is not None else (np.nan if np.issubdtype(np.dtype(work), np.floating) else 0)
        with WarpedVRT(src, crs=grid.crs, transform=gt, width=grid.width, height=grid.height, dtype=work,
                       resampling=Resampling[resampling], src_nodata=nodata, nodata=dst_nodata) as vrt:
            out = vrt.read(band)
            valid = vrt.read_masks(band) > 0
    if nodata is not None:
        valid &= ~np.isnan(out) if np.isnan(nodata) else out != nodata
    elif np.issubdtype(out.dtype, np.floating):
        valid &= ~np.isnan(out)
    return out, valid


def lattice_offset(h: Any, grid: Grid, band: int) -> tuple[int, int] | None:
    """The column and row, in the file of header `h`, of the grid's origin when the grid lies on the
    file's pixel lattice (same CRS and pixel size, whole-pixel offset) and the file has `band`; None
    otherwise: the tile reader cannot cut the grid as a window of the file."""
    if h is None or band > h.samples:
        return None
    return grid_offset(h.crs, h.transform, grid)


def grid_offset(crs: str | None, transform: Sequence[float], grid: Grid) -> tuple[int, int] | None:
    """The column and row, on the lattice of (`crs`, north-up affine `transform`), of the grid's origin
    when the grid lies on that lattice (same CRS and pixel size, whole-pixel offset); else None."""
    if crs != grid.crs:
        return None
    a, _, c, _, e, f = grid.transform
    sa, _, sc, _, se, sf = transform[:6]
    if not (math.isclose(sa, a) and math.isclose(se, e)):
        return None
    col, row = (c - sc) / sa, (f - sf) / se
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return round(col), round(row)


def _read_tiles(href: str, grid: Grid, band: int) -> tuple[np.ndarray, np.ndarray] | None:
    """`read_on_grid` by `cog` when the file lies on the grid's lattice; None otherwise (use GDAL)."""
    from stac_mmtp.access.ml import cog

    h = cog.header(href)  # None without tifffile/imagecodecs (the [ml] extra) or for a file it cannot read
    at = lattice_offset(h, grid, band)
    if h is None or at is None:
        return None
    col, row = at
    c0, r0 = max(col, 0), max(row, 0)
    c1, r1 = min(col + grid.width, h.width), min(row + grid.height, h.height)
    try:
        if (c0, r0, c1, r1) == (col, row, col + grid.width, row + grid.height):  # inside the file: no copy
            out = cog.read(href, col, row, grid.width, grid.height, band)
            valid = None
        else:
            out = np.zeros((grid.height, grid.width), dtype=np.dtype(h.dtype).newbyteorder("="))
            valid = np.zeros((grid.height, grid.width), dtype=bool)
            if c1 > c0 and r1 > r0:
                sl = (slice(r0 - row, r1 - row), slice(c0 - col, c1 - col))
                out[sl] = cog.read(href, c0, r0, c1 - c0, r1 - r0, band)
                valid[sl] = True
    except cog.Unsupported:
        return None
    if h.nodata is not None:
        ok = ~np.isnan(out) if np.isnan(h.nodata) else out != h.nodata
    elif np.issubdtype(out.dtype, np.floating):
        ok = ~np.isnan(out)
    else:
        ok = None
    if valid is None:
        valid = ok if ok is not None else np.ones(out.shape, dtype=bool)
    elif ok is not None:
        valid &= ok
    return out, valid
