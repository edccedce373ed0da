"""`stac-mmtp events import`: real catalogue excerpts (expected values copied from the rows by hand) and
malformed rows (each a row-level error naming file and line, the other rows still imported)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES
from unavailable import unavailable

from stac_mmtp.commands.main import main
from stac_mmtp.dataset.importers import import_catalogue
from stac_mmtp.dataset.importers.common import read_text
from stac_mmtp.errors import InputError

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "catalog" / "events"
HERE = Path(__file__).resolve().parent / "fixtures" / "event-inventories"
GLC = FIXTURES / "event-inventories" / "nasa-glc_excerpt_nepal_2015-2017.csv"
GVP = HERE / "gvp_eruption_results_excerpt.csv"
HMA = HERE / "hmaglofdb_excerpt.csv"
USGS_CSV = HERE / "usgs_earthquakes_excerpt.csv"
USGS_JSON = HERE / "usgs_significant_month_2020-06-08.geojson"
OUT_OF_ERA = "before the Sentinel era (Oct 2014)"


@pytest.fixture(scope="module")
def glc_excerpt() -> Path:
    if not GLC.is_file():
        unavailable(f"real fixture not found at {GLC}")
    return GLC


def _props(out: Path, eid: str) -> dict:
    doc = json.loads((out / f"{eid}.geojson").read_text(encoding="utf-8"))
    assert doc["id"] == eid and doc["type"] == "Feature"
    return doc["properties"]


def _check_site_in_aoi(out: Path, eid: str) -> None:
    doc = json.loads((out / f"{eid}.geojson").read_text(encoding="utf-8"))
    (lon, lat), ring = doc["properties"]["site"], doc["geometry"]["coordinates"][0]
    assert ring[0][0] < lon < ring[1][0] and ring[0][1] < lat < ring[2][1]


# --------------------------------------------------------------------------- real excerpts
def test_nasa_glc_real_excerpt(glc_excerpt: Path, tmp_path: Path) -> None:
    r = import_catalogue("nasa-glc", glc_excerpt, tmp_path, EVENTS)
    assert r.rows == 55 and not r.errors and not r.skipped
    # events 7317 and 7318: same day (7/30/2015), 3.4 km apart -> one candidate
    assert ("nasa-glc-7318", "nasa-glc-7317") in r.duplicates and len(r.duplicates) == 5
    assert len(r.written) == 50
    p = _props(tmp_path, "nasa-glc-7081")  # line 2: eKantipur, 7/5/2015 0:00, rock_fall, 5km, 86.3248 27.0483
    assert p["review_status"] == "candidate"
    assert p["datetime"] == "2015-07-05T00:00:00Z" and p["datetime_precision"] == "day"
    assert p["site"] == [86.3248, 27.0483] and p["countries"] == ["NPL"]
    assert p["phenomenon"] == "rockfall" and p["hazard_codes"] == ["GH0301", "LS"]
    assert p["sources"][0]["id"] == "7081" and p["sources"][0]["line"] == 2
    assert {"doi": "10.1007/s11069-009-9401-4"}.items() <= p["references"][-2].items()
    _check_site_in_aoi(tmp_path, "nasa-glc-7081")
    # line 53: a location description with commas inside quotes; 85.3679 28.2568
    p = _props(tmp_path, "nasa-glc-9500")
    assert p["site"] == [85.3679, 28.2568] and p["sources"][0]["line"] == 53
    assert p["datetime"] == "2016-09-11T00:00:00Z"


def test_gvp_real_excerpt(tmp_path: Path) -> None:
    r = import_catalogue("gvp", GVP, tmp_path, EVENTS)
    assert r.rows == 9 and not r.errors
    assert r.skipped == {OUT_OF_ERA: 2}  # Suwanosejima 1949-1954, Quetrupillan 11345 BCE
    # La Palma 2021-09-19 (volcano point 5.8 km from the curated vent) and Piton de la Fournaise 2021-04-09
    # (a name with a comma inside quotes) are already curated
    assert sorted(r.duplicates) == [("gvp-22395", "piton-de-la-fournaise-eruption-2021"),
                                    ("gvp-22417", "cumbre-vieja-eruption-2021")]
    # Bardarbunga (2014-08-29 to 2015-02-27) was still erupting when Sentinel-1A started: kept
    assert sorted(r.written) == ["gvp-20955", "gvp-20964", "gvp-20983", "gvp-22111", "gvp-22420"]
    p = _props(tmp_path, "gvp-22420")  # 257030,Ambae,22420,...,2021,12,5,2021,12,9,-15.389,167.835
    assert p["start_datetime"] == "2021-12-05T00:00:00Z" and p["end_datetime"] == "2021-12-09T00:00:00Z"
    assert p["site"] == [167.835, -15.389] and p["phenomenon"] == "volcanic-eruption"
    assert p["references"][0]["href"] == "https://volcano.si.edu/volcano.cfm?vn=257030"
    assert p["sources"][0]["id"] == "22420" and p["sources"][0]["line"] == 2
    assert p["countries"] == []  # the eruption list has no country column
    p = _props(tmp_path, "gvp-22111")  # Marapi, 2015-11-14 to 2015-11-14: one day
    assert p["datetime"] == "2015-11-14T00:00:00Z" and "start_datetime" not in p


def test_hma_glof_real_excerpt(tmp_path: Path) -> None:
    r = import_catalogue("hma-glof", HMA, tmp_path, EVENTS)
    assert r.rows == 11 and not r.errors  # 12 lines, one record over two
    assert r.skipped == {OUT_OF_ERA: 2}  # GF 22 (1877), GF 364 (1994, a record over lines 5-6)
    assert sorted(r.duplicates) == [
        ("hma-glof-698", "south-lhonak-glof-2023"),  # South Lonak 2023-10-04: a curated event of the inventory
        ("hma-glof-740", "hma-glof-500"),  # Lake 1 / Lake number 1, both 2019-08-14
    ]
    assert sorted(r.written) == sorted(f"hma-glof-{i}" for i in (491, 471, 506, 500, 476, 501, 507))
    # against an inventory without the South Lhonak GLOF, the row is written as a candidate
    others = tmp_path / "others"
    others.mkdir()
    shutil.copy(EVENTS / "gjerdrum-landslide-2020.geojson", others)
    assert "hma-glof-698" in import_catalogue("hma-glof", HMA, tmp_path / "alone", others).written
    p = _props(tmp_path / "alone", "hma-glof-698")  # South Lonak, 2023,10,4, lake 27.9121 88.1926, India
    assert p["datetime"] == "2023-10-04T00:00:00Z" and p["datetime_precision"] == "day"
    assert p["site"] == [88.1926, 27.9121] and p["countries"] == ["IND"]
    assert p["phenomenon"] == "glacial-lake-outburst-flood"
    assert p["sources"][0]["line"] == 13  # after the two-line record: physical lines are counted
    assert p["references"][0]["doi"] == "10.5194/essd-15-3941-2023"
    p = _props(tmp_path, "hma-glof-471")  # Bindo Gol, 2015, month 7, day NA
    assert p["datetime"] == "2015-07-01T00:00:00Z" and p["datetime_precision"] == "month"
    assert p["countries"] == ["PAK"]
    p = _props(tmp_path, "hma-glof-476")  # Merzbacher, 2015, month NA
    assert p["datetime_precision"] == "year" and p["countries"] == ["KGZ"]
    p = _props(tmp_path, "hma-glof-491")  # Langmale 2017-04-20, Nepal; Byers et al. 2019, doi 10.1007/s10346-018-1079-9
    assert p["datetime"] == "2017-04-20T00:00:00Z" and p["site"] == [87.141, 27.814] and p["countries"] == ["NPL"]
    assert [r["doi"] for r in p["references"]] == ["10.5194/essd-15-3941-2023", "10.1007/s10346-018-1079-9"]


def test_usgs_real_csv_excerpt(tmp_path: Path) -> None:
    r = import_catalogue("usgs", USGS_CSV, tmp_path, EVENTS)
    assert r.rows == 7 and not r.errors
    assert r.skipped == {OUT_OF_ERA: 2}  # 1965, and 1975 written as ISO 8601 in the Date column
    assert sorted(r.duplicates) == [("usgs-us1000778i", "kaikoura-earthquake-2016"),
                                    ("usgs-us20002926", "gorkha-earthquake-2015")]
    assert sorted(r.written) == ["usgs-us100077ap", "usgs-us10007ntd", "usgs-us2000292y"]
    p = _props(tmp_path, "usgs-us2000292y")  # 04/25/2015,06:45:21,28.2244,84.8216,...,6.6,MWW
    assert p["datetime"] == "2015-04-25T06:45:21Z" and p["datetime_precision"] == "second"
    assert p["site"] == [84.8216, 28.2244] and p["phenomenon"] == "earthquake"
    assert p["hazard_codes"] == ["GH0101", "EQ"]
    assert p["references"][0]["href"] == "https://earthquake.usgs.gov/earthquakes/eventpage/us2000292y"
    assert p["sources"][0]["id"] == "US2000292Y" and p["sources"][0]["line"] == 5
    assert "Before Sentinel-2's first images" in p["description"]


def test_usgs_real_comcat_geojson(tmp_path: Path) -> None:
    r = import_catalogue("usgs", USGS_JSON, tmp_path, EVENTS)
    assert r.rows == 6 and not r.errors and not r.duplicates and len(r.written) == 6
    p = _props(tmp_path, "usgs-us6000a5r3")  # time 1591260579782 ms = 2020-06-04T08:49:39Z (date -u -d @...)
    assert p["datetime"] == "2020-06-04T08:49:39Z"
    assert p["site"] == [128.2477, 2.9231] and p["countries"] == ["IDN"]
    assert p["title"] == "M 6.4 - 134 km NNE of Tobelo, Indonesia"
    assert p["sources"][0]["line"] == "features[0] (us6000a5r3)"
    assert _props(tmp_path, "usgs-ci39462536")["countries"] == ["USA"]  # "17km S of Searles Valley, CA"
    assert _props(tmp_path, "usgs-nn00725272")["countries"] == ["USA"]  # "Monte Cristo Range, NV Earthquake"
    assert _props(tmp_path, "usgs-ci39462536")["datetime"] == "2020-06-04T01:32:11Z"


# --------------------------------------------------------------------------- malformed rows
def _csv_from(real: Path, edits: list[dict[str, str]], title_row: str | None = None) -> str:
    """The real file's header and first data row, one output row per edit of that row."""
    rows = list(csv.reader(io.StringIO(read_text(real), newline="")))
    header, first = rows[0], rows[1]
    buf = io.StringIO()
    if title_row:
        buf.write(title_row + "\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for edit in edits:
        row = dict(zip(header, first, strict=True))
        row.update(edit)
        w.writerow([row[h] for h in header])
    return buf.getvalue()


def test_glc_malformed_rows(glc_excerpt: Path, tmp_path: Path) -> None:
    src = tmp_path / "glc.csv"
    src.write_text(_csv_from(glc_excerpt, [
        {"event_id": "1", "location_description": "Road, near a bridge, km 12"},  # commas in quotes
        {"event_id": "2", "latitude": ""},  # missing coordinates
        {"event_id": "3", "event_date": "2016-05-01"},
        {"event_id": "4", "event_date": "08/01/2016 12:00:00 AM", "longitude": "85.0"},
        {"event_id": "5", "event_date": "31/31/2016", "longitude": "84.0"},
        {"event_id": "6", "longitude": "186.3"},
        {"event_id": "7", "location_accuracy": "50km", "longitude": "83.0"},
    ]) + "9,only,three\n", encoding="utf-8")
    r = import_catalogue("nasa-glc", src, tmp_path / "out", EVENTS)
    assert sorted(r.written) == ["nasa-glc-1", "nasa-glc-3", "nasa-glc-4"]
    assert _props(tmp_path / "out", "nasa-glc-3")["datetime"] == "2016-05-01T00:00:00Z"
    assert _props(tmp_path / "out", "nasa-glc-4")["datetime"] == "2016-08-01T00:00:00Z"
    assert _props(tmp_path / "out", "nasa-glc-1")["title"].endswith("Road, near a bridge, km 12")
    errors = [str(e) for e in r.errors]
    assert errors[0] == f"{src}:3 [latitude]: missing value"
    assert errors[1].startswith(f"{src}:6 [event_date]: not a date in a known format")
    assert errors[2].startswith(f"{src}:7 [longitude]: 186.3 is out of range")
    assert errors[3].startswith(f"{src}:9: 3 fields where the header has 26")
    assert len(errors) == 4 and r.skipped == {"location accuracy coarser than 25 km (50km)": 1}


def test_hma_malformed_rows(tmp_path: Path) -> None:
    src = tmp_path / "hma.csv"
    src.write_text(_csv_from(HMA, [
        {"GF_ID": "1", "Year_exact": "2016", "Month": "6", "Day": "2", "Lat_lake": "NA"},
        {"GF_ID": "2", "Year_exact": "NA", "Year_approx": "1990s"},
        {"GF_ID": "3", "Year_exact": "NA", "Year_approx": "NA"},
        {"GF_ID": "4", "Year_exact": "2016", "Month": "13", "Day": "2"},
        {"GF_ID": "5", "Year_exact": "NA", "Year_approx": "2015-2016"},
        {"GF_ID": "6", "Year_exact": "2016", "Month": "8", "Day": "NA", "Lake_name": "Lake, with comma",
         "Lat_lake": "42.9"},  # 41 km from the others: not a duplicate of GF 5
        {"GF_ID": "7", "Year_exact": "20l6", "Month": "8", "Day": "3"},
    ]), encoding="cp1252")
    r = import_catalogue("hma-glof", src, tmp_path / "out", EVENTS)
    assert r.written == ["hma-glof-5", "hma-glof-6"]
    p = _props(tmp_path / "out", "hma-glof-5")  # only "2015-2016": a year-precision period
    assert (p["start_datetime"], p["end_datetime"]) == ("2015-01-01T00:00:00Z", "2016-01-01T00:00:00Z")
    assert p["datetime_precision"] == "year"
    p = _props(tmp_path / "out", "hma-glof-6")
    assert p["datetime"] == "2016-08-01T00:00:00Z" and p["datetime_precision"] == "month"
    assert "Lake, with comma" in p["title"]
    assert [str(e) for e in r.errors] == [
        f"{src}:2 [Lat_lake]: missing value",
        f"{src}:5 [Month]: not a date: 2016-13-2 (month must be in 1..12)",
        f"{src}:8 [Year_exact]: not a date: year '20l6', month '8', day '3'",
    ]
    assert r.skipped == {OUT_OF_ERA: 1, "no date in the source": 1}


def test_gvp_title_row_and_malformed_rows(tmp_path: Path) -> None:
    src = tmp_path / "gvp.csv"
    src.write_text(_csv_from(GVP, [
        {"Eruption Number": "1", "Latitude": ""},
        {"Eruption Number": "2", "Start Day": "0"},
        {"Eruption Number": "3", "Start Year": "2021", "End Year": "2020"},
    ], title_row="Global Volcanism Program - eruption search results, downloaded on 1 Dec 2026"), encoding="utf-8")
    r = import_catalogue("gvp", src, tmp_path / "out", EVENTS)
    assert r.written == ["gvp-2"]
    assert _props(tmp_path / "out", "gvp-2")["start_datetime"] == "2021-12-01T00:00:00Z"
    assert _props(tmp_path / "out", "gvp-2")["datetime_precision"] == "month"
    assert [str(e) for e in r.errors] == [f"{src}:3 [Latitude]: missing value",
                                          f"{src}:5 [End Year]: ends (2020-12-09) before it starts (2021-12-05)"]


def test_usgs_malformed(tmp_path: Path) -> None:
    src = tmp_path / "eq.csv"
    src.write_text(_csv_from(USGS_CSV, [
        {"ID": "A1", "Date": "2016-01-02T03:04:05.000Z", "Time": "2016-01-02T03:04:05.000Z"},
        {"ID": "A2", "Date": "01/03/2016", "Time": "25:00:00"},
        {"ID": "A3", "Date": "01/04/2016", "Type": "Nuclear Explosion"},
    ]), encoding="utf-8")
    r = import_catalogue("usgs", src, tmp_path / "out", EVENTS)
    assert r.written == ["usgs-a1"] and _props(tmp_path / "out", "usgs-a1")["datetime"] == "2016-01-02T03:04:05Z"
    assert [str(e) for e in r.errors] == [f"{src}:3 [Time]: not a time (HH:MM:SS): '25:00:00'"]
    assert r.skipped == {"not an earthquake (Nuclear Explosion)": 1}

    doc = json.loads(USGS_JSON.read_text(encoding="utf-8"))
    del doc["features"][1]["geometry"]
    bad = tmp_path / "feed.geojson"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    r = import_catalogue("usgs", bad, tmp_path / "out2", EVENTS)
    assert len(r.written) == 5
    assert [str(e) for e in r.errors] == [f"{bad}:features[1] (ci39462536) [geometry]: missing coordinates"]

    (tmp_path / "notfc.geojson").write_text('{"type": "Feature"}', encoding="utf-8")
    with pytest.raises(InputError, match="not a USGS GeoJSON FeatureCollection"):
        import_catalogue("usgs", tmp_path / "notfc.geojson", tmp_path / "out3", EVENTS)


# --------------------------------------------------------------------------- the command
def test_cli_exit_codes_and_no_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["events", "import", "hma-glof", str(HMA), "--out", str(out), "--events", str(EVENTS)])
    assert r.exit_code == 0, r.output
    assert "rows read" in r.output and "hma-glof-740" in r.output
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 7  # hma-glof-698 duplicates the curated south-lhonak-glof-2023
    # a reviewer's edit of a candidate survives a re-run: existing files are never overwritten
    edited = out / "hma-glof-491.geojson"
    edited.write_text(edited.read_text(encoding="utf-8").replace('"candidate"', '"curated"'), encoding="utf-8")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r = CliRunner().invoke(main, ["events", "import", "hma-glof", str(HMA), "--out", str(out), "--events", str(EVENTS)])
    assert r.exit_code == 0, r.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    # a bad FILE for its SOURCE: exit 2, nothing written
    r = CliRunner().invoke(main, ["events", "import", "gvp", str(HMA), "--out", str(tmp_path / "gvp")])
    assert r.exit_code == 2 and "not a GVP eruption list file" in r.output and not (tmp_path / "gvp").exists()
    r = CliRunner().invoke(main, ["events", "import", "usgs", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "no such file" in r.output
    r = CliRunner().invoke(main, ["events", "import", "emdat", str(HMA)])
    assert r.exit_code == 2
    curated = tmp_path / "events"
    curated.mkdir()
    r = CliRunner().invoke(main, ["events", "import", "hma-glof", str(HMA), "--out", str(curated), "--events", str(curated)])
    assert r.exit_code == 2 and "never written into the curated inventory" in r.output and not any(curated.iterdir())

    # some rows failed: exit 1, the others written
    src = tmp_path / "eq.csv"
    src.write_text(_csv_from(USGS_CSV, [{"ID": "B1", "Date": "01/03/2016"}, {"ID": "B2", "Latitude": "x"}]))
    r = CliRunner().invoke(main, ["events", "import", "usgs", str(src), "--out", str(tmp_path / "eq")])
    assert r.exit_code == 1, r.output
    assert f"{src}:3 [Latitude]: not a number: 'x'" in r.output
    assert [p.name for p in (tmp_path / "eq").iterdir()] == ["usgs-b1.geojson"]


# --------------------------------------------------------------------------- the committed candidates
def test_committed_candidates(tmp_path: Path) -> None:
    """catalog/candidates: inventory-format features, redistributable sources only, no duplicate of a curated
    event, never an id of catalog/events; each passes the inventory's checks but for a missing country."""
    from stac_mmtp.dataset.importers.common import Candidate, KnownIndex, find_duplicate, load_known
    from stac_mmtp.dataset.inventory import parse_event

    root = REPO / "catalog" / "candidates"
    files = sorted(root.glob("*/*.geojson"))
    counts = {d.name: len(list(d.glob("*.geojson"))) for d in root.iterdir() if d.is_dir()}
    assert counts == {"hma-glof": 65, "usgs": 34, "nasa-glc": 34}  # the README's provenance table
    curated = load_known(EVENTS)
    index = KnownIndex(curated)
    for path in files:
        doc = json.loads(path.read_text(encoding="utf-8"))
        p = doc["properties"]
        assert p["review_status"] == "candidate" and doc["id"].startswith(path.parent.name + "-")
        assert p["sources"][0]["source"] == path.parent.name
        assert p["sources"][0]["licence"].startswith(("public domain", "CC BY 4.0")), path
        assert not (EVENTS / path.name).exists()
        if p["countries"]:
            parse_event(path)
        else:  # the same checks once a reviewer adds the country
            with pytest.raises(InputError, match="ISO 3166-1 alpha-3"):
                parse_event(path)
            fixed = tmp_path / path.name
            fixed.write_text(json.dumps({**doc, "properties": {**p, "countries": ["XXX"]}}), encoding="utf-8")
            parse_event(fixed)
        start = p.get("datetime") or p["start_datetime"]
        c = Candidate(path.parent.name, "", "", 0, "", "", p["phenomenon"],
                      datetime.fromisoformat(start.replace("Z", "+00:00")), p["datetime_precision"],
                      tuple(p["site"]), 1.0)
        assert find_duplicate(c, index) is None, path


def test_duplicate_rule() -> None:
    """Same family of phenomena, within 5 km (or the location uncertainty) and 3 days; across the antimeridian."""
    from stac_mmtp.dataset.importers.common import Candidate, Known, KnownIndex, find_duplicate

    t = datetime(2016, 9, 1, 16, 37, 57, tzinfo=UTC)
    quake = Known("quake", "earthquake", (179.99, -37.36), t, t, "second")
    slide = Known("slide", "landslide", (10.0, 60.0), t, t, "day")
    index = KnownIndex([quake, slide])

    def cand(phen: str, site: tuple[float, float], days: float = 0, match_km: float = 5.0) -> Candidate:
        return Candidate("x", "", "1", 1, "", "", phen, t + timedelta(days=days), "second", site, 1.0,
                         match_km=match_km)

    assert find_duplicate(cand("earthquake", (-179.99, -37.36)), index) == "quake"  # 1.8 km, other side of 180
    assert find_duplicate(cand("earthquake", (-179.99, -37.36), days=2.9), index) == "quake"
    assert find_duplicate(cand("earthquake", (-179.99, -37.36), days=3.1), index) is None
    assert find_duplicate(cand("landslide", (-179.99, -37.36)), index) is None  # a cascade, not a duplicate
    assert find_duplicate(cand("debris-flow", (10.0, 60.08)), index) is None  # 8.9 km
    assert find_duplicate(cand("debris-flow", (10.0, 60.08), match_km=10), index) == "slide"  # GLC 10km accuracy


def test_default_out_is_catalog_candidates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "catalog" / "events").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["-q", "events", "import", "usgs", str(USGS_JSON)])
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "catalog" / "candidates" / "usgs").glob("usgs-*.geojson"))) == 6
    assert not any((tmp_path / "catalog" / "events").iterdir())
