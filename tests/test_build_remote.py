"""`build --acquisitions`: Sentinel-2 L2A clipped straight from remote COGs, read window by window.

A real STAC API on 127.0.0.1 (stac-fastapi-geoparquet) serves the real Earth Search item of tile
29RKH with its asset hrefs rewritten to a range-capable HTTP server on 127.0.0.1 that holds the real
(downsampled) COGs of rio-tiler-pds, read in place. `discover` writes the plan, `build` reads it.
The fixture ships 6 of the item's COGs (B01, B04, B8A, AOT, SCL, TCI): the item served lists those.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from helpers import box, write_event
from pyproj import Transformer
from range_server import RangeServer
from rasterio.windows import Window
from stac_api import stac_api

from stac_mmtp.build import build
from stac_mmtp.dataset.inventory import load_inventory
from stac_mmtp.discover import DiscoverOptions, discover_events
from stac_mmtp.discover.providers import resolve
from stac_mmtp.sources import BuildOptions

TILE_DIR = "sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A"
REAL_ID = "S2A_29RKH_20200219_0_L2A"
COPY_ID = "S2A_29RKH_20200213_0_L2A"
CUT_ID = "S2A_29RKH_20200208_0_L2A"
EV = "sahara-remote-test-2020"
# AOI centre: pixel (768, 768) of B04 (100 m, origin 199980 / 2800020 in EPSG:32629), i.e. inside tile (1, 1)
LON, LAT = -11.204756, 24.606987


@pytest.fixture(scope="module")
def built(real_fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = real_fixtures / "rio-tiler-pds" / "sentinel-cogs"
    real = json.loads((root / TILE_DIR / f"{REAL_ID}.json").read_text())
    srv = RangeServer(root)
    tmp = tmp_path_factory.mktemp("remote")
    (tmp / "store").mkdir()  # a second store holding a truncated copy of B04 (a transfer cut short)
    (tmp / "store" / "B04.tif").write_bytes((root / TILE_DIR / "B04.tif").read_bytes()[:900_000])
    cut_srv = RangeServer(tmp / "store")
    try:
        item = copy.deepcopy(real)
        for key, a in list(item["assets"].items()):
            rel = a["href"].split(".amazonaws.com/", 1)[-1]
            if a["href"].startswith("https://") and (root / rel).is_file():
                a["href"] = f"{srv.url}/{rel}"
            else:
                del item["assets"][key]
        assert sorted(item["assets"]) == ["aot", "coastal", "nir08", "red", "scl", "visual"]
        gone = copy.deepcopy(item)  # an earlier acquisition whose red band has disappeared from the store
        gone["id"] = COPY_ID
        gone["properties"]["datetime"] = "2020-02-13T11:34:25.405Z"
        gone["properties"]["description"] = f"test copy of {REAL_ID} moved by -6 days"
        gone["assets"]["red"]["href"] = f"{srv.url}/{TILE_DIR}/B04-deleted.tif?sig=SECRET"
        cut = copy.deepcopy(gone)
        cut["id"] = CUT_ID
        cut["properties"]["datetime"] = "2020-02-08T11:34:25.405Z"
        cut["properties"]["description"] = f"test copy of {REAL_ID} moved by -11 days"
        cut["assets"]["red"]["href"] = f"{cut_srv.url}/B04.tif"
        events = tmp / "events"
        write_event(events, EV, geometry=box(LON, LAT, 0.02), site=[LON, LAT], countries=["ESH"],
                    datetime="2020-02-16T00:00:00Z", datetime_precision="day")
        with stac_api({"sentinel-2-l2a": [item, gone, cut], "sentinel-1-grd": [item]}, tmp / "api") as api:
            report = discover_events(load_inventory(events), resolve([api]), tmp / "plans",
                                     DiscoverOptions(modalities=("s2",), retries=2, backoff=0.05))
            assert report.ok, report.failures
            srv.log.clear()
            out = tmp / "catalog"
            result = build(events, [], out, BuildOptions(jobs=1, buffer_m=500), acquisitions=tmp / "plans")
            yield {"report": result, "out": out, "log": srv.log, "root": root, "api": api,
                   "plan": json.loads((tmp / "plans" / f"{EV}.json").read_text())}
    finally:
        srv.stop()
        cut_srv.stop()


def test_plan_lists_both_and_the_missing_asset_fails_alone(built: dict[str, Any]) -> None:
    plan = built["plan"]
    assert [(a["item_id"], a["roles"]) for a in plan["acquisitions"]] == [
        (CUT_ID, ["pre-event"]), (COPY_ID, ["pre-event"]), (REAL_ID, ["first-post-event", "first-usable-post-event"])]
    report = built["report"]
    by_id = {r.item_id: r for r in report.results}
    assert by_id[f"{EV}_{REAL_ID}"].ok
    failed = by_id[f"{EV}_{COPY_ID}"]
    assert not failed.ok
    assert f"/{TILE_DIR}/B04-deleted.tif" in failed.message and "SECRET" not in failed.message
    truncated = by_id[f"{EV}_{CUT_ID}"]
    assert not truncated.ok and "/B04.tif" in truncated.message, truncated.message
    assert report.collections["sentinel-2"] == 1


def test_remote_clip_equals_the_local_clip_pixel_for_pixel(built: dict[str, Any]) -> None:
    item_dir = built["out"] / "sentinel-2" / f"{EV}_{REAL_ID}"
    to_utm = Transformer.from_crs(4326, 32629, always_xy=True)
    x, y = to_utm.transform(LON, LAT)
    for key, name in (("red", "B04.tif"), ("scl", "SCL.tif"), ("visual", "TCI.tif"), ("nir08", "B8A.tif")):
        with rasterio.open(item_dir / f"{key}.tif") as got, rasterio.open(built["root"] / TILE_DIR / name) as local:
            assert got.crs.to_epsg() == 32629
            res = local.transform.a
            col, row = (got.transform.c - 199980) / res, (2800020 - got.transform.f) / res
            assert col == int(col) and row == int(row)  # on the source grid: nothing resampled
            want = local.read(window=Window(int(col), int(row), got.width, got.height))
            assert np.array_equal(got.read(), want), key
            # the clip covers the AOI (0.02 degree each side) plus the 500 m buffer
            left, bottom, right, top = got.bounds
            assert left <= x - 2000 - 500 and right >= x + 2000 + 500 and bottom <= y - 2200 - 500 and top >= y + 2200 + 500


def test_only_the_tiles_the_aoi_needs_were_fetched(built: dict[str, Any]) -> None:
    item_dir = built["out"] / "sentinel-2" / f"{EV}_{REAL_ID}"
    with rasterio.open(item_dir / "red.tif") as got, rasterio.open(built["root"] / TILE_DIR / "B04.tif") as local:
        col0, row0 = int((got.transform.c - 199980) / 100), int((2800020 - got.transform.f) / 100)
        need = {(r, c) for r in range(row0 // 512, (row0 + got.height - 1) // 512 + 1)
                for c in range(col0 // 512, (col0 + got.width - 1) // 512 + 1)}
        tiles = {}
        for r in range(3):
            for c in range(3):
                off = int(local.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=1))
                size = int(local.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=1))
                tiles[(r, c)] = (off, off + size)
    assert need == {(1, 1)}
    gets = [q for q in built["log"].for_path("/B04.tif") if q.method == "GET"]
    assert gets and all(q.status == 206 for q in gets)  # range reads only, never the whole file

    def fetched(lo: int, hi: int) -> int:
        return sum(max(0, min(hi, q.end + 1) - max(lo, q.start)) for q in gets)

    lo, hi = tiles[(1, 1)]
    assert fetched(lo, hi) == hi - lo  # the tile the AOI needs, whole
    for t, (a, b) in tiles.items():
        if t not in need:  # the others at most grazed by /vsicurl/'s 16 KiB read granularity
            assert fetched(a, b) <= 16384, (t, fetched(a, b), b - a)
    total = sum(q.sent for q in gets)
    assert total < (hi - lo) + 3 * 16384 + 16384  # the needed tile, the header and chunk rounding


def test_item_keeps_its_provenance_and_validates(built: dict[str, Any], schema_store: Any) -> None:
    from stac_mmtp.release.validate import validate_tree

    out = built["out"]
    item = json.loads((out / "sentinel-2" / f"{EV}_{REAL_ID}" / f"{EV}_{REAL_ID}.json").read_text())
    links = {link["rel"]: link["href"] for link in item["links"]}
    assert links["via"] == f"{built['api']}/collections/sentinel-2-l2a/items/{REAL_ID}"
    assert links["derived_from"] == links["via"]
    p = item["properties"]
    assert p["s2:product_uri"] == "S2A_MSIL2A_20200219T112111_N0214_R037_T29RKH_20200219T123947.SAFE"
    assert p["datetime"] == "2020-02-19T11:34:25.405Z" and p["mmtp:temporal_role"] == "first-post-event"
    assert p["sat:relative_orbit"] == 37  # R037 of the product name
    assert p["license"] == "other" and p["proj:code"] == "EPSG:32629" and p["platform"] == "sentinel-2a"
    assert [pr["name"] for pr in p["providers"]] == ["ESA", built["api"], "stac-mmtp"]
    assert item["assets"]["red"]["bands"][0]["raster:scale"] == 0.0001
    assert sorted(item["assets"]) == ["aot", "coastal", "nir08", "red", "scl", "thumbnail", "visual"]
    report = validate_tree(out, schema_store)
    assert [str(p) for p in report.problems] == []


def test_aoi_cloud_reads_the_scl_window(built: dict[str, Any], tmp_path: Path) -> None:
    """--aoi-cloud: cloud from the remote SCL over the AOI, checked against the local SCL counted here."""
    from shapely.geometry import Point, shape

    from stac_mmtp.discover.selection import Selection

    lon, lat = -10.969110, 25.004773  # where the real SCL has about half of its pixels cloudy or cirrus
    events = tmp_path / "events"
    write_event(events, EV, geometry=box(lon, lat, 0.02), site=[lon, lat], countries=["ESH"],
                datetime="2020-02-16T00:00:00Z", datetime_precision="day")
    opts = DiscoverOptions(modalities=("s2",), retries=2, backoff=0.05, selection=Selection(aoi_cloud=True))
    report = discover_events(load_inventory(events), resolve([built["api"]]), tmp_path / "plans", opts)
    assert report.ok, report.failures
    plan = json.loads((tmp_path / "plans" / f"{EV}.json").read_text())
    rec = next(a for a in plan["acquisitions"] if a["item_id"] == REAL_ID)
    got = rec["cloud"]
    to_utm = Transformer.from_crs(4326, 32629, always_xy=True)
    ring = box(lon, lat, 0.02)["coordinates"][0]
    aoi = shape({"type": "Polygon", "coordinates": [[to_utm.transform(x, y) for x, y in ring]]})
    with rasterio.open(built["root"] / TILE_DIR / "SCL.tif") as scl:
        data = scl.read(1)
        valid = cloudy = 0
        (r0, c0), (r1, c1) = scl.index(aoi.bounds[0], aoi.bounds[3]), scl.index(aoi.bounds[2], aoi.bounds[1])
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                x, y = scl.xy(r, c)  # pixel centre
                if data[r, c] and aoi.contains(Point(x, y)):
                    valid += 1
                    cloudy += int(data[r, c] in (3, 8, 9, 10))
    assert valid > 100 and 0.3 < cloudy / valid < 0.7
    assert got == {"percent": round(100 * cloudy / valid, 2), "method": "scl-over-aoi"}
    assert rec["roles"] == ["first-post-event"]  # eo:cloud_cover says 4 %, but over this AOI it is too cloudy
    assert plan["selection"]["cloud_method"] == "scl-over-aoi"


def test_cli_discover_then_build(built: dict[str, Any], tmp_path: Path) -> None:
    """The two commands of docs/acquisition.md, against the test API: plans, then a catalog."""
    from click.testing import CliRunner

    from stac_mmtp.commands.main import main

    events = tmp_path / "events"
    write_event(events, EV, geometry=box(LON, LAT, 0.02), site=[LON, LAT], countries=["ESH"],
                datetime="2020-02-16T00:00:00Z", datetime_precision="day")
    runner = CliRunner()
    r = runner.invoke(main, ["discover", "--events", str(events), "--provider", built["api"], "--modality", "s2",
                             "--out", str(tmp_path / "plans")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "plans" / f"{EV}.json").read_text())["acquisitions"] == built["plan"]["acquisitions"]
    r = runner.invoke(main, ["build", "--events", str(events), "--acquisitions", str(tmp_path / "plans"),
                             "--out", str(tmp_path / "catalog"), "--buffer", "500", "-j", "1"])
    assert r.exit_code == 1, r.output  # the deleted and the truncated asset
    assert (tmp_path / "catalog" / "sentinel-2" / f"{EV}_{REAL_ID}" / "red.tif").is_file()
    assert "B04-deleted.tif" in " ".join(r.output.split())
