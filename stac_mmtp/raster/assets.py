"""Asset helpers shared by the sources: file extension fields, thumbnails."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from stac_mmtp.atomic import staged_file

SHA256_MULTIHASH_PREFIX = "1220"  # multihash: 0x12 = sha2-256, 0x20 = 32 bytes


def file_checksum(path: Path, chunk: int = 1 << 20) -> str:
    """sha2-256 multihash (hex) of a file, as `file:checksum` expects."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return SHA256_MULTIHASH_PREFIX + h.hexdigest()


def file_fields(path: Path) -> dict[str, Any]:
    return {"file:checksum": file_checksum(path), "file:size": path.stat().st_size}


def stretch_to_uint8(data: np.ndarray, valid: np.ndarray | None = None, pmin: float = 2, pmax: float = 98) -> np.ndarray:
    """Percentile stretch of one band to 1..255 (0 stays for no data)."""
    valid = np.isfinite(data) if valid is None else valid & np.isfinite(data)
    out = np.zeros(data.shape, dtype=np.uint8)
    if not valid.any():
        return out
    lo, hi = np.percentile(data[valid], [pmin, pmax])
    scale = 254.0 / (hi - lo) if hi > lo else 0.0
    out[valid] = (np.clip((data[valid] - lo) * scale, 0, 254) + 1).astype(np.uint8)
    return out


def write_png(rgb: np.ndarray, path: Path, max_size: int = 256) -> Path:
    """Write a (3|4|1, rows, cols) uint8 array as a PNG no larger than `max_size` (nearest decimation)."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    if rgb.ndim == 2:
        rgb = rgb[np.newaxis]
    step = max(1, int(np.ceil(max(rgb.shape[1:]) / max_size)))
    small = np.ascontiguousarray(rgb[:, ::step, ::step])
    with staged_file(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(tmp, "w", driver="PNG", width=small.shape[2], height=small.shape[1],
                           count=small.shape[0], dtype="uint8") as ds:
            ds.write(small)
        aux = Path(str(tmp) + ".aux.xml")
        aux.unlink(missing_ok=True)
    return path


def write_overview_cog(rgb: np.ndarray, dst: Path, crs: Any, transform: Any, title: str,
                       description: str) -> dict[str, Any]:
    """Write a rendered (3, rows, cols) uint8 picture (0 = no data) as an 8-bit RGB COG; return its asset
    (without `type`: the caller adds the COG media type).

    STAC Browser (ol-stac) draws an item's COG with role `overview` on its map, in the browser, by range
    reads: float32 sigma0 or phase would show as a flat grey, a rendered 8-bit picture shows what the data is.
    """
    from rasterio.enums import ColorInterp

    from stac_mmtp.raster.cog import CogProfile, array_to_cog

    array_to_cog(np.ascontiguousarray(rgb, dtype=np.uint8), dst, crs, transform, nodata=0,
                 profile=CogProfile(overview_resampling="nearest"), descriptions=["red", "green", "blue"],
                 colorinterp=[ColorInterp.red, ColorInterp.green, ColorInterp.blue])
    t = transform
    return {
        "href": f"./{dst.name}", "title": title, "description": description, "roles": ["overview", "visual"],
        "proj:code": crs.to_string() if hasattr(crs, "to_string") else str(crs),
        "proj:shape": [int(rgb.shape[1]), int(rgb.shape[2])],
        "proj:transform": [t.a, t.b, t.c, t.d, t.e, t.f],
        "bands": [{"name": c, "nodata": 0, "data_type": "uint8"} for c in ("red", "green", "blue")],
        **file_fields(dst),
    }
