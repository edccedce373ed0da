"""MGRS tile naming checked against the tiles of real Sentinel-2 products."""

from __future__ import annotations

import pytest
from pyproj import Transformer

from stac_mmtp.raster.geo import mgrs_tile, utm_epsg
from stac_mmtp.sources.sentinel2 import Sentinel2


def test_mgrs_tile_of_real_products(real_fixtures) -> None:
    root = real_fixtures / "stactools-sentinel2"
    seen = []
    for d in sorted(p for p in root.iterdir() if p.name.startswith("S2")):
        prod = Sentinel2().parse(d)
        ulx, uly = prod.geopositions[10][:2]
        # a point well inside the tile (tiles overlap their neighbours by 9.8 km on the east/south edges)
        lon, lat = Transformer.from_crs(prod.epsg, 4326, always_xy=True).transform(ulx + 55_000, uly - 55_000)
        assert utm_epsg(lon, lat) == prod.epsg
        seen.append(mgrs_tile(lon, lat))
    assert seen == ["46RER", "34VEL", "22HBD", "33XWJ"]


@pytest.mark.parametrize(("lon", "lat", "tile"), [(11.04, 60.07, "32VPM")])
def test_mgrs_tile_of_gjerdrum(lon: float, lat: float, tile: str) -> None:
    assert mgrs_tile(lon, lat) == tile


def test_empty_multipolygon_members_never_crash() -> None:
    """STAC APIs serve MultiPolygons with empty members (`[]` or `[[]]`): the helpers drop them."""
    from stac_mmtp.raster.geo import footprint_from_geojson, geometry_bbox, round_geometry

    ring = [[10.0, 60.0], [10.5, 60.0], [10.5, 60.4], [10.0, 60.4], [10.0, 60.0]]
    geom = {"type": "MultiPolygon", "coordinates": [[], [ring], [[]]]}
    assert round_geometry(geom) == {"type": "MultiPolygon", "coordinates": [[ring]]}
    fp = footprint_from_geojson(geom, "item.json")
    assert fp.geom_type == "Polygon" and fp.bounds == (10.0, 60.0, 10.5, 60.4)
    assert geometry_bbox(fp) == [10.0, 60.0, 10.5, 60.4]
    with pytest.raises(Exception, match="item.json: the footprint is empty"):
        footprint_from_geojson({"type": "MultiPolygon", "coordinates": [[], [[]]]}, "item.json")


def test_antimeridian_bbox_best_practice() -> None:
    """The example of the STAC best practices: a polygon split at 180 degrees, bbox west > east."""
    from stac_mmtp.raster.geo import footprint_polygon, geometry_bbox

    fp = footprint_polygon([(172.9, 1.3), (-172.7, 1.3), (-172.7, 1.9), (172.9, 1.9), (172.9, 1.3)], "x")
    assert fp.geom_type == "MultiPolygon"
    assert sorted(p.bounds for p in fp.geoms) == [(-180.0, 1.3, -172.7, 1.9), (172.9, 1.3, 180.0, 1.9)]
    assert geometry_bbox(fp) == [172.9, 1.3, -172.7, 1.9]
