"""Small geometry helpers shared by the sources (reprojection, UTM zone of an AOI)."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
import shapely.affinity
from pyproj import CRS, Transformer
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry


def reproject(geom: BaseGeometry, src: CRS | str | int, dst: CRS | str | int) -> BaseGeometry:
    """`geom` from `src` to `dst` (lon/lat order for geographic CRSs: always_xy)."""
    tr = Transformer.from_crs(src, dst, always_xy=True)

    def _xy(coords: np.ndarray) -> np.ndarray:
        x, y = tr.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, _xy)


def reproject_lonlat(geom: BaseGeometry, src: CRS | str | int) -> BaseGeometry:
    """`geom` (a polygon in a projected CRS) in lon/lat, split into a MultiPolygon where it crosses the
    antimeridian (a UTM zone 60 or 1 tile), as the STAC best practice asks."""
    ll = reproject(geom, src, 4326)
    if isinstance(ll, Polygon) and not ll.is_empty:
        lons = [c[0] for c in ll.exterior.coords]
        if max(lons) - min(lons) > 180:
            return split_antimeridian(list(ll.exterior.coords), "reprojected geometry")
    return ll


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


def footprint_polygon(coords: list[tuple[float, float]], where: str) -> Polygon | MultiPolygon:
    """A product footprint (lon, lat pairs) as a valid polygon.

    A ring that crosses the antimeridian (consecutive longitudes more than 180 degrees apart) is split
    there into a MultiPolygon, as the STAC best practice asks (a polygon must not wrap the globe).
    """
    from stac_mmtp.errors import ProductError

    if len(coords) < 3:
        raise ProductError("footprint has fewer than 3 points", where)
    lons = [c[0] for c in coords]
    if max(lons) - min(lons) > 180:
        return split_antimeridian(coords, where)
    poly = Polygon(coords)
    return poly if poly.is_valid else poly.buffer(0)


def footprint_from_geojson(geom: Any, where: str) -> Polygon | MultiPolygon:
    """A GeoJSON Polygon or MultiPolygon footprint (as AWS productInfo.json or a STAC API gives it) as
    a valid lon/lat geometry: empty members are dropped, each part is split at the antimeridian."""
    from stac_mmtp.errors import ProductError

    kind = geom.get("type") if isinstance(geom, dict) else None
    if kind == "Polygon":
        members = [geom.get("coordinates") or []]
    elif kind == "MultiPolygon":
        members = geom.get("coordinates") or []
    else:
        raise ProductError(f"the footprint is a {kind or type(geom).__name__}, not a Polygon or MultiPolygon", where)
    parts: list[Polygon] = []
    try:
        for rings in members:
            if not rings or not rings[0]:
                continue  # an empty member: nothing to keep
            g = footprint_polygon([(float(c[0]), float(c[1])) for c in rings[0]], where)
            parts += list(getattr(g, "geoms", [g]))
    except (TypeError, ValueError, IndexError):
        raise ProductError("malformed footprint coordinates", where) from None
    if not parts:
        raise ProductError("the footprint is empty", where)
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def split_antimeridian(coords: list[tuple[float, float]], where: str) -> MultiPolygon:
    """Split a lon/lat ring crossing the antimeridian into its eastern and western parts."""
    from stac_mmtp.errors import ProductError

    # unwrap to a continuous ring east of 180 (the western longitudes + 360), then cut at 180
    ring = Polygon([(lon + 360 if lon < 0 else lon, lat) for lon, lat in coords])
    ring = ring if ring.is_valid else ring.buffer(0)
    east = ring.intersection(box(0, -90, 180, 90))
    west = shapely.affinity.translate(ring.intersection(box(180, -90, 360, 90)), xoff=-360)
    parts = [p for g in (east, west) for p in getattr(g, "geoms", [g]) if isinstance(p, Polygon) and not p.is_empty]
    if not parts:
        raise ProductError("the footprint crosses the antimeridian and could not be split", where)
    return MultiPolygon(parts)


def geometry_bbox(geom: BaseGeometry) -> list[float]:
    """The STAC bbox of a lon/lat geometry, rounded to 1e-6 degree. A geometry split at the
    antimeridian gets west > east (e.g. [179.8, -17.2, -179.9, -16.5]), per the STAC best practice."""
    parts = [p for p in getattr(geom, "geoms", [geom]) if not p.is_empty]
    if not parts:
        raise ValueError("empty geometry has no bbox")
    minx, miny, maxx, maxy = shapely.GeometryCollection(parts).bounds
    if minx <= -180 and maxx >= 180 and len(parts) > 1:
        west = min(p.bounds[0] for p in parts if p.bounds[0] > -180)
        east = max(p.bounds[2] for p in parts if p.bounds[2] < 180)
        minx, maxx = west, east
    return [round(v, 6) for v in (minx, miny, maxx, maxy)]


def round_geometry(geom: dict[str, Any]) -> dict[str, Any]:
    """GeoJSON coordinates rounded to 1e-7 degree (about 1 cm): stable, compact items.

    Empty members (a MultiPolygon part with no ring, as some STAC APIs serve them) are dropped."""
    def r(c: Any) -> Any:
        if len(c) and isinstance(c[0], float | int):
            return [round(v, 7) for v in c]
        return [x for x in (r(x) for x in c) if len(x)]

    return {"type": geom["type"], "coordinates": r(geom["coordinates"])}
