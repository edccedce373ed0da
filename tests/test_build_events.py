"""Build of the root catalog and events collection: valid offline, deterministic, cascades both ways."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import pytest
import referencing
import referencing.jsonschema
from helpers import read_only, write_event

from stac_mmtp.build import build
from stac_mmtp.errors import InputError
from stac_mmtp.release.validate import validate_tree


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    d = tmp_path / "events"
    write_event(d, "quake-2015", phenomenon="earthquake", datetime="2015-04-25T06:11:25Z",
                references=[{"title": "paper", "doi": "10.1126/science.aac8353"}, {"title": "p", "href": "https://usgs.gov/"}])
    write_event(d, "slide-2015", datetime="2015-04-25T07:00:00Z", triggered_by=["quake-2015"])
    write_event(d, "glacier-2016", phenomenon="rock-glacier", state="active", datetime=None,
                start_datetime="2016-01-01T00:00:00Z", end_datetime="2020-12-31T00:00:00Z")
    return d


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_events_tree(inventory: Path, tmp_path: Path, schema_store, no_network) -> None:
    out = tmp_path / "catalog"
    report = build(inventory, [], out)
    assert report.ok and report.collections == {"events": 3}
    root = json.loads((out / "catalog.json").read_text())
    assert root["stac_version"] == "1.1.0" and root["type"] == "Catalog"
    assert [lk["href"] for lk in root["links"] if lk["rel"] == "child"] == ["./events/collection.json"]
    coll = json.loads((out / "events" / "collection.json").read_text())
    assert coll["summaries"]["mmtp:phenomenon"] == ["earthquake", "landslide", "rock-glacier"]
    assert coll["extent"]["temporal"]["interval"] == [["2015-04-25T06:11:25Z", "2020-12-31T00:00:00Z"]]
    assert coll["license"] == "CC-BY-4.0" and "sci:citation" in coll
    quake = json.loads((out / "events/quake-2015/quake-2015.json").read_text())
    slide = json.loads((out / "events/slide-2015/slide-2015.json").read_text())
    assert {"rel": "triggers-hazard", "href": "../../events/slide-2015/slide-2015.json", "type": "application/geo+json",
            "title": slide["properties"]["title"]} in quake["links"]
    assert any(lk["rel"] == "triggered-by-hazard" and lk["href"].endswith("quake-2015.json") for lk in slide["links"])
    assert quake["properties"]["mmtp:triggers"] == ["slide-2015"] and quake["properties"]["sci:doi"] == "10.1126/science.aac8353"
    glacier = json.loads((out / "events/glacier-2016/glacier-2016.json").read_text())
    assert glacier["properties"]["datetime"] is None
    assert glacier["properties"]["mmtp:event_start_datetime"] == "2016-01-01T00:00:00Z"
    # every href relative: the same tree works on disk and on object storage
    assert (out / "extensions/mmtp/v1.0.0/schema.json").is_file()  # the release ships our schema
    for p in out.rglob("*.json"):
        if p.is_relative_to(out / "extensions"):
            continue
        for lk in json.loads(p.read_text())["links"]:
            assert lk["rel"] in ("cite-as", "about", "license") or not lk["href"].startswith(("/", "file:", "http"))
    report_v = validate_tree(out, schema_store)
    assert report_v.ok, [str(p) for p in report_v.problems]
    assert report_v.by_type == {"Catalog": 1, "Collection": 1, "Feature": 3}
    assert no_network == []


def test_build_is_deterministic(inventory: Path, tmp_path: Path) -> None:
    build(inventory, [], tmp_path / "a")
    build(inventory, [], tmp_path / "b")
    assert _tree_digest(tmp_path / "a") == _tree_digest(tmp_path / "b")


def test_bad_inventory_writes_nothing(inventory: Path, tmp_path: Path) -> None:
    out = tmp_path / "catalog"
    build(inventory, [], out)
    before = _tree_digest(out)
    write_event(inventory, "bad", phenomenon="meteor")
    with pytest.raises(InputError):
        build(inventory, [], out)
    assert _tree_digest(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".catalog")]


def test_independent_validator(inventory: Path, tmp_path: Path, schema_dir: Path) -> None:
    """A plain jsonschema + referencing validator over the mirror (no project code) agrees."""
    out = tmp_path / "catalog"
    build(inventory, [], out)
    repo = Path(__file__).resolve().parents[1]

    def retrieve(uri: str) -> referencing.Resource:
        uri = uri.split("#")[0]
        if uri.startswith("https://stac-mmtp.github.io/stac-mmtp/extensions/mmtp/"):
            path = repo / "extensions/mmtp/json-schema/schema.json"
        else:
            path = schema_dir / uri.removeprefix("https://")
        return referencing.Resource.from_contents(json.loads(path.read_text()), referencing.jsonschema.DRAFT7)

    registry = referencing.Registry(retrieve=retrieve)
    checked = 0
    for path in sorted(p for p in out.rglob("*.json") if not p.is_relative_to(out / "extensions")):  # STAC objects
        obj = json.loads(path.read_text())
        kind = {"Feature": "item-spec/json-schema/item.json", "Collection": "collection-spec/json-schema/collection.json",
                "Catalog": "catalog-spec/json-schema/catalog.json"}[obj["type"]]
        for url in [f"https://schemas.stacspec.org/v1.1.0/{kind}", *obj.get("stac_extensions", [])]:
            errors = list(jsonschema.Draft7Validator({"$ref": url}, registry=registry).iter_errors(obj))
            assert errors == [], (path, url, errors[0].message if errors else None)
            checked += 1
    assert checked >= 10


def test_outputs_readable_by_others(tmp_path) -> None:
    """Temporary files are owner-only; what lands in the tree gets the normal mode (umask 022 here)."""
    import os
    import stat

    from stac_mmtp.atomic import staged_dir, staged_file, write_json

    old = os.umask(0o022)
    try:
        with staged_dir(tmp_path / "tree") as stage:
            write_json(stage / "a.json", {"a": 1})
            with staged_file(stage / "b.bin") as tmp:
                tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "tree").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "tree" / "a.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "tree" / "b.bin").stat().st_mode) == 0o644


# --------------------------------------------------------------------------- never destroy what build did not create
def test_build_refuses_a_directory_it_did_not_create(inventory: Path, tmp_path: Path) -> None:
    mine = tmp_path / "my-data"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(InputError, match="not a previous build"):
        build(inventory, [], mine)
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
    assert (mine / "thesis.tex").read_text() == "years of work"


def test_build_replaces_empty_absent_and_previous_builds(inventory: Path, tmp_path: Path) -> None:
    from stac_mmtp.build import BUILD_MARKER

    empty = tmp_path / "empty"
    empty.mkdir()
    build(inventory, [], empty)
    assert (empty / BUILD_MARKER).is_file() and (empty / "catalog.json").is_file()
    (empty / "events" / "stale.txt").write_text("from the old build")
    build(inventory, [], empty)  # a previous build: replaced whole
    assert not (empty / "events" / "stale.txt").exists()
    build(inventory, [], tmp_path / "absent" / "catalog")
    assert (tmp_path / "absent" / "catalog" / BUILD_MARKER).is_file()


def test_build_refuses_an_out_that_holds_its_inputs(inventory: Path, tmp_path: Path) -> None:
    from stac_mmtp.build import BUILD_MARKER

    (tmp_path / BUILD_MARKER).write_text("")  # even a directory marked as a build: it holds the events
    products = tmp_path / "products"
    products.mkdir()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for out in (tmp_path, inventory):
        with pytest.raises(InputError, match="holds the input"):
            build(inventory, [], out)
    with pytest.raises(InputError, match="holds the input"):
        build(inventory, [products], products)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_staged_dir_restores_the_old_tree_when_the_swap_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection into the OS call: the second rename (new tree into place) fails."""
    import os

    from stac_mmtp import atomic

    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "old.txt").write_text("old")
    calls = []
    real_replace = os.replace

    def failing_replace(src, dst):  # noqa: ANN001, ANN202
        calls.append((src, dst))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space"), atomic.staged_dir(tree) as stage:
        (stage / "new.txt").write_text("new")
    monkeypatch.undo()
    assert [p.name for p in tree.iterdir()] == ["old.txt"] and (tree / "old.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["tree"]  # no .tmp or .old left beside it


def test_staged_dir_recovers_a_tree_left_aside_by_a_killed_swap(tmp_path: Path) -> None:
    """A process killed between the renames leaves `.tree.X.old/tree`; the next swap starts from it."""
    from stac_mmtp.atomic import staged_dir

    aside = tmp_path / ".tree.abc.old" / "tree"
    aside.mkdir(parents=True)
    (aside / "old.txt").write_text("old")
    with staged_dir(tmp_path / "tree") as stage:
        assert (tmp_path / "tree" / "old.txt").read_text() == "old"  # put back before the new tree is made
        (stage / "new.txt").write_text("new")
    assert [p.name for p in (tmp_path / "tree").iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["tree"]


def test_default_inventory_is_the_package_checkout_not_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stac_mmtp import paths

    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "catalog" / "events").mkdir(parents=True)  # someone's catalog/ without events/*.geojson
    (tmp_path / "catalog" / "catalog.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert paths.default_events_dir() == repo / "catalog" / "events"
    write_event(tmp_path / "catalog" / "events", "other-2020")  # even one with events is not taken
    assert paths.default_events_dir() == repo / "catalog" / "events"
    assert paths.default_annotations_dir() == repo / "catalog" / "annotations"


def test_read_only_output_is_an_output_error(inventory: Path, tmp_path: Path) -> None:
    from stac_mmtp.errors import OutputError

    with read_only(tmp_path / "ro") as parent, pytest.raises(OutputError) as info:
        build(inventory, [], parent / "catalog")
    assert str(parent) in str(info.value) and "cannot write" in str(info.value)
    assert "\n" not in str(info.value) and list(parent.iterdir()) == []


def test_ongoing_active_event_item_ends_today(tmp_path: Path, schema_store) -> None:
    """An active event without end_datetime: its item runs to the start of the build's day (UTC)."""
    from datetime import UTC, datetime

    write_event(tmp_path / "ev", "glacier-2016", phenomenon="rock-glacier", state="active", datetime=None,
                start_datetime="2016-01-01T00:00:00Z")
    today = datetime.now(UTC).date().isoformat()
    build(tmp_path / "ev", [], tmp_path / "out")
    item = json.loads((tmp_path / "out/events/glacier-2016/glacier-2016.json").read_text())
    props = item["properties"]
    assert (props["start_datetime"], props["end_datetime"]) == ("2016-01-01T00:00:00Z", f"{today}T00:00:00Z")
    assert props["mmtp:state"] == "active"
    assert validate_tree(tmp_path / "out", schema_store).problems == []
