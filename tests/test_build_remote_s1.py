"""`build --acquisitions`: Sentinel-1 GRD from Planetary Computer-style items, read window by window.

Real pixels, synthetic calibration: the measurement COGs served are the REAL GRD TIFFs of
rio-tiler-pds (S1A_IW_GRDH_1SDV_20180716T004042_..._FD5B, 1280 x 837 uint16, 210 GCPs in EPSG:4326,
tiled 256), read in place over a range-capable HTTP server on 127.0.0.1. No real calibration/noise
XML of that product exists among the fixtures (the stactools SAFE's belong to another product of
26144 x 16676 pixels), so this test WRITES calibration and noise XML matching the TIFF's dimensions,
with LUTs linear in line and pixel (bilinear interpolation reproduces them exactly) and the sample
marker's name in them: the items built from them are therefore marked synthetic, truthfully. The
expected sigma0 is computed here with numpy from sigma0 = (DN^2 - N) / A^2 and the LUT formulas.

The source items have the shape of the real Planetary Computer item (asset keys `vv`, `vh`,
`schema-calibration-<pol>`, `schema-noise-<pol>`, the space in `start_datetime`) and the metadata
of the real product (its productInfo.json); a real STAC API on 127.0.0.1 serves them to `discover`.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from helpers import box, write_event
from pyproj import Transformer
from range_server import RangeServer
from rasterio.crs import CRS
from stac_api import stac_api

from stac_mmtp.build import build
from stac_mmtp.dataset.inventory import load_inventory
from stac_mmtp.discover import DiscoverOptions, discover_events
from stac_mmtp.discover.providers import resolve
from stac_mmtp.discover.selection import Selection
from stac_mmtp.sources import BuildOptions

PRODUCT = "S1A_IW_GRDH_1SDV_20180716T004042_20180716T004107_022812_02792A_FD5B"
PRODUCT_DIR = f"sentinel-s1-l1c/GRD/2018/7/16/IW/DV/{PRODUCT}"
PC_ITEM = "stac-api-items/planetary-computer/sentinel-1-grd/S1A_IW_GRDH_1SDV_20250312T052236_20250312T052301_058267_073394.json"
REAL_ID = PRODUCT[:-5]  # Planetary Computer's item ids drop the 4-character unique id
GONE_ID = "S1A_IW_GRDH_1SDV_20180704T004041_20180704T004106_022637_0273F0"  # calibration XML answers 404
EXPIRED_ID = "S1A_IW_GRDH_1SDV_20180622T004040_20180622T004105_022462_026EC1"  # noise XML answers 403
CUT_ID = "S1A_IW_GRDH_1SDV_20180610T004040_20180610T004105_022287_0269A2"  # measurement truncated
EV = "kerala-remote-s1-test-2018"
LON, LAT = 77.0, 10.2  # inside the scene (lon 75.6-78.2, lat 9.2-11.2); UTM zone 43N
WIDTH, HEIGHT = 1280, 837
LINES = [0, 300, 600, 900]  # LUT knots; the last beyond the last line, as in real products
PIXELS = [0, 320, 640, 960, 1279]


def a_lut(line: np.ndarray, pixel: np.ndarray) -> np.ndarray:
    return 600.0 + 0.05 * pixel - 0.02 * line


def n_range(line: np.ndarray, pixel: np.ndarray) -> np.ndarray:
    return 2000.0 + 1.5 * pixel + 1.0 * line


def n_azimuth(line: np.ndarray) -> np.ndarray:
    return 1.0 + 1e-4 * line


MARK = "<!-- STAC-MMTP-SYNTHETIC.json: synthetic LUTs written by tests/test_build_remote_s1.py, not ESA's -->"


def calibration_xml() -> str:
    vecs = "".join(
        f"<calibrationVector><azimuthTime>2018-07-16T00:40:42.000000</azimuthTime><line>{ln}</line>"
        f"<pixel count=\"{len(PIXELS)}\">{' '.join(map(str, PIXELS))}</pixel>"
        f"<sigmaNought count=\"{len(PIXELS)}\">{' '.join(f'{a_lut(ln, p):.6e}' for p in PIXELS)}</sigmaNought>"
        "</calibrationVector>" for ln in LINES)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{MARK}\n<calibration><calibrationVectorList count="{len(LINES)}">{vecs}</calibrationVectorList></calibration>\n'


def noise_xml() -> str:
    vecs = "".join(
        f"<noiseRangeVector><line>{ln}</line><pixel count=\"{len(PIXELS)}\">{' '.join(map(str, PIXELS))}</pixel>"
        f"<noiseRangeLut count=\"{len(PIXELS)}\">{' '.join(f'{n_range(ln, p):.6e}' for p in PIXELS)}</noiseRangeLut>"
        "</noiseRangeVector>" for ln in LINES)
    az_lines = [0, 400, HEIGHT - 1]
    az = (f"<noiseAzimuthVector><swath>IW1</swath><firstAzimuthLine>0</firstAzimuthLine><firstRangeSample>0"
          f"</firstRangeSample><lastAzimuthLine>{HEIGHT - 1}</lastAzimuthLine><lastRangeSample>{WIDTH - 1}"
          f"</lastRangeSample><line count=\"3\">{' '.join(map(str, az_lines))}</line><noiseAzimuthLut count=\"3\">"
          f"{' '.join(f'{n_azimuth(ln):.6e}' for ln in az_lines)}</noiseAzimuthLut></noiseAzimuthVector>")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n{MARK}\n<noise><noiseRangeVectorList count="{len(LINES)}">{vecs}'
            f'</noiseRangeVectorList><noiseAzimuthVectorList count="1">{az}</noiseAzimuthVectorList></noise>\n')


def source_item(real_fixtures: Path, srv: str, xml_srv: str) -> dict[str, Any]:
    """The real PC item's shape with the real product's metadata (productInfo.json)."""
    pc = json.loads((real_fixtures / PC_ITEM).read_text())
    info = json.loads((real_fixtures / "rio-tiler-pds" / PRODUCT_DIR / "productInfo.json").read_text())
    item = copy.deepcopy(pc)
    item["id"] = REAL_ID
    item["geometry"] = {"type": "Polygon", "coordinates": info["footprint"]["coordinates"]}
    xs, ys = zip(*info["footprint"]["coordinates"][0], strict=True)
    item["bbox"] = [min(xs), min(ys), max(xs), max(ys)]
    p = item["properties"]
    for k in ("s1:shape", "s1:orbit_source", "s1:slice_number", "s1:total_slices", "s1:instrument_configuration_ID",
              "s1:product_timeliness"):
        del p[k]  # what productInfo.json does not say
    p.update({"datetime": "2018-07-16T00:40:54.500000Z", "start_datetime": "2018-07-16 00:40:42+00:00",
              "end_datetime": "2018-07-16 00:41:07+00:00", "platform": "SENTINEL-1A", "sat:absolute_orbit": 22812,
              "sat:relative_orbit": (22812 - 73) % 175 + 1,  # S1A's formula (DESIGN.md)
              "sat:orbit_state": "descending",  # the GCPs: line 0 at lat 10.7, the last line at 9.7
              "s1:datatake_id": str(info["missionDataTakeId"])})
    base = f"{srv}/{PRODUCT_DIR}"
    item["assets"] = {
        "vv": {**pc["assets"]["vv"], "href": f"{base}/measurement/iw-vv.tiff"},
        "vh": {**pc["assets"]["vh"], "href": f"{base}/measurement/iw-vh.tiff"},
        **{f"schema-{kind}-{pol}": {**pc["assets"][f"schema-{kind}-{pol}"],
                                     "href": f"{xml_srv}/{kind}-iw-{pol}.xml?se=2099-01-01&sig=SECRET"}
           for kind in ("calibration", "noise") for pol in ("vv", "vh")},
    }
    return item


def _copy(item: dict[str, Any], new_id: str, days: int) -> dict[str, Any]:
    out = copy.deepcopy(item)
    out["id"] = new_id
    when = datetime(2018, 7, 16, 0, 40, 54, 500000) - timedelta(days=days)
    out["properties"]["datetime"] = when.isoformat() + "Z"
    out["properties"].pop("start_datetime")
    out["properties"].pop("end_datetime")
    return out


@pytest.fixture(scope="module")
def built(real_fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("remote-s1")
    xml_dir = tmp / "xml"
    xml_dir.mkdir()
    for pol in ("vv", "vh"):
        (xml_dir / f"calibration-iw-{pol}.xml").write_text(calibration_xml())
        (xml_dir / f"noise-iw-{pol}.xml").write_text(noise_xml())
    cut_dir = tmp / "cut"
    cut_dir.mkdir()  # a measurement whose transfer stops after the header
    full = (real_fixtures / "rio-tiler-pds" / PRODUCT_DIR / "measurement" / "iw-vv.tiff").read_bytes()
    (cut_dir / "iw-vv.tiff").write_bytes(full[:40_000])
    srv = RangeServer(real_fixtures / "rio-tiler-pds")
    xml_srv = RangeServer(xml_dir)
    cut_srv = RangeServer(cut_dir)
    xml_srv.deny.add("/expired/noise-iw-vh.xml")
    try:
        item = source_item(real_fixtures, srv.url, xml_srv.url)
        gone = _copy(item, GONE_ID, 12)
        gone["assets"]["schema-calibration-vv"]["href"] = f"{xml_srv.url}/deleted/calibration-iw-vv.xml?sig=SECRET"
        expired = _copy(item, EXPIRED_ID, 24)
        expired["assets"]["schema-noise-vh"]["href"] = f"{xml_srv.url}/expired/noise-iw-vh.xml?se=2018&sig=SECRET"
        cut = _copy(item, CUT_ID, 36)
        cut["assets"]["vv"]["href"] = f"{cut_srv.url}/iw-vv.tiff?sig=SECRET"
        events = tmp / "events"
        write_event(events, EV, geometry=box(LON, LAT, 0.02), site=[LON, LAT], countries=["IND"], datetime="2018-07-10T00:00:00Z",
                    datetime_precision="day")
        with stac_api({"sentinel-1-grd": [item, gone, expired, cut]}, tmp / "api") as api:
            report = discover_events(load_inventory(events), resolve([api]), tmp / "plans",
                                     DiscoverOptions(modalities=("s1",), retries=2, backoff=0.05,
                                                     selection=Selection(pre_event=3)))
            assert report.ok, report.failures
            srv.log.clear()
            out = tmp / "catalog"
            # two worker processes, not this one: the servers run in this process, and GDAL reads some
            # TIFF directories (iw-vh.tiff keeps its overview IFDs at the end) in calls that hold the
            # GIL, so an in-process read would wait on a server that cannot answer until GDAL times out
            result = build(events, [], out, BuildOptions(jobs=2, buffer_m=500), acquisitions=tmp / "plans")
            yield {"report": result, "out": out, "log": srv.log, "api": api, "srv": srv.url,
                   "plan": json.loads((tmp / "plans" / f"{EV}.json").read_text()),
                   "dir": real_fixtures / "rio-tiler-pds" / PRODUCT_DIR}
    finally:
        srv.stop()
        xml_srv.stop()
        cut_srv.stop()


def _item(built: dict[str, Any]) -> dict[str, Any]:
    return json.loads((built["out"] / "sentinel-1" / f"{EV}_{REAL_ID}" / f"{EV}_{REAL_ID}.json").read_text())


def test_plan_entry_lists_the_measurement_and_lut_hrefs(built: dict[str, Any]) -> None:
    plan = built["plan"]
    assert [(a["item_id"], a["roles"]) for a in plan["acquisitions"]] == [
        (CUT_ID, ["pre-event"]), (EXPIRED_ID, ["pre-event"]), (GONE_ID, ["pre-event"]),
        (REAL_ID, ["first-post-event", "first-usable-post-event"])]
    rec = plan["acquisitions"][-1]
    assert rec["stack"] == "descending-165-IW-VV+VH"
    assert sorted(rec["assets"]) == ["schema-calibration-vh", "schema-calibration-vv", "schema-noise-vh",
                                     "schema-noise-vv", "vh", "vv"]
    assert rec["assets"]["vv"] == f"{built['srv']}/{PRODUCT_DIR}/measurement/iw-vv.tiff"
    assert rec["assets"]["schema-noise-vh"].endswith("/noise-iw-vh.xml")  # the SAS-like query dropped
    assert "SECRET" not in json.dumps(plan)


def test_each_broken_input_fails_its_task_alone_with_the_href_redacted(built: dict[str, Any]) -> None:
    by_id = {r.item_id: r for r in built["report"].results}
    assert by_id[f"{EV}_{REAL_ID}"].ok, by_id[f"{EV}_{REAL_ID}"].message
    gone, expired, cut = (by_id[f"{EV}_{i}"] for i in (GONE_ID, EXPIRED_ID, CUT_ID))
    assert not gone.ok and not expired.ok and not cut.ok
    assert "/deleted/calibration-iw-vv.xml" in gone.message and "404" in gone.message
    assert "/expired/noise-iw-vh.xml" in expired.message and "403" in expired.message
    assert "expired or invalid signature" in expired.message
    assert "/iw-vv.tiff" in cut.message and "truncated" in cut.message
    for r in (gone, expired, cut):
        assert "SECRET" not in r.message and "sig=" not in r.message, r.message
    assert built["report"].collections["sentinel-1"] == 1


def test_sigma0_follows_the_formula_on_the_event_utm_grid(built: dict[str, Any]) -> None:
    """sigma0 = (DN^2 - N) / A^2 (negatives to 0, DN 0 -> no data), computed here with numpy from the real DN
    and the LUT formulas. The radiometry is what is checked: the expected array is put on the built grid by
    the same geocoding step (sentinel1.source_window / window_gcps / geocode: GDAL's thin-plate spline
    through the TIFF's GCPs, tested against the GCPs in test_sentinel1.py), which a different set of GCPs
    would move by a fraction of a pixel, i.e. by several % on speckle."""
    from stac_mmtp.sources.sentinel1 import Grid, geocode, source_window, window_gcps

    item_dir = built["out"] / "sentinel-1" / f"{EV}_{REAL_ID}"
    line, pixel = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    for pol in ("vv", "vh"):
        with rasterio.open(built["dir"] / "measurement" / f"iw-{pol}.tiff") as src:
            dn = src.read(1).astype(np.float64)
            gcps = list(src.gcps[0])
        sigma0 = np.maximum(dn ** 2 - n_range(line, pixel) * n_azimuth(line), 0) / a_lut(line, pixel) ** 2
        sigma0[dn == 0] = np.nan
        with rasterio.open(item_dir / f"{pol}.tif") as got:
            assert got.crs == CRS.from_epsg(32643) and got.dtypes == ("float32",)
            data, grid = got.read(1), Grid(got.crs, got.transform, got.shape)
        # the clip covers the AOI (0.02 degree each side, about 2.2 km) plus the 500 m buffer
        x, y = Transformer.from_crs(4326, 32643, always_xy=True).transform(LON, LAT)
        left, bottom, right, top = grid.bounds
        assert left <= x - 2700 and right >= x + 2700 and bottom <= y - 2700 and top >= y + 2700
        win = source_window(gcps, grid, (HEIGHT, WIDTH))
        want = geocode(sigma0[win.toslices()].astype(np.float32), window_gcps(gcps, win), grid)
        both = np.isfinite(data) & np.isfinite(want)
        assert both.mean() > 0.95 and np.array_equal(np.isfinite(data), np.isfinite(want))
        for r, c in ((data.shape[0] // 2, data.shape[1] // 2), (1, 1), (1, -2), (-2, 1), (-2, -2)):  # chosen pixels
            assert data[r, c] == pytest.approx(want[r, c], rel=1e-5), (pol, r, c)
        np.testing.assert_allclose(data[both], want[both], rtol=1e-5)


def test_only_the_window_the_aoi_needs_was_fetched(built: dict[str, Any]) -> None:
    """Range requests only: the header and the internal tiles (256 x 256) under the source window."""
    from stac_mmtp.sources.sentinel1 import Grid, source_window

    tiff = built["dir"] / "measurement" / "iw-vv.tiff"
    with rasterio.open(built["out"] / "sentinel-1" / f"{EV}_{REAL_ID}" / "vv.tif") as got:
        grid = Grid(got.crs, got.transform, got.shape)
    with rasterio.open(tiff) as local:
        win = source_window(list(local.gcps[0]), grid, (HEIGHT, WIDTH))
        need = {(r, c) for r in range(win.row_off // 256, (win.row_off + win.height - 1) // 256 + 1)
                for c in range(win.col_off // 256, (win.col_off + win.width - 1) // 256 + 1)}
        tiles = []
        for r, c in need:
            off = int(local.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=1))
            tiles.append((off, off + int(local.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=1))))
    gets = [q for q in built["log"].for_path("/measurement/iw-vv.tiff") if q.method == "GET"]
    assert gets and all(q.status == 206 for q in gets)  # never the whole file
    for lo, hi in tiles:  # every tile the window needs, whole
        assert sum(max(0, min(hi, q.end + 1) - max(lo, q.start)) for q in gets) == hi - lo
    fetched = sum(q.sent for q in gets)
    # the tiles, the 32 KiB header read, and /vsicurl/'s 16 KiB granularity on each side of each range
    assert fetched <= sum(hi - lo for lo, hi in tiles) + 32768 + 2 * 16384 * len(gets), (fetched, tiles)
    assert fetched < tiff.stat().st_size / 10, fetched


def test_item_shape_provenance_synthetic_marking_and_validation(built: dict[str, Any], schema_store: Any) -> None:
    from stac_mmtp.release.validate import validate_tree

    item = _item(built)
    p = item["properties"]
    assert p["s1:product_identifier"] == PRODUCT  # with the unique id, from the measurement's folder
    assert p["platform"] == "sentinel-1a" and p["sar:polarizations"] == ["VV", "VH"]
    assert p["sat:absolute_orbit"] == 22812 and p["sat:relative_orbit"] == 165 and p["s1:datatake_id"] == "162090"
    assert p["start_datetime"] == "2018-07-16T00:40:42Z" and p["end_datetime"] == "2018-07-16T00:41:07Z"
    assert p["proj:code"] == "EPSG:32643" and p["processing:level"] == "GEC"
    assert p["processing:version"] == "002.91"  # TIFFTAG_SOFTWARE "Sentinel-1 IPF 002.91" of the real COG
    assert "GCPs of the measurement COG" in p["processing:lineage"] and "(DN^2 - N) / A^2" in p["processing:lineage"]
    assert p["mmtp:temporal_role"] == "first-post-event" and p["mmtp:event_id"] == EV
    assert sorted(item["assets"]) == ["overview", "thumbnail", "vh", "vv"]
    # built from the synthetic LUTs above: marked, no link to a real product, no Copernicus licence
    assert p["mmtp:synthetic"] is True and p["title"].startswith("Synthetic sample")
    assert p["description"].startswith("Synthetic sample") and p["license"] == "CC-BY-4.0"
    assert {link["rel"] for link in item["links"]} & {"via", "derived_from"} == set()
    assert [pr["name"] for pr in p["providers"]] == ["stac-mmtp contributors"]
    report = validate_tree(built["out"], schema_store)
    assert [str(x) for x in report.problems] == []


def test_real_planetary_computer_item_maps_to_the_local_item_shape(real_fixtures: Path, tmp_path: Path) -> None:
    """The real PC item's metadata (no pixels): ids, times with PC's space, orbits; a real source keeps
    its provenance (via/derived_from to the source item, ESA + host + processor, Copernicus licence)."""
    from rasterio.transform import from_origin
    from shapely.geometry import box as shapely_box

    from stac_mmtp.sources.remote_s1 import _item, _product
    from stac_mmtp.sources.sentinel1 import Grid

    pc = json.loads((real_fixtures / PC_ITEM).read_text())
    prod = _product(pc, pc["assets"]["vv"]["href"], ["VV", "VH"], "test")
    assert prod.id == "S1A_IW_GRDH_1SDV_20250312T052236_20250312T052301_058267_073394_B8B7"  # the folder's name
    assert (prod.start.isoformat(), prod.stop.isoformat()) == ("2025-03-12T05:22:36.604436+00:00",
                                                               "2025-03-12T05:23:01.601759+00:00")
    assert (prod.absolute_orbit, prod.relative_orbit, prod.orbit_state) == (58267, 95, "descending")
    assert (prod.datatake, prod.slice_number, prod.total_slices, prod.timeliness) == (471956, 28, 30, "NRT-3h")
    events = tmp_path / "events"
    write_event(events, "tunisia-test-2025", geometry=box(9.5, 33.6, 0.02), site=[9.5, 33.6], countries=["TUN"],
                datetime="2025-03-10T00:00:00Z", datetime_precision="day")
    from stac_mmtp.sources.base import ProductMeta, Task

    ev = load_inventory(events)[0]
    rec = {"provider": "planetary-computer", "collection": "sentinel-1-grd", "item_id": pc["id"],
           "self_href": pc["links"][3]["href"]}
    meta = ProductMeta(tmp_path, "remote-sentinel-1", pc["id"], ev.geometry, prod.start, prod.stop, rec)
    task = Task(ev, meta, "first-post-event", 2.2, BuildOptions(buffer_m=500))
    grid = Grid(CRS.from_epsg(32632), from_origin(540000, 3720000, 10, 10), (100, 100))
    item = _item(task, rec, prod, grid, shapely_box(9.48, 33.58, 9.52, 33.62), {}, True, False)
    p = item["properties"]
    assert p["s1:product_identifier"] == prod.id and p["platform"] == "sentinel-1a"
    assert p["start_datetime"] == "2025-03-12T05:22:36.604436Z" and p["sat:relative_orbit"] == 95
    assert p["license"] == "other" and "mmtp:synthetic" not in p
    assert [pr["name"] for pr in p["providers"]] == ["ESA", "Microsoft Planetary Computer", "stac-mmtp"]
    links = {link["rel"]: link["href"] for link in item["links"]}
    assert links["via"] == links["derived_from"] == pc["links"][3]["href"]
    assert links["license"] == "https://sentinels.copernicus.eu/documents/247904/690755/Sentinel_Data_Legal_Notice"


def test_calibration_xml_of_another_product_is_refused(real_fixtures: Path) -> None:
    """The real stactools SAFE's calibration LUT (26144 pixels) against the 1280-pixel real TIFF."""
    import xml.etree.ElementTree as ET

    from stac_mmtp.errors import ProductError
    from stac_mmtp.sources.remote_s1 import _check_lut_covers
    from stac_mmtp.sources.sentinel1 import calibration_lut

    cal = next((real_fixtures / "stactools-sentinel1" / "grd").glob("*.SAFE/annotation/calibration/calibration-*-vv-*.xml"))
    lut = calibration_lut(ET.parse(cal).getroot(), str(cal))
    with pytest.raises(ProductError, match=r"spans 26144 pixels x 17344 lines but the measurement is 1280 x 837"):
        _check_lut_covers(lut, WIDTH, HEIGHT, "calibration", "calibration-iw-vv.xml")


def test_earth_search_entry_without_aws_credentials_fails_with_one_clear_line(real_fixtures: Path, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The real Earth Search v1 GRD item (assets on s3://sentinel-s1-l1c, requester pays), served over HTTP,
    with no AWS credentials anywhere: one line naming the href and the variables to set, before any S3 request."""
    import shutil

    from stac_mmtp.errors import ProductError
    from stac_mmtp.sources.base import ProductMeta, Task
    from stac_mmtp.sources.remote_s1 import SOURCE

    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    for k in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(k, os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    src = next((real_fixtures / "stac-api-items" / "earth-search-v1" / "sentinel-1-grd").glob("*.json"))
    shutil.copy(src, tmp_path / "item.json")
    srv = RangeServer(tmp_path)
    try:
        events = tmp_path / "events"
        write_event(events, EV, geometry=box(LON, LAT, 0.02), site=[LON, LAT], countries=["IND"])
        ev = load_inventory(events)[0]
        rec = {"provider": "earth-search", "collection": "sentinel-1-grd", "item_id": src.stem,
               "self_href": f"{srv.url}/item.json"}
        when = ev.start
        task = Task(ev, ProductMeta(tmp_path, SOURCE.name, src.stem, ev.geometry, when, when, rec), "post-event", 1.0,
                    BuildOptions())
        with pytest.raises(ProductError, match=r"needs credentials and none were found: set AWS_ACCESS_KEY_ID and "
                                               r"AWS_SECRET_ACCESS_KEY .* or AWS_PROFILE") as exc:
            SOURCE.convert(task, tmp_path / "out")
        assert str(exc.value).startswith("s3://sentinel-s1-l1c/GRD/2025/7/31/IW/SH/S1A_IW_GRDH_1SSH_20250731T135608_"
                                         "20250731T135637_060328_077F7E_E763/measurement/iw-hh.tiff: ")
        assert [r for r in srv.log.requests if r.path != "/item.json"] == []
    finally:
        srv.stop()
