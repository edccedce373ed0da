"""The sample release says it is synthetic; real products keep their real providers, licences and links.

`stac-mmtp sample` products carry a marker file; everything built from them carries `mmtp:synthetic: true`,
says "Synthetic sample" in words, names stac-mmtp (not ESA, not CNES) as producer and licensor under
CC-BY-4.0 and links to no real product or DOI. The one piece of invented-looking metadata that must be
true to the pixels, Sentinel-2 cloud cover, is recomputed here from the SCL pixels with ESA's definition.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from helpers import write_event

from stac_mmtp import EXTENSION_SCHEMA_URI
from stac_mmtp.build import build
from stac_mmtp.build.labels import dataset_hook
from stac_mmtp.dataset.inventory import load_inventory
from stac_mmtp.paths import default_annotations_dir, default_events_dir
from stac_mmtp.release.validate import validate_objects, validate_tree
from stac_mmtp.sources import BuildOptions, read_product
from stac_mmtp.sources.samples import write_samples
from stac_mmtp.sources.sentinel2.samples import write_product
from stac_mmtp.stac.synthetic import MARKER

IMAGERY = ("sentinel-1", "sentinel-2", "flatsim")
REAL_PROVIDER_WORDS = ("ESA", "CNES", "ForM@Ter", "FLATSIM", "Copernicus", "European Space Agency")
FLATSIM_DOI = "10.24400/253171/FLATSIM2020"
CC_BY = "https://spdx.org/licenses/CC-BY-4.0.html"
# ESA's SCL legend: 8 cloud medium probability, 9 cloud high probability, 10 thin cirrus (3 = cloud shadow)
SCL_CLOUDS = (8, 9, 10)
S2 = "stactools-sentinel2"
REAL_S2 = ["S2B_MSIL2A_20210122T133229_N0214_R081_T22HBD_20210122T155500.SAFE",
           "S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_20220414T082126.SAFE",
           "S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248.SAFE",
           "S2A_OPER_MSI_L2A_TL_2APS_20240108T121951_A044635_T34VEL"]
REAL_S1 = ["stactools-sentinel1/grd/S1A_IW_GRDH_1SDV_20210809T173953_20210809T174018_039156_049F13_6FF8.SAFE",
           "rio-tiler-pds/sentinel-s1-l1c/GRD/2018/7/16/IW/DV/"
           "S1A_IW_GRDH_1SDV_20180716T004042_20180716T004107_022812_02792A_FD5B"]


@pytest.fixture(scope="module")
def sample_release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """The demo release as the README builds it: every sample product, the real inventory and annotations."""
    root = tmp_path_factory.mktemp("synthetic")
    products = write_samples(root / "samples")
    out = root / "catalog"
    hook = dataset_hook(default_annotations_dir(), default_events_dir())
    report = build(default_events_dir(), [root / "samples"], out, BuildOptions(jobs=2), extra_bundles=hook)
    assert report.ok, report.failures + [r.message for r in report.results]
    return out, products


def _items(out: Path, collection: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((out / collection).glob("*/*.json"))]


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _assert_own_provenance(obj: dict[str, Any], where: str) -> None:
    """No real provider, product link, DOI or licence: stac-mmtp's own, CC-BY-4.0."""
    fields = obj.get("properties", obj)
    names = [p["name"] for p in fields.get("providers", [])]
    assert names == ["stac-mmtp contributors"], (where, names)
    assert not any(w in n for n in names for w in REAL_PROVIDER_WORDS), (where, names)
    assert fields["license"] == "CC-BY-4.0", where
    assert not {"sci:doi", "sci:citation", "sci:publications", "processing:facility"} & set(fields), where
    rels = [lk["rel"] for lk in obj["links"]]
    assert not {"via", "derived_from", "cite-as"} & set(rels), (where, rels)
    assert [lk["href"] for lk in obj["links"] if lk["rel"] == "license"] == [CC_BY], where
    text = json.dumps(obj)
    assert "dataspace.copernicus.eu" not in text and FLATSIM_DOI not in text, where
    assert "Sentinel_Data_Legal_Notice" not in text and "by-nc" not in text, where


# ---------------------------------------------------------------- the products


def test_every_sample_product_holds_the_marker(sample_release, schema_store) -> None:
    _, products = sample_release
    assert len(products) == 14 and any(p.suffix == ".zip" for p in products)
    for p in products:
        if p.suffix == ".zip":
            with zipfile.ZipFile(p) as zf:
                doc = json.loads(zf.read(f"{p.stem}/{MARKER}"))
        else:
            doc = _json(p / MARKER)
        assert doc["synthetic"] is True and doc["license"] == "CC-BY-4.0", p
        assert doc["invented"] and doc["derived_from_pixels"], p
        meta = read_product(p)
        assert meta.synthetic is True, p
        assert meta.item["properties"]["mmtp:synthetic"] is True  # what `stac-mmtp inspect` prints
        _assert_own_provenance(meta.item, str(p))
        # no event yet: the extension accepts the marker alone on a metadata-only item
        assert [str(x) for x in validate_objects([meta.item], schema_store) if x.schema == EXTENSION_SCHEMA_URI] == []


def test_marker_survives_zipping(tmp_path: Path) -> None:
    """A zipped sample (the SAFE folder inside the archive, as ESA ships them) is still known as synthetic."""
    events = tmp_path / "events"
    write_event(events, "gjerdrum-landslide-2020")
    safe = write_product(tmp_path / "p", load_inventory(events)[0], datetime(2021, 1, 2, 10, 44, 41, tzinfo=UTC))
    z = tmp_path / f"{safe.stem}.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in sorted(safe.rglob("*")):
            zf.write(f, f"{safe.name}/{f.relative_to(safe)}")
    assert read_product(z).synthetic is True
    (safe / MARKER).unlink()
    assert read_product(safe).synthetic is False


# ---------------------------------------------------------------- the release built from them


def test_release_validates(sample_release, schema_store, no_network) -> None:
    out, _ = sample_release
    report = validate_tree(out, schema_store)
    assert report.ok, [str(p) for p in report.problems]
    assert no_network == []


def test_every_imagery_item_and_collection_says_synthetic(sample_release) -> None:
    out, _ = sample_release
    counts = {}
    for coll_id in IMAGERY:
        coll = _json(out / coll_id / "collection.json")
        assert coll["mmtp:synthetic"] is True
        assert coll["title"].startswith("Synthetic sample") and coll["description"].startswith("Synthetic sample")
        _assert_own_provenance(coll, coll_id)
        items = _items(out, coll_id)
        counts[coll_id] = len(items)
        for it in items:
            p = it["properties"]
            assert p["mmtp:synthetic"] is True, it["id"]
            assert p["title"].startswith("Synthetic sample: ") and p["description"].startswith("Synthetic sample: ")
            _assert_own_provenance(it, it["id"])
    # the Veneto samples also cover the AOI of veneto-flood-pordenone-2018 (an EMSR332 AOI of its own):
    # one more Sentinel-1 and Sentinel-2 item each for its two acquisitions after the storm
    assert counts == {"sentinel-1": 6, "sentinel-2": 7, "flatsim": 5}
    # the lineage of a FLATSIM-format sample does not claim the FLATSIM service made it
    lineage = [it["properties"]["processing:lineage"] for it in _items(out, "flatsim")]
    assert all("not produced by the FLATSIM service" in lin and "CNES" not in lin for lin in lineage)


def test_root_catalog_and_labels_say_synthetic(sample_release) -> None:
    out, _ = sample_release
    root = _json(out / "catalog.json")
    assert root["mmtp:synthetic"] is True and root["description"].startswith("Synthetic sample build: 30 of its ")
    # 30 = 6 S1 + 7 S2 + 5 FLATSIM sample items + 12 masks rasterised on the sample grids (the sketches and the
    # EMS delineations of the Veneto events on the Veneto samples' grids)
    labels = _items(out, "annotations")
    masks = [it for it in labels if it["properties"]["label:type"] == "raster"]
    vectors = [it for it in labels if it["properties"]["label:type"] == "vector"]
    assert len(masks) == 12 and len(vectors) == 22  # 22 annotation files: 20 expert, 2 sketches
    for m in masks:  # on the grid of a synthetic item: derived from a synthetic product
        assert m["properties"]["mmtp:synthetic"] is True
        assert m["properties"]["title"].startswith("Synthetic sample grid: ")
        assert m["properties"]["description"].startswith("Synthetic sample grid: ")
    for v in vectors:  # the maintainers' sketches of real events are not synthetic
        assert "mmtp:synthetic" not in v["properties"]
    coll = _json(out / "annotations" / "collection.json")
    assert coll["mmtp:synthetic"] is True
    assert coll["description"].startswith("Synthetic sample items included: 12 of the 34 items")
    for ev in _items(out, "events"):  # the inventory is real
        assert "mmtp:synthetic" not in ev["properties"] and not ev["properties"]["title"].startswith("Synthetic")
    assert "mmtp:synthetic" not in _json(out / "events" / "collection.json")


def _cloud_pct(scl: np.ndarray) -> float:
    valid = scl != 0
    return 100.0 * float(np.isin(scl[valid], SCL_CLOUDS).sum()) / float(valid.sum())


def test_s2_cloud_cover_is_its_own_scl(sample_release) -> None:
    """eo:cloud_cover of each L2A sample item = % of SCL pixels in classes 8, 9, 10 among valid pixels,
    counted here on the item's own SCL COG (the clip covers the whole 6 km sample tile)."""
    out, _ = sample_release
    # the events the samples are written for: their clips cover the whole sample tile (the products also
    # cover part of veneto-flood-pordenone-2018's AOI, whose clips hold part of the tile only)
    l2a = [it for it in _items(out, "sentinel-2") if it["properties"]["processing:level"] == "L2A"
           and it["properties"]["mmtp:event_id"] in ("gjerdrum-landslide-2020", "veneto-flash-flood-2018")]
    assert len(l2a) == 4
    covers = []
    for it in l2a:
        with rasterio.open(out / "sentinel-2" / it["id"] / "scl.tif") as ds:
            scl = ds.read(1)
        assert {3, 8, 9, 10} <= set(np.unique(scl).tolist()), it["id"]  # clouds, cirrus and shadows were written
        assert it["properties"]["eo:cloud_cover"] == pytest.approx(_cloud_pct(scl), abs=1e-6), it["id"]
        assert it["properties"]["s2:nodata_pixel_percentage"] == pytest.approx(100.0 * (scl == 0).mean(), abs=1e-6)
        covers.append(it["properties"]["eo:cloud_cover"])
    assert len(set(covers)) == 4 and all(0.5 < c < 10 for c in covers)


def test_s2_l1c_cloud_cover_is_its_bright_pixels(sample_release) -> None:
    """The L1C sample has no SCL: its cloud cover is the share of valid pixels whose blue TOA reflectance
    exceeds 0.3 (land is below 0.15 in every sample band; the clouds written are about 0.5)."""
    out, _ = sample_release
    (l1c,) = [it for it in _items(out, "sentinel-2") if it["properties"]["processing:level"] == "L1C"]
    with rasterio.open(out / "sentinel-2" / l1c["id"] / "blue.tif") as ds:
        blue = ds.read(1)
    valid = blue != 0
    bright = 100.0 * float((blue[valid] / 10000 > 0.3).sum()) / float(valid.sum())
    assert l1c["properties"]["eo:cloud_cover"] == pytest.approx(bright, abs=1e-6) and bright > 5


def test_esa_cloud_cover_excludes_shadows(real_fixtures: Path) -> None:
    """Why classes 8, 9, 10 and not 3: in ESA's own L2A tiles CLOUDY_PIXEL_PERCENTAGE is the sum of the
    medium, high probability and thin cirrus percentages, without CLOUD_SHADOW_PERCENTAGE."""
    import xml.etree.ElementTree as ET

    tiles = [*sorted((real_fixtures / S2).glob("S2B_MSIL2A_*/GRANULE/*/MTD_TL.xml")),
             real_fixtures / S2 / REAL_S2[3] / "metadata.xml"]
    assert len(tiles) == 3
    for path in tiles:
        qi = {el.tag: float(el.text) for el in ET.parse(path).getroot().iter() if el.tag.endswith("PERCENTAGE")}
        parts = qi["MEDIUM_PROBA_CLOUDS_PERCENTAGE"] + qi["HIGH_PROBA_CLOUDS_PERCENTAGE"] + qi["THIN_CIRRUS_PERCENTAGE"]
        assert qi["CLOUDY_PIXEL_PERCENTAGE"] == pytest.approx(parts, abs=1e-5), path


# ---------------------------------------------------------------- the real side


@pytest.mark.parametrize("rel", [f"{S2}/{f}" for f in REAL_S2] + REAL_S1)
def test_real_products_are_not_synthetic(rel: str, real_fixtures: Path) -> None:
    """Real ESA products (read in place) keep their source link to the Copernicus Data Space, no marker."""
    meta = read_product(real_fixtures / rel)
    assert meta.synthetic is False
    item = meta.item
    assert "mmtp:synthetic" not in item["properties"] and "description" not in item["properties"]
    via = [lk["href"] for lk in item["links"] if lk["rel"] == "via"]
    assert len(via) == 1 and via[0].startswith("https://catalogue.dataspace.copernicus.eu/odata/v1/Products?")
    assert meta.id in via[0]


def test_unmarked_product_keeps_real_provenance(tmp_path: Path) -> None:
    """The marker alone decides: the same product without it is converted with ESA as producer and
    licensor, the Copernicus legal notice and its source links (the real path, which real products
    take), and a collection mixing both keeps its real metadata and counts its synthetic items."""
    events = tmp_path / "events"
    write_event(events, "gjerdrum-landslide-2020")
    ev = load_inventory(events)[0]
    products = tmp_path / "products"
    write_product(products, ev, datetime(2021, 1, 2, 10, 44, 41, tzinfo=UTC))
    unmarked = write_product(tmp_path / "other", ev, datetime(2020, 12, 25, 10, 44, 41, tzinfo=UTC))
    (unmarked / MARKER).unlink()
    shutil.move(unmarked, products / unmarked.name)
    out = tmp_path / "catalog"
    report = build(events, [products], out, BuildOptions(jobs=1))
    assert report.ok, report.failures + [r.message for r in report.results]
    items = {it["properties"]["datetime"][:10]: it for it in _items(out, "sentinel-2")}
    real, synthetic = items["2020-12-25"], items["2021-01-02"]
    p = real["properties"]
    assert "mmtp:synthetic" not in p and not p["title"].startswith("Synthetic")
    assert [pr["name"] for pr in p["providers"]] == ["ESA", "stac-mmtp"] and p["license"] == "other"
    hrefs = {lk["rel"]: lk["href"] for lk in real["links"]}
    assert hrefs["via"].startswith("https://catalogue.dataspace.copernicus.eu/")
    assert hrefs["license"].endswith("Sentinel_Data_Legal_Notice")
    assert synthetic["properties"]["mmtp:synthetic"] is True
    _assert_own_provenance(synthetic, synthetic["id"])
    coll = _json(out / "sentinel-2" / "collection.json")
    assert coll["mmtp:synthetic"] is True and coll["title"] == "Sentinel-2 optical imagery around events"
    assert coll["description"].startswith("Synthetic sample items included: 1 of the 2 items")
    assert [pr["name"] for pr in coll["providers"]] == ["ESA", "stac-mmtp contributors"]
    root = _json(out / "catalog.json")
    assert root["description"].startswith("Synthetic sample build: 1 of its 3 items")
