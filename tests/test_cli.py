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
from helpers import write_event

from stac_mmtp.cli import LazyGroup, main

REPO = Path(__file__).resolve().parents[1]
ALL_COMMANDS = ["annotations", "build", "discover", "events", "inspect", "preview", "publish", "sample", "search", "serve",
                "splits", "validate"]


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
    write_event(tmp_path, "quake-2015", phenomenon="earthquake", datetime="2015-04-25T06:11:25Z")
    write_event(tmp_path, "slide-2015", datetime="2015-04-25T07:00:00Z", triggered_by=["quake-2015"])
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
    assert "validated 3 objects" in r.output
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
        from stac_mmtp.cli import main

        heavy = ("shapely", "numpy", "stac_mmtp.inventory")
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
    assert seen["publish"] == ["publish", "click.core", "stac_mmtp.publish"]
    assert seen["after_publish"] == []
    assert seen["after_splits"] == ["shapely", "numpy", "stac_mmtp.inventory"]


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
        "publish": "stac_mmtp.publish:publish_command",
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
