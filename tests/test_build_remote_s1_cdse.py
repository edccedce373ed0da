"""`build --acquisitions`: Sentinel-1 GRD from CDSE, the whole SAFE zip downloaded into the cache.

A CDSE-like server on 127.0.0.1 (tests/cdse_server.py) serves SYNTHETIC SAFE zips made by the sample
generator (`stac_mmtp/sources/sentinel1/samples.py`; they hold the sample marker, and the source items
say `mmtp:synthetic`), at OData `Products(<uuid>)/$value`, only with the bearer token its identity
endpoint hands out for the test's username/password (401 otherwise). The first GET of each product is
cut midway: the download must resume with a Range request, and the cached zip's sha256 must equal the
served file's (computed here with hashlib). One source item carries a wrong `file:checksum`: its task
fails alone, and only its own `.part` is deleted. A second build reuses the cached zip without a GET.
The built rasters equal those of a local build of the same SAFE directory.

With S3 keys and an S3 endpoint in the environment, the same product's members on an `eodata` bucket
(moto's S3 server standing in for eodata.dataspace.copernicus.eu) are read remotely instead: the
calibration/noise XML found by listing the SAFE's annotation/calibration/ folder, nothing downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import requests
from cdse_server import CdseServer
from helpers import box, write_event
from range_server import RangeServer
from stac_api import stac_api

from stac_mmtp.build import build
from stac_mmtp.dataset.inventory import load_inventory
from stac_mmtp.discover import DiscoverOptions, discover_events
from stac_mmtp.discover.providers import resolve
from stac_mmtp.discover.selection import Selection
from stac_mmtp.sources import BuildOptions

EV = "cdse-download-s1-test-2021"
LON, LAT = 11.3, 46.1
EVENT_DAY = datetime(2021, 8, 2, tzinfo=UTC)
POST_UUID = "0b8f3f5e-8d6a-4a53-9c52-2a1f6f1d0a01"
PRE_UUID = "0b8f3f5e-8d6a-4a53-9c52-2a1f6f1d0a02"  # served with a wrong file:checksum in its item
USER, PASSWORD = "mmtp-tester@example.org", "pw-NEVER-LOGGED-91c2"
UNSET = ("CDSE_ACCESS_TOKEN", "CDSE_USERNAME", "CDSE_PASSWORD", "CDSE_TOKEN_URL", "AWS_S3_ENDPOINT", "AWS_ENDPOINT_URL",
         "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "STAC_MMTP_S1_READ")


def _zip(safe: Path, dst: Path) -> bytes:
    """The SAFE directory as CDSE ships it: one zip holding `<name>.SAFE/...`."""
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(safe.rglob("*")):
            if p.is_file():
                zf.write(p, f"{safe.name}/{p.relative_to(safe).as_posix()}")
    return dst.read_bytes()


def cdse_item(meta_item: dict[str, Any], name: str, srv: str, uuid: str, checksum: str) -> dict[str, Any]:
    """A CDSE STAC v1 `sentinel-1-grd`-shaped item for a sample product: a `product` asset to the OData
    download (with its multihash), the SAFE members on s3://eodata; marked synthetic, as its product is."""
    p = dict(meta_item["properties"])
    p["mmtp:synthetic"] = True
    p["title"] = f"Synthetic sample: {name}"
    day = datetime.fromisoformat(p["start_datetime"].replace("Z", "+00:00"))
    s3 = f"s3://eodata/Sentinel-1/SAR/IW_GRDH_1S/{day:%Y/%m/%d}/{name}.SAFE"
    assets = {"product": {"href": f"{srv}/odata/v1/Products({uuid})/$value", "type": "application/zip",
                          "title": "Zipped product", "roles": ["data", "metadata", "archive"], "auth:refs": ["oidc"],
                          "file:checksum": checksum},
              "safe_manifest": {"href": f"{s3}/manifest.safe", "type": "application/xml", "roles": ["metadata"]}}
    for key, a in meta_item["assets"].items():
        if key in ("vv", "vh"):
            assets[key] = {"href": f"{s3}/{a['href'].removeprefix('./')}", "type": "image/tiff; application=geotiff",
                           "roles": ["data"]}
    return {"type": "Feature", "stac_version": "1.1.0", "stac_extensions": [], "id": name,
            "geometry": meta_item["geometry"], "bbox": meta_item["bbox"], "properties": p, "links": [], "assets": assets}


@pytest.fixture(scope="module")
def cdse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from stac_mmtp.sources.sentinel1 import Sentinel1
    from stac_mmtp.sources.sentinel1.samples import write_product

    tmp = tmp_path_factory.mktemp("remote-s1-cdse")
    events = tmp / "events"
    write_event(events, EV, geometry=box(LON, LAT, 0.02), site=[LON, LAT], countries=["ITA"],
                datetime=EVENT_DAY.strftime("%Y-%m-%dT%H:%M:%SZ"), datetime_precision="day")
    ev = load_inventory(events)[0]
    products = tmp / "products"
    post = write_product(products, ev, EVENT_DAY + timedelta(days=1, hours=17), "ascending", change="landslide")
    pre = write_product(products, ev, EVENT_DAY - timedelta(days=11, hours=-17), "ascending")
    zips = {uuid: _zip(safe, tmp / f"{safe.stem}.zip") for uuid, safe in ((POST_UUID, post), (PRE_UUID, pre))}
    srv = CdseServer(zips, users={USER: PASSWORD})
    saved = dict(os.environ)
    for k in UNSET:
        os.environ.pop(k, None)
    cache = tmp / "cache" / "safe"
    cache.mkdir(parents=True)
    (cache / "not-ours.zip").write_bytes(b"a file this build did not write")
    os.environ.update({"STAC_MMTP_CACHE": str(cache.parent), "CDSE_USERNAME": USER, "CDSE_PASSWORD": PASSWORD,
                       "CDSE_TOKEN_URL": f"{srv.url}/auth/realms/CDSE/protocol/openid-connect/token",
                       "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                       "AWS_EC2_METADATA_DISABLED": "true"})
    try:
        items = []
        for uuid, safe in ((POST_UUID, post), (PRE_UUID, pre)):
            digest = hashlib.sha256(zips[uuid]).hexdigest() if uuid == POST_UUID else hashlib.sha256(b"another file").hexdigest()
            # the post-event item's product href goes through the redirecting catalogue path
            base = f"{srv.url}/catalogue" if uuid == POST_UUID else srv.url
            items.append(cdse_item(Sentinel1().read(safe).item, safe.stem, base, uuid, "1220" + digest))
        with stac_api({"sentinel-1-grd": items}, tmp / "api") as api:
            report = discover_events(load_inventory(events), resolve([api]), tmp / "plans",
                                     DiscoverOptions(modalities=("s1",), retries=2, backoff=0.05,
                                                     selection=Selection(pre_event=3)))
            assert report.ok, report.failures
            first = build(events, [], tmp / "catalog", BuildOptions(jobs=2, buffer_m=500), acquisitions=tmp / "plans")
            log_first = list(srv.downloads())
            second = build(events, [], tmp / "catalog-2", BuildOptions(jobs=2, buffer_m=500), acquisitions=tmp / "plans")
            log_second = list(srv.downloads())[len(log_first):]
        local = build(events, [products], tmp / "local", BuildOptions(jobs=2, buffer_m=500))
        yield {"first": first, "second": second, "local": local, "log_first": log_first, "log_second": log_second,
               "zips": zips, "cache": cache, "srv": srv, "tmp": tmp, "post": post.stem, "pre": pre.stem,
               "plan": json.loads((tmp / "plans" / f"{EV}.json").read_text())}
    finally:
        srv.stop()
        os.environ.clear()
        os.environ.update(saved)


def _by_id(report: Any) -> dict[str, Any]:
    return {r.item_id: r for r in report.results}


def test_the_cut_download_resumed_with_a_range_and_its_sha256_matches(cdse: dict[str, Any]) -> None:
    gets = [r for r in cdse["log_first"] if POST_UUID in r.path]
    assert all(r.authorised for r in gets)  # the bearer token obtained with the username/password
    size = len(cdse["zips"][POST_UUID])
    assert [(r.range is None, r.status) for r in gets] == [(True, 200), (False, 206)]
    resumed_at = int(gets[1].range.removeprefix("bytes=").removesuffix("-"))
    # continued from what the .part kept: the bytes received, but for the 64 KiB block being read when it broke
    assert 0 < gets[0].sent < size and gets[0].sent - 65536 <= resumed_at <= gets[0].sent
    assert resumed_at + gets[1].sent == size
    cached = cdse["cache"] / f"{cdse['post']}.zip"
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == hashlib.sha256(cdse["zips"][POST_UUID]).hexdigest()
    assert not (cdse["cache"] / f"{cdse['post']}.zip.part").exists()
    redirects = [r for r in cdse["srv"].redirects() if POST_UUID in r.path]
    assert redirects and all(r.authorised for r in redirects)  # followed with the token kept (same host)
    forms = cdse["srv"].token_forms
    assert forms and all(f == {"grant_type": "password", "client_id": "cdse-public", "username": USER,
                               "password": PASSWORD} for f in forms)


def test_a_checksum_mismatch_fails_its_task_and_deletes_only_its_part(cdse: dict[str, Any]) -> None:
    by_id = _by_id(cdse["first"])
    ok, bad = by_id[f"{EV}_{cdse['post']}"], by_id[f"{EV}_{cdse['pre']}"]
    assert ok.ok, ok.message
    assert not bad.ok
    want = hashlib.sha256(cdse["zips"][PRE_UUID]).hexdigest()
    assert f"sha256 {want} does not match the source item's {hashlib.sha256(b'another file').hexdigest()}" in bad.message
    assert f"{cdse['srv'].url}/odata/v1/Products({PRE_UUID})/$value" in bad.message
    assert sorted(p.name for p in cdse["cache"].iterdir() if not p.name.endswith(".lock")) == [
        f"{cdse['post']}.zip", "not-ours.zip"]
    assert (cdse["cache"] / "not-ours.zip").read_bytes() == b"a file this build did not write"
    for report in (cdse["first"], cdse["second"]):
        assert all(PASSWORD not in (r.message or "") and cdse["srv"].token not in (r.message or "") for r in report.results)


def test_a_second_build_reuses_the_cached_zip_without_a_get(cdse: dict[str, Any]) -> None:
    assert [r for r in cdse["log_second"] if POST_UUID in r.path] == []
    assert _by_id(cdse["second"])[f"{EV}_{cdse['post']}"].ok
    assert (cdse["tmp"] / "catalog-2" / "sentinel-1" / f"{EV}_{cdse['post']}" / "vv.tif").is_file()


def test_pixels_equal_the_local_build_of_the_same_safe_and_the_item_says_synthetic(cdse: dict[str, Any],
                                                                                  schema_store: Any) -> None:
    from stac_mmtp.release.validate import validate_tree

    iid = f"{EV}_{cdse['post']}"
    remote, local = (cdse["tmp"] / d / "sentinel-1" / iid for d in ("catalog", "local"))
    assert _by_id(cdse["local"])[iid].ok
    for pol in ("vv", "vh"):
        with rasterio.open(remote / f"{pol}.tif") as a, rasterio.open(local / f"{pol}.tif") as b:
            assert a.crs.to_epsg() == b.crs.to_epsg() == 32632 and a.transform == b.transform
            x, y = a.read(1), b.read(1)
        assert np.isfinite(x).mean() > 0.9 and np.array_equal(x, y, equal_nan=True), pol
    item = json.loads((remote / f"{iid}.json").read_text())
    p = item["properties"]
    assert item["id"] == iid and p["s1:product_identifier"] == cdse["post"] and p["proj:code"] == "EPSG:32632"
    assert p["mmtp:synthetic"] is True and p["title"].startswith("Synthetic sample")
    assert p["mmtp:temporal_role"] == "first-post-event"
    assert [str(x) for x in validate_tree(cdse["tmp"] / "catalog", schema_store).problems] == []


def test_the_server_refuses_a_download_without_the_token(cdse: dict[str, Any]) -> None:
    """The control: the product URL answers 401 without the bearer token, as CDSE does."""
    url = f"{cdse['srv'].url}/odata/v1/Products({POST_UUID})/$value"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401


def _task(tmp: Path, item: dict[str, Any]) -> Any:
    from stac_mmtp.sources.base import ProductMeta, Task

    (tmp / "item.json").write_text(json.dumps(item))
    events = tmp / "events"
    write_event(events, EV, geometry=box(LON, LAT, 0.02), site=[LON, LAT], countries=["ITA"])
    ev = load_inventory(events)[0]
    return ev, lambda url: Task(ev, ProductMeta(tmp, "remote-sentinel-1", item["id"], ev.geometry, ev.start, ev.start,
                                                {"provider": "cdse", "collection": "sentinel-1-grd",
                                                 "item_id": item["id"], "self_href": f"{url}/item.json"}),
                                "post-event", 1.0, BuildOptions())


@pytest.mark.parametrize("token", [None, "an-expired-token-3d9f"])
def test_no_or_a_bad_token_is_one_clear_line(cdse: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             token: str | None) -> None:
    from stac_mmtp.errors import ProductError
    from stac_mmtp.sources.remote_s1 import SOURCE

    for k in ("CDSE_USERNAME", "CDSE_PASSWORD", "CDSE_ACCESS_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    if token:
        monkeypatch.setenv("CDSE_ACCESS_TOKEN", token)
    monkeypatch.setenv("STAC_MMTP_CACHE", str(tmp_path / "cache"))
    item = json.loads((cdse["tmp"] / "catalog" / "sentinel-1" / f"{EV}_{cdse['post']}" / f"{EV}_{cdse['post']}.json").read_text())
    item = cdse_item(item, "S1A_IW_GRDH_1SDV_20210803T174011_20210803T174036_039071_049C53_AAAA", cdse["srv"].url,
                     POST_UUID, "1220" + "00" * 32)
    srv = RangeServer(tmp_path)
    try:
        _ev, task = _task(tmp_path, item)
        with pytest.raises(ProductError) as exc:
            SOURCE.convert(task(srv.url), tmp_path / "out")
    finally:
        srv.stop()
    msg = str(exc.value)
    assert msg.startswith(f"{cdse['srv'].url}/odata/v1/Products({POST_UUID})/$value: ")
    if token is None:
        assert "set CDSE_ACCESS_TOKEN, or CDSE_USERNAME and CDSE_PASSWORD" in msg
    else:
        assert "HTTP 401" in msg and "token" in msg and token not in msg
    cache = tmp_path / "cache" / "safe"
    if token is None:
        assert not cache.exists()  # nothing written without a token
    else:  # the 401 came at the first request: no zip, no .part (only the lock file of the attempt)
        assert [p.name for p in cache.iterdir()] == [f"{item['id']}.zip.lock"]


def test_a_download_given_up_is_continued_by_the_next_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every transfer cut for the first build: it fails and keeps its .part; the next build continues it."""
    from stac_mmtp.errors import ProductError
    from stac_mmtp.sources.download import Checksum, download

    data = os.urandom(3_000_000)
    uuid = "0b8f3f5e-8d6a-4a53-9c52-2a1f6f1d0a03"
    srv = CdseServer({uuid: data}, cuts=3)
    dest = tmp_path / "safe" / "S1A_TEST.zip"
    url = f"{srv.url}/odata/v1/Products({uuid})/$value"
    check = Checksum("sha256", hashlib.sha256(data).hexdigest())
    headers = lambda: {"Authorization": f"Bearer {srv.token}"}  # noqa: E731
    try:
        with pytest.raises(ProductError, match=r"after 2 attempts .* the partial file is kept"):
            download(url, dest, check, headers, "the test product", attempts=2)
        part = dest.with_name("S1A_TEST.zip.part")
        kept = part.stat().st_size
        assert 0 < kept < len(data) and not dest.exists()
        assert download(url, dest, check, headers, "the test product", attempts=3) == dest
        gets = srv.downloads()
        assert gets[2].range == f"bytes={kept}-" and [g.status for g in gets] == [200, 206, 206, 206]
        assert dest.read_bytes() == data and not part.exists()
    finally:
        srv.stop()


def test_file_checksum_multihashes() -> None:
    from stac_mmtp.errors import ProductError
    from stac_mmtp.sources.download import Checksum

    sha = hashlib.sha256(b"abc").hexdigest()
    assert Checksum.from_multihash("1220" + sha, "x") == Checksum("sha256", sha)
    md5 = hashlib.md5(b"abc").hexdigest()
    assert Checksum.from_multihash("d50110" + md5, "x") == Checksum("md5", md5)  # code 0xd5 is a 2-byte varint
    with pytest.raises(ProductError, match="multihash code 0x1e"):
        Checksum.from_multihash("1e20" + sha, "x")  # BLAKE3: not in hashlib
    with pytest.raises(ProductError, match="the digest is 31 bytes, not 32"):
        Checksum.from_multihash("1220" + sha[:-2], "x")


def test_the_token_follows_a_redirect_to_the_download_host_only() -> None:
    from stac_mmtp.sources.download import keeps_token

    cat = "https://catalogue.dataspace.copernicus.eu/odata/v1/Products(x)/$value"
    assert keeps_token(cat, "https://download.dataspace.copernicus.eu/odata/v1/Products(x)/$value")
    assert keeps_token(cat, "https://catalogue.dataspace.copernicus.eu/other")
    assert not keeps_token(cat, "https://zipper.example.org/x")
    assert not keeps_token(cat, "http://download.dataspace.copernicus.eu/x")  # never to plain http
    assert not keeps_token("https://a.example.org/x", "https://b.example.org/x")  # a two-label parent: no


def test_remote_provenance_of_a_real_download() -> None:
    """A product that is not synthetic keeps the source item as via/derived_from and CDSE as host."""
    from stac_mmtp.sources.remote_s1 import remote_provenance

    item = {"properties": {"providers": []}, "links": [
        {"rel": "via", "href": "https://catalogue.dataspace.copernicus.eu/odata/v1/Products?$filter=x"},
        {"rel": "license", "href": "https://sentinels.copernicus.eu/legal"}]}
    rec = {"provider": "cdse", "collection": "sentinel-1-grd", "item_id": "S1A_X",
           "self_href": "https://stac.dataspace.copernicus.eu/v1/collections/sentinel-1-grd/items/S1A_X?token=SECRET"}
    out = remote_provenance(item, rec)
    rels = [(lk["rel"], lk["href"]) for lk in out["links"]]
    src = "https://stac.dataspace.copernicus.eu/v1/collections/sentinel-1-grd/items/S1A_X"
    assert rels == [("via", src), ("derived_from", src), ("license", "https://sentinels.copernicus.eu/legal")]
    assert [p["name"] for p in out["properties"]["providers"]] == ["ESA", "Copernicus Data Space Ecosystem", "stac-mmtp"]


@pytest.fixture(scope="module")
def cdse_s3(cdse: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The same sample SAFE as its members on CDSE's `eodata` bucket (moto's S3 server standing in for
    eodata.dataspace.copernicus.eu), with S3 keys in the environment: read remotely, nothing downloaded."""
    try:
        from moto.server import ThreadedMotoServer
    except ModuleNotFoundError as exc:
        from unavailable import unavailable

        unavailable(f"{exc.name} is not installed")
    import boto3

    from stac_mmtp.sources.sentinel1 import Sentinel1

    tmp = cdse["tmp"] / "s3"
    safe = cdse["tmp"] / "products" / f"{cdse['post']}.SAFE"
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    saved = dict(os.environ)
    os.environ.update({"AWS_ACCESS_KEY_ID": "cdse-s3-key", "AWS_SECRET_ACCESS_KEY": "cdse-s3-secret",
                       "AWS_S3_ENDPOINT": f"{host}:{port}", "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE",
                       "AWS_REGION": "default", "STAC_MMTP_CACHE": str(tmp / "cache")})
    try:
        item = cdse_item(Sentinel1().read(safe).item, cdse["post"], cdse["srv"].url, POST_UUID, "1220" + "00" * 32)
        prefix = item["assets"]["safe_manifest"]["href"].removeprefix("s3://eodata/").removesuffix("/manifest.safe")
        client = boto3.session.Session().client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1")
        client.create_bucket(Bucket="eodata")
        for p in sorted(safe.rglob("*")):
            if p.is_file():
                client.put_object(Bucket="eodata", Key=f"{prefix}/{p.relative_to(safe).as_posix()}", Body=p.read_bytes())
        before = len(cdse["srv"].downloads())
        with stac_api({"sentinel-1-grd": [item]}, tmp / "api") as api:
            events = cdse["tmp"] / "events"
            report = discover_events(load_inventory(events), resolve([api]), tmp / "plans",
                                     DiscoverOptions(modalities=("s1",), retries=2, backoff=0.05))
            assert report.ok, report.failures
            result = build(events, [], tmp / "catalog", BuildOptions(jobs=2, buffer_m=500), acquisitions=tmp / "plans")
        yield {"report": result, "out": tmp / "catalog", "downloads": cdse["srv"].downloads()[before:], "cache": tmp / "cache"}
    finally:
        moto.stop()
        os.environ.clear()
        os.environ.update(saved)


def test_eodata_members_are_read_remotely_with_s3_keys(cdse: dict[str, Any], cdse_s3: dict[str, Any]) -> None:
    iid = f"{EV}_{cdse['post']}"
    res = _by_id(cdse_s3["report"])[iid]
    assert res.ok, res.message
    assert cdse_s3["downloads"] == [] and not (cdse_s3["cache"] / "safe").exists()  # no zip fetched
    remote, local = cdse_s3["out"] / "sentinel-1" / iid, cdse["tmp"] / "local" / "sentinel-1" / iid
    for pol in ("vv", "vh"):
        with rasterio.open(remote / f"{pol}.tif") as a, rasterio.open(local / f"{pol}.tif") as b:
            assert a.crs.to_epsg() == b.crs.to_epsg() == 32632
            assert a.transform == b.transform and a.shape == b.shape
            x, y = a.read(1), b.read(1)
        # the same DN and LUTs; the remote path geocodes with the COG's GCPs, the local one with the annotation's
        # grid (the same points, read from text): 1 float32 ulp apart on about 0.05 % of the pixels
        assert np.array_equal(np.isfinite(x), np.isfinite(y)) and np.isfinite(x).mean() > 0.9
        np.testing.assert_allclose(x[np.isfinite(x)], y[np.isfinite(y)], rtol=2.5e-7)
        assert (x[np.isfinite(x)] != y[np.isfinite(y)]).mean() < 0.001
    p = json.loads((remote / f"{iid}.json").read_text())["properties"]
    assert p["mmtp:synthetic"] is True and p["proj:code"] == "EPSG:32632"
    assert "GCPs of the measurement COG" in p["processing:lineage"]  # the remote chain ran, not the download
    assert "thermal noise N from the noise LUT" in p["processing:lineage"]  # the noise XML was found by listing the SAFE's folder
