"""Incremental and resumable builds: a work directory that outlives one build.

Counts of what ran come from the state table (work/state.sqlite, table `runs`), not from the build's
own report; byte-identity is checked on the files of the two trees.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest

from stac_mmtp.build import Selection, build
from stac_mmtp.paths import default_events_dir
from stac_mmtp.sources import BuildOptions
from stac_mmtp.sources.samples import write_samples

ROOT = Path(__file__).resolve().parents[1]
# the events the sample products observe (stac-mmtp sample writes products for these)
EVENTS = ["gjerdrum-landslide-2020", "la-clapiere-landslide-2014", "laurichard-rock-glacier-2014",
          "veneto-flash-flood-2018", "veneto-flood-pordenone-2018"]
EDITED = "gjerdrum-landslide-2020"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("incremental")
    events = root / "events"
    events.mkdir()
    for name in EVENTS:
        shutil.copy(default_events_dir() / f"{name}.geojson", events)
    write_samples(root / "samples", events)
    return events, root / "samples"


def _files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _runs(work: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(work / "state.sqlite") as db:
        return db.execute("SELECT build, event_id, item_id FROM runs ORDER BY build, item_id").fetchall()


def _item_dirs(report) -> dict[str, str]:  # noqa: ANN001 - a BuildReport
    return {f"{r.collection}/{r.item_id}": r.event_id for r in report.results}


def test_rebuild_reruns_only_the_edited_event(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    src_events, samples = inputs
    events = tmp_path / "events"
    shutil.copytree(src_events, events)
    work, out = tmp_path / "work", tmp_path / "catalog"
    first = build(events, [samples], out, BuildOptions(jobs=2), work=work)
    assert first.ok and first.ran == 18 and first.reused == 0
    assert sum(n for n, _ in first.per_worker().values()) == 18 and len(first.per_worker()) <= 2  # 2 processes
    assert first.collections == {"events": 5, "flatsim": 5, "sentinel-1": 6, "sentinel-2": 7}
    before = _files(out)
    runs = _runs(work)
    assert len(runs) == 18 and {b for b, _, _ in runs} == {1}
    edited_items = sorted(i for _, e, i in runs if e == EDITED)
    assert edited_items  # the sample products include this event's acquisitions

    # an unchanged rebuild converts nothing and writes the same bytes
    again = build(events, [samples], out, BuildOptions(jobs=2), work=work)
    assert again.ok and again.ran == 0 and again.reused == 18
    assert _files(out) == before
    assert [r for r in _runs(work) if r[0] == 2] == []

    # edit one event's description: exactly its tasks run again
    path = events / f"{EDITED}.geojson"
    feature = json.loads(path.read_text())
    feature["properties"]["description"] += " Edited for the incremental-build test."
    path.write_text(json.dumps(feature, indent=2))
    planned = build(events, [samples], out, BuildOptions(jobs=2), work=work, dry_run=True)
    assert sorted(i for _, i, what in planned.planned if what == "run") == edited_items
    assert sum(1 for *_, what in planned.planned if what == "reuse") == 18 - len(edited_items)
    assert _files(out) == before  # a dry run writes nothing

    third = build(events, [samples], out, BuildOptions(jobs=2), work=work)
    assert third.ok and third.ran == len(edited_items) and third.reused == 18 - len(edited_items)
    assert sorted(i for b, _, i in _runs(work) if b == 3) == edited_items
    assert {e for b, e, _ in _runs(work) if b == 3} == {EDITED}
    after = _files(out)
    others = [d for d, e in _item_dirs(third).items() if e != EDITED]
    assert len(others) == 18 - len(edited_items)
    for d in others:
        mine = {k: v for k, v in after.items() if k.startswith(d + "/")}
        assert mine and mine == {k: v for k, v in before.items() if k.startswith(d + "/")}, d
    # the edited event's own item in the events collection carries the new description
    assert after[f"events/{EDITED}/{EDITED}.json"] != before[f"events/{EDITED}/{EDITED}.json"]


def test_partial_runs_select_tasks(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    events, samples = inputs
    plan = build(events, [samples], tmp_path / "c", dry_run=True,
                 select=Selection(events=("veneto-flash-flood-2018",)))
    assert plan.planned and {i.split("_")[0] for _, i, _ in plan.planned} == {"veneto-flash-flood-2018"}
    assert {w for *_, w in plan.planned} == {"run"} and not (tmp_path / "c").exists()
    assert len(build(events, [samples], tmp_path / "c", dry_run=True, select=Selection(limit=4)).planned) == 4
    # acquisitions from 2019 on (a naive date is UTC): the five Gjerdrum products, whose names (ESA's
    # format: S1 start time, S2 sensing time) carry dates from 2020-12-15 to 2021-01-05
    recent = build(events, [samples], tmp_path / "c", dry_run=True, select=Selection(since=datetime(2019, 1, 1)))
    ids = sorted(i for _, i, _ in recent.planned)
    assert len(ids) == 5 and all(i.startswith("gjerdrum-landslide-2020_S") for i in ids)
    assert sorted(re.search(r"_(\d{8})T", i).group(1) for i in ids) == [
        "20201215", "20201224", "20201225", "20210102", "20210105"]


KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from stac_mmtp.build import build
    from stac_mmtp.sources import BuildOptions

    def progress(phase, done, total):
        if phase == "convert" and done == 5:
            os.kill(os.getpid(), signal.SIGKILL)  # midway: 5 of the tasks are finished and recorded

    build(Path(sys.argv[1]), [Path(sys.argv[2])], Path(sys.argv[3]), BuildOptions(jobs=int(sys.argv[5])),
          progress=progress, work=Path(sys.argv[4]))
""")


def test_killed_build_resumes(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    events, samples = inputs
    work, out = tmp_path / "work", tmp_path / "catalog"
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:  # a file, not a pipe: nothing waits on what the killed build's workers hold
        proc = subprocess.run([sys.executable, "-c", KILLER, str(events), str(samples), str(out), str(work), "2"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, timeout=300)
    assert proc.returncode == -9, log.read_text()[-2000:]
    assert not out.exists()  # the tree is only swapped in when complete
    killed = _runs(work)
    assert len(killed) >= 5 and {b for b, _, _ in killed} == {1}
    resumed = build(events, [samples], out, BuildOptions(jobs=2), work=work)
    assert resumed.ok and resumed.collections == {"events": 5, "flatsim": 5, "sentinel-1": 6, "sentinel-2": 7}
    assert resumed.reused == len(killed) and resumed.ran == 18 - len(killed)
    every = {r.item_id for r in resumed.results}
    assert len(every) == 18
    assert sorted(i for b, _, i in _runs(work) if b == 2) == sorted(every - {i for _, _, i in killed})
    assert not list(work.rglob("*.part"))  # a killed task's partial outputs were discarded
    # the resumed tree holds the same bytes as one built in one go
    fresh = build(events, [samples], tmp_path / "fresh", BuildOptions(jobs=2))
    assert fresh.ok and _files(out) == _files(tmp_path / "fresh")


def test_cli_build_is_incremental_by_default(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    """`stac-mmtp build` keeps its work directory beside --out: a second build reruns nothing, and
    --dry-run lists every task as reused; --event narrows a run to one event's tasks."""
    from click.testing import CliRunner

    from stac_mmtp.commands.main import main

    events, samples = inputs
    out = tmp_path / "catalog"
    args = ["build", "--events", str(events), "--products", str(samples), "--out", str(out), "--annotations",
            str(tmp_path), "--json"]

    def run(*extra: str) -> dict:
        r = CliRunner().invoke(main, [*args, *extra], catch_exceptions=False)
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)

    first = run()
    n = len(first["items"])
    assert first["ran"] == n and first["reused"] == 0 and (tmp_path / "work" / "state.sqlite").is_file()
    dry = run("--dry-run")
    assert dry["dry_run"] is True and len(dry["planned"]) == n and {p["action"] for p in dry["planned"]} == {"reuse"}
    second = run()
    assert second["ran"] == 0 and second["reused"] == n
    assert [i["item"] for i in second["items"]] == [i["item"] for i in first["items"]]
    only = run("--event", EDITED, "--dry-run")
    assert {p["item"].split("_")[0] for p in only["planned"]} == {EDITED}


def test_results_past_the_spill_size_are_on_disk_and_read_the_same(inputs: tuple[Path, Path], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A build's results past results.SPILL go to a temporary SQLite file: the report reads the same from it
    (order, counts, per worker, failures), and the file goes with the log."""
    import os

    import stac_mmtp.build.results as results_mod
    from stac_mmtp.build.results import ResultLog
    from stac_mmtp.build.tasks import TaskResult

    events, samples = inputs
    work = tmp_path / "work"
    kept = build(events, [samples], tmp_path / "kept", BuildOptions(jobs=2), work=work)
    monkeypatch.setattr(results_mod, "SPILL", 4)
    spilled = build(events, [samples], tmp_path / "spilled", BuildOptions(jobs=2))
    again = build(events, [samples], tmp_path / "again", BuildOptions(jobs=2), work=work)  # every task reused
    assert spilled.results.spilled and again.results.spilled and not kept.results.spilled
    on_disk = sorted(p.parent.relative_to(tmp_path / "spilled").as_posix() for p in (tmp_path / "spilled").glob("*/*/*.json")
                     if p.parent.parent.name != "events")
    fields = [(r.collection, r.item_id, r.event_id, r.role, r.ok) for r in kept.results]
    assert [f"{c}/{i}" for c, i, *_ in fields] == on_disk and len(fields) == 18
    assert [(r.collection, r.item_id, r.event_id, r.role, r.ok) for r in spilled.results] == fields
    assert [(r.collection, r.item_id, r.reused, r.ok) for r in again.results] == [(c, i, True, True) for c, i, *_ in fields]
    assert (spilled.ran, spilled.reused, again.ran, again.reused) == (18, 0, 0, 18) and spilled.ok and again.ok
    assert sum(n for n, _ in spilled.per_worker().values()) == 18 and again.per_worker() == {}
    assert all(r.item is None and isinstance(r.ok, bool) and r.worker for r in spilled.results)

    log = ResultLog(spill=2)
    for k, (coll, ok) in enumerate([("s2", True), ("s1", False), ("s2", False), ("s1", True)]):
        log.append(TaskResult("ev", f"p{k}", coll, f"item-{k % 2}", "pre-event", ok, 1.5, message="" if ok else f"bad {k}",
                              worker=f"host:{k % 2}"))
    assert log.spilled and len(log) == 4
    assert [(r.collection, r.item_id, r.product) for r in log] == [("s1", "item-1", "p1"), ("s1", "item-1", "p3"),
                                                                   ("s2", "item-0", "p0"), ("s2", "item-0", "p2")]
    assert [r.message for r in log.failed()] == ["bad 1", "bad 2"]
    assert log.per_worker() == {"host:0": (2, 1), "host:1": (2, 1)} and log.counts() == (4, 0)
    scratch = log._dir
    assert scratch and os.path.isdir(scratch)
    log.close()
    assert not os.path.exists(scratch)
