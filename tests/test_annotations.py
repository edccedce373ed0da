"""Annotations: checks, the real Copernicus EMS EMSR332 import, label items and masks in the build, splits."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from stac_mmtp.build import build
from stac_mmtp.commands.main import main
from stac_mmtp.dataset.annotations import (
    CLASSES,
    IGNORE,
    area_m2,
    load_annotations,
    parse_annotation,
)
from stac_mmtp.dataset.ems import import_ems, parse_source_datetime
from stac_mmtp.dataset.inventory import load_inventory
from stac_mmtp.dataset.splits import SPLITS, assign_splits, split_groups
from stac_mmtp.errors import InputError
from stac_mmtp.raster.cog import is_valid_cog
from stac_mmtp.release.validate import validate_tree
from stac_mmtp.sources.sentinel2.samples import write_product

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "catalog" / "events"
EMS = "copernicus-ems/EMSR332"
VENETO = "veneto-flash-flood-2018"
GJERDRUM = "gjerdrum-landslide-2020"


@pytest.fixture(scope="module")
def inventory():
    return load_inventory(EVENTS)


def _outline(**props) -> dict:
    base = {
        "class": "landslide", "observed": "2021-01-02", "method": "manual", "annotator": "test team",
        "annotator_expertise": "trained", "confidence": 0.7, "review_status": "reviewed",
        "imagery": [{"datetime": "2021-01-02T10:44:41Z", "role": "post-event", "sensor": "Sentinel-2"}],
    }
    base.update(props)
    return {k: v for k, v in base.items() if v is not None}


# A hexagon of ~0.5 km2 around the Gjerdrum site (lon/lat), not aligned with any pixel grid.
HEXAGON = {"type": "Polygon", "coordinates": [[[11.0330, 60.0723], [11.0373, 60.0760], [11.0459, 60.0760], [11.0502, 60.0723],
                                               [11.0459, 60.0686], [11.0373, 60.0686], [11.0330, 60.0723]]]}


def _annotation(event_id: str = GJERDRUM, aid: str = "test-v1", geometry: dict | None = None, **props) -> dict:
    return {
        "type": "FeatureCollection", "id": aid, "event_id": event_id, "title": "Test outlines", "license": "CC-BY-4.0",
        "features": [{"type": "Feature", "id": "slide-1", "geometry": geometry or HEXAGON, "properties": _outline(**props)}],
    }


def _write(root: Path, doc: dict) -> Path:
    path = root / doc["event_id"] / f"{doc['id']}.geojson"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


# ---------------------------------------------------------------- checks
def test_repository_annotations_pass(inventory) -> None:
    sets = load_annotations(REPO / "catalog" / "annotations", inventory)
    assert {(s.event_id, s.id) for s in sets} >= {(GJERDRUM, "maintainers-sketch-v1"), (VENETO, "maintainers-sketch-v1")}
    for s in sets:
        if s.id.startswith("maintainers-"):  # our own sketches say what they are
            assert (s.method, s.review_status, s.annotators) == ("manual", "draft", ["stac-mmtp maintainers"])


def test_good_annotation_parsed(tmp_path: Path, inventory) -> None:
    aset = parse_annotation(_write(tmp_path, _annotation()), {ev.id: ev for ev in inventory})
    assert aset.item_id == "gjerdrum-landslide-2020_test-v1" and aset.classes == ["landslide"]
    assert aset.observed == datetime(2021, 1, 2, tzinfo=UTC)
    assert aset.outlines[0].imagery[0].role == "post-event"
    # two trapezoids: (long + short side) / 2 x height, at 55.54 km per degree of longitude and 111.41 km per degree of
    # latitude at 60.07 N
    assert area_m2(aset.outlines[0].shape) == pytest.approx((0.0172 + 0.0086) / 2 * 55_540 * 0.0074 * 111_410, rel=0.005)


BAD = [
    ({"class": "meteor-crater"}, "feature 'slide-1'.class", "unknown class"),
    ({"observed": "2019-05-01"}, "feature 'slide-1'.observed", "before the event"),
    ({"observed": "2023-05-01"}, "feature 'slide-1'.observed", "days after the event"),
    ({"review_status": None}, "feature 'slide-1'", "missing provenance field(s): review_status"),
    ({"annotator": " "}, "feature 'slide-1'.annotator", "non-empty"),
    ({"confidence": 1.5}, "feature 'slide-1'.confidence", "from 0 to 1"),
    ({"method": "guessed"}, "feature 'slide-1'.method", "unknown method"),
    ({"imagery": [{"datetime": "2020-11-02T10:00:00Z", "role": "post-event"}]}, "feature 'slide-1'.imagery[0]",
     "before the event"),
]


@pytest.mark.parametrize(("props", "where", "message"), BAD)
def test_bad_feature_named(tmp_path: Path, inventory, props: dict, where: str, message: str) -> None:
    path = _write(tmp_path, _annotation(**props))
    with pytest.raises(InputError) as exc:
        parse_annotation(path, {ev.id: ev for ev in inventory})
    assert str(path) in str(exc.value) and f"[{where}]" in str(exc.value) and message in str(exc.value)


def test_bad_geometries(tmp_path: Path, inventory) -> None:
    events = {ev.id: ev for ev in inventory}
    far = {"type": "Polygon", "coordinates": [[[10.0, 59.0], [10.01, 59.0], [10.01, 59.01], [10.0, 59.0]]]}
    bowtie = {"type": "Polygon", "coordinates": [[[11.03, 60.07], [11.05, 60.08], [11.05, 60.07], [11.03, 60.08], [11.03, 60.07]]]}
    for geom, message in ((far, "does not overlap the AOI"), (bowtie, "invalid polygon"),
                          ({"type": "LineString", "coordinates": [[11.04, 60.07], [11.05, 60.07]]}, "Point or MultiPoint")):
        with pytest.raises(InputError, match=message) as exc:
            parse_annotation(_write(tmp_path, _annotation(geometry=geom)), events)
        assert "feature 'slide-1'.geometry" in str(exc.value)
    doc = _annotation()
    doc["event_id"] = "atlantis-2020"
    with pytest.raises(InputError, match="unknown event"):
        parse_annotation(_write(tmp_path, doc), events)


def test_check_cli_exit_2_lists_every_problem(tmp_path: Path) -> None:
    _write(tmp_path, _annotation())
    _write(tmp_path, _annotation(aid="bad-class", **{"class": "meteor-crater"}))
    _write(tmp_path, _annotation(aid="bad-date", observed="2019-01-01"))
    r = CliRunner().invoke(main, ["annotations", "check", str(tmp_path), "--events", str(EVENTS)])
    assert r.exit_code == 2, r.output
    assert "2 problem(s)" in r.output and "bad-class.geojson" in r.output and "bad-date.geojson" in r.output
    assert "feature 'slide-1'" in r.output
    shutil.rmtree(tmp_path / GJERDRUM)
    _write(tmp_path, _annotation())
    r = CliRunner().invoke(main, ["annotations", "check", str(tmp_path), "--events", str(EVENTS)])
    assert r.exit_code == 0 and "1 annotation sets" in r.output


# ---------------------------------------------------------------- Copernicus EMS import (real EMSR332 product)
def _check_emsr332(doc: dict) -> None:
    assert doc["id"] == "emsr332-09-venezia-del-v1" and doc["event_id"] == VENETO
    prov = doc["provenance"]
    assert (prov["emsr"], prov["aoi_number"], prov["aoi_name"], prov["product_type"], prov["version"], prov["map_type"]) == (
        "EMSR332", "09", "Venezia", "delineation", 1, "Delineation")
    assert len(doc["features"]) == 1  # 1 observed-event polygon (a 9-part multipolygon in the shapefile)
    props = doc["features"][0]["properties"]
    assert props["class"] == "flash-flood" and props["ems:obj_desc"] == "Flash flood" and props["ems:event_type"] == "5-Flood"
    assert props["method"] == "semi-automatic" and props["ems:det_method"] == "Semi-automatic extraction"
    assert props["ems:dmg_src_id"] == 2
    assert props["imagery"] == [
        {"sensor": "Sentinel-2", "datetime": "2018-09-26T17:49:00Z", "role": "pre-event", "ems_src_id": 1, "gsd": "10 m",
         "delineated_on": False},
        {"sensor": "Sentinel-1", "datetime": "2018-11-02T05:18:00Z", "role": "post-event", "ems_src_id": 2, "gsd": "10 m",
         "delineated_on": True},
    ]
    assert props["observed"] == "2018-11-02T05:18:00Z"
    from shapely.geometry import shape

    assert shape(doc["features"][0]["geometry"]).bounds == pytest.approx((12.446863, 45.788095, 12.567347, 45.828136), abs=1e-6)
    assert shape(doc["annotated_area"]).bounds == pytest.approx((12.193005, 45.403606, 12.754290, 45.828136), abs=1e-6)
    assert sorted(s["src_id"] for s in prov["sources"]) == [1, 2, 991, 992, 994, 997]


def test_import_ems_real_product(real_fixtures: Path, tmp_path: Path, inventory) -> None:
    written = import_ems(real_fixtures / EMS, VENETO, inventory, tmp_path)
    assert written == [tmp_path / VENETO / "emsr332-09-venezia-del-v1.geojson"]
    _check_emsr332(json.loads(written[0].read_text()))
    (aset,) = load_annotations(tmp_path, inventory)  # what it writes passes the checks
    assert aset.method == "semi-automatic" and aset.observed == datetime(2018, 11, 2, 5, 18, tzinfo=UTC)


def test_import_ems_zip_and_cli(real_fixtures: Path, tmp_path: Path) -> None:
    z = tmp_path / "EMSR332_09VENEZIA_DEL_v1_vector.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in sorted((real_fixtures / EMS).iterdir()):
            zf.write(f, f"EMSR332/{f.name}")
    out = tmp_path / "annotations"
    r = CliRunner().invoke(main, ["annotations", "import-ems", str(z), "--event", VENETO, "--out", str(out),
                                  "--events", str(EVENTS)])
    assert r.exit_code == 0, r.output
    _check_emsr332(json.loads((out / VENETO / "emsr332-09-venezia-del-v1.geojson").read_text()))


def test_import_ems_wrong_event_writes_nothing(real_fixtures: Path, tmp_path: Path) -> None:
    out = tmp_path / "annotations"
    r = CliRunner().invoke(main, ["annotations", "import-ems", str(real_fixtures / EMS), "--event", GJERDRUM,
                                  "--out", str(out), "--events", str(EVENTS)])
    assert r.exit_code == 2 and "EMSR332 [annotated_area]" in r.output and "does not overlap the AOI" in r.output
    assert not out.exists()


@pytest.mark.parametrize(("date", "time", "expected"), [
    ("26/09/2018", "17:49 UTC", datetime(2018, 9, 26, 17, 49, tzinfo=UTC)),
    ("02/11/2018", "05:18 UTC", datetime(2018, 11, 2, 5, 18, tzinfo=UTC)),
    ("2018-11-02", "T10:17:00Z", datetime(2018, 11, 2, 10, 17, tzinfo=UTC)),
    ("2018-11-02T10:17:00Z", None, datetime(2018, 11, 2, 10, 17, tzinfo=UTC)),
    ("02/11/2018", "Not Applicable", datetime(2018, 11, 2, tzinfo=UTC)),
    ("Not Applicable", "Not Applicable", None),
    ("2006", "Not Applicable", None),  # CORINE Land Cover 2006: a year, not an acquisition
])
def test_ems_date_formats(date: str, time: str | None, expected: datetime | None) -> None:
    assert parse_source_datetime(date, time) == expected


def test_ems_bad_date_named() -> None:
    with pytest.raises(InputError, match="unrecognised source date '31/31/2018'"):
        parse_source_datetime("31/31/2018", "10:00 UTC", "x_source.dbf")
    with pytest.raises(InputError, match="unrecognised source time"):
        parse_source_datetime("02/11/2018", "morning", "x_source.dbf")


# ---------------------------------------------------------------- label items and masks in the build
@pytest.fixture(scope="module")
def label_build(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("labels")
    events = root / "events"
    events.mkdir()
    shutil.copy(EVENTS / f"{GJERDRUM}.geojson", events)
    ev = load_inventory(events)[0]
    products = root / "products"
    write_product(products, ev, datetime(2020, 12, 25, 10, 44, 41, tzinfo=UTC), "L2A", "S2A")
    write_product(products, ev, datetime(2021, 1, 2, 10, 44, 41, tzinfo=UTC), "L2A", "S2B", scar=True)
    annotations = root / "annotations"
    _write(annotations, _annotation())
    from stac_mmtp.build.labels import dataset_hook

    out = root / "catalog"
    report = build(events, [products], out, extra_bundles=dataset_hook(annotations, events))
    assert report.ok, report.failures
    return out, annotations


def _items(out: Path, coll: str) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in (out / coll).glob("*/*.json")}


def test_label_items_valid_offline(label_build, schema_store, no_network) -> None:
    out, _ = label_build
    report = validate_tree(out, schema_store)
    assert report.ok, [str(p) for p in report.problems]
    assert report.by_type["Feature"] == 1 + 2 + 2  # event, 2 imagery items, vector + 1 raster label item
    assert no_network == []


def test_vector_label_item(label_build) -> None:
    out, annotations = label_build
    vec = _items(out, "annotations")["gjerdrum-landslide-2020_test-v1"]
    p = vec["properties"]
    assert (p["label:type"], p["label:properties"], p["label:classes"]) == ("vector", ["class"],
                                                                            [{"name": "class", "classes": ["landslide"]}])
    assert p["label:tasks"] == ["segmentation", "detection"] and p["label:methods"] == ["manual"]
    assert p["label:overviews"] == [{"property_key": "class", "counts": [{"name": "landslide", "count": 1}]}]
    assert (p["mmtp:annotator_expertise"], p["mmtp:confidence"], p["mmtp:review_status"]) == ("trained", 0.7, "reviewed")
    sources = [lk["href"] for lk in vec["links"] if lk["rel"] == "source"]
    # only the post-event image: the pre-event one shows the ground before the slide
    assert len(sources) == 1 and "S2B_MSIL2A_20210102" in sources[0] and sources[0].startswith("../../sentinel-2/")
    labels = out / "annotations" / vec["id"] / "labels.geojson"
    assert json.loads(labels.read_text()) == json.loads((annotations / GJERDRUM / "test-v1.geojson").read_text())


def test_mask_aligned_with_imagery_and_area(label_build) -> None:
    out, _ = label_build
    (mask_item,) = [it for k, it in _items(out, "annotations").items() if it["properties"]["label:type"] == "raster"]
    img_id = next(lk["href"] for lk in mask_item["links"] if lk["rel"] == "source").split("/")[-2]
    img_dir = out / "sentinel-2" / img_id
    img = json.loads((img_dir / f"{img_id}.json").read_text())
    mask_path = out / "annotations" / mask_item["id"] / "mask.tif"
    valid, errors, _ = is_valid_cog(mask_path)
    assert valid, errors
    with rasterio.open(mask_path) as m, rasterio.open(img_dir / "red.tif") as red:
        assert m.crs == red.crs and m.transform == red.transform and (m.height, m.width) == (red.height, red.width)
        assert m.dtypes[0] == "uint8" and m.nodata == IGNORE and m.overviews(1) == [2]
        data = m.read(1)
        red_valid = red.read_masks(1) > 0
    asset = mask_item["assets"]["mask"]
    assert asset["proj:transform"] == img["assets"]["red"]["proj:transform"] == list(m.transform)[:6]
    assert asset["proj:shape"] == img["assets"]["red"]["proj:shape"] and asset["proj:code"] == "EPSG:32632"
    # pixel count = polygon area / pixel area, within one pixel row along the edges
    from shapely.geometry import shape

    from stac_mmtp.raster.geo import reproject

    poly = reproject(shape(HEXAGON), 4326, 32632)
    n = int((data == CLASSES["landslide"]).sum())
    assert abs(n - poly.area / 100) <= poly.length / 10, (n, poly.area / 100)
    # no image data (the west edge strip) and outside the event AOI: ignore
    assert (data[~red_valid] == IGNORE).all() and (~red_valid).sum() > 0
    assert set(np.unique(data).tolist()) == {0, 3, 255}
    counts = {c["name"]: c["count"] for c in mask_item["properties"]["label:overviews"][0]["counts"]}
    assert counts["landslide"] == n and sum(counts.values()) == data.size
    classes = {c["value"]: c for c in asset["classification:classes"]}
    assert classes[255]["nodata"] is True and classes[3]["name"] == "landslide" and classes[3]["count"] == n
    link = next(lk for lk in mask_item["links"] if lk["rel"] == "source")
    assert "red" in link["label:assets"] and "scl" not in link["label:assets"]  # only the assets sharing its grid


def test_splits_on_every_item_and_manifest(label_build) -> None:
    out, _ = label_build
    items = [it for c in ("events", "sentinel-2", "annotations") for it in _items(out, c).values()]
    assert {it["properties"]["ml-aoi:split"] for it in items} == {"train"}  # one event: one split
    for c in ("events", "sentinel-2", "annotations"):  # each collection says which splits it holds
        assert json.loads((out / c / "collection.json").read_text())["summaries"]["ml-aoi:split"] == ["train"]
    man = json.loads((out / "splits.json").read_text())
    assert sum(len(v) for v in man["items"].values()) == len(items)
    digest = hashlib.sha256(json.dumps(man["items"], sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert man["sha256"] == digest


def test_bad_annotation_stops_build(tmp_path: Path) -> None:
    events = tmp_path / "events"
    events.mkdir()
    shutil.copy(EVENTS / f"{GJERDRUM}.geojson", events)
    annotations = tmp_path / "annotations"
    _write(annotations, _annotation(**{"class": "meteor-crater"}))
    out = tmp_path / "catalog"
    r = CliRunner().invoke(main, ["-q", "build", "--events", str(events), "--annotations", str(annotations),
                                  "--out", str(out)])
    assert r.exit_code == 2 and "test-v1.geojson [feature 'slide-1'.class]" in r.output
    assert not out.exists()


# ---------------------------------------------------------------- splits
def test_split_groups_cascades_and_neighbours(inventory) -> None:
    groups = {eid: tuple(g) for g in split_groups(inventory) for eid in g}
    by_id = {ev.id: ev for ev in inventory}
    for ev in inventory:
        for trig in ev.triggered_by:
            assert groups[ev.id] == groups[trig]  # a cascade never straddles two splits
    assert groups["chamoli-debris-flow-2021"] == groups["chamoli-rock-ice-avalanche-2021"]
    assert len(groups[GJERDRUM]) == 1 and by_id[GJERDRUM]


def test_splits_leakage_safe_and_deterministic(inventory) -> None:
    a = assign_splits(inventory)
    assert a == assign_splits(list(reversed(inventory)))  # order of the inventory does not matter
    by_id = {ev.id: ev for ev in inventory}
    train = [by_id[e].shape for e, s in a.items() if s == "train"]
    for e, s in a.items():
        if s != "train":
            assert not any(by_id[e].shape.intersects(t) for t in train), e
    counts = {s: list(a.values()).count(s) for s in SPLITS}
    assert sum(counts.values()) == len(inventory) and all(counts[s] > 0 for s in SPLITS)
    assert abs(counts["train"] / len(inventory) - 0.7) < 0.1
    b = assign_splits(inventory, (0.5, 0.25, 0.25))
    assert list(b.values()).count("train") < counts["train"]
    assert assign_splits(inventory, seed="other") != a


def test_splits_cli(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["splits", "--events", str(EVENTS)])
    assert r.exit_code == 0, r.output
    assert "166 events by split" in r.output and "validate" in r.output
    r = CliRunner().invoke(main, ["splits", "--events", str(EVENTS), "--ratios", "1,2"])
    assert r.exit_code == 2 and "--ratios" in r.output



def test_loader_pairs_imagery_and_mask(label_build) -> None:
    """The deep-learning loader stacks the imagery bands on the mask's grid, in physical units."""
    from stac_mmtp.access.loader import LabelledScenes

    out, _ = label_build
    scenes = LabelledScenes(out / "catalog.json", collection="sentinel-2")
    assert len(scenes) == 1
    s = scenes[0]
    imagery_dir = out / "sentinel-2" / s["imagery_id"]
    assert s["imagery_id"].startswith(f"{GJERDRUM}_S2B_MSIL2A_20210102T104441")  # the post-event image
    with rasterio.open(out / "annotations" / s["label_id"] / "mask.tif") as m:
        assert np.array_equal(s["mask"], m.read(1))
    with rasterio.open(imagery_dir / "red.tif") as r:
        dn = r.read(1)
    assert s["image"].shape == (4, *dn.shape) and s["bands"] == ["blue", "green", "red", "nir"]
    valid = dn != 0
    np.testing.assert_allclose(s["image"][2][valid], dn[valid] * 0.0001 - 0.1, rtol=1e-6)
    assert np.isnan(s["image"][2][~valid]).all()
    assert s["split"] in ("train", "validate", "test") and s["event_id"] == GJERDRUM
    assert len(LabelledScenes(out / "catalog.json", split="no-such-split")) == 0
    assert "pre_image" not in s


def test_mask_links_pre_event_image_on_same_grid(label_build) -> None:
    """Change detection: the mask on the post-event image links the pre-event image of the same tile
    (same grid), and the loader returns it pixel for pixel beside the post-event one."""
    from stac_mmtp.access.loader import LabelledScenes

    out, _ = label_build
    masks = [it for it in _items(out, "annotations").values() if it["properties"]["label:type"] == "raster"]
    assert len(masks) == 1
    related = [lk for lk in masks[0]["links"] if lk["rel"] == "related" and lk.get("mmtp:temporal_role") == "pre-event"]
    pre_id = f"{GJERDRUM}_S2A_MSIL2A_20201225T104441_N0510_R008_T32VPM_20201225T120141"
    assert [lk["href"] for lk in related] == [f"../../sentinel-2/{pre_id}/{pre_id}.json"]
    assert related[0]["ml-aoi:role"] == "feature" and "red" in related[0]["label:assets"]
    pre = json.loads((out / "sentinel-2" / pre_id / f"{pre_id}.json").read_text())
    assert pre["properties"]["mmtp:temporal_role"] == "pre-event"

    pairs = LabelledScenes(out / "catalog.json", collection="sentinel-2", pre_event=True)
    assert len(pairs) == 1
    s = pairs[0]
    assert s["pre_imagery_id"] == pre_id and s["pre_image"].shape == s["image"].shape
    with rasterio.open(out / "sentinel-2" / pre_id / "red.tif") as r, \
            rasterio.open(out / "annotations" / s["label_id"] / "mask.tif") as m:
        assert (r.crs, r.transform, r.shape) == (m.crs, m.transform, m.shape)
        dn = r.read(1)
    valid = dn != 0
    np.testing.assert_allclose(s["pre_image"][2][valid], dn[valid] * 0.0001 - 0.1, rtol=1e-6)
    # the scar: the post-event image differs from the pre-event one inside the mask
    scar = (s["mask"] != 0) & (s["mask"] != 255)  # labelled, not background or ignore
    assert scar.any() and not np.allclose(s["image"][:, scar], s["pre_image"][:, scar], equal_nan=True)


# ---------------------------------------------------------------- real EMS outlines: masks and pairing, not circular
# Class value of flash-flood in the project's class table (docs/annotations.md), and the mask's ignore value.
FLASH_FLOOD, IGNORE_VALUE = 2, 255


def _ems_layer(real_fixtures: Path, layer: str) -> list[dict]:
    """The polygons of one EMSR332 shapefile layer, read straight from the file by GDAL (not by stac_mmtp.dataset.ems)."""
    from pyogrio.raw import read
    from shapely import wkb
    from shapely.geometry import mapping

    meta, _, geoms, _ = read(str(real_fixtures / EMS / f"EMSR332_09VENEZIA_DEL_v1_{layer}.shp"))
    assert meta["crs"] == "EPSG:4326"
    return [mapping(wkb.loads(g)) for g in geoms]


@pytest.fixture(scope="module")
def ems_build(real_fixtures: Path, tmp_path_factory: pytest.TempPathFactory):
    """The real EMSR332 delineation imported for the inventory's Veneto event, built with sample
    Sentinel-2 imagery placed on it: 12 km tiles on two grids (the second 1 km east), three
    pre-event images and two post-event ones whose names the test knows before the build."""
    from dataclasses import replace

    from stac_mmtp.sources.sentinel2 import samples as sentinel2_samples

    root = tmp_path_factory.mktemp("ems")
    events = root / "events"
    events.mkdir()
    shutil.copy(EVENTS / f"{VENETO}.geojson", events)
    ev = load_inventory(events)[0]
    result = CliRunner().invoke(main, ["annotations", "import-ems", str(real_fixtures / EMS), "--event", VENETO,
                                       "--out", str(root / "annotations"), "--events", str(events)])
    assert result.exit_code == 0, result.output
    # the tiles centred on the EMS polygon's bbox (12.447-12.567 E, 45.788-45.828 N) cover all of it
    west = replace(ev, site=(12.507, 45.808))
    east = replace(ev, site=(12.507 + 1000 / (111320 * np.cos(np.radians(45.808))), 45.808))
    products = root / "products"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sentinel2_samples, "TILE_M", 12000)  # input size only: the writer's default tile is 6 km

        def s2(site_event, day: int, month: int, platform: str) -> str:
            when = datetime(2018, month, day, 10, 10, 21, tzinfo=UTC)
            return write_product(products, site_event, when, "L2A", platform).name.removesuffix(".SAFE")

        names = {
            "pre_old": s2(west, 26, 9, "S2A"), "pre_latest": s2(west, 16, 10, "S2B"), "pre_east": s2(east, 21, 10, "S2A"),
            "post": s2(west, 5, 11, "S2B"), "post_east": s2(east, 7, 11, "S2A"),
        }
    out = root / "catalog"
    result = CliRunner().invoke(main, ["build", "--events", str(events), "--products", str(products), "--out", str(out),
                                       "--annotations", str(root / "annotations"), "-j", "1"])
    assert result.exit_code == 0, result.output
    return out, {k: f"{VENETO}_{v}" for k, v in names.items()}


def _source_of(label_item: dict) -> str:
    """Id of the imagery item a raster label item's `source` link points to."""
    return next(lk["href"] for lk in label_item["links"] if lk["rel"] == "source").split("/")[-2]


def test_ems_mask_equals_independent_rasterisation(real_fixtures: Path, ems_build) -> None:
    """Each mask the build writes from the imported EMS product equals the EMS shapefile polygons
    rasterised here with rasterio.features on the imagery item's grid (read from its COG): flash-flood
    inside the observed-event polygon, background in the rest of the EMS area of interest, ignore
    outside it and where the image has no data. Exact pixel equality: the import rounds coordinates to
    1e-7 degrees (about 1 cm), far below the 10 m pixels, so no pixel centre changes side."""
    from rasterio.features import rasterize
    from rasterio.warp import transform_geom

    out, names = ems_build
    flood = _ems_layer(real_fixtures, "observed_event_a")
    area = _ems_layer(real_fixtures, "area_of_interest_a")
    assert len(flood) == 1 and len(area) == 1
    masks = {_source_of(it): it for it in _items(out, "annotations").values() if it["properties"]["label:type"] == "raster"}
    assert set(masks) == {names["post"], names["post_east"]}  # the masks go on the post-event images only
    for imagery_id, item in masks.items():
        with rasterio.open(out / "sentinel-2" / imagery_id / "red.tif") as red:
            grid = {"out_shape": red.shape, "transform": red.transform, "fill": IGNORE_VALUE, "dtype": "uint8"}
            valid = red.read_masks(1) > 0
            crs = red.crs
        expected = rasterize([(transform_geom("EPSG:4326", crs, g), 0) for g in area], **grid)
        flooded = rasterize([(transform_geom("EPSG:4326", crs, g), FLASH_FLOOD) for g in flood], **grid)
        expected = np.where(flooded != IGNORE_VALUE, flooded, expected).astype(np.uint8)
        expected[~valid] = IGNORE_VALUE
        with rasterio.open(out / "annotations" / item["id"] / "mask.tif") as m:
            assert (m.crs, m.transform, m.shape) == (crs, grid["transform"], grid["out_shape"])
            mask = m.read(1)
        assert np.array_equal(mask, expected), (imagery_id, int((mask != expected).sum()))
        assert (~valid).sum() > 0 and set(np.unique(mask).tolist()) == {0, FLASH_FLOOD, IGNORE_VALUE}
    # the reference itself is sane: on the west tile (which covers the whole polygon) the flooded pixels
    # add up to the 9 polygons' 0.267 km2 (10 m pixels), within one pixel row along their outlines
    from shapely.geometry import shape

    with rasterio.open(out / "annotations" / masks[names["post"]]["id"] / "mask.tif") as m:
        n = int((m.read(1) == FLASH_FLOOD).sum())
        poly = shape(transform_geom("EPSG:4326", m.crs, flood[0]))
    assert poly.geom_type == "MultiPolygon" and len(poly.geoms) == 9
    assert abs(n - poly.area / 100) <= poly.length / 10, (n, poly.area / 100)


def test_ems_pre_post_pairing_latest_on_same_grid(ems_build) -> None:
    """LabelledScenes(pre_event=True) on the EMS build pairs each post-event image with the latest
    pre-event image of its own grid, known from the inputs: the west post-event image gets the 16 October
    image (not the older 26 September one on the same grid, nor the later 21 October one on the east grid);
    the east one gets the 21 October image."""
    from stac_mmtp.access.loader import LabelledScenes

    out, names = ems_build
    pairs = LabelledScenes(out / "catalog.json", collection="sentinel-2", pre_event=True)
    got = {pairs[i]["imagery_id"]: pairs[i] for i in range(len(pairs))}
    assert {k: v["pre_imagery_id"] for k, v in got.items()} == {
        names["post"]: names["pre_latest"], names["post_east"]: names["pre_east"]}
    items = {k: json.loads((out / "sentinel-2" / v / f"{v}.json").read_text()) for k, v in names.items()}
    assert items["pre_latest"]["properties"]["datetime"].startswith("2018-10-16T10:10:21")
    assert items["pre_east"]["properties"]["datetime"].startswith("2018-10-21T10:10:21")
    assert {k: it["properties"]["mmtp:temporal_role"] for k, it in items.items()} == {
        "pre_old": "pre-event", "pre_latest": "pre-event", "pre_east": "pre-event", "post": "first-post-event",
        "post_east": "post-event"}
    # the two grids differ, so "same grid" is what picks the pair
    tr = {k: it["assets"]["red"]["proj:transform"] for k, it in items.items()}
    assert tr["pre_old"] == tr["pre_latest"] == tr["post"] != tr["pre_east"] == tr["post_east"]
    for post, pre in ((names["post"], names["pre_latest"]), (names["post_east"], names["pre_east"])):
        s = got[post]
        with rasterio.open(out / "sentinel-2" / pre / "red.tif") as r:
            dn = r.read(1)
        valid = dn != 0
        assert s["pre_image"].shape == s["image"].shape == (4, *dn.shape) == (4, *s["mask"].shape)
        np.testing.assert_allclose(s["pre_image"][2][valid], dn[valid] * 0.0001 - 0.1, rtol=1e-6)
        assert np.isnan(s["pre_image"][2][~valid]).all()
        assert (s["mask"] == FLASH_FLOOD).sum() > 0

def test_splits_leakage_safe_for_a_large_buffer(tmp_path: Path) -> None:
    """`build --buffer 2500`: events 2.8 km apart (far beyond the old fixed 2 km gap, well within two
    buffers) must share a split. Checked on the COGs as written: the bounds rasterio reads from every
    clip of one split never intersect those of another split."""
    from helpers import box as aoi_box
    from helpers import write_event
    from pyproj import Transformer
    from shapely.geometry import box as shp_box
    from shapely.ops import transform as shp_transform

    events = tmp_path / "events"
    products = tmp_path / "products"
    (tmp_path / "annotations").mkdir()
    clusters = {"a": (11.0, 60.07), "b": (12.0, 60.07), "c": (13.0, 60.07), "d": (14.0, 60.07), "e": (15.0, 60.07)}
    for name, (lon0, lat) in clusters.items():
        for k in range(3 if name in "abc" else 1):
            lon = lon0 + 0.05 * k  # 0.05 degree of longitude at 60 N: 2.78 km
            write_event(events, f"ev-{name}{k}", geometry=aoi_box(lon, lat, 0.002), site=[lon, lat])
    evs = load_inventory(events)
    for i, ev in enumerate(evs):  # one small sample tile around each site (distinct names: distinct times)
        write_product(products, ev, datetime(2021, 1, 2, 10, 44, i, tzinfo=UTC), "L2A", "S2B")
    r = CliRunner().invoke(main, ["build", "--events", str(events), "--products", str(products), "--out",
                                  str(tmp_path / "catalog"), "--buffer", "2500", "--annotations",
                                  str(tmp_path / "annotations"), "--split-ratios", "0.34,0.33,0.33", "--jobs", "2"])
    assert r.exit_code == 0, r.output
    clips = []  # (event, split, lon/lat outline of one written COG)
    for item_path in sorted((tmp_path / "catalog" / "sentinel-2").glob("*/*.json")):
        item = json.loads(item_path.read_text())
        for a in item["assets"].values():
            if not a["href"].endswith(".tif"):
                continue
            with rasterio.open(item_path.parent / a["href"]) as ds:
                to_ll = Transformer.from_crs(ds.crs, 4326, always_xy=True).transform
                outline = shp_transform(to_ll, shp_box(*ds.bounds).segmentize(100.0))
            clips.append((item["properties"]["mmtp:event_id"], item["properties"]["ml-aoi:split"], outline))
    splits = {s for _, s, _ in clips}
    assert len(splits) >= 2, splits  # the check below must compare clips across splits
    by_event = {e: s for e, s, _ in clips}
    for name in "abc":  # the buffered clips of a cluster overlap: one split per cluster
        assert len({by_event[f"ev-{name}{k}"] for k in range(3)}) == 1
    crossing = [(e1, e2) for i, (e1, s1, g1) in enumerate(clips) for e2, s2, g2 in clips[i + 1:]
                if s1 != s2 and g1.intersects(g2)]
    assert crossing == []
    assert json.loads((tmp_path / "catalog" / "splits.json").read_text())["gap_m"] == 2 * (2500 + 250)
