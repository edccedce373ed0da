"""Inventory checks: each rule has a test that a bad file fails with its file and field named."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import box, event_doc, write_event

from stac_mmtp.errors import InputError
from stac_mmtp.inventory import InventoryErrors, aoi_extent_km, cascades, load_inventory

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
    """The committed inventory: >= 30 real events, >= 6 phenomenon types, >= 5 cascades, all checks pass."""
    events = load_inventory(REPO_EVENTS)
    assert len(events) >= 30
    assert len({e.phenomenon for e in events}) >= 6
    assert len(cascades(events)) >= 5
    by_id = {e.id: e for e in events}
    gj = next(e for e in events if "gjerdrum" in e.id)
    assert gj.start.date().isoformat() == "2020-12-30" and gj.countries == ("NOR",)
    assert gj.shape.contains(__import__("shapely.geometry", fromlist=["Point"]).Point(11.04, 60.07))
    for e in events:
        assert e.references, e.id
        for t in e.triggered_by:
            assert by_id[t].start <= e.start


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
