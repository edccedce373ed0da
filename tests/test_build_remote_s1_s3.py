"""`build --acquisitions`: Sentinel-1 GRD from Earth Search v1 (`s3://sentinel-s1-l1c`, requester pays).

Real servers, real pixels, synthetic calibration: moto's S3 server on 127.0.0.1 holds, in a bucket named
`sentinel-s1-l1c` at the real key layout, the REAL measurement TIFFs of rio-tiler-pds
(S1A_..._FD5B, 210 GCPs) and the calibration/noise XML that tests/test_build_remote_s1.py writes for
them (synthetic-marked, so the built item is marked synthetic, truthfully). In front of moto,
tests/requester_pays_proxy.py answers 403 AccessDenied, as AWS does, to any request without
`x-amz-request-payer: requester`: a build that succeeds proves that GDAL's /vsis3/ reads and the boto3 XML
fetches both sent it. The source item is the real Earth Search v1 GRD item's shape (asset keys, storage
fields) with the real product's metadata, served by a real STAC API to `discover`.

The built rasters are compared, pixel for pixel, with the Planetary-Computer-style build of the same
TIFFs over HTTP (test_build_remote_s1's `built`): the same chain on the same COG pixels.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from helpers import box, write_event
from range_server import RangeServer
from requester_pays_proxy import RequesterPaysProxy
from stac_api import stac_api
from test_build_remote_s1 import (
    EV,
    LAT,
    LON,
    PRODUCT,
    PRODUCT_DIR,
    REAL_ID,
    _copy,
    built,  # noqa: F401 - the Planetary-Computer-style build of the same TIFFs, the reference
    calibration_xml,
    noise_xml,
    source_item,
)
from unavailable import unavailable

from stac_mmtp.build import build
from stac_mmtp.dataset.inventory import load_inventory
from stac_mmtp.discover import DiscoverOptions, discover_events
from stac_mmtp.discover.providers import resolve
from stac_mmtp.discover.selection import Selection
from stac_mmtp.sources import BuildOptions

ES_ITEM = "stac-api-items/earth-search-v1/sentinel-1-grd/S1A_IW_GRDH_1SSH_20250731T135608_20250731T135637_060328_077F7E.json"
BUCKET = "sentinel-s1-l1c"
ES_EV = "kerala-earth-search-s1-test-2018"
HTTP_ID = "S1A_IW_GRDH_1SDV_20180704T004041_20180704T004106_022637_0273F0"  # a pre-event copy read over HTTP
SECRET = "testing-secret-NEVER-LOGGED-7f3a"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing-key", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true"}
UNSET = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION",
         "AWS_DEFAULT_REGION", "AWS_REQUEST_PAYER", "STAC_MMTP_S1_READ")


def earth_search_item(real_fixtures: Path) -> dict[str, Any]:
    """The real Earth Search v1 item's shape (keys, storage:* fields) with the real FD5B product's metadata."""
    es = json.loads((real_fixtures / ES_ITEM).read_text())
    info = json.loads((real_fixtures / "rio-tiler-pds" / PRODUCT_DIR / "productInfo.json").read_text())
    item = copy.deepcopy(es)
    item["id"] = REAL_ID  # Earth Search's ids, like Planetary Computer's, drop the 4-character unique id
    item["geometry"] = {"type": "Polygon", "coordinates": info["footprint"]["coordinates"]}
    xs, ys = zip(*info["footprint"]["coordinates"][0], strict=True)
    item["bbox"] = [min(xs), min(ys), max(xs), max(ys)]
    p = item["properties"]
    for k in ("proj:epsg", "proj:bbox", "proj:shape", "proj:transform", "proj:centroid", "s1:shape", "s1:orbit_source",
              "s1:slice_number", "s1:total_slices", "s1:instrument_configuration_ID", "s1:product_timeliness",
              "s1:processing_datetime", "created", "updated"):
        p.pop(k, None)  # what productInfo.json does not say
    p.update({"datetime": "2018-07-16T00:40:54.500000Z", "start_datetime": "2018-07-16T00:40:42Z",
              "end_datetime": "2018-07-16T00:41:07Z", "sar:polarizations": ["VV", "VH"], "sat:absolute_orbit": 22812,
              "sat:relative_orbit": 165, "sat:orbit_state": "descending", "s1:datatake_id": str(info["missionDataTakeId"]),
              "s1:product_identifier": PRODUCT})
    assert p["storage:requester_pays"] is True and p["storage:region"] == "eu-central-1"  # the real item's
    base = f"s3://{BUCKET}/{PRODUCT_DIR.removeprefix(BUCKET + '/')}"
    a = es["assets"]
    item["assets"] = {
        "safe-manifest": {**a["safe-manifest"], "href": f"{base}/manifest.safe"},
        **{pol: {**a["hh"], "href": f"{base}/measurement/iw-{pol}.tiff", "title": f"{pol.upper()} Data"}
           for pol in ("vv", "vh")},
        **{f"schema-{kind}-{pol}": {**a[f"schema-{kind}-hh"], "href": f"{base}/annotation/calibration/{kind}-iw-{pol}.xml"}
           for kind in ("calibration", "noise") for pol in ("vv", "vh")},
    }
    return item


@pytest.fixture(scope="module")
def s3_build(real_fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    try:
        from moto.server import ThreadedMotoServer
    except ModuleNotFoundError as exc:
        unavailable(f"{exc.name} is not installed")
    import boto3

    tmp = tmp_path_factory.mktemp("remote-s1-s3")
    saved = dict(os.environ)
    for k in UNSET:
        os.environ.pop(k, None)
    os.environ.update(AWS_ENV)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    proxy = RequesterPaysProxy(moto_url, {BUCKET})
    xml_dir = tmp / "xml"
    xml_dir.mkdir()
    for pol in ("vv", "vh"):
        (xml_dir / f"calibration-iw-{pol}.xml").write_text(calibration_xml())
        (xml_dir / f"noise-iw-{pol}.xml").write_text(noise_xml())
    http_srv = RangeServer(real_fixtures / "rio-tiler-pds")
    xml_srv = RangeServer(xml_dir)
    try:
        # the test's own client goes to moto directly (uploads are not what is tested)
        client = boto3.session.Session().client("s3", endpoint_url=moto_url, region_name="eu-central-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        prefix = PRODUCT_DIR.removeprefix(BUCKET + "/")
        for pol in ("vv", "vh"):
            tiff = real_fixtures / "rio-tiler-pds" / PRODUCT_DIR / "measurement" / f"iw-{pol}.tiff"
            client.put_object(Bucket=BUCKET, Key=f"{prefix}/measurement/iw-{pol}.tiff", Body=tiff.read_bytes())
            for kind in ("calibration", "noise"):
                client.put_object(Bucket=BUCKET, Key=f"{prefix}/annotation/calibration/{kind}-iw-{pol}.xml",
                                  Body=(xml_dir / f"{kind}-iw-{pol}.xml").read_bytes())
        # the code under test goes through the requester-pays proxy, as GDAL and boto3 are told by the env
        os.environ.update({"AWS_S3_ENDPOINT": proxy.host, "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE"})
        es_item = earth_search_item(real_fixtures)
        http_item = _copy(source_item(real_fixtures, http_srv.url, xml_srv.url), HTTP_ID, 12)
        events = tmp / "events"
        write_event(events, ES_EV, geometry=box(LON, LAT, 0.02), site=[LON, LAT], countries=["IND"],
                    datetime="2018-07-10T00:00:00Z", datetime_precision="day")
        with stac_api({"sentinel-1-grd": [es_item, http_item]}, tmp / "api") as api:
            report = discover_events(load_inventory(events), resolve([api]), tmp / "plans",
                                     DiscoverOptions(modalities=("s1",), retries=2, backoff=0.05,
                                                     selection=Selection(pre_event=3)))
            assert report.ok, report.failures
            # worker processes, not this one: the servers run in this process (see test_build_remote_s1)
            result = build(events, [], tmp / "catalog", BuildOptions(jobs=2, buffer_m=500), acquisitions=tmp / "plans")
            seen = proxy.log.snapshot()
            for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                del os.environ[k]
            no_keys = build(events, [], tmp / "catalog-no-keys", BuildOptions(jobs=2, buffer_m=500),
                            acquisitions=tmp / "plans")
            os.environ.update(AWS_ENV)
        yield {"report": result, "no_keys": no_keys, "out": tmp / "catalog", "out_no_keys": tmp / "catalog-no-keys",
               "seen": seen, "proxy": proxy, "moto": moto_url, "plan": json.loads((tmp / "plans" / f"{ES_EV}.json").read_text())}
    finally:
        http_srv.stop()
        xml_srv.stop()
        proxy.stop()
        moto.stop()
        os.environ.clear()
        os.environ.update(saved)


def _item_dir(out: Path, ev: str, item_id: str = REAL_ID) -> Path:
    return out / "sentinel-1" / f"{ev}_{item_id}"


def test_plan_keeps_the_s3_hrefs_of_the_earth_search_item(s3_build: dict[str, Any]) -> None:
    recs = {a["item_id"]: a for a in s3_build["plan"]["acquisitions"]}
    assert recs[REAL_ID]["roles"] == ["first-post-event", "first-usable-post-event"]
    assert recs[HTTP_ID]["roles"] == ["pre-event"]
    assert recs[REAL_ID]["assets"]["vv"] == f"s3://{BUCKET}/GRD/2018/7/16/IW/DV/{PRODUCT}/measurement/iw-vv.tiff"


def test_both_entries_build_through_the_requester_pays_proxy(s3_build: dict[str, Any]) -> None:
    by_id = {r.item_id: r for r in s3_build["report"].results}
    for i in (REAL_ID, HTTP_ID):
        assert by_id[f"{ES_EV}_{i}"].ok, by_id[f"{ES_EV}_{i}"].message
    seen = [s for s in s3_build["seen"] if s.path.startswith(f"/{BUCKET}/")]
    tiff = [s for s in seen if "/measurement/" in s.path]
    xml = [s for s in seen if "/annotation/calibration/" in s.path]
    # every read of the bucket carried the header and was answered (none refused)
    assert seen and all(s.requester_pays and s.status in (200, 206) for s in seen), [(s.path, s.status) for s in seen]
    assert tiff and all("GDAL" in s.user_agent and s.status == 206 for s in tiff)  # GDAL's /vsis3/ range reads
    assert {s.path.rsplit("/", 1)[-1] for s in xml} == {"calibration-iw-vv.xml", "calibration-iw-vh.xml",
                                                        "noise-iw-vv.xml", "noise-iw-vh.xml"}
    assert all("Boto3" in s.user_agent or "botocore" in s.user_agent for s in xml)  # the XML: boto3


def test_the_proxy_refuses_a_read_without_the_requester_pays_header(s3_build: dict[str, Any]) -> None:
    """The control: the same object through the same proxy without the header is AccessDenied, as on AWS."""
    import boto3
    from botocore.exceptions import ClientError

    c = boto3.session.Session().client("s3", endpoint_url=f"http://{s3_build['proxy'].host}", region_name="eu-central-1")
    key = f"GRD/2018/7/16/IW/DV/{PRODUCT}/annotation/calibration/noise-iw-vv.xml"
    with pytest.raises(ClientError, match="AccessDenied"):
        c.get_object(Bucket=BUCKET, Key=key)
    assert c.get_object(Bucket=BUCKET, Key=key, RequestPayer="requester")["Body"].read().startswith(b"<?xml")


def test_pixels_equal_the_planetary_computer_style_build(s3_build: dict[str, Any], built: dict[str, Any]) -> None:  # noqa: F811
    es_dir = _item_dir(s3_build["out"], ES_EV)
    pc_dir = _item_dir(built["out"], EV)
    for pol in ("vv", "vh"):
        with rasterio.open(es_dir / f"{pol}.tif") as a, rasterio.open(pc_dir / f"{pol}.tif") as b:
            assert a.crs.to_epsg() == b.crs.to_epsg() == 32643
            assert a.transform == b.transform and a.shape == b.shape
            x, y = a.read(1), b.read(1)
        assert np.isfinite(x).mean() > 0.95
        assert np.array_equal(x, y, equal_nan=True), pol
        assert float(np.nanmedian(x)) == pytest.approx(float(np.nanmedian(y)))


def test_item_ids_provenance_and_synthetic_marking(s3_build: dict[str, Any], schema_store: Any) -> None:
    from stac_mmtp.release.validate import validate_tree

    item = json.loads((_item_dir(s3_build["out"], ES_EV) / f"{ES_EV}_{REAL_ID}.json").read_text())
    p = item["properties"]
    assert item["id"] == f"{ES_EV}_{REAL_ID}"
    assert p["s1:product_identifier"] == PRODUCT and p["proj:code"] == "EPSG:32643"
    assert p["sat:relative_orbit"] == 165 and p["sar:polarizations"] == ["VV", "VH"]
    assert p["processing:version"] == "002.91"  # the real COG's TIFFTAG_SOFTWARE, read through /vsis3/
    assert p["mmtp:synthetic"] is True  # the calibration XML is the test's
    assert sorted(item["assets"]) == ["overview", "thumbnail", "vh", "vv"]
    assert [str(x) for x in validate_tree(s3_build["out"], schema_store).problems] == []


def test_missing_credentials_fail_that_task_alone_with_one_clear_line(s3_build: dict[str, Any]) -> None:
    by_id = {r.item_id: r for r in s3_build["no_keys"].results}
    failed, other = by_id[f"{ES_EV}_{REAL_ID}"], by_id[f"{ES_EV}_{HTTP_ID}"]
    assert other.ok, other.message  # the HTTP entry of the same build went on
    assert not failed.ok
    msg = failed.message
    assert f"s3://{BUCKET}/GRD/2018/7/16/IW/DV/{PRODUCT}/measurement/iw-vv.tiff" in msg
    assert "AWS_ACCESS_KEY_ID" in msg and "AWS_SECRET_ACCESS_KEY" in msg and "AWS_PROFILE" in msg
    assert "\n" not in msg.strip()
    assert not _item_dir(s3_build["out_no_keys"], ES_EV).exists()


def test_the_secret_key_is_never_written(s3_build: dict[str, Any]) -> None:
    for report in (s3_build["report"], s3_build["no_keys"]):
        assert all(SECRET not in (r.message or "") for r in report.results)
    for out in (s3_build["out"], s3_build["out_no_keys"]):
        for f in out.rglob("*"):
            if f.is_file() and f.suffix in (".json", ".html", ".txt", ".csv"):
                assert SECRET not in f.read_text(errors="replace"), f
