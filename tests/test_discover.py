"""`stac-mmtp discover` against real STAC APIs on 127.0.0.1 (stac-fastapi-geoparquet and stac-fastapi-pgstac).

The API holds the real item JSONs of Earth Search v1 (rio-tiler-pds 29RKH, 13TDE) and Planetary
Computer (Sentinel-1 GRD), plus date-shifted copies of them (ids rewritten to their new dates) so that
pre/post choices are meaningful; each copy is said to be one in its own `description` property.
The core tests (items per role, paging, antimeridian, 429 proxy) run once per server: one
stac-fastapi-pgstac (PostgreSQL + PostGIS, loaded with pypgstac) is started for the whole module.
Expectations are written from the item dates and footprints, not from the code under test.
"""

from __future__ import annotations

import copy
import http.client
import http.server
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import box, write_event
from stac_api import SERVERS, any_stac_api, stac_api
from unavailable import unavailable

from stac_mmtp.dataset.inventory import load_inventory
from stac_mmtp.discover import DiscoverOptions, discover_events
from stac_mmtp.discover.geometry import aoi_coverage
from stac_mmtp.discover.providers import resolve
from stac_mmtp.discover.selection import Selection, select

S2_REAL = "rio-tiler-pds/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A/S2A_29RKH_20200219_0_L2A.json"
S2_13TDE = "stac-api-items/earth-search-v1/sentinel-2-l2a/S2A_13TDE_20231008_0_L2A.json"
S1_REAL = "stac-api-items/planetary-computer/sentinel-1-grd/S1A_IW_GRDH_1SDV_20250312T052236_20250312T052301_058267_073394.json"
S2_PC = "stac-api-items/planetary-computer/sentinel-2-l2a/S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531.json"

KH = "sahara-test-2020"  # on tile 29RKH, 2020-02-12
AM = "chukotka-test-2020"  # across the antimeridian, 2020-02-12
TN = "tunisia-test-2025"  # on the Planetary Computer S1 footprint, 2025-03-05


def _load(fixtures: Path, rel: str) -> dict[str, Any]:
    return json.loads((fixtures / rel).read_text(encoding="utf-8"))


def _fmt(dt: datetime, frac: bool = True) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[: -3 if frac else -7] + "Z"


def s2_copy(real: dict[str, Any], days: int, seq: int = 0, cloud: float | None = None,
            baseline: str | None = None) -> dict[str, Any]:
    """The real 29RKH item moved by `days` (id, datetime, created), optionally re-processed or cloudier."""
    it = copy.deepcopy(real)
    p = it["properties"]
    when = datetime.fromisoformat(p["datetime"].replace("Z", "+00:00")) + timedelta(days=days)
    it["id"] = f"S2A_29RKH_{when:%Y%m%d}_{seq}_L2A"
    p["datetime"] = _fmt(when)
    p["created"] = _fmt(when + timedelta(days=1 + 30 * seq))
    p["description"] = f"test copy of {real['id']} moved by {days} days"
    if cloud is not None:
        p["eo:cloud_cover"] = cloud
    if baseline is not None:
        p["s2:processing_baseline"] = baseline
    return it


def s1_copy(real: dict[str, Any], days: int, orbit_state: str | None = None, relative_orbit: int | None = None,
            minutes: int = 0) -> dict[str, Any]:
    it = copy.deepcopy(real)
    p = it["properties"]
    shift = timedelta(days=days, minutes=minutes)
    for k in ("datetime", "start_datetime", "end_datetime"):
        p[k] = _fmt(datetime.fromisoformat(p[k].replace("Z", "+00:00").replace(" ", "T")) + shift)
    start = datetime.fromisoformat(p["start_datetime"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(p["end_datetime"].replace("Z", "+00:00"))
    orbit = p["sat:absolute_orbit"] + round(days * 175 / 12)
    p["sat:absolute_orbit"] = orbit
    if orbit_state:
        p["sat:orbit_state"] = orbit_state
    if relative_orbit:
        p["sat:relative_orbit"] = relative_orbit
    p["description"] = f"test copy of {real['id']} moved by {days} days"
    it["id"] = f"S1A_IW_GRDH_1SDV_{start:%Y%m%dT%H%M%S}_{end:%Y%m%dT%H%M%S}_{orbit:06d}_{0x073394 + days:06X}"
    return it


@pytest.fixture(scope="module")
def items(real_fixtures: Path) -> dict[str, list[dict[str, Any]]]:
    real = _load(real_fixtures, S2_REAL)
    s2 = [
        s2_copy(real, -21),  # 2020-01-29: pre-event, older than the last two
        s2_copy(real, -16),  # 2020-02-03: pre-event
        s2_copy(real, -11),  # 2020-02-08: pre-event, processing baseline 02.14 ...
        s2_copy(real, -11, seq=1, baseline="05.00"),  # ... and its reprocessing (newer): this one wins
        s2_copy(real, -5, cloud=85.0),  # 2020-02-14: first post-event, too cloudy to be usable
        real,  # 2020-02-19, 4.05 % cloud: first usable post-event
        s2_copy(real, 5),  # 2020-02-24: later post-event (only with --all)
        s2_copy(real, 10, cloud=90.0),  # 2020-02-29: cloudy, later (only with --all; a cloud filter drops it)
        _load(real_fixtures, S2_13TDE),  # Colorado, intersects none of the events
    ]
    across = s2_copy(real, -5)
    across["id"] = "S2A_60WXT_20200214_0_L2A"
    across["properties"].update({"mgrs:utm_zone": 60, "mgrs:latitude_band": "W", "mgrs:grid_square": "XT",
                                 "description": "test copy of S2A_29RKH_20200219_0_L2A, footprint across the antimeridian"})
    across["geometry"] = {"type": "MultiPolygon", "coordinates": [
        [[[178.5, 65.5], [180.0, 65.5], [180.0, 66.5], [178.5, 66.5], [178.5, 65.5]]],
        [[[-180.0, 65.5], [-179.5, 65.5], [-179.5, 66.5], [-180.0, 66.5], [-180.0, 65.5]]]]}
    across["bbox"] = [178.5, 65.5, -179.5, 66.5]
    s2.append(across)
    s1r = _load(real_fixtures, S1_REAL)
    # as planetary_computer.sign() returns it: a SAS token that must never reach a plan
    s1r["assets"]["vv"]["href"] += "?st=2025-03-12T00%3A00Z&se=2025-03-13T00%3A00Z&sp=rl&sv=2024-05-04&sr=c&sig=SECRETSIG%3D"
    s1 = [s1_copy(s1r, -36), s1_copy(s1r, -24), s1_copy(s1r, -12), s1r, s1_copy(s1r, 12),
          s1_copy(s1r, -2, "ascending", 22, minutes=12 * 60 + 8)]  # another stack, 2025-03-10T17:30
    return {"sentinel-2-l2a": s2, "sentinel-1-grd": s1}


@pytest.fixture(scope="module")
def events_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("events")
    write_event(d, KH, geometry=box(-11.4, 24.8), site=[-11.4, 24.8], countries=["ESH"],
                datetime="2020-02-12T00:00:00Z", datetime_precision="day")
    write_event(d, AM, geometry=box(179.75, 66.0), site=[179.75, 66.0], countries=["RUS"],
                datetime="2020-02-12T00:00:00Z", datetime_precision="day")
    write_event(d, TN, geometry=box(9.6, 33.6), site=[9.6, 33.6], countries=["TUN"], phenomenon="flood",
                hazard_codes=["FL"], datetime="2025-03-05T00:00:00Z", datetime_precision="day")
    return d


@pytest.fixture(scope="module")
def geoparquet_api(items: dict[str, list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with stac_api(items, tmp_path_factory.mktemp("api")) as url:
        yield url


def empty_member_item(real_fixtures: Path) -> dict[str, Any]:
    """The real Planetary Computer 06VVN item with its footprint as a MultiPolygon with empty members."""
    it = _load(real_fixtures, S2_PC)
    it["geometry"] = {"type": "MultiPolygon", "coordinates": [[], it["geometry"]["coordinates"], [[]]]}
    return it


@pytest.fixture(scope="module")
def pgstac_url(items: dict[str, list[dict[str, Any]]], real_fixtures: Path,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One stac-fastapi-pgstac for the module, over the same items (pypgstac load), plus the MultiPolygon
    with empty members: pypgstac refuses it ("Mixed dimensionality"), pgstac's own create_item stores it."""
    from pgstac_server import PgstacUnavailable

    created = [dict(empty_member_item(real_fixtures), collection="sentinel-2-l2a")]
    try:
        server = any_stac_api("pgstac", items, tmp_path_factory.mktemp("pgstac"), created=created)
        url = server.__enter__()
    except PgstacUnavailable as exc:
        unavailable(str(exc))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(scope="module", params=SERVERS)
def api(request: pytest.FixtureRequest) -> str:
    """The discovery API: stac-fastapi-geoparquet, then stac-fastapi-pgstac (tests run once per server)."""
    return request.getfixturevalue("geoparquet_api" if request.param == "geoparquet" else "pgstac_url")


OPTS = DiscoverOptions(retries=3, backoff=0.05)


def _run(events_dir: Path, url: str, out: Path, **kw: Any) -> Any:
    events = load_inventory(events_dir)
    opts = kw.pop("options", OPTS)
    return discover_events(events, resolve([url], page_size=kw.pop("page_size", 2), rate_limit=50), out, opts, **kw)


def _roles(plan: dict[str, Any], modality: str) -> dict[str, list[str]]:
    return {a["item_id"]: a["roles"] for a in plan["acquisitions"] if a["modality"] == modality}


def test_plan_picks_the_expected_items_per_role(api: str, events_dir: Path, tmp_path: Path) -> None:
    report = _run(events_dir, api, tmp_path)
    assert report.ok, report.failures
    plan = json.loads((tmp_path / f"{KH}.json").read_text())
    assert _roles(plan, "s2") == {
        "S2A_29RKH_20200203_0_L2A": ["pre-event"],
        "S2A_29RKH_20200208_1_L2A": ["pre-event"],  # the reprocessing, not S2A_29RKH_20200208_0_L2A
        "S2A_29RKH_20200214_0_L2A": ["first-post-event"],
        "S2A_29RKH_20200219_0_L2A": ["first-usable-post-event"],
    }
    first = next(a for a in plan["acquisitions"] if a["item_id"] == "S2A_29RKH_20200214_0_L2A")
    assert first["stack"] == "MGRS-29RKH"
    assert first["aoi_coverage"] == 1.0
    assert first["cloud"] == {"percent": 85.0, "method": "eo:cloud_cover"}
    assert first["days_from_event"] == 2.482  # 2020-02-14T11:34:25.405Z - 2020-02-12T00:00Z
    assert first["datetime"] == "2020-02-14T11:34:25.405Z"
    assert first["provider"] == api and first["collection"] == "sentinel-2-l2a"
    assert first["source_ids"]["s2:product_uri"] == "S2A_MSIL2A_20200219T112111_N0214_R037_T29RKH_20200219T123947.SAFE"
    assert first["assets"]["red"].endswith("/S2A_29RKH_20200219_0_L2A/B04.tif")
    assert "red-jp2" not in first["assets"] and "thumbnail" not in first["assets"]
    assert first["self_href"].startswith(api) and first["self_href"].endswith("/items/S2A_29RKH_20200214_0_L2A")
    # paging to the end: the 6 items of tile 29RKH up to the cut-off (event + 10 days) in 3 pages of 2,
    # then the clear ones after it (test_cloud_filter_sent_to_the_server_selects_the_same)
    q, clear = [q for q in plan["queries"] if q["modality"] == "s2"]
    assert (q["pages"], q["returned"], q["method"], q["url"]) == (3, 6, "POST", api + "/search")
    assert q["body"]["datetime"] == "2019-12-14T00:00:00Z/2020-02-22T00:00:00Z"
    assert q["body"]["intersects"] == box(-11.4, 24.8)
    assert (clear["pages"], clear["returned"], clear["body"]["datetime"]) == (1, 1, "2020-02-22T00:00:00Z/2020-05-12T00:00:00Z")
    assert _roles(plan, "s1") == {}
    # Sentinel-1: one selection per stack (relative orbit + direction + mode + polarisations)
    s1 = json.loads((tmp_path / f"{TN}.json").read_text())
    assert _roles(s1, "s1") == {
        "S1A_IW_GRDH_1SDV_20250216T052236_20250216T052301_057917_07337C": ["pre-event"],
        "S1A_IW_GRDH_1SDV_20250228T052236_20250228T052301_058092_073388": ["pre-event"],
        "S1A_IW_GRDH_1SDV_20250312T052236_20250312T052301_058267_073394": ["first-post-event", "first-usable-post-event"],
        "S1A_IW_GRDH_1SDV_20250310T173036_20250310T173101_058238_073392": ["first-post-event", "first-usable-post-event"],
    }
    stacks = {a["item_id"][17:25]: a["stack"] for a in s1["acquisitions"]}
    assert stacks == {"20250216": "descending-95-IW-VV+VH", "20250228": "descending-95-IW-VV+VH",
                      "20250312": "descending-95-IW-VV+VH", "20250310": "ascending-22-IW-VV+VH"}
    assert "cloud" not in s1["acquisitions"][0]
    real_s1 = next(a for a in s1["acquisitions"] if a["item_id"].endswith("_073394"))
    assert real_s1["assets"]["vv"].endswith("/measurement/iw-vv.tiff")  # the signed href, token dropped
    assert "SECRETSIG" not in (tmp_path / f"{TN}.json").read_text() and "sig=" not in (tmp_path / f"{TN}.json").read_text()
    # antimeridian: the two halves of the split footprint cover the AOI whole
    am = json.loads((tmp_path / f"{AM}.json").read_text())
    assert [(a["item_id"], a["roles"], a["aoi_coverage"]) for a in am["acquisitions"]] == [
        ("S2A_60WXT_20200214_0_L2A", ["first-post-event", "first-usable-post-event"], 1.0)]


CLEAR_CQL2 = {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 20.0]}  # docs/acquisition.md, --max-cloud 20
CLEAR_QUERY = {"eo:cloud_cover": {"lte": 20.0}}


def _s2_queries(plan: dict[str, Any]) -> list[tuple[str, Any, Any, int]]:
    return [(q["body"]["datetime"], q["body"].get("filter"), q["body"].get("query"), q["returned"])
            for q in plan["queries"] if q["modality"] == "s2"]


@pytest.mark.parametrize("cutoff_days", [10.0, 1.0])
def test_cloud_filter_sent_to_the_server_selects_the_same(api: str, events_dir: Path, tmp_path: Path,
                                                          cutoff_days: float) -> None:
    # both servers advertise CQL2 JSON filter: the filter goes to the server, the selection does not change
    plain = _run(events_dir, api, tmp_path / "plain", options=DiscoverOptions(retries=3, backoff=0.05, server_filter=False))
    opts = DiscoverOptions(retries=3, backoff=0.05, filter_cutoff_days=cutoff_days)
    filtered = _run(events_dir, api, tmp_path / "filtered", options=opts)
    assert plain.ok and filtered.ok, (plain.failures, filtered.failures)
    for ev in (KH, AM, TN):
        a, b = (json.loads((tmp_path / d / f"{ev}.json").read_text()) for d in ("plain", "filtered"))
        assert b["acquisitions"] == a["acquisitions"], ev
    kh_plain = json.loads((tmp_path / "plain" / f"{KH}.json").read_text())
    kh = json.loads((tmp_path / "filtered" / f"{KH}.json").read_text())
    window = "2019-12-14T00:00:00Z/2020-05-12T00:00:00Z"
    assert _s2_queries(kh_plain) == [(window, None, None, 8)]  # the 8 images of tile 29RKH
    if cutoff_days == 10.0:
        # to the cut-off (22 February) unfiltered: 29 Jan, 3 Feb, 8 Feb twice, 14 Feb (85 %), 19 Feb (4 %);
        # after it the clear 24 February only: the cloudy 29 February copy stays on the server. The first
        # usable image (19 February) is before the cut-off, so nothing more is asked.
        assert _s2_queries(kh) == [("2019-12-14T00:00:00Z/2020-02-22T00:00:00Z", None, None, 6),
                                   ("2020-02-22T00:00:00Z/2020-05-12T00:00:00Z", CLEAR_CQL2, None, 1)]
        assert kh["queries"][1]["body"]["filter-lang"] == "cql2-json"
    else:
        # cut-off 13 February: the cloudy first post-event image (14 February) is filtered out, so a third,
        # unfiltered search from the cut-off to the first usable image (19 February 11:34:25.405) brings it back
        assert _s2_queries(kh) == [("2019-12-14T00:00:00Z/2020-02-13T00:00:00Z", None, None, 4),
                                   ("2020-02-13T00:00:00Z/2020-05-12T00:00:00Z", CLEAR_CQL2, None, 2),
                                   ("2020-02-13T00:00:00Z/2020-02-19T11:34:26Z", None, None, 2)]
    tn = json.loads((tmp_path / "filtered" / f"{TN}.json").read_text())
    assert [q["body"].get("filter") for q in tn["queries"] if q["modality"] == "s1"] == [None]  # S1: no cloud


def test_no_filter_when_the_window_ends_before_the_cut_off(geoparquet_api: str, events_dir: Path, tmp_path: Path) -> None:
    opts = DiscoverOptions(retries=3, backoff=0.05, modalities=("s2",), days_after=5)  # cut-off: 10 days
    assert _run(events_dir, geoparquet_api, tmp_path, options=opts).ok
    plan = json.loads((tmp_path / f"{KH}.json").read_text())
    # 29 Jan .. 14 Feb: 5 images (8 Feb twice) in the window 14 Dec 2019 .. 17 Feb 2020, one search
    assert _s2_queries(plan) == [("2019-12-14T00:00:00Z/2020-02-17T00:00:00Z", None, None, 5)]


@pytest.mark.parametrize(("hide", "kind"), [(("filter", "cql2"), "query"), (("filter", "cql2", "query"), None)])
def test_without_cql2_the_query_extension_or_the_client_filters(pgstac_url: str, events_dir: Path, tmp_path: Path,
                                                                hide: tuple[str, ...], kind: str | None) -> None:
    # pgstac behind a proxy that hides its filter (and query) conformance classes
    proxy = FlakyProxy(pgstac_url, hide=hide)
    events = [e for e in load_inventory(events_dir) if e.id == KH]
    opts = DiscoverOptions(retries=3, backoff=0.05, modalities=("s2",))
    try:
        report = discover_events(events, resolve([proxy.url], page_size=2, rate_limit=50), tmp_path, opts)
    finally:
        proxy.shutdown()
    assert report.ok, report.failures
    plan = json.loads((tmp_path / f"{KH}.json").read_text())
    assert sorted(_roles(plan, "s2")) == ["S2A_29RKH_20200203_0_L2A", "S2A_29RKH_20200208_1_L2A",
                                          "S2A_29RKH_20200214_0_L2A", "S2A_29RKH_20200219_0_L2A"]
    assert all("filter" not in b for b in proxy.bodies)
    if kind == "query":  # no OR in `query`: before the cut-off unfiltered, after it the clear images only
        assert _s2_queries(plan) == [("2019-12-14T00:00:00Z/2020-02-22T00:00:00Z", None, None, 6),
                                     ("2020-02-22T00:00:00Z/2020-05-12T00:00:00Z", None, CLEAR_QUERY, 1)]
        assert CLEAR_QUERY in [b.get("query") for b in proxy.bodies]
    else:
        assert _s2_queries(plan) == [("2019-12-14T00:00:00Z/2020-05-12T00:00:00Z", None, None, 8)]
        assert all("query" not in b for b in proxy.bodies)


def test_all_adds_every_acquisition_of_the_window(geoparquet_api: str, events_dir: Path, tmp_path: Path) -> None:
    opts = DiscoverOptions(retries=3, backoff=0.05, modalities=("s2",), selection=Selection(all=True))
    assert _run(events_dir, geoparquet_api, tmp_path, options=opts).ok
    plan = json.loads((tmp_path / f"{KH}.json").read_text())
    roles = _roles(plan, "s2")
    assert roles["S2A_29RKH_20200129_0_L2A"] == ["pre-event"]
    assert roles["S2A_29RKH_20200224_0_L2A"] == ["post-event"]
    assert roles["S2A_29RKH_20200214_0_L2A"] == ["first-post-event", "post-event"]
    assert "S2A_29RKH_20200208_0_L2A" not in roles  # a reprocessed duplicate never comes back


def test_a_lasting_event_gets_its_first_co_event_image(items: dict[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    write_event(tmp_path, "lasting-test", geometry=box(-11.4, 24.8), site=[-11.4, 24.8], countries=["ESH"],
                datetime=None, start_datetime="2020-02-01T00:00:00Z", end_datetime="2020-02-10T00:00:00Z",
                datetime_precision="day")
    (ev,) = load_inventory(tmp_path)
    kh = [it for it in items["sentinel-2-l2a"] if it["id"].startswith("S2A_29RKH_")]  # what a search returns
    recs = select(ev, "s2", "test", "sentinel-2-l2a", kh, Selection())
    assert [(r["item_id"], r["roles"], r["days_from_event"]) for r in recs] == [
        ("S2A_29RKH_20200129_0_L2A", ["pre-event"], -2.518),  # from the start: 2020-01-29T11:34:25.405Z
        ("S2A_29RKH_20200203_0_L2A", ["co-event"], 2.482),
        ("S2A_29RKH_20200214_0_L2A", ["first-post-event"], 4.482),  # from the end: 2020-02-10
        ("S2A_29RKH_20200219_0_L2A", ["first-usable-post-event"], 9.482),
    ]


def test_rerun_is_byte_identical_and_leaves_the_file_alone(geoparquet_api: str, events_dir: Path, tmp_path: Path) -> None:
    t1 = datetime(2026, 1, 1, tzinfo=UTC)
    _run(events_dir, geoparquet_api, tmp_path, now=lambda: t1)
    path = tmp_path / f"{KH}.json"
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    assert json.loads(before)["queries"][0]["searched_at"] == "2026-01-01T00:00:00Z"
    time.sleep(0.01)
    report = _run(events_dir, geoparquet_api, tmp_path, now=lambda: t1 + timedelta(days=3))
    assert {e.event_id: e.status for e in report.events} == {AM: "unchanged", KH: "unchanged", TN: "unchanged"}
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime


def test_update_adds_only_what_is_new(items: dict[str, list[dict[str, Any]]], geoparquet_api: str, events_dir: Path,
                                      tmp_path: Path) -> None:
    cut = "2020-02-15"  # the API as it was on 15 February 2020: nothing usable after the event yet
    early = {k: [it for it in v if it["properties"]["datetime"] < cut or k != "sentinel-2-l2a"] for k, v in items.items()}
    opts = DiscoverOptions(retries=3, backoff=0.05, modalities=("s2",))
    with stac_api(early, tmp_path / "early-api") as early_url:
        assert _run(events_dir, early_url, tmp_path / "plans", options=opts).ok
    path = tmp_path / "plans" / f"{KH}.json"
    old = json.loads(path.read_text())
    assert sorted(_roles(old, "s2")) == ["S2A_29RKH_20200203_0_L2A", "S2A_29RKH_20200208_1_L2A", "S2A_29RKH_20200214_0_L2A"]
    opts = DiscoverOptions(retries=3, backoff=0.05, modalities=("s2",), update=True)
    report = _run(events_dir, geoparquet_api, tmp_path / "plans", options=opts)
    assert {e.event_id: e.status for e in report.events}[KH] == "updated"
    new = json.loads(path.read_text())
    added = [a for a in new["acquisitions"] if a not in old["acquisitions"]]
    assert [(a["item_id"], a["roles"]) for a in added] == [("S2A_29RKH_20200219_0_L2A", ["first-usable-post-event"])]
    assert all(a in new["acquisitions"] for a in old["acquisitions"])


# ----------------------------------------------------------------------------- a misbehaving network
class FlakyProxy(http.server.ThreadingHTTPServer):
    """A reverse proxy on 127.0.0.1: the 1st search answered 429 (Retry-After: 1), the 2nd cut without
    an answer, then forwarded; with `fail_after`, every search after that many answers 503. With `hide`,
    it answers every search and removes the conformance classes containing one of those words (an API
    without filter or query), rewriting the upstream's own URL to its own in the answers."""

    def __init__(self, upstream: str, fail_after: int | None = None, hide: tuple[str, ...] = ()) -> None:
        self.upstream = upstream.split("//", 1)[1]
        self.fail_after = fail_after
        self.hide = hide
        self.bodies: list[dict[str, Any]] = []
        self.searches = 0
        self.log: list[str] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FlakyProxy

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        srv = self.server
        with srv.lock:
            n = srv.searches = srv.searches + (1 if self.path.startswith("/search") else 0)
            if self.path.startswith("/search") and body:
                srv.bodies.append(json.loads(body))
        if self.path.startswith("/search") and not srv.hide:
            if srv.fail_after is None and n == 1:
                srv.log.append("429")
                self.send_response(429)
                self.send_header("Retry-After", "1")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if srv.fail_after is None and n == 2:
                srv.log.append("drop")
                self.close_connection = True
                self.connection.close()
                return
            if srv.fail_after is not None and n > srv.fail_after:
                srv.log.append("503")
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        srv.log.append("ok")
        conn = http.client.HTTPConnection(srv.upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "accept-encoding")}
        conn.request(self.command, self.path, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if srv.hide:
            data = data.replace(f"//{srv.upstream}".encode(), f"//127.0.0.1:{srv.server_address[1]}".encode())
            doc = json.loads(data)
            if isinstance(doc, dict) and "conformsTo" in doc:
                doc["conformsTo"] = [c for c in doc["conformsTo"] if not any(w in c for w in srv.hide)]
                data = json.dumps(doc).encode()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_POST = _handle


def test_429_with_retry_after_and_a_dropped_connection_are_retried(api: str, events_dir: Path, tmp_path: Path,
                                                                   request: pytest.FixtureRequest) -> None:
    proxy = FlakyProxy(api)
    try:
        t0 = time.monotonic()
        opts = DiscoverOptions(retries=3, backoff=0.05, modalities=("s2",))
        events = [e for e in load_inventory(events_dir) if e.id == KH]
        report = discover_events(events, resolve([proxy.url], page_size=2, rate_limit=50), tmp_path / "via-proxy", opts)
        elapsed = time.monotonic() - t0
    finally:
        proxy.shutdown()
    assert report.ok, report.failures
    assert proxy.log.count("429") == 1 and proxy.log.count("drop") == 1
    assert elapsed >= 1.0  # Retry-After: 1 was waited for
    # the searches to the cut-off (6 items: 3 pages of 2) and after it (1 page) reached the proxy, plus the
    # two retried attempts; the client also read the landing page twice (pystac-client's Client.open does).
    # stac-fastapi-geoparquet gives a full last page a `next` link (one more, empty, page); pgstac does not.
    calls = 3 + 1 + (1 if request.node.callspec.params["api"] == "geoparquet" else 0)
    assert proxy.searches == calls + 2
    assert report.requests[proxy.url] == calls + 2
    plan = json.loads((tmp_path / "via-proxy" / f"{KH}.json").read_text())
    assert sorted(_roles(plan, "s2")) == ["S2A_29RKH_20200203_0_L2A", "S2A_29RKH_20200208_1_L2A",
                                          "S2A_29RKH_20200214_0_L2A", "S2A_29RKH_20200219_0_L2A"]


def test_provider_down_names_it_and_the_events_not_planned(geoparquet_api: str, events_dir: Path, tmp_path: Path) -> None:
    # the provider answers the first two events (sorted: chukotka's two searches, 1 page and an empty one;
    # sahara's 3 pages + the empty one geoparquet adds + 1 after the cut-off), then goes down
    proxy = FlakyProxy(geoparquet_api, fail_after=7)
    out = tmp_path / "plans"
    try:
        result = CliRunner().invoke(
            __import__("stac_mmtp.commands.main", fromlist=["main"]).main,
            ["discover", "--events", str(events_dir), "--provider", proxy.url, "--out", str(out), "--modality", "s2",
             "--page-size", "2", "--retries", "1", "--rate-limit", "50"],
        )
    finally:
        proxy.shutdown()
    assert result.exit_code == 1, result.output
    assert sorted(p.name for p in out.iterdir()) == [f"{AM}.json", f"{KH}.json"]
    err = result.stderr if hasattr(result, "stderr") else result.output
    assert f"{TN}: s2 not planned: provider {proxy.url}" in " ".join(err.split())
    assert "503" in err


def test_rate_limit_spaces_the_requests(geoparquet_api: str) -> None:
    from stac_mmtp.discover.search import LimitedIO

    io = LimitedIO(rate_limit=5.0, timeout=10, retries=0, backoff=0)
    t0 = time.monotonic()
    for _ in range(6):
        json.loads(io.request(geoparquet_api + "/"))
    assert io.requests == 6
    assert time.monotonic() - t0 >= 1.0  # 6 requests at 5 per second: 5 intervals of 0.2 s


# ----------------------------------------------------------------------------- footprints as APIs serve them
def test_multipolygon_with_an_empty_member_does_not_crash(real_fixtures: Path) -> None:
    # rustac (the geoparquet API's store) refuses such a geometry, so it is fed to the selection directly
    it = _load(real_fixtures, S2_PC)
    poly = it["geometry"]["coordinates"]
    it["geometry"] = {"type": "MultiPolygon", "coordinates": [[], poly, [[]]]}
    (ev,) = [e for e in _events_at(-147.8, 60.8, "2019-06-20T00:00:00Z")]
    recs = select(ev, "s2", "planetary-computer", "sentinel-2-l2a", [it], Selection())
    assert [(r["item_id"], r["stack"], r["roles"], r["aoi_coverage"]) for r in recs] == [
        ("S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531", "MGRS-06VVN",
         ["first-post-event", "first-usable-post-event"], 1.0)]
    assert aoi_coverage({"type": "MultiPolygon", "coordinates": [[]]}, ev.geometry) == 0.0


def test_multipolygon_with_an_empty_member_served_by_pgstac(pgstac_url: str, tmp_path: Path) -> None:
    # the same footprint through a real API end to end: pgstac stores it and serves the empty members back
    served = json.loads(urllib.request.urlopen(
        f"{pgstac_url}/collections/sentinel-2-l2a/items/S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531").read())
    assert [len(p) for p in served["geometry"]["coordinates"]] == [0, 1, 0]
    events = _events_at(-147.8, 60.8, "2019-06-20T00:00:00Z")
    opts = DiscoverOptions(retries=3, backoff=0.05, modalities=("s2",))
    report = discover_events(events, resolve([pgstac_url], page_size=2, rate_limit=50), tmp_path, opts)
    assert report.ok, report.failures
    plan = json.loads((tmp_path / "alaska-test.json").read_text())
    assert [(a["item_id"], a["stack"], a["roles"], a["aoi_coverage"]) for a in plan["acquisitions"]] == [
        ("S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531", "MGRS-06VVN",
         ["first-post-event", "first-usable-post-event"], 1.0)]


def test_coverage_of_an_aoi_across_the_antimeridian() -> None:
    aoi = {"type": "MultiPolygon", "coordinates": [
        [[[179.8, 0.0], [180.0, 0.0], [180.0, 0.2], [179.8, 0.2], [179.8, 0.0]]],
        [[[-180.0, 0.0], [-179.8, 0.0], [-179.8, 0.2], [-180.0, 0.2], [-180.0, 0.0]]]]}
    # a footprint covering 179.9 E .. 179.7 W: 0.3 of the AOI's 0.4 degrees of longitude
    ring = [[179.9, -1.0], [-179.7, -1.0], [-179.7, 1.0], [179.9, 1.0], [179.9, -1.0]]  # one ring, jumping the line
    assert aoi_coverage({"type": "Polygon", "coordinates": [ring]}, aoi) == pytest.approx(0.75, abs=1e-3)


def _events_at(lon: float, lat: float, when: str) -> list[Any]:
    import tempfile

    d = Path(tempfile.mkdtemp())
    write_event(d, "alaska-test", geometry=box(lon, lat), site=[lon, lat], countries=["USA"], datetime=when,
                datetime_precision="day")
    return load_inventory(d)


def test_named_providers_and_bad_specs() -> None:
    from stac_mmtp.discover.providers import parse_collections
    from stac_mmtp.errors import InputError

    es, pc = resolve(["earth-search", "planetary-computer"])
    assert es.url == "https://earth-search.aws.element84.com/v1" and es.collections == {"s2": "sentinel-2-l2a", "s1": "sentinel-1-grd"}
    assert pc.url == "https://planetarycomputer.microsoft.com/api/stac/v1"
    assert resolve(["http://127.0.0.1:9/"], parse_collections(["s2=sentinel-2-c1-l2a"]))[0].collections["s2"] == "sentinel-2-c1-l2a"
    with pytest.raises(InputError, match="--provider 'nope'"):
        resolve(["nope"])
    with pytest.raises(InputError, match="MODALITY=ID"):
        parse_collections(["s3=x"])
    from stac_mmtp.commands.main import main

    r = CliRunner().invoke(main, ["discover", "--provider", "nope"])
    assert r.exit_code == 2 and "--provider 'nope'" in r.output


def test_discover_json_is_one_document_with_the_plans(geoparquet_api: str, events_dir: Path, tmp_path: Path) -> None:
    from stac_mmtp.commands.main import main

    out = tmp_path / "plans"
    r = CliRunner().invoke(main, ["discover", "--events", str(events_dir), "--provider", geoparquet_api, "--out", str(out),
                                  "--modality", "s2", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)  # stdout holds that document and nothing else
    assert set(doc) == {"out", "events", "requests"} and doc["out"] == str(out)
    assert sorted(e["event"] for e in doc["events"]) == sorted([AM, KH, TN])
    kh = next(e for e in doc["events"] if e["event"] == KH)
    # the 4 S2 acquisitions test_plan_picks_the_expected_items_per_role expects for this event
    assert kh["selected"] == {"s2": 4} and kh["missing"] == []
    assert {e["plan"] for e in doc["events"]} == {"written"}  # a fresh directory: every plan new
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{e['event']}.json" for e in doc["events"])
