"""Sentinel-2: real metadata read correctly, sample products converted to valid COGs and items, bad input."""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import write_event
from rasterio.windows import Window

from stac_mmtp.build import build
from stac_mmtp.dataset.inventory import load_inventory
from stac_mmtp.raster.cog import clip_to_cog, is_valid_cog
from stac_mmtp.release.validate import validate_objects, validate_tree
from stac_mmtp.sources import read_product
from stac_mmtp.sources.sentinel2 import Sentinel2
from stac_mmtp.sources.sentinel2.samples import write_product

S2 = "stactools-sentinel2"
EXPECTED = {
    # folder: (id, datetime, epsg, relative orbit, orbit state, cloud, nodata %, baseline, level, offset, sun elevation)
    "S2B_MSIL2A_20210122T133229_N0214_R081_T22HBD_20210122T155500.SAFE": (
        "S2B_MSIL2A_20210122T133229_N0214_R081_T22HBD_20210122T155500", "2021-01-22T13:32:29.024Z", 32722, 81,
        "descending", 0.447807, 0.913129, "02.14", "L2A", 0.0, 57.628769),
    "S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_20220414T082126.SAFE": (
        "S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_20220414T082126", "2022-04-13T15:07:59.024Z", 32633, 25,
        "ascending", 98.944211, 98.441625, "04.00", "L2A", -1000.0, 13.471381),
    "S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248.SAFE": (
        "S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248", "2021-09-08T04:27:01.024Z", 32646, 133,
        "descending", 88.2972, None, "03.01", "L1C", 0.0, 63.506836),
    "S2A_OPER_MSI_L2A_TL_2APS_20240108T121951_A044635_T34VEL": (
        "S2A_MSIL2A_20240108T101401_N0510_R022_T34VEL_20240108T121951", "2024-01-08T10:14:07.485567Z", 32634, 22,
        None, 74.49823, 99.997187, "05.10", "L2A", -1000.0, 8.519875),
}


@pytest.mark.parametrize("folder", sorted(EXPECTED))
def test_real_metadata(folder: str, real_fixtures: Path) -> None:
    ident, dt, epsg, orbit, state, cloud, nodata, baseline, level, offset, sun_el = EXPECTED[folder]
    path = real_fixtures / S2 / folder
    meta = read_product(path)
    prod = Sentinel2().parse(path)
    props = meta.item["properties"]
    assert meta.id == ident and meta.source == "sentinel-2"
    assert props["datetime"] == dt
    assert props["proj:code"] == f"EPSG:{epsg}" and prod.epsg == epsg
    assert props["sat:relative_orbit"] == orbit
    assert props.get("sat:orbit_state") == state
    assert props["eo:cloud_cover"] == pytest.approx(cloud)
    assert props.get("s2:nodata_pixel_percentage") == (pytest.approx(nodata) if nodata is not None else None)
    assert props["s2:processing_baseline"] == baseline and props["processing:level"] == level
    assert prod.offsets["B04"] == offset
    assert props["view:sun_elevation"] == pytest.approx(sun_el, abs=1e-5)
    # the footprint must agree with the reference item written by stactools from the same files
    ref = json.loads((real_fixtures / S2 / "stactools-expected-items" / f"{folder.removesuffix('.SAFE')}.json").read_text())
    assert meta.item["bbox"] == pytest.approx(ref["bbox"], abs=1e-5)


def test_footprint_is_read_latitude_first(real_fixtures: Path) -> None:
    meta = read_product(real_fixtures / S2 / "S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_20220414T082126.SAFE")
    lon0, lat0 = meta.geometry["coordinates"][0][0]
    assert (lon0, lat0) == pytest.approx((17.7331712786673, 80.14220060199362))  # EXT_POS_LIST starts "80.142... 17.733..."
    assert 80.1 < meta.item["bbox"][1] < 80.2


def test_view_angles_and_band_files(real_fixtures: Path) -> None:
    prod = Sentinel2().parse(real_fixtures / S2 / "S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_20220414T082126.SAFE")
    assert prod.view_zenith == pytest.approx(11.684073, abs=1e-5)
    assert prod.view_azimuth == pytest.approx(31.260343, abs=1e-5)
    assert prod.files["red"].rel.endswith("IMG_DATA/R10m/T33XWJ_20220413T150759_B04_10m.jp2")
    assert prod.files["scl"].resolution == 20 and prod.files["coastal"].resolution == 60
    assert prod.geopositions[10] == (499980.0, 8900040.0, 10980, 10980)
    l1c = Sentinel2().parse(real_fixtures / S2 / "S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248.SAFE")
    assert l1c.files["nir08"].rel == "GRANULE/L1C_T46RER_A032448_20210908T043714/IMG_DATA/T46RER_20210908T042701_B8A.jp2"


def test_inspect_zip(real_fixtures: Path, tmp_path: Path) -> None:
    folder = "S2B_MSIL2A_20210122T133229_N0214_R081_T22HBD_20210122T155500.SAFE"
    z = tmp_path / f"{folder.removesuffix('.SAFE')}.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in (real_fixtures / S2 / folder).rglob("*"):
            zf.write(p, f"{folder}/{p.relative_to(real_fixtures / S2 / folder)}")
    meta = read_product(z)
    assert meta.id == folder.removesuffix(".SAFE") and meta.item["properties"]["sat:relative_orbit"] == 81


# ---------------------------------------------------------------- conversion of sample products


@pytest.fixture(scope="module")
def sample_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("s2")
    events = root / "events"
    write_event(events, "gjerdrum-landslide-2020")
    ev = load_inventory(events)[0]
    products = root / "products"
    pre = write_product(products, ev, datetime(2020, 12, 25, 10, 44, 41, tzinfo=UTC), "L2A", "S2A")
    write_product(products, ev, datetime(2021, 1, 2, 10, 44, 41, tzinfo=UTC), "L2A", "S2B", scar=True)
    write_product(products, ev, datetime(2020, 12, 15, 10, 44, 41, tzinfo=UTC), "L1C", "S2A", baseline="03.01")
    out = root / "catalog"
    report = build(events, [products], out)
    assert report.ok, report.failures + [r.message for r in report.results]
    return out, products, pre


def _item(out: Path, prefix: str) -> tuple[Path, dict]:
    path = next((out / "sentinel-2").glob(f"gjerdrum-landslide-2020_{prefix}*/*.json"))
    return path, json.loads(path.read_text())


def test_items_valid_offline(sample_build, schema_store, no_network) -> None:
    out, _, _ = sample_build
    report = validate_tree(out, schema_store)
    assert report.ok, [str(p) for p in report.problems]
    assert report.by_type["Feature"] == 1 + 3
    assert no_network == []


def test_roles_offsets_and_links(sample_build) -> None:
    out, _, _ = sample_build
    _, post = _item(out, "S2B_MSIL2A_20210102")
    _, pre = _item(out, "S2A_MSIL2A_20201225")
    _, l1c = _item(out, "S2A_MSIL1C")
    assert post["properties"]["mmtp:temporal_role"] == "first-post-event"
    assert post["properties"]["mmtp:days_from_event"] == pytest.approx(3.32, abs=0.01)
    assert pre["properties"]["mmtp:temporal_role"] == "pre-event" and l1c["properties"]["mmtp:temporal_role"] == "pre-event"
    red = post["assets"]["red"]["bands"][0]
    assert (red["raster:scale"], red["raster:offset"], red["eo:common_name"], red["nodata"]) == (0.0001, -0.1, "red", 0)
    assert l1c["assets"]["red"]["bands"][0]["raster:offset"] == 0.0  # baseline 03.01: no radiometric offset
    assert "cirrus" in l1c["assets"] and "scl" not in l1c["assets"]
    assert [c["name"] for c in post["assets"]["scl"]["classification:classes"]][4] == "vegetation"
    # a synthetic sample: no source link to a Copernicus product that does not exist (tests/test_synthetic.py)
    assert post["properties"]["mmtp:synthetic"] is True and "via" not in {lk["rel"] for lk in post["links"]}
    coll = json.loads((out / "sentinel-2" / "collection.json").read_text())
    assert coll["summaries"]["mmtp:temporal_role"] == ["first-post-event", "pre-event"]
    assert set(coll["item_assets"]) >= {"red", "scl", "visual", "thumbnail"}


def test_cogs_match_source_pixels(sample_build) -> None:
    out, _, pre_safe = sample_build
    path, item = _item(out, "S2A_MSIL2A_20201225")
    src_jp2 = next(pre_safe.rglob("*_B04_10m.jp2"))
    for key in ("red", "scl", "visual"):
        cog = path.parent / item["assets"][key]["href"]
        valid, errors, _ = is_valid_cog(cog)
        assert valid, errors
        with rasterio.open(cog) as ds:
            assert ds.crs.to_epsg() == 32632 and ds.nodata == 0
            assert list(ds.transform)[:6] == item["assets"][key]["proj:transform"]
            assert [ds.height, ds.width] == item["assets"][key]["proj:shape"]
            assert ds.block_shapes[0] == (512, 512) or ds.width < 512
    with rasterio.open(path.parent / "red.tif") as cog, rasterio.open(src_jp2) as src:
        col = round((cog.transform.c - src.transform.c) / 10)
        row = round((src.transform.f - cog.transform.f) / 10)
        expected = src.read(1, window=Window(col, row, cog.width, cog.height))
        got = cog.read(1)
        assert np.array_equal(got, expected) and got.dtype == np.uint16
    with rasterio.open(path.parent / "scl.tif") as scl:
        assert set(np.unique(scl.read(1)).tolist()) == {0, 3, 4, 5, 8, 9, 10}  # + cloud shadows, clouds, cirrus
    sha = item["assets"]["red"]["file:checksum"]
    import hashlib

    assert sha == "1220" + hashlib.sha256((path.parent / "red.tif").read_bytes()).hexdigest()


def test_build_deterministic(sample_build, tmp_path: Path) -> None:
    out, products, _ = sample_build
    events = out.parent / "events"
    again = tmp_path / "again"
    build(events, [products], again)
    for p in sorted(out.rglob("*")):
        if p.is_file():
            assert (again / p.relative_to(out)).read_bytes() == p.read_bytes(), p


def test_real_pixels_clip(real_fixtures: Path, tmp_path: Path) -> None:
    """Real L2A pixels (rio-tiler-pds COG, EPSG:32629): a window clipped on its own grid keeps every value."""
    base = real_fixtures / "rio-tiler-pds/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A"
    item = json.loads((base / "S2A_29RKH_20200219_0_L2A.json").read_text())
    assert item["properties"]["proj:epsg"] == 32629
    dst = tmp_path / "red.tif"
    clip_to_cog(base / "B04.tif", dst, Window(100, 200, 300, 250))
    with rasterio.open(base / "B04.tif") as src, rasterio.open(dst) as ds:
        assert ds.crs.to_epsg() == 32629 and ds.nodata == 0
        assert ds.transform.c == src.transform.c + 100 * src.transform.a
        assert np.array_equal(ds.read(1), src.read(1, window=Window(100, 200, 300, 250)))
    assert is_valid_cog(dst)[0]


# ---------------------------------------------------------------- bad input


def _one_product(tmp_path: Path, lon: float = 11.04, lat: float = 60.07) -> tuple[Path, Path]:
    events = tmp_path / "events"
    write_event(events, "gjerdrum-landslide-2020")
    ev = load_inventory(events)[0]
    import dataclasses

    ev = dataclasses.replace(ev, site=(lon, lat))
    products = tmp_path / "products"
    write_product(products, ev, datetime(2021, 1, 2, 10, 44, 41, tzinfo=UTC), "L2A", "S2B")
    return events, products


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        ("zero_jp2", "0-byte band file"),
        ("truncated_jp2", "unreadable or truncated band file"),
        ("missing_mtd", "not a readable Sentinel product (no manifest.safe or MTD_*.xml"),
        ("malformed_mtd", "malformed XML"),
    ],
)
def test_bad_products_named_and_nothing_left(tmp_path: Path, damage: str, needle: str) -> None:
    events, products = _one_product(tmp_path)
    safe = next(products.glob("*.SAFE"))
    jp2 = next(safe.rglob("*_B04_10m.jp2"))
    if damage == "zero_jp2":
        jp2.write_bytes(b"")
    elif damage == "truncated_jp2":
        jp2.write_bytes(jp2.read_bytes()[:2000])
    elif damage == "missing_mtd":
        (safe / "MTD_MSIL2A.xml").unlink()
    else:
        (safe / "MTD_MSIL2A.xml").write_text("<not-closed>")
    out = tmp_path / "catalog"
    report = build(events, [products], out)
    messages = report.failures + [r.message for r in report.results if not r.ok]
    assert not report.ok and any(needle in m for m in messages), messages
    assert any(safe.name in m for m in messages), messages
    assert report.collections == {"events": 1}
    assert not (out / "sentinel-2").exists()
    assert not list(out.parent.glob(".catalog*")) and not list(out.rglob("*.part"))


def test_product_outside_every_event(tmp_path: Path) -> None:
    events, products = _one_product(tmp_path, lon=5.0, lat=45.0)
    report = build(events, [products], tmp_path / "catalog")
    assert not report.ok and any("does not intersect any event" in f for f in report.failures)


def test_antimeridian_footprint_is_split(tmp_path: Path) -> None:
    """A footprint crossing 180 degrees becomes a MultiPolygon cut there, bbox west > east (STAC best practice)."""
    events, products = _one_product(tmp_path)
    safe = next(products.glob("*.SAFE"))
    mtd = safe / "MTD_MSIL2A.xml"
    text = mtd.read_text()
    start = text.index("<EXT_POS_LIST>") + len("<EXT_POS_LIST>")
    end = text.index("</EXT_POS_LIST>")
    mtd.write_text(text[:start] + "-16.5 179.8 -16.5 -179.9 -17.2 -179.9 -17.2 179.8 -16.5 179.8" + text[end:])
    meta = read_product(safe)
    assert meta.geometry["type"] == "MultiPolygon"
    parts = sorted(sorted({tuple(c) for c in poly[0]}) for poly in meta.geometry["coordinates"])
    assert parts == [
        [(-180.0, -17.2), (-180.0, -16.5), (-179.9, -17.2), (-179.9, -16.5)],
        [(179.8, -17.2), (179.8, -16.5), (180.0, -17.2), (180.0, -16.5)],
    ]
    assert meta.item["bbox"] == [179.8, -17.2, -179.9, -16.5]


def test_antimeridian_tile_builds(tmp_path: Path, schema_store) -> None:
    """A tile of UTM zone 60 whose window crosses 180 degrees (Taveuni, Fiji) builds, with split geometries."""
    from helpers import box

    events = tmp_path / "events"
    write_event(events, "taveuni-landslide-2020", geometry=box(179.975, -16.8, 0.02), site=[179.985, -16.8],
                countries=["FJI"])
    ev = load_inventory(events)[0]
    write_product(tmp_path / "products", ev, datetime(2021, 1, 2, 10, 44, 41, tzinfo=UTC), "L2A", "S2B")
    meta = read_product(next((tmp_path / "products").glob("*.SAFE")))
    assert meta.geometry["type"] == "MultiPolygon" and meta.item["properties"]["proj:code"] == "EPSG:32760"
    west, _, east, _ = meta.item["bbox"]
    assert 179.9 < west < 180 and -180 < east < -179.9
    out = tmp_path / "catalog"
    report = build(events, [tmp_path / "products"], out)
    assert report.ok, report.failures + [r.message for r in report.results]
    item = json.loads(next((out / "sentinel-2").glob("*/*.json")).read_text())
    assert item["geometry"]["type"] == "MultiPolygon"
    lons = [c[0] for poly in item["geometry"]["coordinates"] for c in poly[0]]
    assert max(lons) == 180.0 and min(lons) == -180.0
    assert item["bbox"][0] > 179.9 and item["bbox"][2] < -179.9
    assert validate_tree(out, schema_store).problems == []


def test_inspect_valid_for_every_baseline(real_fixtures: Path, schema_store) -> None:
    """02.14, 03.01, 04.00 SAFE and the 05.10 AWS tile: the metadata-only item validates; declared raster
    fields agree with the item stactools wrote from the same files."""
    checked = []
    for folder in sorted(EXPECTED):
        meta = read_product(real_fixtures / S2 / folder)
        assert validate_objects([meta.item], schema_store) == [], folder
        ref = json.loads((real_fixtures / S2 / "stactools-expected-items" / f"{folder.removesuffix('.SAFE')}.json").read_text())
        if not meta.item["assets"]:  # the AWS tile's metadata lists no band file: no raster extension then
            assert not any("raster" in e for e in meta.item["stac_extensions"])
            continue
        for key in ("red", "nir", "coastal"):
            ours, theirs = meta.item["assets"][key]["bands"][0], ref["assets"][key]["raster:bands"][0]
            assert (ours["raster:scale"], ours["raster:offset"], ours["raster:spatial_resolution"], ours["data_type"]) \
                == (theirs["scale"], theirs["offset"], theirs["spatial_resolution"], theirs["data_type"]), (folder, key)
        checked.append(meta.item["properties"]["s2:processing_baseline"])
    assert sorted(checked) == ["02.14", "03.01", "04.00"]


@pytest.mark.parametrize("member", ["MTD_MSIL2A.xml", "_B04_10m.jp2"])
def test_zip_with_a_corrupt_member_names_it_others_build(tmp_path: Path, member: str) -> None:
    """A stored member with one flipped byte: its CRC fails. The metadata read names it; a band file is
    named too (GDAL's /vsizip/ would read the corrupt bytes without a word); the good product builds."""
    events, products = _one_product(tmp_path)
    good = next(products.glob("*.SAFE"))
    ev = load_inventory(events)[0]
    bad = write_product(tmp_path / "tmp", ev, datetime(2020, 12, 25, 10, 44, 41, tzinfo=UTC), "L2A", "S2A")
    z = products / f"{bad.name.removesuffix('.SAFE')}.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        for p in sorted(bad.rglob("*")):
            if p.is_file():
                zf.write(p, f"{bad.name}/{p.relative_to(bad)}")
    name = next(n for n in zipfile.ZipFile(z).namelist() if n.endswith(member))
    data = bytearray(z.read_bytes())
    at = data.index(name.encode()) + len(name) + 3000  # inside the member's stored bytes: its CRC no longer matches
    data[at] ^= 0xFF
    z.write_bytes(bytes(data))
    report = build(events, [products], tmp_path / "catalog")
    messages = report.failures + [r.message for r in report.results if not r.ok]
    assert len(messages) == 1, messages
    assert f"{z}!/{name}: corrupt member (Bad CRC-32" in messages[0]
    good_id = f"gjerdrum-landslide-2020_{good.name.removesuffix('.SAFE')}"
    assert [r.item_id for r in report.results if r.ok] == [good_id]
    assert (tmp_path / "catalog" / "sentinel-2" / good_id / "red.tif").is_file()


def test_item_schema_rejects_broken_item(sample_build, schema_store) -> None:
    out, _, _ = sample_build
    _, item = _item(out, "S2B")
    item["assets"]["red"]["proj:shape"] = "600x600"
    assert validate_objects([item], schema_store)
    shutil.rmtree(out.parent / "again", ignore_errors=True)
