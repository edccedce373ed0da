"""Benchmark `stac-mmtp publish` against `aws s3 sync` on the same tree and the same local S3 server.

Tree: a valid STAC catalog of N small items (JSON) and M data files of S MB (random bytes: as
incompressible as COG tiles). Server: a fresh moto server process on 127.0.0.1 for each tool's runs.
Each tool publishes the tree, then publishes it again unchanged. Wall time and peak RSS (from
/usr/bin/time) of each run are printed as a Markdown table for benchmarks/README.md.

    python benchmarks/bench_publish.py [--items 2000] [--cogs 20] [--cog-mb 20] [--jobs 10] [--aws PATH] [--repeat 3]

`aws` comes from `pip install awscli` (in its own venv: awscli pins an older botocore than boto3's).
Without it, a boto3 `upload_file` thread pool is the reference. Needs STAC_MMTP_SCHEMA_CACHE for the
validation `stac-mmtp publish` runs first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LINK_TYPE = "application/json"


def make_tree(out: Path, items: int, cogs: int, cog_mb: int) -> tuple[int, int]:
    """A valid STAC 1.1 tree: root -> one collection -> `items` items, `cogs` of them with a data file."""
    rng = np.random.default_rng(0)
    (out / "bench").mkdir(parents=True)
    root = {"type": "Catalog", "stac_version": "1.1.0", "id": "bench", "description": "Benchmark tree",
            "links": [{"rel": "root", "href": "./catalog.json", "type": LINK_TYPE},
                      {"rel": "child", "href": "./bench/collection.json", "type": LINK_TYPE}]}
    coll = {"type": "Collection", "stac_version": "1.1.0", "id": "bench", "description": "Benchmark items",
            "license": "CC-BY-4.0",
            "extent": {"spatial": {"bbox": [[10.0, 59.0, 12.0, 61.0]]},
                       "temporal": {"interval": [["2021-01-01T00:00:00Z", "2021-12-31T00:00:00Z"]]}},
            "links": [{"rel": "root", "href": "../catalog.json", "type": LINK_TYPE},
                      {"rel": "parent", "href": "../catalog.json", "type": LINK_TYPE}]}
    nbytes = 0
    for i in range(items):
        iid = f"item-{i:05d}"
        lon, lat = 10 + (i % 100) / 50, 59 + (i // 100) / 10
        item = {
            "type": "Feature", "stac_version": "1.1.0", "id": iid, "collection": "bench",
            "geometry": {"type": "Point", "coordinates": [lon, lat]}, "bbox": [lon, lat, lon, lat],
            "properties": {"datetime": f"2021-{1 + i % 12:02d}-15T10:00:00Z", "title": f"Benchmark item {i}"},
            "links": [{"rel": "root", "href": "../../catalog.json", "type": LINK_TYPE},
                      {"rel": "parent", "href": "../collection.json", "type": LINK_TYPE},
                      {"rel": "collection", "href": "../collection.json", "type": LINK_TYPE}],
            "assets": {},
        }
        d = out / "bench" / iid
        d.mkdir()
        if i < cogs:
            data = rng.bytes(cog_mb * 1024 * 1024)
            (d / "data.tif").write_bytes(data)
            nbytes += len(data)
            item["assets"]["data"] = {"href": "./data.tif", "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                                      "roles": ["data"]}
        text = json.dumps(item, indent=2)
        (d / f"{iid}.json").write_text(text)
        nbytes += len(text)
        coll["links"].append({"rel": "item", "href": f"./{iid}/{iid}.json", "type": "application/geo+json"})
    (out / "bench" / "collection.json").write_text(json.dumps(coll, indent=2))
    (out / "catalog.json").write_text(json.dumps(root, indent=2))
    files = sum(1 for p in out.rglob("*") if p.is_file())
    return files, nbytes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, MOTO_DISABLE_GLOBAL_CORS="true")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)  # noqa: S310
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("moto server did not start")


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in MiB) of one command run under /usr/bin/time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t0 = time.perf_counter()
        r = subprocess.run(["/usr/bin/time", "-o", tf.name, "-f", "%M", *cmd], env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[:4])}... failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
        rss_kib = int(tf.read().strip().splitlines()[-1])
    return wall, rss_kib // 1024


BOTO3_LOOP = """
import sys, os, concurrent.futures as cf, boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
root, bucket, url, jobs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = boto3.client("s3", endpoint_url=url, config=Config(max_pool_connections=2 * jobs, s3={"addressing_style": "path"}))
cfg = TransferConfig(max_concurrency=jobs)
files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
with cf.ThreadPoolExecutor(jobs) as pool:
    list(pool.map(lambda p: c.upload_file(p, bucket, "r/" + os.path.relpath(p, root), Config=cfg), files))
"""

SYNC_ONLY = """
import sys
from pathlib import Path
from stac_mmtp.release.publish import S3Store, publish
root, bucket, url, jobs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
store = S3Store(bucket, "r", url, jobs=jobs)
report = publish(Path(root), store, jobs=jobs, public_check=False, validate=False)
store.close()
assert report.ok, report.problems
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--cogs", type=int, default=20)
    ap.add_argument("--cog-mb", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=10, help="parallel transfers for every tool (aws's default is 10)")
    ap.add_argument("--aws", default=shutil.which("aws"), help="the aws CLI [default: aws on PATH]")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--repeat", type=int, default=1, help="rounds (tools in rotated order); medians are reported")
    args = ap.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-publish-"))
    tree = work / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    files, nbytes = make_tree(tree, args.items, args.cogs, args.cog_mb)
    print(f"tree: {files} files, {nbytes / 2**20:.0f} MiB ({args.items} items, {args.cogs} x {args.cog_mb} MB data)")

    results = run_all(args, tree)
    ref = results[-1]
    print(f"\n| tool | first publish | peak RSS | unchanged re-run | re-run / first | first vs {ref[0].split(' (')[0]} |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, (t1, m1), (t2, m2) in results:
        print(f"| {label} | {t1:.1f} s | {m1} MiB | {t2:.2f} s ({m2} MiB) | {t2 / t1:.0%} | {t1 / ref[1][0]:.2f} |")


def run_all(args: argparse.Namespace, tree: Path) -> list:
    """Publish with each tool, twice, each time on a fresh moto server (moto keeps every object in
    memory: a server shared by the tools would serve the later ones with gigabytes more held).
    With --repeat, the tools take turns in rotated order and the median of each time is kept."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
               AWS_EC2_METADATA_DISABLED="true", PYTHONPATH=str(REPO))
    os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")})
    import boto3

    py = sys.executable
    ours = [py, "-m", "stac_mmtp", "-q", "publish", str(tree), "--jobs", str(args.jobs)]
    runs: list[tuple[str, list[str]]] = [
        ("stac-mmtp publish (validate + sync + verify + anonymous GET)", [*ours, "--to", "s3://bench/r"]),
        ("stac-mmtp publish --check-every-object (one HEAD per object before and after)",
         [*ours, "--check-every-object", "--to", "s3://bench/r"]),
        ("stac-mmtp publish, sync only (library, no validation)",
         [py, "-c", SYNC_ONLY, str(tree), "bench", "URL", str(args.jobs)]),
    ]
    if args.aws:
        runs.append(("aws s3 sync", [args.aws, "s3", "sync", str(tree), "s3://bench/r", "--only-show-errors"]))
    else:
        runs.append(("boto3 upload_file thread pool", [py, "-c", BOTO3_LOOP, str(tree), "bench", "URL", str(args.jobs)]))

    times: dict[int, list[tuple[tuple[float, int], tuple[float, int]]]] = {n: [] for n in range(len(runs))}
    for rep in range(args.repeat):
        order = list(range(len(runs)))
        order = order[rep % len(order):] + order[:rep % len(order)]
        for n in order:
            label, cmd = runs[n]
            proc, url = start_moto()
            try:
                boto3.client("s3", endpoint_url=url).create_bucket(Bucket="bench")
                cmd = [url if c == "URL" else c for c in cmd]
                if cmd[:3] == ours[:3]:
                    cmd = [*cmd, "--endpoint-url", url]
                    subprocess.run([*ours[:5], "--setup-bucket", "--to", "s3://bench/r", "--endpoint-url", url], env=env,
                                   check=True, capture_output=True)
                elif "aws" in label:
                    cmd = [*cmd, "--endpoint-url", url]
                # each tool starts with an empty digest/validation cache; its re-run finds what its first run left
                tool_env = dict(env, STAC_MMTP_CACHE=str(tree.parent / f"cache-{n}-{rep}"))
                first = timed(cmd, tool_env)
                again = timed(cmd, tool_env) if "upload_file" not in label else (float("nan"), 0)
            finally:
                proc.terminate()
                proc.wait(30)
            times[n].append((first, again))
            print(f"{label}: first {first[0]:.2f} s / {first[1]} MiB, unchanged {again[0]:.2f} s / {again[1]} MiB",
                  flush=True)

    def median(values: list[float]) -> float:
        v = sorted(values)
        return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2

    return [(label, (median([f[0] for f, _ in times[n]]), max(f[1] for f, _ in times[n])),
             (median([a[0] for _, a in times[n]]), max(a[1] for _, a in times[n])))
            for n, (label, _) in enumerate(runs)]


if __name__ == "__main__":
    main()
