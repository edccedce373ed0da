"""Small geometry helpers shared by the sources (reprojection, UTM zone of an AOI)."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry


def reproject(geom: BaseGeometry, src: CRS | str | int, dst: CRS | str | int) -> BaseGeometry:
    """`geom` from `src` to `dst` (lon/lat order for geographic CRSs: always_xy)."""
    tr = Transformer.from_crs(src, dst, always_xy=True)

    def _xy(coords: np.ndarray) -> np.ndarray:
        x, y = tr.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, _xy)


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 UTM zone holding (lon, lat)."""
    zone = min(int((lon + 180) // 6) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


def mgrs_tile(lon: float, lat: float) -> str:
    """The 5-character MGRS tile (Sentinel-2 tiling grid) holding (lon, lat), e.g. "32VPM".

    UTM zone + latitude band + the 100 km square letters (column letters cycle every 3 zones,
    row letters every 2 000 km with a 5-letter shift on even zones). Norway/Svalbard zone
    exceptions are not applied: the sample writer is the only caller.
    """
    epsg = utm_epsg(lon, lat)
    zone = epsg % 100
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    band = "CDEFGHJKLMNPQRSTUVWXX"[max(0, min(20, int((lat + 80) // 8)))]
    col = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")[(zone - 1) % 3][int(x // 100_000) - 1]
    row = "ABCDEFGHJKLMNPQRSTUV"[(int(y // 100_000) + (5 if zone % 2 == 0 else 0)) % 20]
    return f"{zone:02d}{band}{col}{row}"


def footprint_polygon(coords: list[tuple[float, float]], where: str) -> Polygon:
    """A product footprint (lon, lat pairs) as a valid polygon; antimeridian crossings are refused."""
    from .errors import ProductError

    if len(coords) < 3:
        raise ProductError("footprint has fewer than 3 points", where)
    lons = [c[0] for c in coords]
    if max(lons) - min(lons) > 180:
        raise ProductError("the footprint crosses the antimeridian: not supported yet (split the product)", where)
    poly = Polygon(coords)
    return poly if poly.is_valid else poly.buffer(0)


def round_geometry(geom: dict[str, Any]) -> dict[str, Any]:
    """GeoJSON coordinates rounded to 1e-7 degree (about 1 cm): stable, compact items."""
    def r(c: Any) -> Any:
        return [round(v, 7) for v in c] if isinstance(c[0], float | int) else [r(x) for x in c]

    return {"type": geom["type"], "coordinates": r(geom["coordinates"])}
