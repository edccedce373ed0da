"""Cloud over the AOI from the Sentinel-2 L2A scene classification (SCL), read remotely window by window."""

from __future__ import annotations

import math
from typing import Any

from stac_mmtp.discover.providers import sign
from stac_mmtp.discover.redact import redact
from stac_mmtp.errors import ProductError

# SCL classes that hide the ground: 3 cloud shadow, 8 cloud medium, 9 cloud high, 10 thin cirrus
CLOUD_CLASSES = (3, 8, 9, 10)
NO_DATA = 0


def vsi_path(href: str) -> str:
    if href.startswith(("http://", "https://")):
        return "/vsicurl/" + href
    if href.startswith("s3://"):
        return "/vsis3/" + href[5:]
    return href


def scl_cloud_percent(item: dict[str, Any], aoi: dict[str, Any], provider: str = "") -> float | None:
    """Percent of the AOI's valid SCL pixels that are cloud, shadow or cirrus; None when no valid pixel."""
    import numpy as np
    import rasterio
    from rasterio.features import geometry_mask
    from rasterio.warp import transform_geom
    from rasterio.windows import Window, from_bounds
    from shapely.geometry import shape

    asset = next((a for k, a in item.get("assets", {}).items() if k.lower() == "scl"), None)
    if asset is None:
        return None
    href = asset["href"]
    try:
        with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", GDAL_HTTP_MERGE_CONSECUTIVE_RANGES="YES",
                          GDAL_HTTP_MAX_RETRY="3", GDAL_HTTP_RETRY_DELAY="1"), rasterio.open(vsi_path(sign(href, provider))) as ds:
            geom = transform_geom("EPSG:4326", ds.crs, aoi)
            w = from_bounds(*shape(geom).bounds, transform=ds.transform)
            c0, r0 = math.floor(w.col_off), math.floor(w.row_off)  # every pixel the AOI touches, edges included
            c1, r1 = math.ceil(w.col_off + w.width), math.ceil(w.row_off + w.height)
            win = Window(c0, r0, c1 - c0, r1 - r0).intersection(Window(0, 0, ds.width, ds.height))
            data = ds.read(1, window=win)
            inside = ~geometry_mask([geom], out_shape=data.shape, transform=ds.window_transform(win))
    except (rasterio.errors.RasterioError, ValueError) as exc:
        raise ProductError(f"cannot read the SCL window: {exc}", redact(href)) from exc
    valid = inside & (data != NO_DATA)
    n = int(valid.sum())
    if n == 0:
        return None
    return round(100.0 * int((valid & np.isin(data, CLOUD_CLASSES)).sum()) / n, 2)
