"""Sentinel-1 GRD: real metadata, calibration from the LUT, geocoding of real GCPs, sample builds, bad input."""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from helpers import box, write_event
from pyproj import Transformer
from rasterio.crs import CRS
from shapely.geometry import shape

from stac_mmtp import __version__
from stac_mmtp.build import build
from stac_mmtp.commands.main import main
from stac_mmtp.dataset.inventory import load_inventory
from stac_mmtp.raster.cog import is_valid_cog
from stac_mmtp.raster.geo import reproject as reproject_geom
from stac_mmtp.release.validate import validate_tree
from stac_mmtp.sources import read_product
from stac_mmtp.sources.product_fs import ProductFS
from stac_mmtp.sources.sentinel1 import (
    Sentinel1,
    _valid_footprint,
    calibrate,
    geocode,
    ground_spacing,
    parse_calibration,
    parse_noise,
    relative_orbit,
    snap_grid,
    source_window,
    window_gcps,
)
from stac_mmtp.sources.sentinel1.samples import write_product

GRD = "stactools-sentinel1/grd/S1A_IW_GRDH_1SDV_20210809T173953_20210809T174018_039156_049F13_6FF8.SAFE"
AWS = ("rio-tiler-pds/sentinel-s1-l1c/GRD/2018/7/16/IW/DV/"
       "S1A_IW_GRDH_1SDV_20180716T004042_20180716T004107_022812_02792A_FD5B")


# ---------------------------------------------------------------- real metadata


def test_real_safe_metadata(real_fixtures: Path) -> None:
    """The values the fixtures README lists for the stactools GRD (manifest + VV annotation)."""
    meta = read_product(real_fixtures / GRD)
    prod = Sentinel1().parse(real_fixtures / GRD)
    p = meta.item["properties"]
    assert meta.source == "sentinel-1" and meta.id == "S1A_IW_GRDH_1SDV_20210809T173953_20210809T174018_039156_049F13_6FF8"
    assert (p["platform"], p["constellation"], p["sar:instrument_mode"], p["product:type"]) == (
        "sentinel-1a", "sentinel-1", "IW", "GRD")
    assert prod.product_class == "S" and p["s1:product_timeliness"] == "NRT-3h"
    assert p["sar:polarizations"] == ["VV", "VH"]
    # manifest times have no zone: read as UTC
    assert prod.start == datetime(2021, 8, 9, 17, 39, 53, 153776, tzinfo=UTC)
    assert p["start_datetime"] == "2021-08-09T17:39:53.153776Z" and p["end_datetime"] == "2021-08-09T17:40:18.1528Z"
    assert p["datetime"] == "2021-08-09T17:40:05.653288Z"  # mid-time, as the stactools item
    assert (p["sat:absolute_orbit"], p["sat:relative_orbit"], p["sat:orbit_state"]) == (39156, 59, "ascending")
    assert relative_orbit("A", 39156) == 59
    assert p["s1:datatake_id"] == "302867" and int("049F13", 16) == 302867
    assert (p["s1:slice_number"], p["s1:total_slices"]) == ("7", "20")
    assert p["processing:version"] == "003.31" and p["sat:platform_international_designator"] == "2014-016A"
    # footprint written "lat,lon" and not closed: read lon/lat and closed
    ring = meta.geometry["coordinates"][0]
    assert ring[0] == pytest.approx([1.512143, 46.033890]) and ring[0] == ring[-1] and len(ring) == 5
    ann = prod.annotations["VV"]
    assert (ann.samples, ann.lines) == (26144, 16676) and p["s1:shape"] == [26144, 16676]
    assert (p["sar:pixel_spacing_range"], p["sar:pixel_spacing_azimuth"]) == (10.0, 10.0)
    assert p["view:incidence_angle"] == pytest.approx(38.97279, abs=1e-5)
    assert ann.heading == pytest.approx(-14.16387, abs=1e-5) and p["sar:center_frequency"] == 5.405
    assert len(ann.grid) == 210 and p["s1:geolocation_grid_points"] == 210
    assert (ann.grid[0].line, ann.grid[0].pixel, ann.grid[0].lat) == (0, 0, pytest.approx(44.53525246605311))
    assert set(prod.calibrations) == {"VV", "VH"} and prod.calibrations["VH"].endswith("-002.xml")
    # the stactools reference item of the same product agrees on the footprint and the sar/sat fields
    ref = json.loads((real_fixtures / "stactools-sentinel1/stactools-example-items"
                      / "S1A_IW_GRDH_1SDV_20210809T173953_20210809T174018_039156_049F13.json").read_text())
    assert meta.item["bbox"] == pytest.approx(ref["bbox"])
    for key in ("sar:resolution_range", "sar:resolution_azimuth", "sar:looks_range", "sar:looks_azimuth",
                "sar:looks_equivalent_number", "sat:platform_international_designator"):
        assert p[key] == ref["properties"][key], key
    # the measurement TIFFs are 0-byte placeholders: inspect shows it, the build refuses them (below)
    assert meta.item["assets"]["vv"]["file:size"] == 0


def test_inspect_cli_on_placeholder_product(real_fixtures: Path) -> None:
    result = CliRunner().invoke(main, ["inspect", str(real_fixtures / GRD)])
    assert result.exit_code == 0, result.output
    item = json.loads(result.output)
    assert item["properties"]["sat:absolute_orbit"] == 39156 and set(item["assets"]) >= {"vv", "vh", "calibration-vv"}


def test_real_aws_metadata(real_fixtures: Path) -> None:
    meta = read_product(real_fixtures / AWS)
    p = meta.item["properties"]
    assert meta.id == "S1A_IW_GRDH_1SDV_20180716T004042_20180716T004107_022812_02792A_FD5B"
    assert p["start_datetime"] == "2018-07-16T00:40:42Z" and p["end_datetime"] == "2018-07-16T00:41:07Z"
    assert (p["sat:absolute_orbit"], p["sat:relative_orbit"]) == (22812, (22812 - 73) % 175 + 1)
    assert p["s1:datatake_id"] == "162090" and int("02792A", 16) == 162090
    assert p["sar:polarizations"] == ["VV", "VH"]  # productInfo "DV"
    assert p["sat:orbit_state"] == "descending"  # from the GCPs: latitude falls along the lines
    assert meta.geometry["coordinates"][0][0] == [77.891296, 9.225784]
    assert meta.item["assets"]["vv"]["href"] == "./measurement/iw-vv.tiff"


def test_real_calibration_lut(real_fixtures: Path) -> None:
    fs = ProductFS.open(real_fixtures / GRD)
    lut = parse_calibration(fs, Sentinel1().parse(real_fixtures / GRD).calibrations["VV"])
    assert lut.values.shape == (27, 655) and lut.lines[:3].tolist() == [0, 667, 1334]
    a = lut.window(0, 0, 1, 41)[0]
    assert a[0] == pytest.approx(662.8682) and a[40] == pytest.approx(662.5948)
    assert a[20] == pytest.approx((662.8682 + 662.5948) / 2)  # linear between knots
    # along lines: halfway between the vectors of lines 0 and 667, at a knot pixel
    mid = lut.window(333, 0, 2, 1)[:, 0]
    expected = lut.values[0, 0] + (lut.values[1, 0] - lut.values[0, 0]) * np.array([333, 334]) / 667
    assert mid == pytest.approx(expected, rel=1e-6)


def test_real_noise_lut(real_fixtures: Path) -> None:
    """The real VH noise LUT (IPF 3.31): range vectors times the azimuth vector of each sub-swath."""
    prod = Sentinel1().parse(real_fixtures / GRD)
    assert set(prod.noises) == {"VV", "VH"} and prod.noises["VH"].endswith("-002.xml")
    noise = parse_noise(ProductFS.open(real_fixtures / GRD), prod.noises["VH"])
    assert noise.range.values.shape == (26, 657) and noise.range.lines[:3].tolist() == [0, 667, 1334]
    assert [(b[2], b[3]) for b in noise.blocks] == [(0, 8759), (8760, 17560), (17561, 26143)]  # IW1, IW2, IW3
    n = noise.window(0, 8759, 11, 2)
    # line 0: range LUT 2004.297 at pixel 8759 (IW1, azimuth 1.034850), 1747.531 at 8760 (IW2, 1.002218)
    assert n[0, 0] == pytest.approx(2004.297 * 1.034850, rel=1e-6)
    assert n[0, 1] == pytest.approx(1747.531 * 1.002218, rel=1e-6)
    # line 5: halfway between the azimuth knots of lines 0 and 10 (and along the range vectors)
    r = noise.range.window(5, 8760, 1, 1)[0, 0]
    assert n[5, 1] == pytest.approx(r * (1.002218 + 1.001919) / 2, rel=1e-6)


def test_noise_blocks_and_removal() -> None:
    """Azimuth blocks scale only their own lines and samples; what noise removal takes below zero is 0."""
    from stac_mmtp.sources.sentinel1 import CalibrationLUT, NoiseLUT

    rng = CalibrationLUT(np.array([0.0, 100.0]), np.array([0.0, 100.0]), np.full((2, 2), 50.0))
    noise = NoiseLUT(rng, [(0, 9, 0, 4, np.array([0.0, 9.0]), np.array([2.0, 2.0])),
                           (5, 20, 5, 9, np.array([5.0, 15.0]), np.array([1.0, 3.0]))])
    n = noise.window(0, 0, 20, 10)
    assert (n[:10, :5] == 100).all() and (n[10:, :5] == 50).all()  # block 1: lines 0-9, samples 0-4
    assert (n[:5, 5:] == 50).all() and n[5, 5] == 50 and n[10, 9] == 100 and n[15, 5] == 150  # block 2, linear
    sigma0 = calibrate(np.array([[0, 5, 10, 20]], np.uint16), np.full((1, 4), 2, np.float32), np.full((1, 4), 100, np.float32))
    assert np.isnan(sigma0[0, 0]) and sigma0[0, 1:].tolist() == [0.0, 0.0, 75.0]  # (400 - 100) / 4


# ---------------------------------------------------------------- geocoding (real GCPs)


def test_geocode_real_gcps(real_fixtures: Path) -> None:
    """Warp the real GRD with its own GCPs: every GCP lands within 1.5 output pixels of its image position,
    and the valid-data footprint matches productInfo.json's footprint (IoU >= 0.9)."""
    base = real_fixtures / AWS
    with rasterio.open(base / "measurement/iw-vv.tiff") as src:
        gcps = list(src.gcps[0])
        dn = src.read(1)
        size = (src.height, src.width)
    footprint = shape(json.loads((base / "productInfo.json").read_text())["footprint"])
    epsg = 32643
    rng, azi = ground_spacing(gcps)
    res = float(round(max(rng, azi)))
    fp_utm = reproject_geom(footprint, 4326, epsg)
    grid = snap_grid(fp_utm.buffer(5000).bounds, CRS.from_epsg(epsg), res)
    win = source_window(gcps, grid, size)
    assert (win.row_off, win.col_off, win.height, win.width) == (0, 0, size[0], size[1])  # AOI covers the scene
    local = window_gcps(gcps, win)
    # warp the image coordinates themselves: the output then says which source position each pixel shows
    rows, cols = np.mgrid[0:size[0], 0:size[1]].astype(np.float32) + 0.5  # pixel centres, GDAL convention
    out_r, out_c = geocode(rows, local, grid), geocode(cols, local, grid)
    to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
    inv = ~grid.transform
    errors = []
    for g in gcps:
        u, v = inv * to_utm.transform(g.x, g.y)  # fractional output col, row of the GCP's lat/lon
        j, i = int(np.floor(u - 0.5)), int(np.floor(v - 0.5))
        fu, fv = u - 0.5 - j, v - 0.5 - i
        patch_r, patch_c = out_r[i:i + 2, j:j + 2], out_c[i:i + 2, j:j + 2]
        if patch_r.shape != (2, 2) or not np.isfinite(patch_r).all():
            continue  # on the very edge of the swath: no full neighbourhood to interpolate
        w = np.array([[(1 - fv) * (1 - fu), (1 - fv) * fu], [fv * (1 - fu), fv * fu]])
        dr, dc = (patch_r * w).sum() - g.row, (patch_c * w).sum() - g.col
        errors.append(np.hypot(dr * azi, dc * rng) / res)
    print(f"GCPs checked {len(errors)}, max error {max(errors):.3f} px, median {np.median(errors):.3f} px")
    assert len(errors) >= 150, len(errors)
    assert max(errors) <= 1.5, max(errors)
    data = dn.astype(np.float32)
    data[dn == 0] = np.nan
    warped = geocode(data, local, grid)
    valid = reproject_geom(_valid_footprint({"VV": warped}, grid), 4326, epsg)
    iou = valid.intersection(fp_utm).area / valid.union(fp_utm).area
    print(f"IoU {iou:.4f}")
    assert iou >= 0.9, iou


# ---------------------------------------------------------------- sample products


@pytest.fixture(scope="module")
def sample_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("s1")
    events = root / "events"
    write_event(events, "gjerdrum-landslide-2020")
    ev = load_inventory(events)[0]
    products = root / "products"
    write_product(products, ev, datetime(2020, 12, 24, 16, 42, 11, tzinfo=UTC))
    write_product(products, ev, datetime(2021, 1, 5, 16, 42, 11, tzinfo=UTC), change="landslide")
    out = root / "catalog"
    report = build(events, [products], out)
    assert report.ok, report.failures + [r.message for r in report.results]
    return out, products


def _item(out: Path, date: str) -> tuple[Path, dict]:
    path = next((out / "sentinel-1").glob(f"gjerdrum-landslide-2020_S1A_IW_GRDH_1SDV_{date}*/*.json"))
    return path, json.loads(path.read_text())


def test_sample_items_valid_offline(sample_build, schema_store, no_network) -> None:
    out, _ = sample_build
    report = validate_tree(out, schema_store)
    assert report.ok, [str(p) for p in report.problems]
    assert report.by_type["Feature"] == 1 + 2 and no_network == []
    coll = json.loads((out / "sentinel-1" / "collection.json").read_text())
    assert set(coll["item_assets"]) == {"vv", "vh", "thumbnail", "overview"}
    assert coll["summaries"]["sar:polarizations"] == ["VH", "VV"]
    assert coll["summaries"]["mmtp:temporal_role"] == ["first-post-event", "pre-event"]


def test_sample_item_fields(sample_build) -> None:
    out, _ = sample_build
    _, post = _item(out, "20210105")
    p = post["properties"]
    assert p["mmtp:temporal_role"] == "first-post-event" and p["mmtp:event_id"] == "gjerdrum-landslide-2020"
    assert p["mmtp:days_from_event"] == pytest.approx(6.571, abs=1e-3)
    assert p["sat:orbit_state"] == "ascending" and p["sar:instrument_mode"] == "IW" and p["product:type"] == "GRD"
    assert p["processing:level"] == "GEC" and p["processing:software"] == {"stac-mmtp": __version__}
    assert "(DN^2 - N) / A^2, thermal noise N from the noise LUT" in p["processing:lineage"]
    assert 30 < p["view:incidence_angle"] < 46
    vv = post["assets"]["vv"]
    assert vv["proj:code"] == "EPSG:32632" and vv["gsd"] == 10.0
    assert vv["bands"][0]["nodata"] == "nan" and vv["bands"][0]["data_type"] == "float32"
    assert vv["proj:transform"][2] % 10 == 0 and vv["proj:transform"][5] % 10 == 0  # snapped grid
    rels = {lk["rel"] for lk in post["links"]}
    assert {"license", "related"} <= rels and not {"via", "derived_from"} & rels  # a synthetic sample links no real product
    _, pre = _item(out, "20201224")
    assert pre["assets"]["vv"]["proj:transform"] == vv["proj:transform"]  # pre and post on the same grid


def test_sample_cogs(sample_build) -> None:
    out, _ = sample_build
    path, post = _item(out, "20210105")
    _, pre = _item(out, "20201224")
    pre_dir = next((out / "sentinel-1").glob("gjerdrum-landslide-2020_S1A_IW_GRDH_1SDV_20201224*"))
    medians = {}
    for key in ("vv", "vh"):
        cog = path.parent / f"{key}.tif"
        valid, errors, _ = is_valid_cog(cog)
        assert valid, errors
        with rasterio.open(cog) as ds:
            assert ds.dtypes[0] == "float32" and np.isnan(ds.nodata) and ds.crs.to_epsg() == 32632
            assert [ds.height, ds.width] == post["assets"][key]["proj:shape"] and ds.overviews(1)
            data = ds.read(1)
        finite = data[np.isfinite(data)]
        assert 0.3 < finite.size / data.size <= 1 and (finite > 0).all()
        medians[key] = float(np.median(10 * np.log10(finite)))
    # linear power of vegetated land: VV about -11 dB, VH about -18 dB (the sample's sigma0 model)
    assert -14 < medians["vv"] < -9 and -21 < medians["vh"] < -15
    # the landslide scar at the event site is brighter after the event than before
    lon, lat = 11.0416, 60.0723
    x, y = Transformer.from_crs(4326, 32632, always_xy=True).transform(lon, lat)

    def around(d: Path) -> float:
        with rasterio.open(d / "vv.tif") as ds:
            r, c = ds.index(x, y)
            return float(np.nanmean(ds.read(1)[r - 10:r + 10, c - 10:c + 10]))

    assert around(path.parent) > 1.8 * around(pre_dir)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # a PNG has no georeferencing
        with rasterio.open(path.parent / "thumbnail.png") as png:
            assert png.count == 3 and max(png.width, png.height) <= 256


def test_calibration_matches_lut(sample_build) -> None:
    """sigma0 = (DN^2 - N) / A^2 at chosen pixels, A bilinear between the LUT knots (independent computation)."""
    _, products = sample_build
    safe = sorted(products.glob("S1A_*.SAFE"))[0]
    prod = Sentinel1().parse(safe)
    rel = prod.calibrations["VV"]
    lut = parse_calibration(prod.fs, rel)
    with rasterio.open(safe / prod.measurements["VV"]) as src:
        dn = src.read(1)
    noise = parse_noise(prod.fs, prod.noises["VV"])
    sigma0 = calibrate(dn[100:400, 50:350], lut.window(100, 50, 300, 300), noise.window(100, 50, 300, 300))
    import xml.etree.ElementTree as ET

    noise_values = {float(x) for v in ET.parse(safe / prod.noises["VV"]).getroot().iter("noiseRangeLut") for x in v.text.split()}
    assert noise_values == {100.0}  # the sample's noise LUT: a flat floor, no azimuth vectors

    root = ET.parse(safe / rel).getroot()
    vecs = [(int(v.findtext("line")), np.array(v.findtext("pixel").split(), float),
             np.array(v.findtext("sigmaNought").split(), float)) for v in root.iter("calibrationVector")]
    for line, pixel in [(100, 50), (137, 61), (250, 333), (399, 349), (312, 200)]:
        k = max(i for i, v in enumerate(vecs) if v[0] <= line)
        (l0, p0, s0), (l1, _, s1) = vecs[k], vecs[k + 1]
        j = max(i for i, p in enumerate(p0) if p <= pixel)
        t, u = (line - l0) / (l1 - l0), (pixel - p0[j]) / (p0[j + 1] - p0[j])
        a = (1 - t) * ((1 - u) * s0[j] + u * s0[j + 1]) + t * ((1 - u) * s1[j] + u * s1[j + 1])
        expected = max(float(dn[line, pixel]) ** 2 - 100.0, 0.0) / a**2
        assert sigma0[line - 100, pixel - 50] == pytest.approx(expected, rel=1e-4)
    assert np.isnan(calibrate(np.array([[0, 7]], np.uint16), np.array([[500, 500]], np.float32))[0, 0])


def test_build_deterministic(sample_build, tmp_path: Path) -> None:
    out, products = sample_build
    again = tmp_path / "again"
    build(out.parent / "events", [products], again)
    for p in sorted((out / "sentinel-1").rglob("*")):
        if p.is_file():
            assert (again / p.relative_to(out)).read_bytes() == p.read_bytes(), p


def test_zip_product(sample_build, tmp_path: Path) -> None:
    _, products = sample_build
    safe = sorted(products.glob("S1A_*.SAFE"))[0]
    z = tmp_path / f"{safe.name.removesuffix('.SAFE')}.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(safe.rglob("*")):
            zf.write(p, f"{safe.name}/{p.relative_to(safe)}")
    meta = read_product(z)
    assert meta.id == safe.name.removesuffix(".SAFE") and meta.source == "sentinel-1"
    assert meta.item["properties"]["sat:orbit_state"] == "ascending"


# ---------------------------------------------------------------- bad input


def _two_products(tmp_path: Path) -> tuple[Path, Path, Path]:
    events = tmp_path / "events"
    write_event(events, "gjerdrum-landslide-2020")
    ev = load_inventory(events)[0]
    products = tmp_path / "products"
    bad = write_product(products, ev, datetime(2021, 1, 5, 16, 42, 11, tzinfo=UTC))
    write_product(products, ev, datetime(2020, 12, 24, 16, 42, 11, tzinfo=UTC))
    return events, products, bad


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        ("zero", "0-byte measurement file"),
        ("truncated", "unreadable or truncated measurement file"),
        ("mismatch", "does not match its file name"),
        ("no_calibration", "missing calibration file for VH"),
        ("slc", "SLC products are not supported"),
    ],
)
def test_bad_products_named_others_continue(tmp_path: Path, damage: str, needle: str) -> None:
    events, products, bad = _two_products(tmp_path)
    vh = next((bad / "measurement").glob("*-vh-*.tiff"))
    if damage == "zero":
        vh.write_bytes(b"")
    elif damage == "truncated":
        vh.write_bytes(vh.read_bytes()[:5000])
    elif damage == "mismatch":
        ann = bad / "annotation" / vh.name.replace(".tiff", ".xml")
        ann.write_text(ann.read_text().replace("<polarisation>VH</polarisation>", "<polarisation>HV</polarisation>"))
    elif damage == "no_calibration":
        next((bad / "annotation/calibration").glob("calibration-*-vh-*.xml")).unlink()
    else:
        man = bad / "manifest.safe"
        man.write_text(man.read_text().replace("<s1sarl1:productType>GRD<", "<s1sarl1:productType>SLC<"))
    out = tmp_path / "catalog"
    report = build(events, [products], out)
    messages = report.failures + [r.message for r in report.results if not r.ok]
    assert not report.ok and any(needle in m and bad.name in m for m in messages), messages
    assert report.collections == {"events": 1, "sentinel-1": 1}  # the other product was built
    assert len(list((out / "sentinel-1").glob(f"*{bad.name.removesuffix('.SAFE')}*"))) == 0
    assert not list(out.rglob("*.part")) and not list(out.parent.glob(".catalog*"))


def test_placeholder_measurements_unusable(real_fixtures: Path, tmp_path: Path) -> None:
    """The real stactools GRD (0-byte TIFFs): the build names the file and writes no item for it."""
    events = tmp_path / "events"
    write_event(events, "central-france-2021", geometry=box(3.3, 45.5), site=[3.3, 45.5],
                datetime="2021-08-10T00:00:00Z", countries=["FRA"])
    products = tmp_path / "products"
    products.mkdir()
    (products / Path(GRD).name).symlink_to(real_fixtures / GRD)
    out = tmp_path / "catalog"
    report = build(events, [products], out)
    messages = [r.message for r in report.results if not r.ok]
    assert len(messages) == 1 and "0-byte measurement file" in messages[0]
    assert "s1a-iw-grd-vv-20210809t173953" in messages[0]
    assert not (out / "sentinel-1").exists()
    result = CliRunner().invoke(main, ["build", "--events", str(events), "--products", str(products),
                                       "--out", str(tmp_path / "cli")])
    assert result.exit_code == 1
    shutil.rmtree(tmp_path / "cli", ignore_errors=True)


def _as_ew_grdm(iw_safe: Path, out_dir: Path) -> Path:
    """The same scene relabelled as an EW GRD-M dual-pol HH/HV product (names, annotations, manifest):
    the mode- and polarisation-dependent paths of the reader, which the IW samples never take."""
    swap = [("S1A_IW_GRDH_1SDV", "S1A_EW_GRDM_1SDH"), ("s1a-iw-grd-vv", "s1a-ew-grd-hh"),
            ("s1a-iw-grd-vh", "s1a-ew-grd-hv"), (">IW<", ">EW<"), (">VV<", ">HH<"), (">VH<", ">HV<"),
            ("Sentinel-1 IW", "Sentinel-1 EW"), ("/iwdp", "/ewdp")]

    def rename(s: str) -> str:
        for a, b in swap:
            s = s.replace(a, b)
        return s

    dst = out_dir / rename(iw_safe.name)
    for src in sorted(iw_safe.rglob("*")):
        target = dst / rename(str(src.relative_to(iw_safe)))
        if src.is_dir():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix in (".xml", ".safe"):
            target.write_text(rename(src.read_text(encoding="utf-8")), encoding="utf-8")
        else:
            shutil.copy(src, target)
    return dst


def test_ew_dual_pol_hh_hv(tmp_path: Path) -> None:
    events = tmp_path / "events"
    write_event(events, "gjerdrum-landslide-2020")
    ev = load_inventory(events)[0]
    iw = write_product(tmp_path / "iw", ev, datetime(2021, 1, 5, 16, 42, 11, tzinfo=UTC), change="landslide")
    ew = _as_ew_grdm(iw, tmp_path / "products")
    meta = read_product(ew)
    p = meta.item["properties"]
    assert meta.id.startswith("S1A_EW_GRDM_1SDH_20210105T164211")
    assert p["sar:instrument_mode"] == "EW" and p["sar:polarizations"] == ["HH", "HV"]
    # table 5-1 of the Product Definition for EW GRD-M: 93 x 87 m resolution, 40 m pixels, 6 x 2 looks
    assert (p["sar:resolution_range"], p["sar:resolution_azimuth"]) == (93, 87)
    assert (p["sar:looks_range"], p["sar:looks_azimuth"]) == (6, 2)
    report = build(events, [tmp_path / "products"], tmp_path / "catalog")
    assert report.ok, report.failures + [r.message for r in report.results]
    item_path = next((tmp_path / "catalog" / "sentinel-1").glob("*/*.json"))
    item = json.loads(item_path.read_text())
    assert {"hh", "hv"} <= set(item["assets"]) and "vv" not in item["assets"]
    with rasterio.open(item_path.parent / "hh.tif") as hh, rasterio.open(item_path.parent / "hv.tif") as hv:
        a, b = hh.read(1), hv.read(1)
    valid = np.isfinite(a) & np.isfinite(b)
    assert valid.mean() > 0.5
    # co-pol brighter than cross-pol, as the VV/VH the pixels were made as (about 7 dB apart)
    assert 4 < 10 * np.log10(np.median(a[valid]) / np.median(b[valid])) < 10


def _aws_with_footprint(real_fixtures: Path, tmp_path: Path, footprint: dict) -> Path:
    """The real AWS product with its productInfo.json footprint replaced (files linked, not copied)."""
    src = real_fixtures / AWS
    dst = tmp_path / src.name
    dst.mkdir(parents=True)
    for p in src.iterdir():
        if p.name != "productInfo.json":
            (dst / p.name).symlink_to(p)
    info = json.loads((src / "productInfo.json").read_text())
    info["footprint"] = footprint
    (dst / "productInfo.json").write_text(json.dumps(info))
    return dst


def test_aws_multipolygon_footprint(real_fixtures: Path, tmp_path: Path, schema_store) -> None:
    """AWS productInfo.json gives a MultiPolygon for scenes it split (and STAC APIs serve empty members)."""
    from stac_mmtp.release.validate import validate_objects

    real = json.loads((real_fixtures / AWS / "productInfo.json").read_text())["footprint"]["coordinates"]
    # the real ring plus an empty member: the empty member is dropped, the ring kept as it is
    path = _aws_with_footprint(real_fixtures, tmp_path / "a", {"type": "MultiPolygon", "coordinates": [[], real]})
    meta = read_product(path)
    assert meta.geometry["type"] == "Polygon" and meta.geometry["coordinates"][0][0] == [77.891296, 9.225784]
    assert meta.item["bbox"] == [75.605247, 9.225784, 78.203903, 11.190425]
    # a scene AWS split at the antimeridian: kept as two parts, bbox west > east (STAC best practice)
    east = [[[179.5, 51.0], [180.0, 51.0], [180.0, 52.0], [179.5, 52.0], [179.5, 51.0]]]
    west = [[[-180.0, 51.0], [-179.2, 51.0], [-179.2, 52.0], [-180.0, 52.0], [-180.0, 51.0]]]
    path = _aws_with_footprint(real_fixtures, tmp_path / "b", {"type": "MultiPolygon", "coordinates": [east, west]})
    meta = read_product(path)
    assert meta.geometry["type"] == "MultiPolygon" and len(meta.geometry["coordinates"]) == 2
    assert meta.item["bbox"] == [179.5, 51.0, -179.2, 52.0]
    assert validate_objects([meta.item], schema_store) == []
    r = CliRunner().invoke(main, ["inspect", str(path)])
    assert r.exit_code == 0 and json.loads(r.output)["bbox"] == [179.5, 51.0, -179.2, 52.0]


# ---------------------------------------------------------------- GDAL's own SAFE driver


def _gdal_subdatasets(manifest: Path) -> list[str]:
    with rasterio.open(manifest) as ds:
        assert ds.driver == "SAFE"
        return list(ds.subdatasets)


# the window of the sparse measurements that holds pixels: random DN (seeded), rows 5000-5039, columns 10000-10299
SPARSE_WINDOW = ((5000, 5040), (10000, 10300))
SPARSE_DN = np.random.default_rng(1).integers(1, 2000, (40, 300)).astype(np.uint16)


def _real_safe_with_sparse_measurements(real_fixtures: Path, tmp_path: Path) -> Path:
    """The real stactools GRD (manifest, annotations, LUTs linked in place) with sparse full-size
    measurement TIFFs (one strip per line, as the IPF writes them) in place of its 0-byte placeholders:
    a real SAFE the readers can open, with pixels (SPARSE_DN) in SPARSE_WINDOW only."""
    src = real_fixtures / GRD
    dst = tmp_path / "real" / src.name
    (dst / "measurement").mkdir(parents=True)
    (dst / "manifest.safe").symlink_to(src / "manifest.safe")
    (dst / "annotation").symlink_to(src / "annotation")
    for tiff in (src / "measurement").iterdir():
        with rasterio.open(dst / "measurement" / tiff.name, "w", driver="GTiff", width=26144, height=16676, count=1,
                           dtype="uint16", blockysize=1, sparse_ok=True) as ds:
            ds.write(SPARSE_DN, 1, window=SPARSE_WINDOW)
    return dst


def test_sample_safe_opens_with_gdal_safe_driver(sample_build) -> None:
    """GDAL's SAFE driver finds the images through the manifest (Measurement Data Units pointing to
    the annotation and calibration data objects): it opens the sample as a 2-band GRD with the
    annotation's 210 GCPs, lists its subdatasets, and the VV subdataset gives the measurement's pixels."""
    _, products = sample_build
    safe = sorted(products.glob("S1A_*.SAFE"))[0]
    manifest = safe / "manifest.safe"
    with rasterio.open(manifest) as ds:
        assert ds.driver == "SAFE" and ds.count == 2 and (ds.width, ds.height) == (800, 800)
        tags = ds.tags()
        assert (tags["MISSION_ID"], tags["PRODUCT_TYPE"], tags["MODE"], tags["SWATH"]) == ("S1A", "GRD", "IW", "IW")
        assert (tags["SATELLITE_IDENTIFIER"], tags["ORBIT_DIRECTION"]) == ("SENTINEL-1", "ASCENDING")
        assert tags["ACQUISITION_START_TIME"] == "2020-12-24T16:42:11.000000"
        assert {ds.tags(b)["POLARIZATION"] for b in (1, 2)} == {"VV", "VH"}
        gcps, gcp_crs = ds.gcps
    assert gcp_crs.to_epsg() == 4326 and len(gcps) == 210
    vv_tiff = next((safe / "measurement").glob("s1a-iw-grd-vv-*.tiff"))
    with rasterio.open(vv_tiff) as gt:  # the GCPs GDAL read from the annotation = those of the TIFF
        expected = {(g.row, g.col): (g.x, g.y) for g in gt.gcps[0]}
        dn = gt.read(1)
    assert {(g.row, g.col): pytest.approx((g.x, g.y), abs=1e-9) for g in gcps} == expected
    names = _gdal_subdatasets(manifest)
    assert names == [f"SENTINEL1_CALIB:UNCALIB:{manifest}:{sub}:AMPLITUDE" for sub in ("IW_VH", "IW_VV", "IW")]
    with rasterio.open(names[1]) as sub:
        assert sub.count == 1 and sub.tags(1)["POLARIZATION"] == "VV"
        assert np.array_equal(sub.read(1), dn) and dn.max() > 0


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # sparse TIFFs: the GCPs are in the XML
def test_gdal_has_no_calibrated_grd_subdataset(sample_build, real_fixtures: Path, tmp_path: Path) -> None:
    """GDAL (3.10) calibrates SLC products only: for a GRD its SAFE driver lists only UNCALIB subdatasets
    and refuses SENTINEL1_CALIB:SIGMA0 (OSGeo/gdal issue 5826, open) - on the real IPF 3.31 SAFE exactly
    as on the sample, which therefore cannot serve as GDAL's sigma0 reference. If a GDAL release adds
    GRD calibration this test fails: then compare our sigma0 with it."""
    _, products = sample_build
    real = _real_safe_with_sparse_measurements(real_fixtures, tmp_path) / "manifest.safe"
    sample = sorted(products.glob("S1A_*.SAFE"))[0] / "manifest.safe"
    for manifest in (real, sample):
        names = _gdal_subdatasets(manifest)
        assert [n.replace(str(manifest), "M") for n in names] == [
            "SENTINEL1_CALIB:UNCALIB:M:IW_VH:AMPLITUDE", "SENTINEL1_CALIB:UNCALIB:M:IW_VV:AMPLITUDE",
            "SENTINEL1_CALIB:UNCALIB:M:IW:AMPLITUDE"]
        for unit in ("INTENSITY", "AMPLITUDE"):
            with pytest.raises(rasterio.errors.RasterioIOError, match="Measurement bands not found"):
                rasterio.open(f"SENTINEL1_CALIB:SIGMA0:{manifest}:IW_VV:{unit}")
    with rasterio.open(f"SENTINEL1_CALIB:UNCALIB:{real}:IW_VV:AMPLITUDE") as ds:
        assert (ds.width, ds.height) == (26144, 16676) and len(ds.gcps[0]) == 210
        (r0, r1), (c0, c1) = SPARSE_WINDOW
        assert np.array_equal(ds.read(1, window=((r0 - 1, r1 + 1), (c0, c1))), np.pad(SPARSE_DN, ((1, 1), (0, 0))))


# ---------------------------------------------------------------- xarray-sentinel: an independent reference for sigma0


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_sigma0_matches_xarray_sentinel(sample_build, real_fixtures: Path, tmp_path: Path) -> None:
    """Our sigma0 in radar geometry (before geocoding) equals xarray-sentinel's (B-Open's Sentinel-1
    reader, its own SAFE parsing and LUT interpolation) pixel for pixel, within 2e-6 relative (float32
    rounding; measured 5e-7), on the sample and on the real IPF 3.31 SAFE (its calibration LUT, sparse
    measurement). Like with like: xarray-sentinel's calibrate_intensity is DN^2 / A^2 with no noise
    removal, so it is compared with our calibration step alone (no noise LUT); our noise removal is then
    checked against it with the sample's noise LUT, a flat N = 100 (test_calibration_matches_lut):
    (DN^2 - N) / A^2 = reference * (1 - N / DN^2), floored at 0. DN 0 (no data): our NaN, its 0."""
    import xarray as xr  # a test dependency (pyproject [test]): missing, the test fails, it does not skip
    import xarray_sentinel
    from rasterio.windows import Window

    from stac_mmtp.sources.sentinel1 import calibrate_window

    _, products = sample_build
    sample = sorted(products.glob("S1A_*.SAFE"))[0]
    real = _real_safe_with_sparse_measurements(real_fixtures, tmp_path)
    (r0, r1), (c0, c1) = SPARSE_WINDOW
    for safe, meta_dir, (rows, cols) in ((sample, sample, (slice(0, 800), slice(0, 800))),
                                         (real, real_fixtures / GRD, (slice(r0, r1), slice(c0, c1)))):
        pol = xr.open_dataset(safe, engine="sentinel-1", group="IW/VV")
        lut = xr.open_dataset(safe, engine="sentinel-1", group="IW/VV/calibration")
        dn_da = pol.measurement.isel(azimuth_time=rows, ground_range=cols)
        reference = xarray_sentinel.calibrate_intensity(dn_da, lut.sigmaNought).values
        dn = dn_da.values
        prod = Sentinel1().parse(meta_dir)
        ours = calibrate_window(dn, parse_calibration(prod.fs, prod.calibrations["VV"]),
                                Window(cols.start, rows.start, dn.shape[1], dn.shape[0]))
        valid = dn > 0
        assert valid.mean() > 0.9 and np.isnan(ours[~valid]).all() and (reference[~valid] == 0).all()
        np.testing.assert_allclose(ours[valid], reference[valid], rtol=2e-6)
        if safe == sample:
            denoised = calibrate_window(dn, parse_calibration(prod.fs, prod.calibrations["VV"]),
                                        Window(0, 0, dn.shape[1], dn.shape[0]), noise=parse_noise(prod.fs, prod.noises["VV"]))
            expected = reference * np.maximum(1 - 100.0 / np.maximum(dn, 1).astype(np.float64) ** 2, 0)
            np.testing.assert_allclose(denoised[valid], expected[valid], rtol=2e-6, atol=1e-12)


def test_collection_description_says_what_convert_does() -> None:
    """The collection text a user reads matches the code: thermal noise is removed (noise LUT), then calibrated."""
    from stac_mmtp.stac.events import collection_metadata

    text = collection_metadata("sentinel-1")["description"]
    assert "no thermal-noise removal" not in text
    assert "thermal noise removed with the product's noise LUT" in text
    assert "(DN^2 - N) / A^2" in text
