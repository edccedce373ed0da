"""The release in its users' tools: stac-geoparquet export, search with no server, a STAC API
(`stac-mmtp serve`) queried with pystac-client, and pystac-client browsing the static catalog."""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import published_to_s3

from stac_mmtp.build import build
from stac_mmtp.dataset.inventory import load_inventory
from stac_mmtp.sources.sentinel2.samples import write_product
from stac_mmtp.stac.geoparquet import collection_parquets, search

REPO = Path(__file__).resolve().parents[1]
GJ = "gjerdrum-landslide-2020"
VE = "veneto-flash-flood-2018"
GJ_POST = f"{GJ}_S2B_MSIL2A_20210102T104441_N0510_R008_T32VPM_20210102T120141"
GJ_PRE = f"{GJ}_S2A_MSIL2A_20201225T104441_N0510_R008_T32VPM_20201225T120141"
VE_POST_PREFIX = f"{VE}_S2B_MSIL2A_20181105T104441"
GJ_BBOX = [10.9, 59.9, 11.2, 60.2]


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("release")
    events = root / "events"
    events.mkdir()
    for eid in (GJ, VE):  # the real inventory entries (our own files)
        shutil.copy(REPO / "catalog" / "events" / f"{eid}.geojson", events)
    evs = {e.id: e for e in load_inventory(events)}
    products = root / "products"
    write_product(products, evs[GJ], datetime(2020, 12, 25, 10, 44, 41, tzinfo=UTC), "L2A", "S2A")
    write_product(products, evs[GJ], datetime(2021, 1, 2, 10, 44, 41, tzinfo=UTC), "L2A", "S2B", scar=True)
    write_product(products, evs[VE], datetime(2018, 11, 5, 10, 44, 41, tzinfo=UTC), "L2A", "S2B")
    out = root / "catalog"
    report = build(events, [products], out)
    assert report.ok, report.failures
    return out



class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str) -> None:
    import urllib.request

    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@pytest.fixture(scope="module")
def static_url(release: Path) -> Iterator[str]:
    """The built tree over plain HTTP on 127.0.0.1, as a static release is read."""
    handler = functools.partial(_QuietHandler, directory=str(release))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/catalog.json"
    yield url
    httpd.shutdown()


@pytest.fixture(scope="module")
def s3_url(release: Path) -> Iterator[str]:
    """The release published with `stac-mmtp publish` to moto's S3 server (public read, CORS)."""
    with published_to_s3(release, cors=True) as url:
        yield url


@pytest.fixture(scope="module")
def api_url(s3_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`stac-mmtp serve` on the release published to S3, in a thread."""
    import uvicorn

    from stac_mmtp.access.serve import create_app

    app = create_app(s3_url, tmp_path_factory.mktemp("serve"))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    _wait(url + "/")
    yield url
    server.should_exit = True
    thread.join(10)


def test_each_collection_has_a_geoparquet_asset(release: Path) -> None:
    hrefs = collection_parquets(str(release))
    assert sorted(hrefs) == ["events", "sentinel-2"]
    import pyarrow.parquet as pq

    table = pq.read_table(hrefs["sentinel-2"])
    columns = set(table.column_names)
    assert {"id", "datetime", "geometry", "mmtp:event_id", "mmtp:phenomenon", "mmtp:temporal_role",
            "mmtp:days_from_event", "proj:code"} <= columns
    assert table.num_rows == 3


def test_search_without_server(release: Path) -> None:
    found = search(str(release), bbox=GJ_BBOX, datetime="2020-12-30T00:00:00Z/2021-03-31T00:00:00Z",
                   filter="\"mmtp:phenomenon\" = 'landslide'")
    assert [(it["collection"], it["id"]) for it in found] == [("events", GJ), ("sentinel-2", GJ_POST)]
    red = found[1]["assets"]["red"]["href"]
    assert red.startswith("file://") and Path(red[7:]).is_file()
    floods = search(str(release), filter={"op": "=", "args": [{"property": "mmtp:phenomenon"}, "flash-flood"]},
                    collections=["sentinel-2"])
    assert [it["id"][: len(VE_POST_PREFIX)] for it in floods] == [VE_POST_PREFIX]


def test_items_without_assets_in_a_parquet_with_assets(tmp_path: Path) -> None:
    """Event items with acquisitions carry thumbnails, the others no asset at all: in the collection's
    parquet their `assets` column is null, which the search answers as an empty mapping."""
    from stac_mmtp.stac.geoparquet import absolutize, duckdb_client, export_items

    def item(eid: str, assets: dict) -> dict:
        return {"type": "Feature", "stac_version": "1.1.0", "id": eid, "collection": "events",
                "geometry": {"type": "Point", "coordinates": [11.04, 60.07]}, "bbox": [11.04, 60.07, 11.04, 60.07],
                "properties": {"datetime": "2020-12-30T02:57:00Z"}, "links": [], "assets": assets}

    thumb = {"thumbnail": {"href": "./thumb.png", "type": "image/png", "roles": ["thumbnail"]}}
    path = export_items([item("with", thumb), item("without", {})], tmp_path)
    found = {it["id"]: absolutize(it, str(path)) for it in duckdb_client().search(str(path))}
    assert found["without"]["assets"] == {}
    assert found["with"]["assets"]["thumbnail"]["href"] == (tmp_path / "with" / "thumb.png").as_uri()


@pytest.mark.parametrize("where", ["static", "s3"])
def test_pystac_client_browses_published_release(where: str, request: pytest.FixtureRequest) -> None:
    from pystac_client import Client

    client = Client.open(request.getfixturevalue(f"{where}_url"))
    colls = {c.id: c for c in client.get_collections()}
    assert sorted(colls) == ["events", "sentinel-2"]
    s2 = sorted(it.id for it in colls["sentinel-2"].get_items())
    assert s2 == sorted([GJ_PRE, GJ_POST, s2[-1]]) and s2[-1].startswith(VE_POST_PREFIX)
    events = {it.id: it for it in colls["events"].get_items()}
    assert set(events) == {GJ, VE}
    assert events[GJ].datetime == datetime(2020, 12, 30, 2, 57, tzinfo=UTC)  # first failure, 03:56:45 local


def test_pystac_client_searches_the_api(api_url: str, s3_url: str) -> None:
    from pystac_client import Client

    api = Client.open(api_url)
    assert api.title == Client.open(s3_url).title
    found = api.search(bbox=GJ_BBOX, datetime="2020-12-01/2021-03-31", collections=["sentinel-2"],
                       filter={"op": "=", "args": [{"property": "mmtp:temporal_role"}, "first-post-event"]},
                       ).item_collection()
    assert [it.id for it in found] == [GJ_POST]
    item = found[0]
    assert item.properties["mmtp:event_id"] == GJ and item.properties["proj:code"] == "EPSG:32632"
    # hrefs resolve against the published release, not the build machine
    assert item.assets["red"].href == s3_url.rsplit("/", 1)[0] + f"/sentinel-2/{GJ_POST}/red.tif"
    pre = api.search(collections=["sentinel-2"], filter={"op": "=", "args": [{"property": "mmtp:temporal_role"},
                                                                            "pre-event"]}).item_collection()
    assert [it.id for it in pre] == [GJ_PRE]
    by_id = api.search(ids=[GJ], collections=["events"]).item_collection()
    assert [it.id for it in by_id] == [GJ]
