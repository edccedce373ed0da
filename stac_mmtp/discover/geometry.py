"""AOI coverage of a footprint: area(footprint ∩ AOI) / area(AOI), on an equal-area projection.

Footprints as APIs serve them: polygons across the antimeridian (split into a MultiPolygon, or one
ring jumping from +179 to -179) and MultiPolygons with empty members. Longitudes are unwrapped
around the AOI's centre before projecting, so both halves of a split footprint meet again.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import MultiPolygon, Polygon
from shapely.ops import unary_union


def _unwrap(lon: float, centre: float) -> float:
    return ((lon - centre + 180.0) % 360.0) - 180.0 + centre


def _polygons(geojson: dict[str, Any]) -> list[list[list[list[float]]]]:
    kind = geojson.get("type")
    coords = geojson.get("coordinates") or []
    if kind == "Polygon":
        return [coords]
    if kind == "MultiPolygon":
        return list(coords)
    if kind == "GeometryCollection":
        return [p for g in geojson.get("geometries") or [] for p in _polygons(g)]
    return []


def to_shape(geojson: dict[str, Any], centre_lon: float) -> shapely.Geometry:
    """A valid (Multi)Polygon in unwrapped lon/lat; empty members and degenerate rings are dropped."""
    parts = []
    for poly in _polygons(geojson):
        rings = [[(_unwrap(float(x), centre_lon), float(y)) for x, y, *_ in ring] for ring in poly or [] if ring]
        rings = [r for r in rings if len(r) >= 3]
        if not rings:
            continue
        p = shapely.make_valid(Polygon(rings[0], rings[1:]))
        if not p.is_empty:
            parts.append(p)
    if not parts:
        return MultiPolygon()
    return unary_union(parts)


def _centre_lon(geojson: dict[str, Any]) -> float:
    """The AOI's centre longitude, robust to an AOI that itself straddles the antimeridian."""
    import math

    xs = [float(pt[0]) for poly in _polygons(geojson) for ring in poly or [] for pt in ring]
    if not xs:
        return 0.0
    s = sum(math.sin(math.radians(x)) for x in xs)
    c = sum(math.cos(math.radians(x)) for x in xs)
    return math.degrees(math.atan2(s, c))


@lru_cache(maxsize=256)
def _laea(proj4: str) -> Transformer:
    """Lambert azimuthal equal-area centred on the AOI (equal-area everywhere, poles included); one
    transformer per AOI, not one per footprint."""
    return Transformer.from_crs("EPSG:4326", CRS.from_proj4(proj4), always_xy=True)


def aoi_coverage(footprint: dict[str, Any], aoi: dict[str, Any]) -> float:
    """Fraction of the AOI's area the footprint covers, in [0, 1], rounded to 4 decimals."""
    centre = _centre_lon(aoi)
    a = to_shape(aoi, centre)
    if a.is_empty:
        return 0.0
    f = to_shape(footprint, centre)
    if f.is_empty:
        return 0.0
    tr = _laea(f"+proj=laea +lat_0={a.centroid.y:.6f} +lon_0={centre:.6f} +datum=WGS84 +units=m")

    def project(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))

    pa, pf = shapely.transform(a, project), shapely.transform(f, project)
    if pa.area == 0:
        return 0.0
    return round(min(1.0, pf.intersection(pa).area / pa.area), 4)
