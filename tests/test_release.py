"""`stac-mmtp release` / `verify` against real S3 servers on 127.0.0.1 (moto's server, SeaweedFS):
immutable versions, version links both ways, the computed changelog, checksums, Croissant."""

from __future__ import annotations

import json
import posixpath
import shutil
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_publish import _client, aws_env, moto_url, weed_url  # noqa: F401 - fixtures
from unavailable import unavailable

from stac_mmtp.commands.main import main
from stac_mmtp.release.publish import S3Store, setup_bucket

SCHEMAS = Path(__file__).resolve().parents[2] / "shared" / "stac-schemas"
VERSION_EXT = "https://stac-extensions.github.io/version/v1.2.0/schema.json"


@pytest.fixture(scope="session")
def built_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `stac-mmtp build` writes from the sample products: events, imagery, labels and splits."""
    if not (SCHEMAS / "index.json").is_file():
        unavailable(f"STAC schema mirror not found at {SCHEMAS}")
    root = tmp_path_factory.mktemp("release")
    assert _cli("-q", "sample", str(root / "samples"))[0] == 0
    code, out = _cli("-q", "build", "--products", str(root / "samples"), "--out", str(root / "catalog"))
    assert code == 0, out
    return root / "catalog"


def _cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return r.exit_code, r.output


def _all(url: str, bucket: str, prefix: str) -> dict[str, bytes]:
    c = _client(url)
    out = {}
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"][len(prefix):]] = c.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return out


def _second_build(tree: Path, dst: Path) -> tuple[str, str, dict[str, dict[str, list[str]]]]:
    """The next version's tree: one event's description edited, one Sentinel-1 item removed together with
    every link and asset that pointed into it (as a rebuild without that product would), and the changes
    the test expects the changelog to list: recorded here, from these edits, outside the code under test."""
    shutil.copytree(tree, dst)
    s1 = json.loads((dst / "sentinel-1" / "collection.json").read_text())
    victim = next(lk for lk in s1["links"] if lk["rel"] == "item")
    s1["links"].remove(victim)
    (dst / "sentinel-1" / "collection.json").write_text(json.dumps(s1, indent=2) + "\n")
    victim_dir = (dst / "sentinel-1" / victim["href"]).resolve().parent
    item_id = json.loads((victim_dir / f"{victim_dir.name}.json").read_text())["id"]
    shutil.rmtree(victim_dir)
    expected: dict[str, dict[str, list[str]]] = {"sentinel-1": {"added": [], "removed": [item_id], "changed": []}}

    def into_victim(base: Path, href: str) -> bool:
        return "://" not in href and (base / href).resolve().is_relative_to(victim_dir)

    for path in sorted(dst.rglob("*.json")):
        obj = json.loads(path.read_text())
        if obj.get("type") != "Feature":
            continue
        links = [lk for lk in obj["links"] if not into_victim(path.parent, lk["href"])]
        assets = {k: a for k, a in obj["assets"].items() if not into_victim(path.parent, a["href"])}
        if links != obj["links"] or assets != obj["assets"]:
            obj["links"], obj["assets"] = links, assets
            path.write_text(json.dumps(obj, indent=2) + "\n")
            expected.setdefault(obj["collection"], {"added": [], "removed": [], "changed": []})["changed"].append(obj["id"])
    events = json.loads((dst / "events" / "collection.json").read_text())
    ev_href = next(lk["href"] for lk in events["links"] if lk["rel"] == "item" and "gjerdrum" in lk["href"])
    ev_path = (dst / "events" / ev_href).resolve()
    ev = json.loads(ev_path.read_text())
    ev["properties"]["description"] += " (Reviewed against the expert committee's report.)"
    ev_path.write_text(json.dumps(ev, indent=2) + "\n")
    changed_events = expected.setdefault("events", {"added": [], "removed": [], "changed": []})["changed"]
    if ev["id"] not in changed_events:
        changed_events.append(ev["id"])
    for entry in expected.values():
        entry["changed"].sort()
    return ev["id"], item_id, dict(sorted(expected.items()))


def _resolve(key: str, href: str) -> str:
    return posixpath.normpath(posixpath.join(posixpath.dirname(key), href))


def test_release_two_versions_on_moto(built_tree: Path, moto_url: str, tmp_path: Path,  # noqa: F811
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAC_MMTP_SCHEMA_CACHE", str(SCHEMAS))
    bucket = "dataset"
    store = S3Store(bucket, "stac-mmtp", moto_url)
    setup_bucket(store)  # public read-only, as a real release bucket
    to = f"s3://{bucket}/stac-mmtp"
    changelog = tmp_path / "CHANGELOG-dataset.md"

    # the sample build is synthetic: never released as the dataset unless asked for a demonstration
    code, out = _cli("release", "1.0.0", str(built_tree), "--to", to, "--endpoint-url", moto_url, "--no-changelog-file")
    assert code == 2 and "synthetic" in out
    assert _all(moto_url, bucket, "stac-mmtp/") == {}
    code, out = _cli("release", "1.0.0", str(built_tree), "--to", to, "--endpoint-url", moto_url,
                     "--changelog-file", str(changelog), "--allow-synthetic")
    assert code == 0, out
    v1_before = _all(moto_url, bucket, "stac-mmtp/v1.0.0/")
    root1 = json.loads(v1_before["catalog.json"])
    assert root1["version"] == "1.0.0" and root1["deprecated"] is False and root1["experimental"] is False
    assert VERSION_EXT in root1["stac_extensions"]
    assert {"checksums.json", "SHA256SUMS", "release.json", "CHANGELOG.md", "croissant.json", "DATASHEET.md"} <= set(v1_before)
    manifest = json.loads(v1_before["checksums.json"])["objects"]
    # every object but the manifests themselves (and publish's own record of what it wrote, a dotfile)
    assert set(manifest) == {k for k in v1_before if not k.startswith(".")} - {"checksums.json", "SHA256SUMS"}

    # the same version again: refused, nothing written
    code, out = _cli("release", "1.0.0", str(built_tree), "--to", to, "--endpoint-url", moto_url,
                     "--no-changelog-file", "--allow-synthetic")
    assert code == 2 and "immutable" in out
    assert _all(moto_url, bucket, "stac-mmtp/v1.0.0/") == v1_before
    # publish over a released version, with or without --delete: refused, nothing written
    for extra in ([], ["--delete"]):
        code, out = _cli("publish", str(built_tree), "--to", f"{to}/v1.0.0", "--endpoint-url", moto_url, *extra)
        assert code == 2 and "immutable" in out, out
    assert _all(moto_url, bucket, "stac-mmtp/v1.0.0/") == v1_before
    # an older version than the latest: refused too
    code, out = _cli("release", "0.9.0", str(built_tree), "--to", to, "--endpoint-url", moto_url,
                     "--no-changelog-file", "--allow-synthetic")
    assert code == 2 and "older" in out

    changed_event, removed_item, expected_changes = _second_build(built_tree, tmp_path / "next")
    code, out = _cli("release", "1.1.0", str(tmp_path / "next"), "--to", to, "--endpoint-url", moto_url,
                     "--changelog-file", str(changelog), "--allow-synthetic")
    assert code == 0, out
    v1_after = _all(moto_url, bucket, "stac-mmtp/v1.0.0/")
    v2 = _all(moto_url, bucket, "stac-mmtp/v1.1.0/")
    assert set(v1_after) == set(v1_before)
    changed = {k for k in v1_before if v1_before[k] != v1_after[k]}
    assert "catalog.json" in changed and "events/collection.json" in changed
    for key in changed:  # the only change to an old version: successor-version links
        before, after = json.loads(v1_before[key]), json.loads(v1_after[key])
        added = [lk for lk in after["links"] if lk not in before["links"]]
        assert [lk["rel"] for lk in added] == ["successor-version"], key
        after["links"] = [lk for lk in after["links"] if lk["rel"] != "successor-version"]
        assert after == before, key
        target = _resolve(key, added[0]["href"])  # resolves into the new version, same path
        assert target == posixpath.normpath(f"../v1.1.0/{key}") and key in v2
    # links both ways
    root2 = json.loads(v2["catalog.json"])
    pred = next(lk["href"] for lk in root2["links"] if lk["rel"] == "predecessor-version")
    assert _resolve("v1.1.0/catalog.json", pred) == "v1.0.0/catalog.json"
    coll2 = json.loads(v2["sentinel-2/collection.json"])
    assert root2["version"] == coll2["version"] == "1.1.0"
    pred_c = next(lk["href"] for lk in coll2["links"] if lk["rel"] == "predecessor-version")
    assert _resolve("v1.1.0/sentinel-2/collection.json", pred_c) == "v1.0.0/sentinel-2/collection.json"
    # latest resolves to 1.1.0, anonymously over HTTP
    base = f"{moto_url}/{bucket}/stac-mmtp"
    with urllib.request.urlopen(f"{base}/latest/catalog.json") as r:
        latest = json.load(r)
    href = next(lk["href"] for lk in latest["links"] if lk["rel"] == "latest-version")
    assert _resolve("latest/catalog.json", href) == "v1.1.0/catalog.json"
    with urllib.request.urlopen(f"{base}/catalog.json") as r:
        versions = json.load(r)
    assert [lk["href"] for lk in versions["links"] if lk["rel"] == "child"] == ["./v1.1.0/catalog.json", "./v1.0.0/catalog.json"]
    # the changelog lists exactly what the test changed
    changes = json.loads(v2["changes.json"])
    assert changes["previous"] == "1.0.0"
    assert changes["collections"] == expected_changes
    assert changed_event in changes["collections"]["events"]["changed"]
    assert changes["collections"]["sentinel-1"]["removed"] == [removed_item]
    assert changes["summary"]["acquisitions"] == {"added": 0, "removed": 1, "changed": 0}
    assert changes["summary"]["events"]["changed"] == len(expected_changes["events"]["changed"])
    text = changelog.read_text()
    assert text.index("## 1.1.0") < text.index("## 1.0.0") and f"`{changed_event}`" in text
    with urllib.request.urlopen(f"{base}/CHANGELOG-dataset.md") as r:
        assert r.read().decode() .count("\n## ") == 2

    # verify, anonymously over HTTP: passes on both versions (1.0.0 with its successor link)
    for v in ("v1.0.0", "v1.1.0"):
        code, out = _cli("verify", f"{base}/{v}")
        assert code == 0, out
    # ... then fails once one object is altered in the bucket
    c = _client(moto_url)
    cog = next(k for k in v2 if k.startswith("sentinel-2/") and k.endswith(".tif"))
    c.put_object(Bucket=bucket, Key=f"stac-mmtp/v1.1.0/{cog}", Body=v2[cog][:-1] + bytes([v2[cog][-1] ^ 1]))
    code, out = _cli("verify", f"{base}/v1.1.0")
    assert code == 1 and cog in out and "file:checksum" in out


def test_release_on_seaweedfs_verified_anonymously_over_s3(built_tree: Path, weed_url: str,  # noqa: F811
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """SeaweedFS denies anonymous listing and writes like AWS: the release writes with credentials,
    verify reads with none (s3:// and the endpoint)."""
    monkeypatch.setenv("STAC_MMTP_SCHEMA_CACHE", str(SCHEMAS))
    store = S3Store("weed-dataset", "", weed_url)
    setup_bucket(store)
    code, out = _cli("release", "0.1.0", str(built_tree), "--to", "s3://weed-dataset", "--endpoint-url", weed_url,
                     "--no-changelog-file", "--allow-synthetic")
    assert code == 0, out
    def get(key: str) -> bytes:
        return store.client.get_object(Bucket="weed-dataset", Key=key)["Body"].read()

    v1_before = get("v0.1.0/catalog.json")
    root = json.loads(v1_before)
    assert root["version"] == "0.1.0" and root["experimental"] is True  # 0.x: experimental by default
    code, out = _cli("release", "0.2.0", str(built_tree), "--to", "s3://weed-dataset", "--endpoint-url", weed_url,
                     "--no-changelog-file", "--allow-synthetic")
    assert code == 0, out
    code, out = _cli("release", "0.2.0", str(built_tree), "--to", "s3://weed-dataset", "--endpoint-url", weed_url,
                     "--no-changelog-file", "--allow-synthetic")
    assert code == 2 and "immutable" in out
    old = json.loads(get("v0.1.0/catalog.json"))
    assert [lk["href"] for lk in old["links"] if lk["rel"] == "successor-version"] == ["../v0.2.0/catalog.json"]
    new = json.loads(get("v0.2.0/catalog.json"))
    assert [lk["href"] for lk in new["links"] if lk["rel"] == "predecessor-version"] == ["../v0.1.0/catalog.json"]
    assert json.loads(get("v0.2.0/changes.json"))["collections"] == {}  # the same build: nothing changed
    latest = json.loads(get("latest/catalog.json"))
    assert [lk["href"] for lk in latest["links"] if lk["rel"] == "latest-version"] == ["../v0.2.0/catalog.json"]
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    from stac_mmtp.release.versions import verify_release

    for v in ("v0.1.0", "v0.2.0"):  # 0.1.0 with its successor link
        code, out = _cli("verify", f"s3://weed-dataset/{v}", "--endpoint-url", weed_url)
        assert code == 0, out
        report = verify_release(f"s3://weed-dataset/{v}", weed_url)
        manifest = json.loads(urllib.request.urlopen(f"{weed_url}/weed-dataset/{v}/checksums.json").read())
        assert report.ok and report.objects == len(manifest["objects"]) and report.assets > 50


def test_release_validates_offline_and_croissant_loads(built_tree: Path, tmp_path: Path, no_network: list,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import mlcroissant as mlc

    from stac_mmtp.release.validate import SchemaStore, validate_tree

    monkeypatch.setenv("STAC_MMTP_SCHEMA_CACHE", str(SCHEMAS))
    code, out = _cli("release", "2.0.0", str(built_tree), "--to", (tmp_path / "rel").as_uri(),
                     "--no-changelog-file", "--allow-synthetic",
                     "--doi", "10.5281/zenodo.1234567", "--citation", "stac-mmtp developers (2026). stac-mmtp 2.0.0.")
    assert code == 0, out
    version = tmp_path / "rel" / "v2.0.0"
    report = validate_tree(version, SchemaStore(SCHEMAS))
    assert report.problems == [] and no_network == []
    assert VERSION_EXT in report.schemas
    root = json.loads((version / "catalog.json").read_text())
    assert root["sci:doi"] == "10.5281/zenodo.1234567"
    assert {"rel": "cite-as", "href": "https://doi.org/10.5281/zenodo.1234567"}.items() <= next(
        lk for lk in root["links"] if lk["rel"] == "cite-as").items()

    ds = mlc.Dataset(jsonld=str(version / "croissant.json"))
    assert "error" not in ds.metadata.issues.report().lower()
    events = json.loads((built_tree / "events" / "collection.json").read_text())
    expected = sorted(posixpath.basename(lk["href"]).removesuffix(".json") for lk in events["links"] if lk["rel"] == "item")
    got = sorted(r["events/id"].decode() for r in ds.records(record_set="events"))
    assert got == expected
    splits = {r["splits/id"].decode(): r["splits/ml-aoi:split"].decode() for r in ds.records(record_set="splits")}
    gj = json.loads(next((built_tree / "events").rglob("gjerdrum-landslide-2020.json")).read_text())
    assert splits["gjerdrum-landslide-2020"] == gj["properties"]["ml-aoi:split"]
    sheet = (version / "DATASHEET.md").read_text()
    assert f"- {len(expected)} events of " in sheet
