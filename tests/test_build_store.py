"""`build --work s3://bucket/prefix`: outputs and state on object storage (moto's S3 server on 127.0.0.1),
no SQLite file, no shared disk. The catalog must be byte-identical to the local build's, on the process
pool and on a real dask cluster (`dask scheduler` + 2 `dask worker` processes); a rebuild reuses every
task, counted from the run records in the bucket (read with boto3, not with the code under test); a
failing task is reported once."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_build_dask import (
    Cluster,
    local_build,  # noqa: F401 - the local build's files, the reference
)
from test_build_incremental import _files, inputs  # noqa: F401 - the module-scoped sample inputs
from unavailable import unavailable

from stac_mmtp.build import build
from stac_mmtp.sources import BuildOptions

BUCKET = "build-work"
ENV = {"AWS_ACCESS_KEY_ID": "testing-key", "AWS_SECRET_ACCESS_KEY": "testing-secret",
       "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
       "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true", "AWS_ALLOW_HTTP": "true"}


@pytest.fixture(scope="module")
def s3() -> Iterator[object]:
    """moto's S3 server, the bucket, and the environment every process (our workers too) reads."""
    try:
        import obstore  # noqa: F401
        from moto.server import ThreadedMotoServer
    except ModuleNotFoundError as exc:
        unavailable(f"{exc.name} is not installed")
    import boto3

    saved = dict(os.environ)
    os.environ.update(ENV)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
    # a session of its own, not boto3's default one (which would keep these credentials for later tests)
    client = boto3.session.Session().client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    client.create_bucket(Bucket=BUCKET)
    try:
        yield client
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)


def _objects(client, prefix: str) -> dict[str, bytes]:  # noqa: ANN001 - a boto3 S3 client
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"][len(prefix):]] = client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
    return out


def _runs(client, prefix: str) -> dict[str, list[dict]]:  # noqa: ANN001
    """build id -> its run records, from the bucket."""
    out: dict[str, list[dict]] = {}
    for k, body in _objects(client, f"{prefix}/runs/").items():
        out.setdefault(k.split("/")[0], []).append(json.loads(body))
    return out


def test_store_build_is_the_local_build_and_a_rebuild_reuses_all(inputs, local_build, s3,  # noqa: F811
                                                                  tmp_path: Path) -> None:
    events, samples = inputs
    url = f"s3://{BUCKET}/local-pool"
    first = build(events, [samples], tmp_path / "catalog", BuildOptions(jobs=2), work=url)
    assert first.ok and first.ran == 18 and first.reused == 0, [r.message for r in first.results if not r.ok]
    assert _files(tmp_path / "catalog") == local_build
    assert not list(tmp_path.rglob("*.sqlite")) and not (tmp_path / "work").exists()
    states = _objects(s3, "local-pool/state/")
    assert len(states) == 18 and all(k.endswith(".json") for k in states)
    # each record's digests are those of the files in the catalog built from it
    for body in states.values():
        rec = json.loads(body)
        built = _files(tmp_path / "catalog" / rec["collection"] / rec["item_id"])
        assert rec["outputs"] == {k: v for k, v in built.items() if k != f"{rec['item_id']}.json"}, rec["item_id"]
    runs = _runs(s3, "local-pool")
    assert [len(v) for v in runs.values()] == [18] and all(r["ok"] for r in next(iter(runs.values())))

    again = build(events, [samples], tmp_path / "catalog", BuildOptions(jobs=2), work=url)
    assert again.ok and again.ran == 0 and again.reused == 18
    assert _files(tmp_path / "catalog") == local_build
    assert [len(v) for v in _runs(s3, "local-pool").values()] == [18]  # the rebuild ran nothing
    assert len(_objects(s3, "local-pool/builds/")) == 2

    planned = build(events, [samples], tmp_path / "other", work=url, dry_run=True)
    assert len(planned.planned) == 18 and {w for *_, w in planned.planned} == {"reuse"}

    # one output object gone from the store: exactly that task runs again, the tree is the same
    rec = json.loads(next(iter(states.values())))
    rel = sorted(rec["outputs"])[0]
    s3.delete_object(Bucket=BUCKET, Key=f"local-pool/tasks/{rec['key']}/{rec['collection']}/{rec['item_id']}/{rel}")
    third = build(events, [samples], tmp_path / "catalog", BuildOptions(jobs=2), work=url)
    assert third.ok and third.ran == 1 and [r.item_id for r in third.results if not r.reused] == [rec["item_id"]]
    assert _files(tmp_path / "catalog") == local_build
    assert sorted(len(v) for v in _runs(s3, "local-pool").values()) == [1, 18]


def test_store_build_on_a_dask_cluster(inputs, local_build, s3, tmp_path: Path) -> None:  # noqa: F811
    events, samples = inputs
    cluster = Cluster(tmp_path)  # started after the fixture set the environment: the workers see the endpoint
    try:
        url = f"s3://{BUCKET}/dask"
        report = build(events, [samples], tmp_path / "catalog", executor="dask", scheduler=cluster.address,
                       work=url)
        assert report.ok and report.ran == 18, [r.message for r in report.results if not r.ok]
        assert _files(tmp_path / "catalog") == local_build
        (runs,) = _runs(s3, "dask").values()
        pids = {str(w.pid) for w in cluster.workers}
        assert len(runs) == 18 and {r["worker"].rsplit(":", 1)[1] for r in runs} <= pids  # the workers wrote them
        again = build(events, [samples], tmp_path / "catalog", executor="dask", scheduler=cluster.address,
                      work=url)
        assert again.ok and again.ran == 0 and again.reused == 18 and len(_runs(s3, "dask")) == 1
        assert _files(tmp_path / "catalog") == local_build

        # a truncated band file: that task fails, once, on the cluster, and the others are built
        broken = tmp_path / "samples"
        shutil.copytree(samples, broken)
        (safe,) = broken.glob("S2A_MSIL2A_20201225T*_T32VPM_*.SAFE")  # Gjerdrum's tile: one event, one task
        jp2 = next(safe.rglob("*_B04_10m.jp2"))
        jp2.write_bytes(jp2.read_bytes()[:2000])
        from click.testing import CliRunner

        from stac_mmtp.commands.main import main

        r = CliRunner().invoke(main, ["build", "--events", str(events), "--products", str(broken), "--out",
                                      str(tmp_path / "broken"), "--annotations", str(tmp_path),
                                      "--executor", "dask", "--scheduler", cluster.address,
                                      "--work", f"s3://{BUCKET}/broken", "--json"], catch_exceptions=False)
        assert r.exit_code == 1, r.output
        out = json.loads(r.stdout)
        failed = [i for i in out["items"] if i["status"] == "FAILED"]
        assert len(failed) == 1 and len(out["items"]) == 18 and out["ran"] == 18
        assert r.stderr.count(safe.name) == 1 and "unreadable or truncated band file" in r.stderr, r.stderr
        (broken_runs,) = _runs(s3, "broken").values()
        assert sorted(x["ok"] for x in broken_runs) == [False] + [True] * 17
        assert len(_objects(s3, "broken/state/")) == 17  # no record for the failed task: the next build runs it
    finally:
        cluster.stop()


def test_an_unreachable_store_is_one_line(inputs, s3, tmp_path: Path) -> None:  # noqa: F811
    from click.testing import CliRunner

    from stac_mmtp.commands.main import main

    events, samples = inputs
    r = CliRunner().invoke(main, ["build", "--events", str(events), "--products", str(samples), "--out",
                                  str(tmp_path / "c"), "--annotations", str(tmp_path),
                                  "--work", "s3://no-such-bucket/w"])
    assert r.exit_code == 2 and "s3://no-such-bucket/w" in r.stderr and "cannot use the work store" in r.stderr
    assert not (tmp_path / "c").exists()


KILLER = """
import os, signal, sys
from pathlib import Path
from stac_mmtp.build import build
from stac_mmtp.sources import BuildOptions

def progress(phase, done, total):
    if phase == "convert" and done == 5:
        os.kill(os.getpid(), signal.SIGKILL)  # midway: 5 tasks recorded in the store, others uploading

build(Path(sys.argv[1]), [Path(sys.argv[2])], Path(sys.argv[3]), BuildOptions(jobs=2), progress=progress,
      work=sys.argv[4])
"""


def test_killed_store_build_resumes(inputs, local_build, s3, tmp_path: Path) -> None:  # noqa: F811
    import subprocess
    import sys

    events, samples = inputs
    url, out = f"s3://{BUCKET}/killed", tmp_path / "catalog"
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.run([sys.executable, "-c", KILLER, str(events), str(samples), str(out), url],
                              cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL, stderr=err,
                              timeout=300)
    assert proc.returncode == -9, (tmp_path / "stderr.txt").read_text()[-2000:]
    assert not out.exists()
    recorded = {json.loads(b)["item_id"] for b in _objects(s3, "killed/state/").values()}
    assert len(recorded) >= 5
    resumed = build(events, [samples], out, BuildOptions(jobs=2), work=url)
    assert resumed.ok and resumed.reused == len(recorded) and resumed.ran == 18 - len(recorded)
    assert {r.item_id for r in resumed.results if r.reused} == recorded
    assert _files(out) == local_build
