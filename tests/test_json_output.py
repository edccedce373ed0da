"""`--json` on every listing command: stdout holds one JSON document with stable keys and nothing else;
tables shorten ids in the middle; the progress bar is not drawn when stderr is not a terminal."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_importers import EVENTS, HMA

from stac_mmtp import console
from stac_mmtp.commands.main import main

REPO = Path(__file__).resolve().parents[1]
ANNOTATIONS = REPO / "catalog" / "annotations"


def _json(*args: str, code: int = 0) -> dict[str, Any]:
    """Run the command with --json; stdout must parse as exactly one JSON document."""
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert r.exit_code == code, r.output
    doc = json.loads(r.stdout)  # raises if anything but one document is on stdout
    assert isinstance(doc, dict)
    return doc


def _curated() -> list[dict[str, Any]]:
    feats = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(EVENTS.glob("*.geojson"))]
    return [f for f in feats if f["properties"].get("review_status", "curated") == "curated"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    root = tmp_path_factory.mktemp("json")
    sample = _json("sample", str(root / "samples"), "--json")
    build = _json("build", "--products", str(root / "samples"), "--out", str(root / "catalog"), "--json")
    return root, sample, build


def test_events_check_and_summary(tmp_path: Path) -> None:
    feats = _curated()
    doc = _json("events", "check", str(EVENTS), "--json")
    assert set(doc) == {"directory", "candidates", "phenomena", "events", "cascades"}
    assert doc["events"] == len(feats)
    assert {p["phenomenon"]: p["events"] for p in doc["phenomena"]} == dict(
        Counter(f["properties"]["phenomenon"] for f in feats))
    assert sorted(i for p in doc["phenomena"] for i in p["ids"]) == sorted(f["id"] for f in feats)
    assert all(set(c) == {"trigger", "triggered"} for c in doc["cascades"])
    summary = _json("events", "summary", str(EVENTS), "--json")
    assert summary["events"] == len(feats) and summary["rows"]
    assert "phenomenon" in summary["rows"][0]


def test_events_import(tmp_path: Path) -> None:
    doc = _json("events", "import", "hma-glof", str(HMA), "--out", str(tmp_path / "out"), "--events", str(EVENTS),
                "--json")
    # as test_importers reads the excerpt: 7 written, two duplicates (one of a curated event, one in the file)
    assert sorted(doc["written"]) == sorted(f"hma-glof-{i}" for i in (491, 471, 506, 500, 476, 501, 507))
    assert doc["counts"]["written"] == 7 and doc["counts"]["duplicates"] == 2
    assert sorted((d["candidate"], d["duplicates"]) for d in doc["duplicates"]) == [
        ("hma-glof-698", "south-lhonak-glof-2023"), ("hma-glof-740", "hma-glof-500")]
    assert sorted(doc["written"]) == sorted(p.stem for p in (tmp_path / "out").iterdir())


def test_a_bad_input_still_yields_one_document(tmp_path: Path) -> None:
    doc = _json("events", "import", "gvp", str(HMA), "--out", str(tmp_path / "gvp"), "--json", code=2)
    assert len(doc["errors"]) == 1 and "not a GVP eruption list file" in doc["errors"][0]


def test_annotations_check() -> None:
    doc = _json("annotations", "check", str(ANNOTATIONS), "--events", str(EVENTS), "--json")
    on_disk = sorted([p.name.removesuffix(".geojson") for p in ANNOTATIONS.glob("*/*.geojson")]
                     + [p.name.removesuffix(".geojson.gz") for p in ANNOTATIONS.glob("*/*.geojson.gz")])
    assert sorted(a["annotation"] for a in doc["annotations"]) == on_disk
    assert set(doc["annotations"][0]) == {"event", "annotation", "features", "classes", "observed", "method", "review",
                                          "area_km2"}


def test_sample_build_validate_splits(built: tuple[Path, dict[str, Any], dict[str, Any]], schema_dir: Path) -> None:
    root, sample, build = built
    assert sorted(p["product"] for p in sample["products"]) == sorted(
        p.name for p in (root / "samples").iterdir() if not p.name.startswith("."))
    assert set(build) >= {"items", "collections", "catalog", "events", "warnings"}
    assert all(i["status"] == "ok" and isinstance(i["seconds"], float) for i in build["items"])
    items_on_disk = Counter(p.parent.parent.name for p in (root / "catalog").glob("*/*/*.json")
                            if p.parent.parent.name != "events" and json.loads(p.read_text())["type"] == "Feature")
    assert {c["collection"]: c["items"] for c in build["collections"] if c["collection"] != "events"} == dict(
        items_on_disk)
    val = _json("validate", str(root / "catalog"), "--schema-cache", str(schema_dir), "--json")
    assert val["problems"] == 0 and val["objects"] == sum(val["by_type"].values())
    splits = _json("splits", str(root / "catalog"), "--json")
    assert splits["total"] == sum(r["items"] for r in splits["items"])
    assert len(splits["manifest_sha256"]) == 64
    inv = _json("splits", "--events", str(EVENTS), "--json")
    assert sum(t["events"] for t in inv["totals"]) == len(_curated())
    assert {t["split"] for t in inv["totals"]} == {"train", "validate", "test"}


def test_release_dry_run_and_verify(built: tuple[Path, dict[str, Any], dict[str, Any]], tmp_path: Path) -> None:
    root, _, _ = built
    target = (tmp_path / "dataset").as_uri()
    dry = _json("release", "0.1.0", str(root / "catalog"), "--to", target, "--dry-run", "--allow-synthetic",
                "--json")
    assert dry["dry_run"] is True and dry["version"] == "0.1.0" and dry["previous"] is None
    assert not (tmp_path / "dataset" / "v0.1.0").exists()
    rel = _json("release", "0.1.0", str(root / "catalog"), "--to", target, "--allow-synthetic", "--no-changelog-file",
                "--json")
    assert rel["dry_run"] is False and rel["objects"] == dry["objects"]
    ver = _json("verify", f"{target}/v0.1.0", "--json")
    assert ver["problems"] == 0 and ver["assets"] > 0
    # every object the checksums manifest lists was checked
    manifest = json.loads((tmp_path / "dataset" / "v0.1.0" / "checksums.json").read_text())
    assert ver["objects"] == len(manifest["objects"])


def test_search_json_is_a_feature_collection(built: tuple[Path, dict[str, Any], dict[str, Any]]) -> None:
    root, _, build = built
    doc = _json("search", str(root / "catalog"), "-c", "sentinel-2", "--json")
    assert doc["type"] == "FeatureCollection"
    assert sorted(f["id"] for f in doc["features"]) == sorted(
        i["item"] for i in build["items"] if i["collection"] == "sentinel-2")


def test_middle_ellipsis_keeps_both_ends() -> None:
    assert console.middle_ellipsis("S2A_MSIL2A_20200219T112121_N0214_R037_T29RKH", 21) == "S2A_MSIL2A\u2026037_T29RKH"  # 10 + 1 + 10
    assert console.middle_ellipsis("short", 21) == "short"


def test_table_shortens_ids_in_the_middle_and_wraps_text_by_word(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    rec = Console(width=60, record=True, file=open("/dev/null", "w"))  # noqa: SIM115 - closed with the console
    monkeypatch.setattr(console, "out", rec)
    item = "S2A_MSIL2A_20200219T112121_N0214_R037_T29RKH_20200219T135012-gjerdrum-landslide-2020"
    note = "first usable post-event image of the event"
    console.table("t", ["item", "note"], [[item, note]])
    rows = [ln.split("\u2502")[1:3] for ln in rec.export_text().splitlines() if ln.count("\u2502") == 3]
    ids = [c.strip() for c, _ in rows if c.strip()]
    assert ids == [console.middle_ellipsis(item, len(ids[0]))] and len(ids[0]) < len(item)  # one line, both ends
    assert ids[0].startswith("S2A_MSIL2A") and ids[0].endswith("landslide-2020")
    # the note wrapped over several lines, at spaces: joined back it is the text, no word cut
    notes = [n.strip() for _, n in rows if n.strip()]
    assert len(notes) > 1 and " ".join(notes) == note
    rec.file.close()


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    # a real process, stderr a pipe: the bar draws nothing there (no redraw codes in logs)
    code = ("from stac_mmtp import console\n"
            "with console.progress_bar() as p:\n"
            "    print('callback', p is None)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert r.stdout.strip() == "callback True"
    assert r.stderr == ""


def test_publish_dry_run_json(built: tuple[Path, dict[str, Any], dict[str, Any]], tmp_path: Path) -> None:
    """publish --dry-run --json: one document; every visible file of the tree is planned for upload."""
    root, _, _ = built
    tree = root / "catalog"
    files = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(tree).parts))
    doc = _json("publish", str(tree), "--to", (tmp_path / "mirror").as_uri(), "--dry-run", "--json")
    assert doc["dry_run"] is True and doc["uploads"] == len(files) and doc["problems"] == []
    assert sorted(r["key"] for r in doc["plan"] if r["action"] == "upload") == files
    assert {r["phase"] for r in doc["phases"]} == {"assets", "items", "collections", "root"}
    assert not (tmp_path / "mirror").exists()
