"""`stac-mmtp overview`: the dataset at a glance, from a build of the sample products against the real inventory."""

from __future__ import annotations

import json
import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from stac_mmtp.build import build
from stac_mmtp.build.labels import dataset_hook
from stac_mmtp.commands.main import main
from stac_mmtp.dataset.inventory import continent, load_inventory
from stac_mmtp.paths import default_annotations_dir, default_events_dir
from stac_mmtp.sources.samples import write_samples

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("overview")
    write_samples(root / "samples")
    report = build(default_events_dir(), [root / "samples"], root / "catalog",
                   extra_bundles=dataset_hook(default_annotations_dir(), default_events_dir()), overview=True)
    assert report.ok, report.failures
    return root / "catalog"


def test_overview_files(built: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["overview", str(built), "--out", str(tmp_path / "ov")])
    assert result.exit_code == 0, result.output
    names = [Path(line).name for line in result.output.split()]
    assert names == ["overview.png", "overview.html", "overview.json"]
    png = Image.open(tmp_path / "ov" / "overview.png")
    assert png.format == "PNG" and png.size == (1600, 1100)
    # the README's picture is this command's output: regenerated, it has the same size
    assert Image.open(REPO / "docs" / "img" / "overview.png").size == png.size
    page = (tmp_path / "ov" / "overview.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")

    # the numbers are the inventory's: every event of it, per phenomenon x continent, and the splits of the build
    numbers = json.loads((tmp_path / "ov" / "overview.json").read_text())
    embedded = json.loads(re.search(r'<script type="application/json" id="overview-data">(.*?)</script>', page,
                                    re.S).group(1))
    assert embedded == numbers
    inventory = load_inventory(default_events_dir())
    assert numbers["events"] == len(inventory)
    expected = Counter((ev.phenomenon, continent(ev)) for ev in inventory)
    got = Counter({(ph, c): sum(ss.values()) for ph, cs in numbers["counts"].items() for c, ss in cs.items()})
    assert got == expected
    splits = Counter(json.loads(p.read_text())["properties"]["ml-aoi:split"] for p in (built / "events").glob("*/*.json"))
    got_splits = Counter()
    for cs in numbers["counts"].values():
        for ss in cs.values():
            got_splits.update(ss)
    assert got_splits == splits
    cascades = sum(len(ev.triggers) for ev in inventory)
    assert len(numbers["cascades"]) == cascades
    items = Counter(p.parent.parent.name for c in ("sentinel-1", "sentinel-2", "flatsim") for p in (built / c).glob("*/*.json"))
    assert numbers["acquisitions"] == dict(items)


class _Refs(HTMLParser):
    """Every URL a tag of the page would load (src, href, data), and the inline scripts' sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [(tag, v or "") for k, v in attrs if k in ("src", "href", "data", "srcset")]
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def test_overview_page_is_interactive_and_offline(built: Path) -> None:
    """The page carries Bokeh's scripts and its data; nothing it loads comes from another host."""
    page = (built / "overview" / "overview.html").read_text(encoding="utf-8")
    refs = _Refs()
    refs.feed(page)
    # no script, style sheet, image, font or data file from anywhere else (links to the build's items are local)
    assert not [r for r in refs.refs if re.match(r"\s*(https?:)?//", r[1], re.I)], refs.refs
    assert not [r for r in refs.refs if r[0] in ("script", "link", "img", "iframe", "object", "source")], refs.refs
    assert not re.search(r"@import|url\(\s*[\"']?(https?:)?//", page, re.I)
    # Bokeh itself is inline (its version is the installed one), and the plots' document is in the page
    import bokeh

    assert any(s.lstrip().startswith("/* BEGIN bokeh.min.js */") for s in refs.scripts)
    assert f"Bokeh v{bokeh.__version__}" in page or f'"version":"{bokeh.__version__}"' in page.replace(" ", "")
    # the map's hover names the event (id, title, date, phenomenon); a tap (four plots) opens its item
    for tip in ('["event","@id"]', '["title","@title"]', '["date","@date"]', '["phenomenon","@phenomenon"]'):
        assert tip in page, tip
    assert page.count('"name":"TapTool"') == page.count('"name":"OpenURL"') == 4
    # the tap's URL: one relative link per event, each to an item of the build
    events = {p.parent.name for p in (built / "events").glob("*/*.json")}
    linked = set(re.findall(r"\.\./events/([a-z0-9-]+)/\1\.json", page))
    assert linked == events
    assert all((built / "overview" / f"../events/{e}/{e}.json").resolve().is_file() for e in linked)
    # the land is drawn from the shipped polygons: a vertex of Norway's north coast in ne_110m_land.geojson
    assert re.search(r"24\.55\s*,", page) and re.search(r"71\.03\s*[,\]]", page)
    size = len(page.encode())
    assert 1_000_000 < size < 3_000_000, size  # Bokeh's JS (about 1.3 MB) and the data; reported in docs/browser.md


def test_overview_linked_from_the_root_catalog(built: Path) -> None:
    """`build(overview=True)` writes overview/ into the tree and links it from the root catalog."""
    tree = built
    cat = json.loads((tree / "catalog.json").read_text())
    assets = cat["assets"]
    assert assets["overview"]["href"] == "./overview/overview.png" and assets["overview"]["type"] == "image/png"
    assert assets["overview-html"]["type"] == "text/html" and assets["overview-html"]["title"]
    assert (tree / "overview" / "overview.html").stat().st_size == assets["overview-html"]["file:size"]


def test_overview_of_a_directory_without_a_build(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["overview", str(tmp_path)])
    assert result.exit_code == 2 and "no catalog.json" in result.output
    assert not (tmp_path / "overview").exists()
