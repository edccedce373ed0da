"""Build at scale, measured on the sample products (`stac-mmtp sample`): the same tasks on the process
pool, on 1 and 2 dask workers (a LocalCluster of single-threaded processes), and the unchanged rebuild
from a work directory against the full build.

    PYTHONPATH=$PWD python benchmarks/bench_build_scale.py --workdir /tmp/bench-scale [--copies 2]

`--copies K` replicates every inventory event K times (new ids, the same AOI and dates), so the same
sample products make K x 18 tasks. Per-task overhead of the dask executor = (wall time on N workers -
sum of the tasks' own seconds / N) / tasks: scheduling, transfer of the task and its item, placement.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from stac_mmtp.build import build
from stac_mmtp.paths import default_events_dir
from stac_mmtp.sources import BuildOptions
from stac_mmtp.sources.samples import write_samples

EVENTS = ["gjerdrum-landslide-2020", "la-clapiere-landslide-2014", "laurichard-rock-glacier-2014",
          "veneto-flash-flood-2018", "veneto-flood-pordenone-2018"]


def inputs(root: Path, copies: int) -> tuple[Path, Path]:
    events = root / "events"
    if not events.is_dir():
        events.mkdir(parents=True)
        for name in EVENTS:
            feature = json.loads((default_events_dir() / f"{name}.geojson").read_text())
            for k in range(copies):
                f = json.loads(json.dumps(feature))
                if k:
                    f["id"] = f"{f['id']}-copy{k}"
                    f["properties"].pop("triggered_by", None)
                (events / f"{f['id']}.geojson").write_text(json.dumps(f, indent=2))
    samples = root / "samples"
    if not samples.is_dir():
        write_samples(samples, events)
    return events, samples


def timed(label: str, **kw) -> tuple[float, object]:  # noqa: ANN003
    t0 = time.perf_counter()
    report = build(**kw)
    wall = time.perf_counter() - t0
    assert report.ok, report.failures + [r.message for r in report.results if not r.ok]
    own = sum(r.seconds for r in report.results if not r.reused)
    print(f"{label:28s} wall {wall:6.1f} s  tasks {len(report.results):4d}  ran {report.ran:4d}  "
          f"reused {report.reused:4d}  sum(task s) {own:6.1f}")
    return wall, report


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--copies", type=int, default=1)
    a = ap.parse_args()
    events, samples = inputs(a.workdir, a.copies)
    common = {"events_dir": events, "product_dirs": [samples]}
    out = a.workdir / "out"
    rows = {}
    for jobs in (1, 2):
        rows[f"pool {jobs}"] = timed(f"process pool, {jobs} process(es)", **common, out=out,
                                     options=BuildOptions(jobs=jobs))
    for jobs in (1, 2):
        rows[f"dask {jobs}"] = timed(f"dask LocalCluster, {jobs} worker(s)", **common, out=out,
                                     options=BuildOptions(jobs=jobs), executor="dask")
    work = a.workdir / "work"
    shutil.rmtree(work, ignore_errors=True)
    rows["full"] = timed("full build with --work (2)", **common, out=out, options=BuildOptions(jobs=2), work=work)
    rows["again"] = timed("unchanged rebuild (2)", **common, out=out, options=BuildOptions(jobs=2), work=work)
    for jobs in (1, 2):
        wall, report = rows[f"dask {jobs}"]
        own = sum(r.seconds for r in report.results)
        print(f"dask per-task overhead, {jobs} worker(s): {(wall - own / jobs) / len(report.results) * 1000:.0f} ms "
              "(includes the read/plan/tree phases, an upper bound)")
    print(f"dask speed-up 2 vs 1 workers: {rows['dask 1'][0] / rows['dask 2'][0]:.2f}x; "
          f"pool: {rows['pool 1'][0] / rows['pool 2'][0]:.2f}x")
    print(f"unchanged rebuild / full: {rows['again'][0] / rows['full'][0] * 100:.0f} %")


if __name__ == "__main__":
    main()
