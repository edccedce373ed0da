"""The command line: --help everywhere, exit codes scripts rely on, errors naming file and field."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from helpers import write_event

from stac_mmtp.cli import main


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, (*prefix, name))
    return out


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
