"""The real expert annotations checked in under catalog/annotations, and `import-ems --new-event`.

Expected counts were read from the source files themselves (pyogrio on the repository copies named in
docs/annotations.md), not from the importer: features in the source, features kept (those touching the
event AOI; `outside_event_aoi` records the others), classes.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from shapely.geometry import shape

from stac_mmtp.commands.main import main

REPO = Path(__file__).resolve().parents[1]
ANNOTATIONS = REPO / "catalog" / "annotations"
EVENTS = REPO / "catalog" / "events"
EMS = "copernicus-ems/EMSR332"

# file -> (features in the source layer, features kept, {class: count}, EMSR code or None, year, repository@commit)
EXPECTED: dict[str, tuple[int, int, dict[str, int], str | None, int, str]] = {
    "ahr-flood-2021/emsr517-15-bad-neuenahr-ahrweiler-gra-v1": (77, 77, {"flood": 77}, "EMSR517", 2021,
                                                                  "MAMAXMARX/The-Flood---post-rapid-mapping_v.1@0be38641"),
    "ahr-flood-2021/emsr517-15-bad-neuenahr-ahrweiler-gra-monit01-v3": (173, 173, {"flood": 173}, "EMSR517", 2021,
                                                                          "MAMAXMARX/The-Flood---post-rapid-mapping_v.1@0be38641"),
    "emilia-romagna-flood-2023/emsr664-01-del-v1": (1153, 1073, {"flood": 1073}, "EMSR664", 2023,
                                                    "samw0907/SARFloodAnalysis@43ab5826"),
    "valencia-flash-flood-2024/emsr773-01-del-v1": (1, 1, {"flash-flood": 1}, "EMSR773", 2024, "simon-donike/VLC_flood_map@e6e1689d"),
    "kahramanmaras-earthquake-damage-2023/emsr648-04-kahramanmaras-gra-monit01-v1": (
        4619, 4619, {"building-destroyed": 286, "building-damaged": 185, "building-possibly-damaged": 456,
                     "building-no-visible-damage": 3692}, "EMSR648", 2023, "juka19/DL-building-damage-assessment@132131a6"),
    "cumbre-vieja-eruption-2021/emsr546-01-gra-monit52-v1": (1, 1, {"lava-flow": 1}, "EMSR546", 2021,
                                                             "lukesdm/la-palma-lava-mapping-nb@db3ffe1a"),
    "cumbre-vieja-eruption-2021/emsr546-01-gra-monit53-v1": (1, 1, {"lava-flow": 1}, "EMSR546", 2021,
                                                             "lukesdm/la-palma-lava-mapping-nb@db3ffe1a"),
    "cumbre-vieja-eruption-2021/emsr546-01-gra-monit63-v1": (1, 1, {"lava-flow": 1}, "EMSR546", 2021,
                                                             "lukesdm/la-palma-lava-mapping-nb@db3ffe1a"),
    "veneto-flood-verona-2018/emsr332-01-verona-del-v1": (784, 784, {"flood": 784}, "EMSR332", 2018,
                                                          "alesarrett/CopernicusEMS@a151e85b"),
    "veneto-flood-verona-2018/emsr332-01-verona-del-monit01-v1": (903, 903, {"flood": 903}, "EMSR332", 2018,
                                                                  "alesarrett/CopernicusEMS@a151e85b"),
    "veneto-flood-padova-2018/emsr332-02-padova-del-v1": (622, 545, {"flood": 545}, "EMSR332", 2018,
                                                          "alesarrett/CopernicusEMS@a151e85b"),
    "veneto-flood-padova-2018/emsr332-02-padova-del-monit01-v1": (626, 548, {"flood": 548}, "EMSR332", 2018,
                                                                  "alesarrett/CopernicusEMS@a151e85b"),
    "veneto-flood-bassano-2018/emsr332-04-bassano-del-grappa-del-v1": (786, 650, {"flash-flood": 650}, "EMSR332", 2018,
                                                                       "alesarrett/CopernicusEMS@a151e85b"),
    "veneto-flood-bassano-2018/emsr332-04-bassano-del-grappa-del-monit01-v1": (1527, 1265, {"flash-flood": 1265}, "EMSR332",
                                                                               2018, "alesarrett/CopernicusEMS@a151e85b"),
    "veneto-flood-pordenone-2018/emsr332-08-pordenone-del-v1": (43, 43, {"flood": 43}, "EMSR332", 2018,
                                                                "alesarrett/CopernicusEMS@a151e85b"),
    "veneto-flood-pordenone-2018/emsr332-08-pordenone-del-monit01-v1": (64, 64, {"flood": 64}, "EMSR332", 2018,
                                                                        "alesarrett/CopernicusEMS@a151e85b"),
    "veneto-flash-flood-2018/emsr332-09-venezia-del-v1": (1, 1, {"flash-flood": 1}, "EMSR332", 2018,
                                                          "alesarrett/CopernicusEMS@a151e85b"),
    "veneto-flash-flood-2018/emsr332-09-venezia-del-monit01-v1": (2, 2, {"flash-flood": 2}, "EMSR332", 2018,
                                                                  "alesarrett/CopernicusEMS@a151e85b"),
    "kaikoura-landslide-dams-2016/gns-landslide-dams-v1": (196, 94, {"landslide-dam": 94}, None, 2016,
                                                           "loreabad6/KaikouraDammedLakes_public@4f6db50b"),
    "kaikoura-coastal-landslides-2016/kaikoura-2016-landslide-points-v1": (7355, 708, {"landslide": 708}, None, 2016,
                                                                          "loreabad6/KaikouraDammedLakes_public@4f6db50b"),
}
EXPERT_EVENTS = sorted({k.split("/")[0] for k in EXPECTED})


def _files() -> dict[str, Path]:
    """`<event>/<id>` -> file: a set is `<id>.geojson`, or `<id>.geojson.gz` when over 5 MiB."""
    found = {f"{p.parent.name}/{p.name.removesuffix('.geojson')}": p for p in ANNOTATIONS.glob("*/*.geojson")}
    found |= {f"{p.parent.name}/{p.name.removesuffix('.geojson.gz')}": p for p in ANNOTATIONS.glob("*/*.geojson.gz")}
    return found


def _doc(key: str) -> dict:
    path = _files()[key]
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return json.loads(data.decode("utf-8"))


def test_every_expert_file_is_listed() -> None:
    found = {k for k in _files() if not k.split("/")[1].startswith("maintainers-")}
    assert found == set(EXPECTED)
    assert len(EXPERT_EVENTS) == 12


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_counts_classes_and_provenance(key: str) -> None:
    in_source, kept, classes, emsr, year, source = EXPECTED[key]
    doc = _doc(key)
    prov = doc["provenance"]
    assert len(doc["features"]) == kept
    assert kept + prov.get("outside_event_aoi", 0) == in_source
    assert dict(Counter(f["properties"]["class"] for f in doc["features"])) == classes
    assert {f["properties"]["annotator_expertise"] for f in doc["features"]} == {"expert"}
    repo, commit = source.split("@")
    assert prov["source"]["repository"] == f"https://github.com/{repo}" and prov["source"]["commit"].startswith(commit)
    assert doc["license"]
    if emsr:
        assert prov["attribution"] == f"© European Union, {year}, Copernicus Emergency Management Service ({emsr})"
        assert prov["emsr"] == emsr and "free and open" in doc["license"]
    else:
        assert prov["attribution"]


def test_geometries_as_in_the_source() -> None:
    # Valencia: one EMS feature of 249 polygons (the repository merged them); Venezia: a 9-part multipolygon
    (vlc,) = _doc("valencia-flash-flood-2024/emsr773-01-del-v1")["features"]
    assert vlc["geometry"]["type"] == "MultiPolygon" and len(vlc["geometry"]["coordinates"]) == 249
    (ven,) = _doc("veneto-flash-flood-2018/emsr332-09-venezia-del-v1")["features"]
    assert len(ven["geometry"]["coordinates"]) == 9
    buildings = _doc("kahramanmaras-earthquake-damage-2023/emsr648-04-kahramanmaras-gra-monit01-v1")["features"]
    assert {f["geometry"]["type"] for f in buildings} == {"Point"}
    assert shape(buildings[0]["geometry"]).within(shape(json.loads(
        (EVENTS / "kahramanmaras-earthquake-damage-2023.geojson").read_text())["geometry"]))
    # The Padova product delivers 49 self-intersecting rings: repaired, and said so
    assert _doc("veneto-flood-padova-2018/emsr332-02-padova-del-v1")["provenance"]["repaired_geometries"] == 49
    # Ahr: no source table in the repository copy, the observation date is the product folder's date
    ahr = _doc("ahr-flood-2021/emsr517-15-bad-neuenahr-ahrweiler-gra-v1")
    assert ahr["features"][0]["properties"]["observed"] == "2021-07-19T00:00:00Z"
    assert "--observed" in ahr["provenance"]["observed_basis"]
    lava = _doc("cumbre-vieja-eruption-2021/emsr546-01-gra-monit63-v1")
    assert lava["features"][0]["properties"]["observed"] == "2021-12-18T00:00:00Z"  # dateStamp of its .xml


def test_sketches_stay_drafts() -> None:
    for p in ANNOTATIONS.glob("*/maintainers-sketch-*.geojson"):
        props = [f["properties"] for f in json.loads(p.read_text())["features"]]
        assert {q["review_status"] for q in props} == {"draft"} and {q["annotator_expertise"] for q in props} == {"novice"}


def test_annotations_check_passes() -> None:
    r = CliRunner().invoke(main, ["annotations", "check", str(ANNOTATIONS), "--events", str(EVENTS)])
    assert r.exit_code == 0, r.output


# ---------------------------------------------------------------- import-ems --new-event (real EMSR332 Venezia product)
def _inventory_copy(tmp_path: Path) -> Path:
    events = tmp_path / "events"
    shutil.copytree(EVENTS, events)
    return events


def test_new_event_from_real_product(real_fixtures: Path, tmp_path: Path) -> None:
    events = _inventory_copy(tmp_path)
    out = tmp_path / "annotations"
    r = CliRunner().invoke(main, ["annotations", "import-ems", str(real_fixtures / EMS), "--new-event", "--event-id",
                                  "venezia-test-2018", "--country", "ITA", "--out", str(out), "--events", str(events)])
    assert r.exit_code == 0, r.output
    ev = json.loads((events / "venezia-test-2018.geojson").read_text())
    p = ev["properties"]
    # The product's source table: Sentinel-2 pre-event 26/09/2018 17:49 UTC, Sentinel-1 post-event 02/11/2018 05:18 UTC
    assert (p["start_datetime"], p["end_datetime"]) == ("2018-09-26T17:49:00Z", "2018-11-02T05:18:00Z")
    assert p["review_status"] == "candidate"  # an EMS product gives no event date: never curated by itself
    assert p["references"][0]["href"] == "https://rapidmapping.emergency.copernicus.eu/EMSR332/"
    assert p["phenomenon"] == "flash-flood" and p["countries"] == ["ITA"]
    # AOI: the outline's bounds (12.446863-12.567347 E, 45.788095-45.828136 N) rounded outwards to 4 decimals
    assert shape(ev["geometry"]).bounds == pytest.approx((12.4468, 45.788, 12.5674, 45.8282))
    assert (out / "venezia-test-2018" / "emsr332-09-venezia-del-v1.geojson").is_file()
    r = CliRunner().invoke(main, ["events", "check", str(events)])
    assert r.exit_code == 0, r.output


def test_new_event_kept_when_inventory_has_it(real_fixtures: Path, tmp_path: Path) -> None:
    events = _inventory_copy(tmp_path)
    before = sorted(p.name for p in events.iterdir())
    r = CliRunner().invoke(main, ["annotations", "import-ems", str(real_fixtures / EMS), "--new-event", "--event-id",
                                  "veneto-flash-flood-2018", "--out", str(tmp_path / "a"), "--events", str(events)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in events.iterdir()) == before


def test_new_event_needs_country_and_writes_nothing(real_fixtures: Path, tmp_path: Path) -> None:
    events = _inventory_copy(tmp_path)
    out = tmp_path / "annotations"
    r = CliRunner().invoke(main, ["annotations", "import-ems", str(real_fixtures / EMS), "--new-event", "--event-id",
                                  "venezia-test-2018", "--out", str(out), "--events", str(events)])
    assert r.exit_code == 2 and "--country" in r.output
    assert not (events / "venezia-test-2018.geojson").exists() and not out.exists()


# ---------------------------------------------------------------- in the built catalog
@pytest.fixture(scope="module")
def sample_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from stac_mmtp.build import build
    from stac_mmtp.build.labels import dataset_hook
    from stac_mmtp.sources.samples import write_samples

    root = tmp_path_factory.mktemp("expert")
    write_samples(root / "samples", EVENTS)
    report = build(EVENTS, [root / "samples"], root / "catalog", extra_bundles=dataset_hook(ANNOTATIONS, EVENTS))
    assert report.ok, report.failures
    return root / "catalog"


def test_build_has_expert_label_items_for_12_events(sample_build: Path, schema_store) -> None:
    items = [json.loads(p.read_text()) for p in (sample_build / "annotations").glob("*/*.json")]
    expert = {it["properties"]["mmtp:event_id"] for it in items if it["properties"]["mmtp:annotator_expertise"] == "expert"}
    assert len(expert) >= 12 and set(EXPERT_EVENTS) <= expert
    by_id = {it["id"]: it for it in items}
    grading = by_id["kahramanmaras-earthquake-damage-2023_emsr648-04-kahramanmaras-gra-monit01-v1"]["properties"]
    assert grading["label:type"] == "vector" and grading["label:classes"][0]["classes"] == [
        "building-no-visible-damage", "building-possibly-damaged", "building-damaged", "building-destroyed"]
    assert {c["name"]: c["count"] for c in grading["label:overviews"][0]["counts"]}["building-destroyed"] == 286
    # Raster masks where imagery exists (the Veneto samples), none for point sets
    masks = [i for i in items if i["properties"]["label:type"] == "raster"]
    assert any(i["id"].startswith("veneto-flash-flood-2018_emsr332-09-venezia-del-v1_") for i in masks)
    assert not any(i["id"].startswith("kaikoura") or i["id"].startswith("kahramanmaras") for i in masks)
    from stac_mmtp.release.validate import validate_tree

    report = validate_tree(sample_build, schema_store)
    assert report.ok, [str(p) for p in report.problems][:5]


# ---------------------------------------------------------------- Hephaestus: interferogram-level labels (not georeferenced)
HEPHAESTUS = {  # event -> (LiCSAR frames, labels kept, of which "Deformation"), as counted when the tarball was converted (it is not a CI fixture)
    "cumbre-vieja-eruption-2021": (["169D_00001_020800"], 75, 22),
    "nyiragongo-eruption-2021": (["021D_09150_131313", "174A_09133_131313"], 253, 53),
    "fagradalsfjall-eruption-2021": (["155D_02484_191814", "155D_02579_100800"], 271, 59),
    "etna-paroxysms-2021": (["124D_05291_081406"], 53, 0),
}


@pytest.mark.parametrize("event", sorted(HEPHAESTUS))
def test_hephaestus_interferogram_labels(event: str) -> None:
    frames, n, deformation = HEPHAESTUS[event]
    doc = json.loads((ANNOTATIONS / event / "hephaestus-insar-v1.json").read_text(encoding="utf-8"))
    assert doc["event_id"] == event and sorted(doc["provenance"]["frames"]) == frames
    assert doc["provenance"]["source"]["commit"].startswith("253dcdd2") and doc["provenance"]["annotator_expertise"] == "expert"
    assert len(doc["labels"]) == n and sum("Deformation" in a["label"] for a in doc["labels"]) == deformation
    lo, hi = (s.replace("-", "") for s in doc["provenance"]["window"])
    assert all(a["frameID"] in frames and a["primary_date"] <= hi and a["secondary_date"] >= lo for a in doc["labels"])


def test_large_set_is_stored_gzipped_and_read_like_the_others(tmp_path: Path) -> None:
    """A set over 5 MiB is written as <id>.geojson.gz (the repository keeps no file over 5 MiB); the loader
    reads it like a plain file, and the committed EMSR664 file is such a set (1,073 outlines)."""
    from stac_mmtp.dataset.annotations import GZIP_FROM_BYTES, annotation_path, load_annotations
    from stac_mmtp.dataset.inventory import load_inventory

    assert annotation_path(tmp_path, "a", "x" * GZIP_FROM_BYTES).name == "a.geojson.gz"
    assert annotation_path(tmp_path, "a", "x" * (GZIP_FROM_BYTES - 1)).name == "a.geojson"
    emilia = ANNOTATIONS / "emilia-romagna-flood-2023" / "emsr664-01-del-v1.geojson.gz"
    assert emilia.is_file() and emilia.stat().st_size < GZIP_FROM_BYTES < len(gzip.decompress(emilia.read_bytes()))
    copy = tmp_path / "annotations" / "emilia-romagna-flood-2023"
    copy.mkdir(parents=True)
    shutil.copy(emilia, copy)
    (aset,) = load_annotations(tmp_path / "annotations", load_inventory(EVENTS))
    assert aset.id == "emsr664-01-del-v1" and len(aset.outlines) == 1073 and aset.classes == ["flood"]
