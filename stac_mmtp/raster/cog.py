"""The one place that writes rasters: Cloud-Optimized GeoTIFFs through GDAL's COG driver.

Two entry points:
- `clip_to_cog(src, window, dst)`: copy a pixel window of an existing raster with no resampling.
  The window is expressed as a VRT (SrcRect/DstRect) that GDAL's COG driver streams from, so
  a full 10980x10980 band is never held in memory by us.
- `array_to_cog(data, dst, ...)`: write computed pixels (calibrated SAR, masks, RGB composites).

Overview resampling is chosen per layer by the caller: "average" for reflectance, coherence,
velocity and linear power; "nearest" for wrapped phase (never average it) and class masks
("mode" is also accepted for masks).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.io import MemoryFile
from rasterio.transform import Affine
from rasterio.windows import Window

from stac_mmtp.atomic import staged_file

RESAMPLINGS = ("nearest", "average", "mode", "bilinear", "cubic")


THREADS_ENV = "STAC_MMTP_GDAL_THREADS"


def gdal_threads() -> str:
    """GDAL's compression/overview threads for one write: every core for a build in one process; a build
    of N worker processes sets THREADS_ENV to cores // N in each (build/executor.py, dask_executor.py),
    so that N workers do not each start a thread per core and fight over them."""
    return os.environ.get(THREADS_ENV) or "ALL_CPUS"


@dataclass(frozen=True)
class CogProfile:
    compress: str = "DEFLATE"  # or ZSTD
    predictor: str | int = "YES"  # 2 (horizontal) for integers, 3 (floating point) for floats: "YES" lets GDAL pick
    blocksize: int = 512
    overview_resampling: str = "average"
    level: int | None = None

    def creation_options(self) -> dict[str, Any]:
        if self.overview_resampling not in RESAMPLINGS:
            raise ValueError(f"unknown overview resampling {self.overview_resampling!r}")
        opts: dict[str, Any] = {
            "BLOCKSIZE": self.blocksize,
            "COMPRESS": self.compress,
            "PREDICTOR": self.predictor,
            "OVERVIEW_RESAMPLING": self.overview_resampling.upper(),
            # Never reuse the source's overviews: JPEG 2000 resolution levels (and a source's own
            # overviews) are not made with our per-layer resampling (class masks, wrapped phase).
            "OVERVIEWS": "IGNORE_EXISTING",
            "NUM_THREADS": gdal_threads(),
            "BIGTIFF": "IF_SAFER",
        }
        if self.level is not None:
            opts["LEVEL"] = self.level
        return opts


def _vrt_clip_xml(src: rasterio.io.DatasetReader, path: str, window: Window, bands: list[int]) -> str:
    """A VRT selecting `window` of `path`: same grid, same pixels, nothing resampled."""
    col, row, w, h = int(window.col_off), int(window.row_off), int(window.width), int(window.height)
    t = src.transform @ Affine.translation(col, row)
    parts = [
        f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}">',
        f"<SRS>{escape(src.crs.to_wkt())}</SRS>" if src.crs else "",
        f"<GeoTransform>{t.c!r}, {t.a!r}, {t.b!r}, {t.f!r}, {t.d!r}, {t.e!r}</GeoTransform>",
    ]
    for i, b in enumerate(bands, start=1):
        dtype = {"uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "float32": "Float32", "float64": "Float64",
                 "int32": "Int32", "uint32": "UInt32"}[src.dtypes[b - 1]]
        nodata = src.nodatavals[b - 1]
        desc = src.descriptions[b - 1]
        parts += [
            f'<VRTRasterBand dataType="{dtype}" band="{i}">',
            f"<NoDataValue>{nodata!r}</NoDataValue>" if nodata is not None else "",
            f"<Description>{escape(desc)}</Description>" if desc else "",
            "<SimpleSource>",
            f'<SourceFilename relativeToVRT="0">{escape(path)}</SourceFilename>',
            f"<SourceBand>{b}</SourceBand>",
            f'<SrcRect xOff="{col}" yOff="{row}" xSize="{w}" ySize="{h}"/>',
            f'<DstRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>',
            "</SimpleSource>",
            "</VRTRasterBand>",
        ]
    parts.append("</VRTDataset>")
    return "".join(parts)


def clip_to_cog(
    src_path: str | Path,
    dst: Path,
    window: Window | None = None,
    profile: CogProfile | None = None,
    bands: list[int] | None = None,
    nodata: float | None = None,
    descriptions: list[str] | None = None,
    tags: dict[str, str] | None = None,
) -> Path:
    """Write `window` (default: all) of `src_path` as a COG at `dst`, on the source's own pixel grid."""
    profile = profile or CogProfile()
    src_path = str(src_path)
    with rasterio.open(src_path) as src:
        bands = bands or list(range(1, src.count + 1))
        window = window or Window(0, 0, src.width, src.height)
        window = window.round_offsets().round_lengths().intersection(Window(0, 0, src.width, src.height))
        vrt = _vrt_clip_xml(src, src_path, window, bands)
    with staged_file(dst) as tmp, rasterio.Env(GDAL_NUM_THREADS=gdal_threads(), GDAL_CACHEMAX=512 * 1024 * 1024):
        opts = profile.creation_options()
        if nodata is not None or descriptions:
            # Band metadata the source lacks goes into the VRT that GDAL streams from.
            vrt = _with_band_metadata(vrt, nodata, descriptions)
        rasterio.shutil.copy(vrt, str(tmp), driver="COG", **opts)
        if tags:
            with rasterio.open(tmp, "r+") as ds:
                ds.update_tags(**tags)
    return dst


def _with_band_metadata(vrt: str, nodata: float | None, descriptions: list[str] | None) -> str:
    """Insert NoDataValue / Description into each VRTRasterBand of a VRT document."""
    import re

    bands = re.split(r"(<VRTRasterBand [^>]*>)", vrt)
    out = [bands[0]]
    for idx, i in enumerate(range(1, len(bands), 2)):
        head, body = bands[i], bands[i + 1]
        if nodata is not None:
            body = re.sub(r"<NoDataValue>[^<]*</NoDataValue>", "", body)
            head += f"<NoDataValue>{nodata!r}</NoDataValue>"
        if descriptions and idx < len(descriptions):
            body = re.sub(r"<Description>[^<]*</Description>", "", body)
            head += f"<Description>{escape(descriptions[idx])}</Description>"
        out += [head, body]
    return "".join(out)


def array_to_cog(
    data: np.ndarray,
    dst: Path,
    crs: CRS | str | None,
    transform: Affine,
    nodata: float | None = None,
    profile: CogProfile | None = None,
    descriptions: list[str] | None = None,
    tags: dict[str, str] | None = None,
    band_tags: list[dict[str, str]] | None = None,
    colorinterp: list[Any] | None = None,
) -> Path:
    """Write a (bands, rows, cols) or (rows, cols) array as a COG at `dst` (atomically)."""
    profile = profile or CogProfile()
    if data.ndim == 2:
        data = data[np.newaxis]
    count, height, width = data.shape
    with staged_file(dst) as tmp, MemoryFile() as mem:
        with mem.open(driver="GTiff", width=width, height=height, count=count, dtype=data.dtype, crs=crs,
                      transform=transform, nodata=nodata) as ds:
            ds.write(data)
            for i, d in enumerate(descriptions or [], start=1):
                ds.set_band_description(i, d)
            if tags:
                ds.update_tags(**tags)
            for i, bt in enumerate(band_tags or [], start=1):
                ds.update_tags(i, **bt)
            if colorinterp:
                ds.colorinterp = colorinterp
        with mem.open() as src, rasterio.Env(GDAL_NUM_THREADS=gdal_threads()):
            rasterio.shutil.copy(src, str(tmp), driver="COG", **profile.creation_options())
    return dst


def is_valid_cog(path: Path) -> tuple[bool, list[str], list[str]]:
    """rio-cogeo's validator (the reference check): (valid, errors, warnings)."""
    from rio_cogeo.cogeo import cog_validate

    valid, errors, warnings = cog_validate(str(path), quiet=True)
    # rio-cogeo calls an overview "not tiled" when its width equals the block width (a 512 x 550
    # overview of a 1024 x 1100 clip): a tiled 512x512 block layout is reported as strips. Keep
    # the error only when GDAL's own view of that level is strips (full-width, not tile-high blocks).
    kept = []
    for err in errors:
        if err.startswith("Overview of index ") and err.endswith(" is not tiled"):
            level = int(err.split()[3])
            with rasterio.open(path, OVERVIEW_LEVEL=level) as ovr:
                rows, cols = ovr.block_shapes[0]
                if rows == cols and rows >= 16 and ovr.height > rows:
                    continue  # square tiles: tiled after all
        kept.append(err)
    return (not kept, kept, warnings) if not valid else (valid, errors, warnings)


