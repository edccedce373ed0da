"""FLATSIM: names, sidecars and baselines parsed; sample packages converted to valid COGs and items; overviews
never average wrapped phase; a pair spanning an event is co-event; bad input named; real NSBAS velocity read."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import write_event
from rasterio.windows import Window

from stac_mmtp.build import build, plan, temporal_role
from stac_mmtp.dataset.inventory import load_inventory
from stac_mmtp.errors import ProductError
from stac_mmtp.raster.cog import is_valid_cog
from stac_mmtp.release.validate import validate_tree
from stac_mmtp.sources import BuildOptions, ProductMeta, read_product
from stac_mmtp.sources.flatsim import (
    Flatsim,
    parse_file_name,
    parse_list_images,
    parse_meta,
    parse_package_name,
    velocity_to_cog,
)
from stac_mmtp.sources.flatsim.samples import PLANS, write_int_package, write_samples

REPO = Path(__file__).resolve().parents[1]
CLAPIERE, LAURICHARD = "la-clapiere-landslide-2014", "laurichard-rock-glacier-2014"
INT_D139 = "NSBAS_INT-PKG_S1_ALPES-D139_VV_2015-07-05_2015-07-17"
INT_A088 = "NSBAS_INT-PKG_S1_ALPES-A088_VV_2017-08-10_2017-08-16"
TS_D139 = "NSBAS_TS-PKG_S1_ALPES-D139_VV_20141225_20161027"


def d(y: int, m: int, day: int) -> datetime:
    return datetime(y, m, day, tzinfo=UTC)


# ---------------------------------------------------------------- names, sidecars, baselines


@pytest.mark.parametrize(
    ("name", "code", "geom", "dates", "flags", "looks"),
    [
        ("CNES_InW_geo_20150705_20150717_sd_era_8rlks.tiff", "InW", "geo", (d(2015, 7, 5), d(2015, 7, 17)), ("sd", "era"), 8),
        ("CNES_InWF_radar_20150705_20150717_sd_8rlks.tiff", "InWF", "radar", (d(2015, 7, 5), d(2015, 7, 17)), ("sd",), 8),
        ("CNES_Coh_geo_20180101_20180113_mask_8rlks.tiff", "Coh", "geo", (d(2018, 1, 1), d(2018, 1, 13)), ("mask",), 8),
        ("CNES_MV-LOS_geo_8rlks.tiff", "MV-LOS", "geo", None, (), 8),
        ("CNES_DTs_geo_4rlks.tiff", "DTs", "geo", None, (), 4),
        ("CNES_CosENU_geo_8rlks.meta", "CosENU", "geo", None, (), 8),
    ],
)
def test_file_names(name: str, code: str, geom: str, dates: tuple | None, flags: tuple, looks: int) -> None:
    fn = parse_file_name(name)
    assert fn is not None
    assert (fn.code, fn.geometry, fn.dates, fn.flags, fn.looks) == (code, geom, dates, flags, looks)
    assert fn.corrections == tuple(f for f in flags if f in ("sd", "era"))


@pytest.mark.parametrize("name", ["CNES_InW_20150705_8rlks.tiff", "CNES_InW_geo_8looks.tiff", "S1A_InW_geo_8rlks.tiff",
                                  "CNES_InW_geo_20150705_20150717_8rlks.png"])
def test_file_names_rejected(name: str) -> None:
    assert parse_file_name(name) is None


def test_package_names() -> None:
    n = parse_package_name(INT_D139)
    assert (n.kind, n.region, n.orbit_state, n.track, n.track_id) == ("INT", "ALPES", "descending", 139, "D139")
    assert n.pair == (d(2015, 7, 5), d(2015, 7, 17))
    z = parse_package_name(INT_A088 + ".zip")
    assert (z.orbit_state, z.track, z.pair[1]) == ("ascending", 88, d(2017, 8, 16))
    ts = parse_package_name("NSBAS_TS-PKG_S1_TIANSHAN-D034SUD")
    assert (ts.kind, ts.region, ts.track, ts.pair) == ("TS", "TIANSHAN", 34, None)
    assert parse_package_name("NSBAS_DAUX-PKG_S1_ALPES-D139_VV").kind == "DAUX"
    assert parse_package_name("NSBAS_FOO-PKG_S1_ALPES-D139") is None
    assert parse_package_name("S2A_MSIL2A_20201225T104441_N0510_R008_T32VPM") is None


def test_meta_sidecar() -> None:
    meta = parse_meta("# FLATSIM\nProduct: InW_geo\nUnit: rad\n\nDate1: 20150705\n", "x.meta")
    assert meta == {"Product": "InW_geo", "Unit": "rad", "Date1": "20150705"}
    with pytest.raises(ProductError, match=r"x\.meta: unparseable \.meta line 2"):
        parse_meta("Unit: rad\nthis line has no key\n", "x.meta")


def test_real_nsbas_list_images(real_fixtures: Path) -> None:
    """The real NSBAS baseline list (PyGdalSAR tutorial): 8 dates with their perpendicular baselines."""
    path = real_fixtures / "pygdalsar-nsbas-tutorial/ReversibleDeformation/list_images.txt"
    bperp = parse_list_images(path.read_text(), str(path))
    assert len(bperp) == 8
    assert bperp[d(2007, 2, 18)] == 853 and bperp[d(2007, 7, 6)] == 0 and bperp[d(2009, 1, 8)] == 1632
    assert min(bperp) == d(2007, 2, 18) and max(bperp) == d(2009, 1, 8)


def test_real_nsbas_velocity(real_fixtures: Path, tmp_path: Path) -> None:
    """The real NSBAS linear velocity GeoTIFF (UTM 45N, NaN = no data) read as a generic InSAR velocity product."""
    src = real_fixtures / "pygdalsar-nsbas-tutorial/ReversibleDeformation/lin_coeff.tif"
    asset = velocity_to_cog(src, tmp_path / "velocity.tif")
    assert asset["proj:code"] == "EPSG:32645" and asset["proj:shape"] == [300, 200]
    assert asset["proj:transform"] == [25.0, 0.0, 714887.0, 0.0, -25.0, 3056645.0]
    assert asset["bands"][0]["unit"] == "mm/yr" and asset["bands"][0]["nodata"] == "nan"
    with rasterio.open(tmp_path / "velocity.tif") as ds, rasterio.open(src) as ref:
        v = ds.read(1)
        assert ds.crs.to_epsg() == 32645 and np.isnan(ds.nodata)
        assert v[150, 100] == pytest.approx(-3.0684476)
        assert int(np.isnan(v).sum()) == 10258
        assert np.array_equal(v, ref.read(1), equal_nan=True)
    assert is_valid_cog(tmp_path / "velocity.tif")[0]
    win = velocity_to_cog(src, tmp_path / "clip.tif", Window(100, 150, 50, 40))
    assert win["proj:transform"][2] == 714887.0 + 100 * 25 and win["proj:shape"] == [40, 50]
    with rasterio.open(tmp_path / "clip.tif") as ds:
        assert ds.read(1)[0, 0] == pytest.approx(-3.0684476)


# ---------------------------------------------------------------- sample packages and the build


@pytest.fixture(scope="module")
def flatsim_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("flatsim")
    events = root / "events"
    events.mkdir()
    for eid in (CLAPIERE, LAURICHARD):  # the project's own inventory files
        shutil.copy(REPO / "catalog" / "events" / f"{eid}.geojson", events)
    evs = {e.id: e for e in load_inventory(events)}
    products = root / "products"
    write_samples(products, [evs[CLAPIERE], evs[LAURICHARD]])
    out = root / "catalog"
    # a 6 km buffer makes the La Clapiere clips wider than one 256-pixel block, so that they get an overview
    report = build(events, [products], out, BuildOptions(buffer_m=6000, jobs=1))
    assert report.ok, report.failures + [r.message for r in report.results]
    return out, products, events


def _item(out: Path, prefix: str) -> tuple[Path, dict]:
    path = next((out / "flatsim").glob(f"{prefix}*/*.json"))
    return path, json.loads(path.read_text())


def test_read_packages(flatsim_build, caplog: pytest.LogCaptureFixture) -> None:
    _, products, _ = flatsim_build
    with caplog.at_level(logging.WARNING):
        meta = read_product(products / INT_D139)
    assert meta.source == "flatsim" and meta.id == INT_D139
    assert (meta.start, meta.end) == (d(2015, 7, 5), d(2015, 7, 17))
    props = meta.item["properties"]
    assert (props["sat:orbit_state"], props["sat:relative_orbit"], props["flatsim:track"]) == ("descending", 139, "D139")
    assert props["insar:temporal_baseline"] == 12 and props["flatsim:corrections"] == ["sd", "era"]
    assert any("CNES_InW_radar_20150705_20150717_sd_era_8rlks.tiff: radar geometry: not georeferenced" in m
               and "no look-up table" in m for m in caplog.messages)
    assert props["flatsim:skipped"] and "radar" in props["flatsim:skipped"][0]
    zipped = read_product(products / f"{INT_A088}.zip")
    zp = zipped.item["properties"]
    assert (zp["sat:orbit_state"], zp["sat:relative_orbit"], zp["insar:secondary_datetime"]) == (
        "ascending", 88, "2017-08-16T00:00:00Z")
    assert zipped.geometry["type"] == "Polygon"
    ts = Flatsim().parse(products / TS_D139)
    assert [f"{x:%Y%m%d}" for x in ts.dates][:3] == ["20141225", "20150331", "20150705"] and len(ts.dates) == 9


def test_items_valid_offline(flatsim_build, schema_store, no_network) -> None:
    out, _, _ = flatsim_build
    report = validate_tree(out, schema_store)
    assert report.ok, [str(p) for p in report.problems]
    assert report.by_type["Feature"] == 2 + 5  # 2 events; INT x2, TS, DAUX x2
    assert no_network == []


def test_interferogram_item(flatsim_build) -> None:
    out, products, _ = flatsim_build
    _, item = _item(out, f"{CLAPIERE}_NSBAS_INT")
    p = item["properties"]
    assert p["datetime"] is None and (p["start_datetime"], p["end_datetime"]) == ("2015-07-05T00:00:00Z", "2015-07-17T00:00:00Z")
    assert (p["insar:reference_datetime"], p["insar:secondary_datetime"]) == (p["start_datetime"], p["end_datetime"])
    assert p["insar:temporal_baseline"] == 12
    # Bperp from the DAUX package's list_images.txt beside it: Bperp(secondary) - Bperp(reference)
    daux = {ln.split()[1]: float(ln.split()[5]) for ln in
            (products / "NSBAS_DAUX-PKG_S1_ALPES-D139_VV" / "list_images.txt").read_text().splitlines()}
    assert p["insar:perpendicular_baseline"] == pytest.approx(daux["20150717"] - daux["20150705"])
    assert (p["sar:frequency_band"], p["sar:polarizations"], p["sar:instrument_mode"]) == ("C", ["VV"], "IW")
    assert (p["sat:orbit_state"], p["sat:relative_orbit"]) == ("descending", 139)
    # a synthetic sample package: our licence, no FLATSIM DOI (tests/test_synthetic.py checks the rest)
    assert p["mmtp:synthetic"] is True and p["license"] == "CC-BY-4.0" and "sci:doi" not in p
    assert "FLATSIM interferogram package format" in p["processing:lineage"] and "8 range looks" in p["processing:lineage"]
    assert p["mmtp:event_id"] == CLAPIERE and p["mmtp:phenomenon"] == "slow-moving-landslide"
    assert p["mmtp:temporal_role"] == "co-event"
    assert "cite-as" not in {lk["rel"] for lk in item["links"]}
    a = item["assets"]
    assert set(a) == {"wrapped_phase", "filtered_wrapped_phase", "unwrapped_phase", "coherence", "thumbnail",
                      "overview"}
    assert "phase" in a["wrapped_phase"]["roles"] and "unwrapped_phase" in a["unwrapped_phase"]["roles"]
    assert "coherence" in a["coherence"]["roles"]
    assert a["unwrapped_phase"]["bands"][0]["unit"] == "rad" and a["unwrapped_phase"]["bands"][0]["nodata"] == 0
    assert [b["name"] for b in a["filtered_wrapped_phase"]["bands"]] == ["filtered_phase", "filter_coherence"]
    assert a["wrapped_phase"]["proj:code"] == "EPSG:4326"
    assert a["thumbnail"]["type"] == "image/png" and a["thumbnail"]["flatsim:colour_scale"]["asset"] == "filtered_wrapped_phase"


def test_time_series_item(flatsim_build) -> None:
    out, _, _ = flatsim_build
    path, item = _item(out, f"{CLAPIERE}_NSBAS_TS")
    p = item["properties"]
    assert p["flatsim:dates"][0] == "2014-12-25" and p["flatsim:dates"][-1] == "2016-10-27"
    assert p["insar:temporal_baseline"] == 672 and "insar:perpendicular_baseline" not in p
    cube = item["assets"]["displacement"]
    assert [b["description"] for b in cube["bands"]] == [x.replace("-", "") for x in p["flatsim:dates"]]
    assert cube["bands"][0]["unit"] == "mm" and item["assets"]["velocity"]["bands"][0]["unit"] == "mm/yr"
    with rasterio.open(path.parent / "displacement.tif") as ds:
        assert ds.count == 9 and ds.descriptions[4] == "20151009"
    thumb = item["assets"]["thumbnail"]
    assert thumb["flatsim:colour_scale"]["asset"] == "velocity" and "diverging" in thumb["description"]
    coll = json.loads((out / "flatsim" / "collection.json").read_text())
    assert coll["license"] == "CC-BY-4.0" and "sci:doi" not in coll and coll["mmtp:synthetic"] is True
    assert coll["summaries"]["sat:relative_orbit"] == {"minimum": 88, "maximum": 139}
    assert {"wrapped_phase", "unwrapped_phase", "coherence", "displacement", "velocity"} <= set(coll["item_assets"])


def test_cogs_match_source_pixels(flatsim_build) -> None:
    out, products, _ = flatsim_build
    path, item = _item(out, f"{CLAPIERE}_NSBAS_INT")
    for key, src_name in (("coherence", "CNES_Coh_geo_20150705_20150717_8rlks.tiff"),
                          ("unwrapped_phase", "CNES_InU_geo_20150705_20150717_sd_era_8rlks.tiff")):
        cog = path.parent / f"{key}.tif"
        assert is_valid_cog(cog)[0]
        with rasterio.open(cog) as ds, rasterio.open(products / INT_D139 / src_name) as src:
            assert ds.crs.to_epsg() == 4326 and ds.nodata == 0 and ds.dtypes[0] == "float32"
            assert list(ds.transform)[:6] == item["assets"][key]["proj:transform"]
            col = round((ds.transform.c - src.transform.c) / src.transform.a)
            row = round((ds.transform.f - src.transform.f) / src.transform.e)
            assert ds.transform.c == pytest.approx(src.transform.c + col * src.transform.a, abs=1e-12)  # same grid
            expected = src.read(1, window=Window(col, row, ds.width, ds.height))
            assert np.array_equal(ds.read(1), expected)
    # the event site is inside the clip and the AOI + 6 km buffer is covered
    with rasterio.open(path.parent / "coherence.tif") as ds:
        b = ds.bounds
        assert b.left <= 6.8974 - 0.07 and b.right >= 6.9726 + 0.07 and b.bottom <= 44.2231 - 0.05


def test_wrapped_phase_overviews_are_nearest(flatsim_build) -> None:
    """Every value of the wrapped-phase overview exists in the full-resolution phase: nothing was averaged."""
    out, _, _ = flatsim_build
    path, _ = _item(out, f"{CLAPIERE}_NSBAS_INT")
    for key in ("wrapped_phase", "filtered_wrapped_phase"):
        with rasterio.open(path.parent / f"{key}.tif") as ds:
            assert ds.overviews(1) == [2]
            full = ds.read(1)
        with rasterio.open(path.parent / f"{key}.tif", OVERVIEW_LEVEL=0) as ovr:
            small = ovr.read(1)
        assert small.size > 1000 and np.isin(small, full).all()
        # an average of 2x2 neighbours would not be (almost surely): make sure the test can fail
        h, w = (full.shape[0] // 2) * 2, (full.shape[1] // 2) * 2
        mean = full[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        assert not np.isin(mean[full[:h, :w].reshape(h // 2, 2, w // 2, 2).min(axis=(1, 3)) != 0], full).all()


def test_coherence_overview_is_2x2_mean(flatsim_build) -> None:
    out, _, _ = flatsim_build
    path, _ = _item(out, f"{CLAPIERE}_NSBAS_INT")
    with rasterio.open(path.parent / "coherence.tif") as ds:
        full = ds.read(1).astype(np.float64)
    with rasterio.open(path.parent / "coherence.tif", OVERVIEW_LEVEL=0) as ovr:
        small = ovr.read(1)
    h, w = (full.shape[0] // 2) * 2, (full.shape[1] // 2) * 2
    blocks = full[:h, :w].reshape(h // 2, 2, w // 2, 2)
    n_valid = (blocks != 0).sum(axis=(1, 3))
    full_blocks, partial, empty = n_valid == 4, (n_valid > 0) & (n_valid < 4), n_valid == 0
    assert full_blocks.sum() > 5000 and partial.sum() > 0 and empty.sum() > 0  # the sample's masked patch
    small = small[: h // 2, : w // 2]
    np.testing.assert_allclose(small[full_blocks], blocks.mean(axis=(1, 3))[full_blocks], rtol=1e-6)
    # no data (0) is never averaged in: a block with masked pixels gets the mean of its valid ones
    np.testing.assert_allclose(small[partial], (blocks.sum(axis=(1, 3)) / np.maximum(n_valid, 1))[partial], rtol=1e-6)
    assert (small[empty] == 0).all()


# ---------------------------------------------------------------- temporal role of a pair


def test_pair_spanning_event_is_co_event(tmp_path: Path) -> None:
    write_event(tmp_path / "events", "gjerdrum-landslide-2020")  # instant event, 2020-12-30T03:00Z
    ev = load_inventory(tmp_path / "events")[0]
    geom = {"type": "Polygon", "coordinates": [[[10.9, 59.9], [11.2, 59.9], [11.2, 60.2], [10.9, 60.2], [10.9, 59.9]]]}

    def pair(a: datetime, b: datetime, name: str) -> ProductMeta:
        return ProductMeta(tmp_path / name, "flatsim", name, geom, a, b, {})

    spanning = pair(d(2020, 12, 24), d(2021, 1, 5), "span")
    assert temporal_role(ev, spanning) == ("co-event", -6.125)
    before, after = pair(d(2020, 12, 12), d(2020, 12, 24), "pre"), pair(d(2021, 1, 5), d(2021, 1, 17), "post")
    later = pair(d(2021, 1, 17), d(2021, 1, 29), "later")
    tasks, unmatched = plan([ev], [spanning, before, after, later], BuildOptions())
    roles = {t.product.id: t.temporal_role for t in tasks}
    assert roles == {"span": "co-event", "pre": "pre-event", "post": "first-post-event", "later": "post-event"}
    assert unmatched == []


# ---------------------------------------------------------------- bad input


def _one_package(tmp_path: Path) -> tuple[Path, Path, Path]:
    events = tmp_path / "events"
    events.mkdir()
    shutil.copy(REPO / "catalog" / "events" / f"{CLAPIERE}.geojson", events)
    ev = load_inventory(events)[0]
    track, (d1, d2), _ = PLANS[CLAPIERE]
    products = tmp_path / "products"
    pkg = write_int_package(products, ev, track, d1, d2)
    return events, products, pkg


@pytest.mark.parametrize(
    ("damage", "needle", "names"),
    [
        ("zero_tiff", "0-byte TIFF", "CNES_InU_geo_20150705_20150717_sd_era_8rlks.tiff"),
        ("date_mismatch", "disagree with the package name's 2015-07-05_2015-07-17", "CNES_Coh_geo_20150705_20150729"),
        ("bad_meta", "unparseable .meta line 2", "CNES_InU_geo_20150705_20150717_sd_era_8rlks.meta"),
        ("radar_only", "no geocoded (_geo_) product", "no look-up table"),
        ("truncated", "or a truncated TIFF", "CNES_Coh_geo_20150705_20150717_8rlks.tiff"),
    ],
)
def test_bad_packages_named_and_nothing_left(tmp_path: Path, damage: str, needle: str, names: str) -> None:
    events, products, pkg = _one_package(tmp_path)
    inu = pkg / "CNES_InU_geo_20150705_20150717_sd_era_8rlks.tiff"
    coh = pkg / "CNES_Coh_geo_20150705_20150717_8rlks.tiff"
    if damage == "zero_tiff":
        inu.write_bytes(b"")
    elif damage == "date_mismatch":
        coh.rename(pkg / "CNES_Coh_geo_20150705_20150729_8rlks.tiff")
    elif damage == "bad_meta":
        inu.with_suffix(".meta").write_text("Unit: rad\nthis is not a key value line\n")
    elif damage == "radar_only":
        for p in pkg.glob("CNES_*_geo_*"):
            p.unlink()
    else:
        coh.write_bytes(coh.read_bytes()[:600])
    out = tmp_path / "catalog"
    report = build(events, [products], out, BuildOptions(jobs=1))
    messages = report.failures + [r.message for r in report.results if not r.ok]
    assert not report.ok and any(needle in m and names in m for m in messages), messages
    assert report.collections == {"events": 1}
    assert not (out / "flatsim").exists()
    assert not list(out.parent.glob(".catalog*")) and not list(out.rglob("*.part"))


def test_unknown_product_code_warned_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    events, products, pkg = _one_package(tmp_path)
    shutil.copy(pkg / "CNES_Coh_geo_20150705_20150717_8rlks.tiff", pkg / "CNES_Foo_geo_20150705_20150717_8rlks.tiff")
    with caplog.at_level(logging.WARNING):
        report = build(events, [products], tmp_path / "catalog", BuildOptions(jobs=1))
    assert report.ok
    assert any("unknown FLATSIM product code(s), skipped: CNES_Foo_geo_20150705_20150717_8rlks.tiff" in m
               for m in caplog.messages)
    item = json.loads(next((tmp_path / "catalog" / "flatsim").glob("*/*.json")).read_text())
    assert set(item["assets"]) == {"wrapped_phase", "filtered_wrapped_phase", "unwrapped_phase", "coherence", "thumbnail",
                      "overview"}


def test_inspect_each_package_kind(flatsim_build) -> None:
    from click.testing import CliRunner

    from stac_mmtp.commands.main import main

    _, products, _ = flatsim_build
    for name, kind in ((INT_D139, "INT"), (f"{INT_A088}.zip", "INT"), (TS_D139, "TS"),
                       ("NSBAS_DAUX-PKG_S1_ALPES-D139_VV", "DAUX")):
        res = CliRunner().invoke(main, ["-q", "inspect", str(products / name)])
        assert res.exit_code == 0, res.output
        item = json.loads(res.stdout)
        assert item["properties"]["flatsim:package_type"] == kind
    daux = json.loads(CliRunner().invoke(main, ["-q", "inspect", str(products / "NSBAS_DAUX-PKG_S1_ALPES-D139_VV")]).stdout)
    assert "insar:temporal_baseline" not in daux["properties"]
    assert {a["title"] for a in daux["assets"].values()} >= {"Digital elevation model", "LOS unit vector (east, north, up)"}


def test_build_deterministic(flatsim_build, tmp_path: Path) -> None:
    out, products, events = flatsim_build
    again = tmp_path / "again"
    build(events, [products], again, BuildOptions(buffer_m=6000, jobs=1))
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert len(files) == 36  # root, build marker, 2 collections (+ their items.parquet), 7 items, 16 COGs, 3 thumbnails,
    # 3 overview COGs (one per item with a thumbnail), our schema
    for p in files:
        assert (again / p.relative_to(out)).read_bytes() == p.read_bytes(), p
