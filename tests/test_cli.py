"""The command line: --help everywhere, exit codes scripts rely on, errors naming file and field."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from helpers import read_only, write_event

from stac_mmtp.commands.main import LazyGroup, main

REPO = Path(__file__).resolve().parents[1]
ALL_COMMANDS = ["annotations", "build", "discover", "events", "inspect", "load-pgstac", "overview", "preview", "publish",
                "release", "sample", "search", "serve", "splits", "validate", "verify"]


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path, lazy ones included (they are not in `group.commands` until looked up)."""
    ctx = click.Context(group)
    out = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, (*prefix, name))
    return out


def _listed_commands(help_text: str) -> dict[str, str]:
    """Command name -> short help, from the "Commands:" section of a group's --help."""
    section = help_text.split("\nCommands:\n", 1)[1]
    return dict(line.split(None, 1) for line in section.splitlines() if line.startswith("  ") and line.strip())


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


@pytest.mark.parametrize("args", [(), *_commands(main)])
def test_help_everywhere(args: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def test_events_check_ok(tmp_path: Path) -> None:
    # before Sentinel-2's first images: marked SAR-only, as `events check` requires
    write_event(tmp_path, "quake-2015", phenomenon="earthquake", datetime="2015-04-25T06:11:25Z", modalities=["sentinel-1"])
    write_event(tmp_path, "slide-2015", datetime="2015-04-25T07:00:00Z", triggered_by=["quake-2015"],
                modalities=["sentinel-1"])
    result = CliRunner().invoke(main, ["events", "check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "2 events" in result.output and "1 cascades" in result.output and "quake-2015" in result.output


def test_events_check_bad_exit_2(tmp_path: Path) -> None:
    write_event(tmp_path, "slide", datetime="2999-01-01T00:00:00Z")
    result = CliRunner().invoke(main, ["events", "check", str(tmp_path)])
    assert result.exit_code == 2
    assert "slide.geojson [datetime]" in result.output and "future" in result.output


def test_build_and_validate_cli(tmp_path: Path, schema_dir: Path, no_network) -> None:
    events = tmp_path / "events"
    write_event(events, "gjerdrum-landslide-2020")
    out = tmp_path / "catalog"
    r = CliRunner().invoke(main, ["-q", "build", "--events", str(events), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "events/collection.json").read_text())["summaries"]["mmtp:phenomenon"] == ["landslide"]
    r = CliRunner().invoke(main, ["validate", str(out), "--schema-cache", str(schema_dir)])
    assert r.exit_code == 0, r.output
    # catalog, events collection + item, annotations collection + the vector label item of the Gjerdrum sketch
    assert "validated 5 objects" in r.output
    # corrupt an item: exit 1 and the file is named
    item = out / "events/gjerdrum-landslide-2020/gjerdrum-landslide-2020.json"
    doc = json.loads(item.read_text())
    doc["properties"]["mmtp:phenomenon"] = "meteor"
    item.write_text(json.dumps(doc))
    r = CliRunner().invoke(main, ["validate", str(out), "--schema-cache", str(schema_dir)])
    assert r.exit_code == 1
    assert "gjerdrum-landslide-2020.json" in r.output and "meteor" in r.output
    assert no_network == []


def test_validate_missing_schema_exit_2(tmp_path: Path) -> None:
    events = tmp_path / "events"
    write_event(events, "x-2020")
    CliRunner().invoke(main, ["-q", "build", "--events", str(events), "--out", str(tmp_path / "c")])
    r = CliRunner().invoke(main, ["validate", str(tmp_path / "c"), "--schema-cache", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "is not in the schema cache" in r.output


def test_inspect_unknown_product(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    r = CliRunner().invoke(main, ["inspect", str(junk)])
    assert r.exit_code == 1 and "not a product of a supported family" in r.output


def test_publish_command_loads_without_shapely_or_numpy() -> None:
    """Subcommands are imported on demand: `publish` must not pay for the inventory's shapely/numpy."""
    proc = _run_python("""
        import json, sys
        import click
        from stac_mmtp.commands.main import main

        heavy = ("shapely", "numpy", "stac_mmtp.dataset.inventory")
        seen = {"after_import": [m for m in heavy if m in sys.modules]}
        cmd = main.get_command(click.Context(main), "publish")
        seen["publish"] = [cmd.name, type(cmd).__module__, cmd.callback.__module__]
        seen["after_publish"] = [m for m in heavy if m in sys.modules]
        main.get_command(click.Context(main), "splits")  # control: this one does need the inventory
        seen["after_splits"] = [m for m in heavy if m in sys.modules]
        print(json.dumps(seen))
    """)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["after_import"] == []
    assert seen["publish"] == ["publish", "click.core", "stac_mmtp.commands.publish"]
    assert seen["after_publish"] == []
    assert seen["after_splits"] == ["shapely", "numpy", "stac_mmtp.dataset.inventory"]


def test_main_help_lists_every_command() -> None:
    """`python -m stac_mmtp --help` (a fresh process) still lists each command with its short help."""
    proc = subprocess.run([sys.executable, "-m", "stac_mmtp", "--help"], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    listed = _listed_commands(proc.stdout)
    assert sorted(listed) == ALL_COMMANDS
    assert listed["publish"].startswith("Publish the built tree BUILD_DIR to object storage")
    assert listed["sample"].startswith("Write small format-faithful sample products")
    assert listed["events"] == "Work with the event inventory (catalog/events/*.geojson)."


def test_lazy_group_leaves_out_a_missing_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A command module that is not installed is left out of --help; a module whose own import
    fails (a missing dependency inside it) is a bug and is not hidden."""
    (tmp_path / "mmtp_broken_cmd.py").write_text("import mmtp_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    group = LazyGroup("g", lazy_subcommands={
        "publish": "stac_mmtp.commands.publish:publish_command",
        "ghost": "stac_mmtp.no_such_module:ghost_command",
    })
    r = CliRunner().invoke(group, ["--help"])
    assert r.exit_code == 0, r.output
    assert list(_listed_commands(r.output)) == ["publish"]
    r = CliRunner().invoke(group, ["ghost"])
    assert r.exit_code == 2 and "No such command 'ghost'" in r.output

    broken = LazyGroup("g", lazy_subcommands={"broken": "mmtp_broken_cmd:command"})
    r = CliRunner().invoke(broken, ["--help"])
    assert r.exit_code == 1
    assert isinstance(r.exception, ModuleNotFoundError) and r.exception.name == "mmtp_no_such_dependency"


# --------------------------------------------------------------------------- never destroy, never a traceback
def _checkout_like(tmp_path: Path) -> Path:
    """A directory laid out as a checkout: catalog/ with an inventory and other committed files."""
    write_event(tmp_path / "catalog" / "events", "gjerdrum-landslide-2020")
    (tmp_path / "catalog" / "collections").mkdir()
    (tmp_path / "catalog" / "collections" / "notes.md").write_text("committed")
    return tmp_path


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("out", ["catalog", ".", "catalog/events"])
def test_build_out_over_the_inventory_exit_2_nothing_touched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             out: str) -> None:
    root = _checkout_like(tmp_path)
    before = _files(root)
    monkeypatch.chdir(root)
    r = CliRunner().invoke(main, ["-q", "build", "--events", "catalog/events", "--out", out])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and ("holds the input" in r.output or "not a previous build" in r.output)
    assert _files(root) == before


def test_build_out_over_a_foreign_directory_exit_2(tmp_path: Path) -> None:
    events = tmp_path / "events"
    write_event(events, "x-2020")
    other = tmp_path / "photos"
    other.mkdir()
    (other / "a.jpg").write_bytes(b"\xff\xd8")
    r = CliRunner().invoke(main, ["-q", "build", "--events", str(events), "--out", str(other)])
    assert r.exit_code == 2 and "photos: not empty and not a previous build" in r.output
    assert (other / "a.jpg").read_bytes() == b"\xff\xd8"


@pytest.mark.parametrize(("args", "message"), [
    (["--jobs", "-1"], "Invalid value for '-j' / '--jobs'"),
    (["--buffer", "-5"], "Invalid value for '--buffer'"),
    (["--products", "no/such/dir"], "Invalid value for '--products'"),
    (["--annotations", "no/such/dir"], "Invalid value for '--annotations'"),
])
def test_build_bad_options_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    events = tmp_path / "events"
    write_event(events, "x-2020")
    out = tmp_path / "c"
    r = CliRunner().invoke(main, ["-q", "build", "--events", str(events), "--out", str(out), *args])
    assert r.exit_code == 2 and message in r.output, r.output
    assert not out.exists()


def test_build_empty_products_directory_fails_unless_allowed(tmp_path: Path) -> None:
    events = tmp_path / "events"
    write_event(events, "x-2020")
    empty = tmp_path / "downloads"
    empty.mkdir()
    args = ["build", "--events", str(events), "--products", str(empty), "--out", str(tmp_path / "c")]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1 and "downloads: no product found in this directory" in r.output
    r = CliRunner().invoke(main, [*args, "--allow-empty"])
    assert r.exit_code == 0 and "warning:" in r.output and "no product found" in r.output
    # the command's build writes the overview, linked from the root catalog: one event, no acquisition
    assets = json.loads((tmp_path / "c" / "catalog.json").read_text())["assets"]
    assert assets["overview-html"]["href"] == "./overview/overview.html"
    assert json.loads((tmp_path / "c" / "overview" / "overview.json").read_text())["events"] == 1


def test_build_interrupted_safe_download_is_a_problem(tmp_path: Path) -> None:
    events = tmp_path / "events"
    write_event(events, "x-2020")
    safe = tmp_path / "downloads" / "S2B_MSIL2A_20210101T104329_N0214_R008_T32VPM_20210101T121907.SAFE"
    (safe / "GRANULE").mkdir(parents=True)  # the download stopped before manifest.safe and MTD_MSIL2A.xml
    r = CliRunner().invoke(main, ["build", "--events", str(events), "--products", str(safe.parent),
                                  "--out", str(tmp_path / "c")])
    assert r.exit_code == 1, r.output
    assert f"{safe.name}: not a readable Sentinel product" in r.output.replace("\n", "")
    assert "1 problem(s)" in r.output
    r = CliRunner().invoke(main, ["inspect", str(safe)])
    assert r.exit_code == 1 and f"{safe.name}: not a readable Sentinel product" in r.output.replace("\n", "")


def test_build_read_only_output_exit_1(tmp_path: Path) -> None:
    events = tmp_path / "events"
    write_event(events, "x-2020")
    with read_only(tmp_path / "ro") as parent:
        r = CliRunner().invoke(main, ["-q", "build", "--events", str(events), "--out", str(parent / "catalog")])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"{parent / 'catalog'}: cannot write the output directory (" in r.output.replace("\n", "")


def test_validate_without_catalog_json_exit_2(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a catalog")
    r = CliRunner().invoke(main, ["validate", str(tmp_path)])
    assert r.exit_code == 2 and "no catalog.json here" in r.output, r.output


def test_events_check_unreadable_files_exit_2(tmp_path: Path) -> None:
    write_event(tmp_path, "good-2020")
    (tmp_path / "latin1-2020.geojson").write_bytes('{"title": "Glissement à Saint-Étienne"}'.encode("latin-1"))
    (tmp_path / "folder-2020.geojson").mkdir()
    (tmp_path / "gone-2020.geojson").symlink_to(tmp_path / "deleted.geojson")
    r = CliRunner().invoke(main, ["events", "check", str(tmp_path)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    out = r.output.replace("\n", " ")
    assert "latin1-2020.geojson: not UTF-8" in out
    assert "folder-2020.geojson: a directory, not an event file" in out
    assert "gone-2020.geojson: cannot be read (a dangling symbolic link?)" in out


def test_sample_interrupted_leaves_no_half_product(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run is interrupted (KeyboardInterrupt) right after the second product's files were written:
    nothing of the interrupted writer may be in DIRECTORY, what was there before stays."""
    from stac_mmtp.sources import samples
    from stac_mmtp.sources.sentinel2 import samples as sentinel2_samples

    out = tmp_path / "samples"
    out.mkdir()
    (out / "mine.txt").write_text("kept")
    real = sentinel2_samples.write_product
    calls = []

    def interrupted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(real(*args, **kwargs))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return calls[-1]

    monkeypatch.setattr(sentinel2_samples, "write_product", interrupted)
    monkeypatch.setattr(samples, "WRITERS", samples.WRITERS[:1])
    with pytest.raises(KeyboardInterrupt):
        samples.write_samples(out)
    assert len(calls) == 2 and all(p.name.endswith(".SAFE") for p in calls)
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    monkeypatch.setattr(sentinel2_samples, "write_product", real)
    written = samples.write_samples(out)  # a full run then puts every product in place
    assert sorted(p.name for p in out.iterdir()) == sorted(["mine.txt", *(p.name for p in written)])
    assert len(written) == 5 and all((p / "manifest.safe").is_file() for p in written)
