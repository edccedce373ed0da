"""Inventory checks: each rule has a test that a bad file fails with its file and field named."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import box, event_doc, write_event
from shapely.geometry import Point

from stac_mmtp.commands.main import main
from stac_mmtp.dataset.inventory import (
    CONTINENTS,
    InventoryErrors,
    aoi_extent_km,
    cascades,
    check_inventory,
    continent,
    continent_of_countries,
    load_inventory,
)
from stac_mmtp.dataset.vocab import HAZARD_CODES, hazard_codes, phenomena
from stac_mmtp.errors import InputError

REPO_EVENTS = Path(__file__).resolve().parents[1] / "catalog" / "events"


def _errors(directory: Path) -> list[InputError]:
    with pytest.raises(InventoryErrors) as info:
        load_inventory(directory)
    return info.value.errors


def test_valid_inventory_and_cascade(tmp_path: Path) -> None:
    write_event(tmp_path, "quake-2015", phenomenon="earthquake", datetime="2015-04-25T06:11:25Z")
    write_event(tmp_path, "slide-2015", datetime="2015-04-25T07:00:00Z", triggered_by=["quake-2015"])
    events = load_inventory(tmp_path)
    assert [e.id for e in events] == ["quake-2015", "slide-2015"]
    assert events[0].triggers == ("slide-2015",)
    assert events[1].start == datetime(2015, 4, 25, 7, tzinfo=UTC)
    assert cascades(events) == [("quake-2015", "slide-2015")]


@pytest.mark.parametrize(
    ("eid", "field", "needle"),
    [("bad id", "id", "URL-safe"), ("a..b", "id", "URL-safe"), ("Upper-Case", "id", "URL-safe")],
)
def test_ids_must_be_url_safe(tmp_path: Path, eid: str, field: str, needle: str) -> None:
    path = tmp_path / "x.geojson"
    path.write_text(json.dumps(event_doc(eid)))
    errs = _errors(tmp_path)
    assert errs[0].path == str(path) and errs[0].field == field and needle in errs[0].message


def test_id_with_slash_and_duplicate_ids(tmp_path: Path) -> None:
    (tmp_path / "a.geojson").write_text(json.dumps(event_doc("x/y")))
    write_event(tmp_path, "dup")
    (tmp_path / "dup2.json").write_text("{}")  # not *.geojson: ignored
    doc = event_doc("dup")
    (tmp_path / "zz.geojson").write_text(json.dumps(doc))
    messages = [str(e) for e in _errors(tmp_path)]
    assert any("a.geojson [id]" in m and "URL-safe" in m for m in messages)
    assert any("zz.geojson [id]" in m for m in messages)  # id differs from file name


def test_self_intersecting_aoi(tmp_path: Path) -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[11.0, 60.0], [11.1, 60.1], [11.1, 60.0], [11.0, 60.1], [11.0, 60.0]]]}
    write_event(tmp_path, "bowtie", geometry=bowtie, site=[11.02, 60.05])
    (err,) = _errors(tmp_path)
    assert err.field == "geometry" and "Self-intersection" in err.message and err.path.endswith("bowtie.geojson")


def test_aoi_too_large_and_site_outside(tmp_path: Path) -> None:
    write_event(tmp_path, "huge", geometry=box(11.0, 60.0, half=0.6), site=[11.0, 60.0])
    write_event(tmp_path, "elsewhere", site=[12.0, 61.0])
    errs = {Path(e.path).stem: e for e in _errors(tmp_path)}
    assert errs["huge"].field == "geometry" and "km across" in errs["huge"].message
    assert errs["elsewhere"].field == "site" and "outside the AOI" in errs["elsewhere"].message
    w, h = aoi_extent_km(__import__("shapely.geometry", fromlist=["shape"]).shape(box(11.0, 60.0, half=0.6)))
    assert 66 < w < 67 and 133 < h < 134  # 1.2 deg of longitude at 60 N is ~66.8 km


def test_dates(tmp_path: Path) -> None:
    write_event(tmp_path, "future", datetime="2999-01-01T00:00:00Z")
    write_event(tmp_path, "reversed", datetime=None, start_datetime="2021-05-01T00:00:00Z", end_datetime="2021-01-01T00:00:00Z")
    write_event(tmp_path, "nozone", datetime="2021-05-01T00:00:00")
    write_event(tmp_path, "garbage", datetime="yesterday")
    errs = {Path(e.path).stem: e for e in _errors(tmp_path)}
    assert "in the future" in errs["future"].message and errs["future"].field == "datetime"
    assert errs["reversed"].field == "start_datetime" and "after end_datetime" in errs["reversed"].message
    assert "no time zone" in errs["nozone"].message
    assert "not an ISO 8601" in errs["garbage"].message


def test_triggers_exist_and_precede(tmp_path: Path) -> None:
    write_event(tmp_path, "late-quake", phenomenon="earthquake", datetime="2021-01-02T00:00:00Z")
    write_event(tmp_path, "slide", datetime="2021-01-01T00:00:00Z", triggered_by=["late-quake"])
    write_event(tmp_path, "orphan", triggered_by=["missing-event"])
    messages = sorted(str(e) for e in _errors(tmp_path))
    assert any("orphan.geojson [triggered_by]" in m and "unknown trigger event 'missing-event'" in m for m in messages)
    assert any("slide.geojson [triggered_by]" in m and "happens after this event" in m for m in messages)


def test_trigger_cycle_same_day(tmp_path: Path) -> None:
    write_event(tmp_path, "a", triggered_by=["b"])
    write_event(tmp_path, "b", triggered_by=["a"])
    messages = [str(e) for e in _errors(tmp_path)]
    assert any("trigger cycle" in m for m in messages)


def test_unknown_phenomenon_and_references(tmp_path: Path) -> None:
    write_event(tmp_path, "alien", phenomenon="meteor-strike")
    write_event(tmp_path, "norefs", references=[])
    write_event(tmp_path, "baddoi", references=[{"title": "x", "doi": "doi:10.1/x"}])
    errs = {Path(e.path).stem: e for e in _errors(tmp_path)}
    assert errs["alien"].field == "phenomenon" and "unknown phenomenon 'meteor-strike'" in errs["alien"].message
    assert errs["norefs"].field == "references"
    assert errs["baddoi"].field == "references[0]" and "bare DOI" in errs["baddoi"].message


def test_malformed_json_names_file(tmp_path: Path) -> None:
    (tmp_path / "broken.geojson").write_text('{"type": "Feature",')
    (err,) = _errors(tmp_path)
    assert err.path.endswith("broken.geojson") and "not valid JSON" in err.message


def test_real_inventory() -> None:
    """The committed inventory: >= 150 curated events, >= 16 phenomenon types, >= 30 cascades, >= 10 events on
    each continent, and all checks (including the Sentinel-era rules) pass."""
    events = check_inventory(REPO_EVENTS)
    assert len(events) >= 150
    assert len({e.phenomenon for e in events}) >= 16
    assert len(cascades(events)) >= 30
    per_continent = Counter(continent(e) for e in events)
    assert set(per_continent) == set(CONTINENTS) and min(per_continent.values()) >= 10, per_continent
    assert all(e.review_status == "curated" for e in events)
    by_id = {e.id: e for e in events}
    gj = by_id["gjerdrum-landslide-2020"]
    assert gj.countries == ("NOR",) and gj.shape.contains(Point(11.04, 60.07))
    for e in events:
        assert e.references, e.id
        for t in e.triggered_by:
            assert by_id[t].start <= e.start
    # the candidates a hazard dataset should not lack (issue 18)
    for eid in ("south-lhonak-glof-2023", "baige-landslide-dam-oct-2018", "baige-outburst-flood-nov-2018",
                "palu-earthquake-2018", "palu-liquefaction-petobo-2018", "kilauea-lower-east-rift-eruption-2018",
                "hunga-tonga-eruption-2022", "anak-krakatau-flank-collapse-2018", "derna-dam-failure-2023",
                "noto-earthquake-2024", "al-haouz-earthquake-2023", "wayanad-debris-flows-2024",
                "freetown-mudslide-2017", "rio-grande-do-sul-flood-2024", "idai-flood-buzi-2019", "boris-flood-nysa-2024"):
        assert eid in by_id, eid
    assert "oso-landslide-2014" not in by_id  # 22 March 2014: before Sentinel-1A's launch, no Sentinel image


DOI_PART = re.compile(r"^10\.\d{4,9}/\S+$")


def test_every_doi_is_well_formed() -> None:
    """Every DOI of the inventory (a `doi` field or a doi.org link) is 10.NNNN/suffix, with no spaces."""
    seen = 0
    for e in load_inventory(REPO_EVENTS):
        for ref in e.references:
            dois = [ref.doi] if ref.doi else []
            if ref.href and "doi.org/" in ref.href:
                dois.append(ref.href.split("doi.org/", 1)[1])
            for doi in dois:
                assert DOI_PART.match(doi), (e.id, doi)
                seen += 1
    assert seen >= 35  # many events cite their paper


def test_no_duplicate_events() -> None:
    """No two events share a site (within 1 km) and a start (within 1 day): that would be one event twice."""
    events = load_inventory(REPO_EVENTS)
    for i, a in enumerate(events):
        for b in events[i + 1 :]:
            lat = math.radians((a.site[1] + b.site[1]) / 2)
            km = math.hypot((a.site[0] - b.site[0]) * 111.32 * math.cos(lat), (a.site[1] - b.site[1]) * 111.32)
            assert not (km < 1.0 and abs((a.start - b.start).total_seconds()) < 86400), (a.id, b.id)


def test_hazard_codes_follow_the_vocabulary() -> None:
    """Each event carries one of its phenomenon's UNDRR-ISC 2025 codes and its GLIDE code (vocab.HAZARD_CODES)."""
    for e in load_inventory(REPO_EVENTS):
        undrr, glide = hazard_codes(e.phenomenon)
        assert glide in e.hazard_codes and set(undrr) & set(e.hazard_codes), (e.id, e.hazard_codes)
    assert set(HAZARD_CODES) == set(phenomena())


def test_extension_readme_lists_every_phenomenon() -> None:
    text = (REPO_EVENTS.parents[1] / "extensions" / "mmtp" / "README.md").read_text(encoding="utf-8")
    for p in phenomena():
        undrr, glide = hazard_codes(p)
        row = next((line for line in text.splitlines() if line.startswith(f"| `{p}` |")), None)
        assert row is not None, p
        assert all(code in row for code in (*undrr, glide)), row


def test_fixes_from_the_inventory_check() -> None:
    """The values corrected after the check of the first 40 events (issue 18)."""
    by_id = {e.id: e for e in load_inventory(REPO_EVENTS)}
    chamoli = by_id["chamoli-debris-flow-2021"]
    assert chamoli.site == (79.772, 30.521) and "at Raini" in chamoli.description  # on the flow path
    gj = by_id["gjerdrum-landslide-2020"]
    assert gj.start == datetime(2020, 12, 30, 2, 57, tzinfo=UTC) and gj.precision == "minute"
    assert "03:56:45 local time" in gj.description and "more than 1,000 people were evacuated" in gj.description
    kk = by_id["kaikoura-coastal-landslides-2016"].description
    assert "freight trains on 15 September 2017" in kk and "highway on 15 December 2017" in kk
    sk = by_id["sunkoshi-outburst-flood-2014"]
    assert sk.start == datetime(2014, 9, 6, 20, 45, tzinfo=UTC) and sk.phenomenon == "landslide-dam-outburst-flood"
    ve = by_id["veneto-flash-flood-2018"].description  # the wording of the EMSR332 AOI09 product's attributes
    assert "'5-Flood'" in ve and "'Flash flood'" in ve and "'Flooded area'" in ve
    for e in by_id.values():
        if e.phenomenon in ("glacier-collapse", "rock-ice-avalanche"):
            assert "MH0801" in e.hazard_codes and "AV" in e.hazard_codes, e.id
    assert by_id["nyiragongo-eruption-2021"].glide == "VO-2021-000069-COD"
    for eid in ("sunkoshi-landslide-2014", "sunkoshi-outburst-flood-2014", "gorkha-earthquake-2015",
                "langtang-avalanche-2015"):
        assert by_id[eid].modalities == ("sentinel-1",), eid


def test_continents() -> None:
    by_id = {e.id: e for e in load_inventory(REPO_EVENTS)}
    expected = {
        "gjerdrum-landslide-2020": "Europe", "gorkha-earthquake-2015": "Asia", "turkiye-earthquake-2023": "Asia",
        "piton-de-la-fournaise-eruption-2021": "Africa",  # Réunion (REU)
        "cumbre-vieja-eruption-2021": "Africa",  # Canary Islands (ESP), placed by the site
        "kilauea-lower-east-rift-eruption-2018": "Oceania/Pacific",  # Hawaii (USA), placed by the site
        "slumgullion-landslide-2014": "North America", "mexico-city-subsidence-2014": "North America",
        "fuego-eruption-2018": "South and Central America", "haiti-earthquake-2021": "South and Central America",
        "kaikoura-earthquake-2016": "Oceania/Pacific", "longyearbyen-avalanche-2015": "Europe",
    }
    assert {eid: continent(by_id[eid]) for eid in expected} == expected
    # the form the datasheet uses (countries of an event item, no site): overseas parts count with the country
    assert continent_of_countries(["USA"]) == "North America" and continent_of_countries(["REU"]) == "Africa"
    assert continent_of_countries(["USA"], (-155.28, 19.41)) == "Oceania/Pacific"
    assert continent_of_countries([]) == "unknown" and continent_of_countries(["XXX", "NZL"]) == "Oceania/Pacific"


def test_sentinel_era_rules(tmp_path: Path) -> None:
    """After Sentinel-2's first images (23 June 2015): both modalities; from Sentinel-1A's launch (3 April 2014)
    until then: SAR only, marked; earlier: only slow motion still active over the Sentinel era."""
    write_event(tmp_path, "both-2020")  # 2020-12-30, no modalities property: both
    write_event(tmp_path, "sar-2015", datetime="2015-04-25T06:11:25Z", modalities=["sentinel-1"])
    write_event(tmp_path, "slow-2014", datetime=None, start_datetime="2014-01-01T00:00:00Z",
                end_datetime="2025-12-31T00:00:00Z", state="active")
    assert [e.id for e in check_inventory(tmp_path)] == ["both-2020", "sar-2015", "slow-2014"]

    bad = tmp_path / "bad"
    write_event(bad, "unmarked-2015", datetime="2015-04-25T06:11:25Z")
    write_event(bad, "sar-only-2020", modalities=["sentinel-1"])
    write_event(bad, "before-s1-2014", datetime="2014-03-22T17:37:00Z", modalities=["sentinel-1"])
    write_event(bad, "ended-slow-2014", datetime=None, start_datetime="2014-01-01T00:00:00Z",
                end_datetime="2014-06-01T00:00:00Z")
    load_inventory(bad)  # structurally valid: the rules are the curated inventory's policy
    with pytest.raises(InventoryErrors) as info:
        check_inventory(bad)
    errs = {Path(e.path).stem: e for e in info.value.errors}
    assert sorted(errs) == ["before-s1-2014", "ended-slow-2014", "sar-only-2020", "unmarked-2015"]
    assert errs["unmarked-2015"].field == "modalities" and 'modalities: ["sentinel-1"]' in errs["unmarked-2015"].message
    assert errs["sar-only-2020"].field == "modalities" and "both sentinel-1 and sentinel-2" in errs["sar-only-2020"].message
    assert errs["before-s1-2014"].field == "datetime" and "before Sentinel-1A's launch (2014-04-03)" in errs["before-s1-2014"].message
    assert errs["ended-slow-2014"].field == "start_datetime"

    odd = tmp_path / "odd"
    write_event(odd, "radar-2020", modalities=["radar"])
    (err,) = _errors(odd)
    assert err.field == "modalities" and "sentinel-1, sentinel-2" in err.message


def test_events_check_cli_applies_the_sentinel_era_rules(tmp_path: Path) -> None:
    write_event(tmp_path, "unmarked-2015", datetime="2015-04-25T06:11:25Z")
    r = CliRunner().invoke(main, ["events", "check", str(tmp_path)])
    assert r.exit_code == 2 and "unmarked-2015.geojson [modalities]" in r.output
    r = CliRunner().invoke(main, ["events", "check", str(REPO_EVENTS)])
    assert r.exit_code == 0, r.output


def test_candidates_are_never_built(tmp_path: Path) -> None:
    """`review_status: candidate` (importers, `import-ems --new-event`) is checked but left out by
    load_inventory, which the build uses; a curated event cannot depend on a candidate."""
    write_event(tmp_path, "curated-2020", review_status="curated")
    write_event(tmp_path, "imported-2021", datetime="2021-01-01T00:00:00Z", review_status="candidate")
    write_event(tmp_path, "absent-2019", datetime="2019-01-01T00:00:00Z")  # absent: curated
    assert [e.id for e in load_inventory(tmp_path)] == ["absent-2019", "curated-2020"]
    evs = load_inventory(tmp_path, include_candidates=True)
    assert {e.id: e.review_status for e in evs} == {"absent-2019": "curated", "curated-2020": "curated",
                                                     "imported-2021": "candidate"}
    r = CliRunner().invoke(main, ["events", "check", str(tmp_path)])
    assert r.exit_code == 0 and "2 events in" in r.output
    assert "1 candidate event(s), not built until reviewed: imported-2021" in r.output
    from stac_mmtp.build import build

    report = build(tmp_path, [], tmp_path / "out")
    assert report.ok and report.events == 2
    assert (tmp_path / "out" / "events" / "curated-2020").is_dir()
    assert not (tmp_path / "out" / "events" / "imported-2021").exists()

    write_event(tmp_path, "slide-2021", datetime="2021-01-02T00:00:00Z", triggered_by=["imported-2021"])
    (err,) = _errors(tmp_path)
    assert err.path.endswith("slide-2021.geojson") and err.field == "triggered_by"
    assert "'imported-2021' is a candidate event, not curated" in err.message
    write_event(tmp_path / "x", "typo-2020", review_status="reviewed")
    (err,) = _errors(tmp_path / "x")
    assert err.field == "review_status" and "unknown review_status 'reviewed'" in err.message


def test_readme_inventory_table_is_generated() -> None:
    """README.md's inventory block is exactly the output of `stac-mmtp events summary --markdown`."""
    r = CliRunner().invoke(main, ["events", "summary", "--markdown"])
    assert r.exit_code == 0, r.output
    readme = (REPO_EVENTS.parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- inventory-table -->\n", 1)[1].split("<!-- /inventory-table -->", 1)[0]
    assert block == r.output
    assert "| **total** |" in block and f"{len(load_inventory(REPO_EVENTS))} events" in block


def test_events_summary_table(tmp_path: Path) -> None:
    write_event(tmp_path, "quake-2020", phenomenon="earthquake")
    write_event(tmp_path, "slide-2020", triggered_by=["quake-2020"])
    write_event(tmp_path, "hawaii-2020", geometry=box(-155.0, 19.4), site=[-155.0, 19.4], countries=["USA"])
    r = CliRunner().invoke(main, ["events", "summary", str(tmp_path), "--markdown"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == ("| phenomenon | Europe | Asia | Africa | North America | South and Central America | "
                        "Oceania/Pacific | total |")
    assert lines[2] == "| earthquake | 1 | 0 | 0 | 0 | 0 | 0 | 1 |"
    assert lines[3] == "| landslide | 1 | 0 | 0 | 0 | 0 | 1 | 2 |"
    assert lines[4] == "| **total** | 2 | 0 | 0 | 0 | 0 | 1 | 3 |"
    assert lines[6] == "3 events, 2 phenomena, 1 cascades (`triggered_by` links)."
    write_event(tmp_path, "nowhere-2020", countries=["XXX"])
    r = CliRunner().invoke(main, ["events", "summary", str(tmp_path)])
    assert r.exit_code == 2 and "nowhere-2020.geojson [countries]" in r.output and "no continent known" in r.output


def test_future_end_refused_and_ongoing_activity(tmp_path: Path) -> None:
    now = datetime(2026, 6, 15, 12, 30, tzinfo=UTC)
    interval = {"datetime": None, "start_datetime": "2020-01-01T00:00:00Z"}
    write_event(tmp_path, "ended-2020", **interval, end_datetime="2027-01-01T00:00:00Z")
    write_event(tmp_path, "active-2020", phenomenon="rock-glacier", state="active", **interval,
                end_datetime="2030-01-01T00:00:00Z")
    with pytest.raises(InventoryErrors) as info:
        load_inventory(tmp_path, now=now)
    got = sorted((Path(e.path).name, e.field, e.message) for e in info.value.errors)
    assert got == [
        ("active-2020.geojson", "end_datetime", "end_datetime 2030-01-01 is in the future; for ongoing activity set "
                                                "end_datetime to null"),
        ("ended-2020.geojson", "end_datetime", "end_datetime 2027-01-01 is in the future"),
    ]
    # an active event with end_datetime null or absent is ongoing: it runs to the start of today (UTC)
    for p in tmp_path.iterdir():
        p.unlink()
    write_event(tmp_path, "null-2020", phenomenon="rock-glacier", state="active", **interval)
    doc = json.loads((tmp_path / "null-2020.geojson").read_text())
    doc["properties"]["end_datetime"] = None
    (tmp_path / "null-2020.geojson").write_text(json.dumps(doc))
    write_event(tmp_path, "absent-2020", phenomenon="rock-glacier", state="active", **interval)
    events = load_inventory(tmp_path, now=now)
    assert [(e.id, e.ongoing, e.end) for e in events] == [
        ("absent-2020", True, datetime(2026, 6, 15, tzinfo=UTC)), ("null-2020", True, datetime(2026, 6, 15, tzinfo=UTC))]
    # but an ended event must say when it ended
    write_event(tmp_path, "noend-2020", **interval)
    assert [(Path(e.path).name, e.field) for e in _errors(tmp_path)] == [("noend-2020.geojson", "datetime")]


@pytest.mark.parametrize(("props", "field"), [
    ({"datetime": "0001-01-01T00:00:00Z"}, "datetime"),
    ({"datetime": "2013-12-31T23:00:00Z"}, "datetime"),
    ({"datetime": None, "start_datetime": "1950-01-01T00:00:00Z", "end_datetime": "2020-01-01T00:00:00Z"},
     "start_datetime"),
])
def test_dates_outside_2014_2100_refused(tmp_path: Path, props: dict, field: str) -> None:
    write_event(tmp_path, "old-2020", **props)
    errors = _errors(tmp_path)
    assert [(e.field, "is outside 2014-2100" in e.message) for e in errors] == [(field, True)]


def test_far_future_date_refused_by_the_check_not_an_overflow_in_build(tmp_path: Path) -> None:
    from stac_mmtp.build import build

    write_event(tmp_path / "ev", "far-2020", datetime="9999-12-31T23:00:00Z")
    with pytest.raises(InventoryErrors) as info:
        load_inventory(tmp_path / "ev", now=datetime(9999, 12, 31, 23, 59, tzinfo=UTC))
    assert [(e.field, "is outside 2014-2100" in e.message) for e in info.value.errors] == [("datetime", True)]
    write_event(tmp_path / "ev2", "first-2020", datetime="0001-01-01T00:00:00Z")
    with pytest.raises(InputError, match="first-2020.geojson \\[datetime\\]: 0001-01-01 is outside"):
        build(tmp_path / "ev2", [], tmp_path / "out")


def test_every_inhabited_country_has_a_continent() -> None:
    """Any ISO 3166-1 alpha-3 code an event may carry maps to one of the six continents (pycountry's list;
    only the uninhabited Antarctic and sub-Antarctic territories have none)."""
    import pycountry

    from stac_mmtp.dataset.inventory import CONTINENTS, continent_of_countries

    for c in pycountry.countries:
        if c.alpha_3 in ("ATA", "ATF", "BVT", "HMD"):
            continue
        assert continent_of_countries([c.alpha_3]) in CONTINENTS, c.alpha_3
    assert continent_of_countries(["ESH"]) == "Africa" and continent_of_countries(["TTO"]) == "South and Central America"
