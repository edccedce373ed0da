"""MGRS tile naming checked against the tiles of real Sentinel-2 products."""

from __future__ import annotations

import pytest
from pyproj import Transformer

from stac_mmtp.geo import mgrs_tile, utm_epsg
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
