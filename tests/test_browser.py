"""STAC Browser on a built sample catalog, in headless Chromium: what a user sees, read as page text.

The pages are opened by browser/snapshot.js (playwright-core driving Debian's /usr/bin/chromium, no
browser download); it prints each page's visible text as JSON and saves screenshots as test artefacts.
The catalog is given to STAC Browser as a URL, so the same checks run against the `stac-mmtp preview`
server, another origin with or without CORS, and (with publish) a bucket of a local S3 server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from helpers import published_to_s3
from unavailable import unavailable

from stac_mmtp.access.preview import (
    BROWSER_SRC,
    BUILD_INPUTS,
    browser_build_dir,
    browser_url,
    build_key,
    ensure_node_modules,
    ensure_stac_browser,
    serve,
)
from stac_mmtp.build import build
from stac_mmtp.build.labels import dataset_hook
from stac_mmtp.dataset.vocab import extension_schema, field_enum
from stac_mmtp.paths import default_annotations_dir, default_events_dir
from stac_mmtp.sources.samples import write_samples

REPO = Path(__file__).resolve().parents[1]
# Debian's chromium (apt-get install chromium); STAC_MMTP_CHROMIUM names another Chromium or Chrome binary.
CHROMIUM = os.environ.get("STAC_MMTP_CHROMIUM") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file()
                                                     else shutil.which("chromium") or "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("STAC_MMTP_TEST_ARTIFACTS", REPO / "build" / "test-artifacts")) / "browser"

ROOT_TITLE = "stac-mmtp: multi-phenomena, multi-modal, multi-temporal natural-hazard dataset"
# Real titles of inventory events (catalog/events), as the events collection lists them.
EVENT_TITLES = ["Gjerdrum quick-clay landslide", "Ahr valley flood", "Birch glacier collapse (Blatten)"]
S2_ITEM = "gjerdrum-landslide-2020_S2B_MSIL2A_20210102T104441_N0510_R008_T32VPM_20210102T120141"
# What the Sentinel-2 item page must show: its datetime, eo / projection fields, and our fields with the
# labels and value names of browser/mmtp-fields.json (raw keys such as "mmtp:temporal_role" would read
# "Temporal Role" and "first-post-event" without our fields configuration).
S2_ITEM_TEXT = [
    "Time of Data", "2021-01-02 10:44:41 UTC",
    "Electro-Optical", "Cloud Cover",
    "Projection", "EPSG:32632",
    "Hazard phenomenon", "Phenomenon\nLandslide", "Event ID\ngjerdrum-landslide-2020",
    "Timing relative to the event\nFirst acquisition after the event", "Days from the event\n3.325 days",
    "Event time\n2020-12-30 2:57:00 UTC",
    # a sample product: the marker reads as a field, and the title says it too
    "Synthetic sample\nyes", "Synthetic sample: Gjerdrum quick-clay landslide",
]
EVENT_ITEM_TEXT = ["Gjerdrum quick-clay landslide", "Hazard phenomenon", "Phenomenon\nLandslide",
                   "Activity state\nEnded", "Event time\n2020-12-30 2:57:00 UTC", "Hazard codes", "GH0300", "NOR"]
INSAR_ITEM = "la-clapiere-landslide-2014_NSBAS_INT-PKG_S1_ALPES-D139_VV_2015-07-05_2015-07-17"
# An interferogram page shows its InSAR reference and secondary dates (and our fields).
INSAR_ITEM_TEXT = ["Time of Data begins\n2015-07-05 0:00:00 UTC", "Time of Data ends\n2015-07-17 0:00:00 UTC",
                   "Reference Datetime\n2015-07-05T00:00:00Z", "Secondary Datetime\n2015-07-17T00:00:00Z",
                   "Temporal Baseline\n12", "Perpendicular Baseline\n-36.4",
                   "Phenomenon\nSlow-moving landslide", "Timing relative to the event\nDuring the event"]
CORS_ERROR = "when CORS headers are not present"  # STAC Browser's errors.networkError


# --------------------------------------------------------------------------- tools and fixtures


def _missing(reason: str) -> None:
    """Skip locally; fail under CI, or where .ci/run has set STAC_MMTP_REQUIRE_BROWSER=1."""
    unavailable(reason, "STAC_MMTP_REQUIRE_BROWSER")


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    """Chromium and node, and browser/node_modules (`npm ci` when missing: playwright-core drives Chromium)."""
    if not Path(CHROMIUM).is_file():
        _missing(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    node = shutil.which("node")
    if not node or not shutil.which("npm"):
        _missing("node and npm (Node.js >= 20) not found: the browser tests drive Chromium with playwright-core")
    ensure_node_modules()
    return {"node": str(node), "chromium": CHROMIUM}


@pytest.fixture(scope="module")
def stac_browser(tools: dict[str, str]) -> Path:
    """The STAC Browser build (cached; built here on a machine where .ci/run did not build it)."""
    return ensure_stac_browser()


@pytest.fixture(scope="module")
def sample_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo catalog: sample products of real events, built against the real inventory and annotations."""
    root = tmp_path_factory.mktemp("browser")
    write_samples(root / "samples")
    out = root / "catalog"
    # with the annotations, as `stac-mmtp build` makes it: label items and masks are on the maps too
    report = build(default_events_dir(), [root / "samples"], out,
                   extra_bundles=dataset_hook(default_annotations_dir(), default_events_dir()), overview=True)
    assert report.ok, report.failures + [r.message for r in report.results]
    return out


def snapshot(tools: dict[str, str], pages: list[dict[str, Any]], tmp_path: Path, name: str, timeout_ms: int = 30000
             ) -> dict[str, dict[str, Any]]:
    """Open `pages` in headless Chromium; return each page's result (text, missing, errors) by name.

    The results are also written to the artefacts directory as `name`.json, beside the screenshots."""
    spec = tmp_path / "snapshot.json"
    spec.write_text(json.dumps({"chromium": tools["chromium"], "timeout_ms": timeout_ms, "pages": pages}))
    proc = subprocess.run([tools["node"], str(BROWSER_SRC / "snapshot.js"), str(spec)], capture_output=True,
                          text=True, timeout=60 + len(pages) * timeout_ms / 1000, check=False)
    assert proc.returncode == 0, proc.stderr
    result = {p["name"]: p for p in json.loads(proc.stdout)["pages"]}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{name}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    return result


def catalog_pages(browser: str, root: str, prefix: str) -> list[dict[str, Any]]:
    """The root catalog, the events collection, a Sentinel-2 item and an event of the catalog at `root`."""
    base = root.rsplit("/", 1)[0]

    def page(name: str, url: str, expect: list[str], scroll: bool = False) -> dict[str, Any]:
        return {"name": name, "url": browser_url(browser, url), "expect": expect, "scroll": scroll,
                "screenshot": str(ARTIFACTS / f"{prefix}-{name}.png")}

    return [
        # the root catalog's assets (the overview, STAC 1.1 catalog assets) are listed by title (the PNG, role
        # overview, is the page's picture)
        page("root", root, [ROOT_TITLE, "Synthetic sample build", "Natural-hazard events",
                            "Synthetic sample: Sentinel-2 optical imagery around events",
                            "Dataset overview, interactive page (works offline)", "Dataset overview, the numbers"]),
        page("events", f"{base}/events/collection.json", ["Natural-hazard events", *EVENT_TITLES], scroll=True),
        page("s2-item", f"{base}/sentinel-2/{S2_ITEM}/{S2_ITEM}.json", S2_ITEM_TEXT),
        page("event", f"{base}/events/gjerdrum-landslide-2020/gjerdrum-landslide-2020.json", EVENT_ITEM_TEXT),
        page("insar-item", f"{base}/flatsim/{INSAR_ITEM}/{INSAR_ITEM}.json", INSAR_ITEM_TEXT),
    ]


def assert_shown(page: dict[str, Any]) -> None:
    assert page["ready"], (
        f"{page['name']}: not shown within the timeout: {page['missing']}\n"
        f"console: {page['console'][:5]}\nfailed: {page['failed_requests'][:5]}\n--- page text:\n{page['text'][:3000]}"
    )
    assert not page["page_errors"], page["page_errors"]
    assert not page["failed_requests"], page["failed_requests"]


# --------------------------------------------------------------------------- no browser needed


def test_fields_config_covers_the_extension() -> None:
    """Every field of the mmtp schema has a label, and every enum value a human-readable name."""
    labels = json.loads((BROWSER_SRC / "mmtp-fields.json").read_text())["metadata"]
    fields = extension_schema()["definitions"]["fields"]["properties"]
    assert sorted(labels) == sorted(fields)
    for name, spec in labels.items():
        assert spec["label"] and spec["label"] != name
        if fields[name].get("$ref") == "#/definitions/synthetic":  # a boolean: both values named
            assert spec["mapping"] == {"true": "yes", "false": "no"}, name
            continue
        try:
            values = field_enum(name)
        except KeyError:
            assert "mapping" not in spec, name
            continue
        assert sorted(spec["mapping"]) == sorted(values), name
    assert labels["mmtp:temporal_role"]["mapping"]["first-post-event"] == "First acquisition after the event"


def test_rel_headings_sort_in_temporal_order() -> None:
    """Every relation an event page groups by has a heading; sorted as STAC Browser sorts them (by heading),
    the acquisitions come first and in the build's temporal order."""
    from stac_mmtp.stac.events import REL_ANNOTATION, REL_TRIGGERED_BY, REL_TRIGGERS, TEMPORAL_ROLES

    rels = {k: v for k, v in json.loads((BROWSER_SRC / "mmtp-fields.json").read_text())["rels"].items()
            if not k.startswith("_")}
    assert sorted(rels) == sorted([*TEMPORAL_ROLES, REL_ANNOTATION, REL_TRIGGERED_BY, REL_TRIGGERS])
    assert sorted(rels.values()) == [rels[r] for r in (*TEMPORAL_ROLES, REL_ANNOTATION, REL_TRIGGERED_BY, REL_TRIGGERS)]
    assert rels["pre-event"] == PRE and rels["first-post-event"] == FIRST_POST


def test_build_cache_key_follows_its_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A change to the lock file or to our field labels means a new STAC Browser build directory."""
    for name in BUILD_INPUTS:
        shutil.copy2(BROWSER_SRC / name, tmp_path / name)
    monkeypatch.delenv("STAC_MMTP_BROWSER_BUILD", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = browser_build_dir(tmp_path)
    assert first.parent == tmp_path / "cache" / "stac-mmtp" and first.name.startswith("stac-browser-4.0.1-")
    assert browser_build_dir(tmp_path) == first and build_key(tmp_path) == build_key(BROWSER_SRC)
    labels = json.loads((tmp_path / "mmtp-fields.json").read_text())
    labels["metadata"]["mmtp:phenomenon"]["label"] = "Hazard type"
    (tmp_path / "mmtp-fields.json").write_text(json.dumps(labels))
    assert browser_build_dir(tmp_path) != first
    monkeypatch.setenv("STAC_MMTP_BROWSER_BUILD", str(tmp_path / "mine"))
    assert browser_build_dir(tmp_path) == tmp_path / "mine"


def test_lock_pins_stac_browser_and_ol_stac() -> None:
    lock = json.loads((BROWSER_SRC / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/@radiantearth/stac-browser"]["version"] == "4.0.1"
    assert lock["node_modules/ol-stac"]["version"] == "1.2.0"
    # one OpenLayers for STAC Browser and ol-stac: two copies break instanceof checks between them
    assert [k for k in lock if k.endswith("node_modules/ol")] == ["node_modules/ol"]
    assert lock["node_modules/ol"]["version"].startswith("10.6.")
    assert lock["node_modules/playwright-core"]["version"]


def test_browser_url() -> None:
    assert (browser_url("http://127.0.0.1:8000/browser/", "http://127.0.0.1:8000/catalog/catalog.json")
            == "http://127.0.0.1:8000/browser/#/external/http:/127.0.0.1:8000/catalog/catalog.json")
    assert (browser_url("https://example.org/b", "https://data.example.org/mmtp/catalog.json")
            == "https://example.org/b/#/external/data.example.org/mmtp/catalog.json")


def _get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, Message, bytes]:
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@pytest.mark.parametrize("cors", [True, False], ids=["cors", "no-cors"])
def test_server_types_ranges_cors(tmp_path: Path, cors: bool) -> None:
    (tmp_path / "cat" / "c").mkdir(parents=True)
    (tmp_path / "cat" / "catalog.json").write_text('{"type": "Catalog"}')
    (tmp_path / "cat" / "c" / "band.tif").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "cat" / "c" / "x.geojson").write_text("{}")
    with serve({"/catalog/": tmp_path / "cat"}, cors=cors, redirect_root="/browser/#/external/http:/{host}/x") as base:
        status, headers, body = _get(base + "catalog/catalog.json", {"Origin": "http://127.0.0.1:1"})
        assert (status, headers["Content-Type"], body) == (200, "application/json", b'{"type": "Catalog"}')
        assert headers.get("Access-Control-Allow-Origin") == ("*" if cors else None)
        assert _get(base + "catalog/c/x.geojson")[1]["Content-Type"] == "application/geo+json"
        status, headers, body = _get(base + "catalog/c/band.tif", {"Range": "bytes=1000-1100"})
        assert (status, headers["Content-Range"], body) == (206, "bytes 1000-1023/1024", bytes(range(232, 256)))
        assert headers["Content-Type"] == "image/tiff; application=geotiff; profile=cloud-optimized"
        assert _get(base + "catalog/c/band.tif", {"Range": "bytes=-4"})[2] == bytes([252, 253, 254, 255])
        assert _get(base + "catalog/c/band.tif", {"Range": "bytes=5000-"})[0] == 416
        assert _get(base + "catalog/../../etc/passwd")[0] == 404
        assert _get(base + "elsewhere/catalog.json")[0] == 404
        status, headers, _ = _get(base + "catalog/c/band.tif", {"Origin": "http://127.0.0.1:1",
                                                                "Access-Control-Request-Headers": "range"}, "OPTIONS")
        assert status == (204 if cors else 405)
        if cors:
            assert "Range" in headers["Access-Control-Allow-Headers"]
            assert "Content-Range" in headers["Access-Control-Expose-Headers"]
        req = urllib.request.Request(base, method="GET")
        opener = urllib.request.build_opener(_NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as info:
            opener.open(req, timeout=10)
        assert info.value.code == 302
        assert info.value.headers["Location"] == f"/browser/#/external/http:/{base[7:-1]}/x"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# --------------------------------------------------------------------------- in Chromium


@pytest.mark.browser
def test_preview_command(tools, stac_browser, sample_catalog, tmp_path: Path) -> None:
    """`stac-mmtp preview` prints a URL; opened in Chromium it shows the catalog, events and an item."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               PYTHONFAULTHANDLER="1")
    # stderr to a file, not a pipe nobody reads while Chromium browses: a full pipe would block the server
    log = tmp_path / "preview.stderr"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "stac_mmtp", "preview", str(sample_catalog), "--port", "0"],
                                stdout=subprocess.PIPE, stderr=err, text=True, env=env,
                                # a shell's background job (`.ci/run &`) ignores SIGINT, and Python keeps an
                                # ignored SIGINT: Ctrl-C would never reach the preview
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        url = proc.stdout.readline().strip() if proc.stdout else ""
        assert url.startswith("http://127.0.0.1:"), log.read_text()
        base = url.split("/browser/#/", 1)[0] + "/"
        assert url == f"{base}browser/#/external/http:/{base[7:]}catalog/catalog.json"
        pages = catalog_pages(base + "browser/", base + "catalog/catalog.json", "preview")
        pages[0]["url"] = url  # the printed URL itself
        # docs/img/stac-browser-item.png is this picture (the item's header, map and metadata down to our fields)
        pages[2]["screenshot"] = [{"path": pages[2]["screenshot"]},
                                  {"path": str(ARTIFACTS / "stac-browser-item.png"),
                                   "clip": {"x": 0, "y": 0, "width": 1280, "height": 1440}}]
        result = snapshot(tools, pages, tmp_path, "preview")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # say where it hangs: faulthandler writes every thread's stack
            proc.send_signal(signal.SIGABRT)
            proc.wait(timeout=30)
            raise AssertionError(f"preview did not stop on Ctrl-C:\n{log.read_text()[-6000:]}") from None
    assert code == 0, log.read_text()  # Ctrl-C is the way to stop it
    # no traceback for a connection the browser dropped (a COG range read cut short)
    assert "serving " in log.read_text() and "Traceback" not in log.read_text(), log.read_text()[-3000:]
    for page in result.values():
        assert_shown(page)
    assert result["root"]["title"] == ROOT_TITLE  # the document title, from the root catalog
    item = result["s2-item"]["text"]
    # the extension's raw keys and values never show
    assert not re.search(r"mmtp:[a-z]", item) and "first-post-event" not in item and "Temporal Role" not in item
    assert "Synthetic sample\nyes" in item and not re.search(r"\bESA\b", item)  # marked, no real provider named


@contextmanager
def host_catalog(host: str, catalog: Path, cors: bool) -> Iterator[str]:
    """Serve the built `catalog` from an origin other than STAC Browser's; yield its root catalog URL.

    "http": a plain static server on another port. (A local S3 server, with and without the bucket's
    CORS rules, joins this list with `stac-mmtp publish`.)
    """
    if host == "http":
        with serve({"/": catalog}, cors=cors) as base:
            yield base + "catalog.json"
    elif host == "s3":
        with published_to_s3(catalog, cors) as root:
            yield root
    else:
        raise ValueError(host)


HOSTS = ["http", "s3"]


@pytest.fixture(scope="module")
def browser_site(stac_browser: Path):
    """STAC Browser alone on its own origin (as on a static host), its base URL."""
    with serve({"/browser/": stac_browser}) as base:
        yield base + "browser/"


@pytest.mark.browser
@pytest.mark.parametrize("host", HOSTS)
def test_cross_origin_with_cors(tools, browser_site: str, sample_catalog: Path, host: str, tmp_path: Path) -> None:
    """STAC Browser on one origin reads a catalog served from another that sends CORS headers."""
    with host_catalog(host, sample_catalog, cors=True) as root:
        result = snapshot(tools, catalog_pages(browser_site, root, f"{host}-cors"), tmp_path, f"{host}-cors")
    for page in result.values():
        assert_shown(page)


@pytest.mark.browser
@pytest.mark.parametrize("host", HOSTS)
def test_cross_origin_without_cors(tools, browser_site: str, sample_catalog: Path, host: str, tmp_path: Path) -> None:
    """The same catalog from a server without CORS headers: STAC Browser shows its CORS/network error."""
    with host_catalog(host, sample_catalog, cors=False) as root:
        page = {"name": "root", "url": browser_url(browser_site, root), "expect": [CORS_ERROR],
                "screenshot": str(ARTIFACTS / f"{host}-no-cors-root.png")}
        result = snapshot(tools, [page], tmp_path, f"{host}-no-cors", timeout_ms=20000)["root"]
    assert result["ready"], result["text"][:2000]
    assert "The requested page could not be loaded." in result["text"]
    assert f"Request URL:\n{root}" in result["text"]
    assert ROOT_TITLE not in result["text"]
    # and Chromium says why: the response lacks Access-Control-Allow-Origin
    assert any(f"Access to XMLHttpRequest at '{root}'" in line and "blocked by CORS policy" in line
               for line in result["console"]), result["console"]


# --------------------------------------------------------------------------- pixels on the map

S1_ITEM = "gjerdrum-landslide-2020_S1A_IW_GRDH_1SDV_20210105T164211_20210105T164212_036005_FED444_656C"
MASK_ITEM = "gjerdrum-landslide-2020_maintainers-sketch-v1_S2B_MSIL2A_20210102T104441_N0510_R008_T32VPM_20210102T120141"
VECTOR_ITEM = "gjerdrum-landslide-2020_maintainers-sketch-v1"  # its `source` links: the S1 and S2 items above
OUTLINE_RGB = (0x33, 0x99, 0xCC)  # ol-stac's default stroke, for the footprint and the GeoJSON labels
LANDSLIDE_RGB = (0xE3, 0x1A, 0x1C)  # the landslide class colour of docs/annotations.md ("E31A1C")
CASCADE_EVENT = "birch-glacier-collapse-2025"  # triggered by the Nesthorn rockfall, triggered the Lonza flood


def _map_pixels(path: Path) -> tuple[int, int, int]:
    """(all pixels, imagery pixels, landslide-coloured pixels) of a screenshot of the map.

    The base map is blocked (offline), so the map is white where nothing is drawn; the footprint outline is
    a thin blue line. Imagery pixels are those neither near white nor of the outline's blue."""
    from PIL import Image

    img = Image.open(path).convert("RGB")
    px = list(img.getdata())
    outline = OUTLINE_RGB

    def near(p: tuple[int, ...], q: tuple[int, ...], tol: int) -> bool:
        return all(abs(a - b) <= tol for a, b in zip(p, q, strict=True))

    drawn = sum(1 for p in px if min(p) < 235 and not near(p, outline, 40))
    landslide = sum(1 for p in px if near(p, LANDSLIDE_RGB, 30))
    return len(px), drawn, landslide


def _centre_drawn(path: Path) -> tuple[float, int]:
    """(share of imagery pixels in the centre of the map, outline-coloured pixels of the whole map).

    The map fits the item's footprint, so its centre (a tenth of the width, two fifths of the height) lies
    inside the outline of the Gjerdrum sketch (an upright oval about 300 m by 700 m)."""
    from PIL import Image

    img = Image.open(path).convert("RGB")
    w, h = img.size
    centre = img.crop((int(w * 0.45), int(h * 0.3), int(w * 0.55), int(h * 0.7)))
    px = list(centre.getdata())

    def near(p: tuple[int, ...], q: tuple[int, ...], tol: int) -> bool:
        return all(abs(a - b) <= tol for a, b in zip(p, q, strict=True))

    drawn = sum(1 for p in px if min(p) < 235 and not near(p, OUTLINE_RGB, 40))
    outline = sum(1 for p in img.getdata() if near(p, OUTLINE_RGB, 25))
    return drawn / len(px), outline


@pytest.mark.browser
def test_vector_labels_drawn_over_their_source_imagery(tools, stac_browser, sample_catalog, tmp_path: Path) -> None:
    """A vector label item's map: the imagery of its `source` items (COGs) under the outlines."""
    with serve({"/catalog/": sample_catalog, "/browser/": stac_browser}) as base:
        url = browser_url(base + "browser/", f"{base}catalog/annotations/{VECTOR_ITEM}/{VECTOR_ITEM}.json")
        page = {"name": "vector", "url": url, "expect": ["Outlines (GeoJSON)", "Source data"], "settle_ms": 6000,
                "screenshot": [{"path": str(ARTIFACTS / "map-vector.png"), "selector": ".maps-preview .map-container"}]}
        result = snapshot(tools, [page], tmp_path, "vector")["vector"]
    assert result["ready"] and not result["page_errors"], (result["page_errors"], result["console"][:5])
    assert not result["failed_requests"], result["failed_requests"]
    share, outline = _centre_drawn(ARTIFACTS / "map-vector.png")
    assert share > 0.5, share  # imagery inside the outline (without it: the white of the blocked base map)
    assert outline > 200, outline  # and the outline over it


@pytest.mark.browser
def test_map_draws_imagery_and_masks(tools, stac_browser, sample_catalog, tmp_path: Path) -> None:
    """The map of an S2, an S1, an InSAR and a label item draws pixels (COGs read in the browser by range requests)."""
    pages = []
    with serve({"/catalog/": sample_catalog, "/browser/": stac_browser}) as base:
        for name, coll, item in [("s2", "sentinel-2", S2_ITEM), ("s1", "sentinel-1", S1_ITEM),
                                 ("insar", "flatsim", INSAR_ITEM), ("mask", "annotations", MASK_ITEM)]:
            url = browser_url(base + "browser/", f"{base}catalog/{coll}/{item}/{item}.json")
            expect = ["Class mask"] if name == "mask" else ["Map", "Assets"]  # the page's map and assets are laid out
            pages.append({"name": name, "url": url, "expect": expect, "settle_ms": 6000,
                          "screenshot": [{"path": str(ARTIFACTS / f"map-{name}.png"), "selector": ".maps-preview .map-container"}]})
        result = snapshot(tools, pages, tmp_path, "maps")
    for name, page in result.items():
        assert page["ready"] and not page["page_errors"], (name, page["page_errors"], page["console"][:5])
        assert not [c for c in page["console"] if "TypeError" in c], page["console"]
    shares = {}
    for name in result:
        total, drawn, landslide = _map_pixels(ARTIFACTS / f"map-{name}.png")
        shares[name] = (drawn / total, landslide)
    # the footprint fills about a third of the map: imagery covers a good part of it
    for name in ("s2", "s1", "insar"):
        assert shares[name][0] > 0.15, shares
    # the mask: only its landslide class is coloured (background and ignore are transparent)
    assert shares["mask"][1] > 30, shares
    assert shares["s2"][1] < shares["mask"][1], shares


# The headings of an event page's link groups, in the order the page must show them (browser/mmtp-fields.json).
PRE, CO, FIRST_POST = "1. Before the event", "2. During the event", "3. First acquisition after the event"
ANNOTATIONS, TRIGGERED_BY, TRIGGERS = "Annotations (label items)", "Triggered by (cascade)", "Triggers (cascade)"
ORDER_EVENT = "veneto-flood-pordenone-2018"  # the sample event with pre-, co- and first-post-event acquisitions


def _headings(page: dict[str, Any]) -> list[str]:
    """The group headings of the page's "Additional Resources" section, in page order."""
    text = page["text"]
    return sorted((h for h in (PRE, CO, FIRST_POST, ANNOTATIONS, TRIGGERED_BY, TRIGGERS) if f"\n{h}\n" in text),
                  key=lambda h: text.index(f"\n{h}\n"))


@pytest.mark.browser
def test_event_page_lists_acquisitions_annotations_and_cascade(tools, stac_browser, sample_catalog,
                                                                tmp_path: Path) -> None:
    """An event page groups its acquisitions by temporal role, in temporal order and with human headings, lists
    its annotations, and names its cascade."""
    with serve({"/catalog/": sample_catalog, "/browser/": stac_browser}) as base:
        def url(ev: str) -> str:
            return browser_url(base + "browser/", f"{base}catalog/events/{ev}/{ev}.json")

        pages = [
            {"name": "event", "url": url("gjerdrum-landslide-2020"), "screenshot": str(ARTIFACTS / "event-roles.png"),
             "expect": [PRE, FIRST_POST, ANNOTATIONS,
                        "Thumbnails",
                        "Synthetic sample: Gjerdrum quick-clay landslide: sentinel-2 L2A 2021-01-02, first image after "
                        "the event",
                        "Gjerdrum landslide: approximate outline (draft sketch)"]},
            {"name": "order", "url": url(ORDER_EVENT), "screenshot": str(ARTIFACTS / "event-order.png"),
             "expect": [PRE, CO, FIRST_POST, ANNOTATIONS]},
            {"name": "cascade", "url": url(CASCADE_EVENT), "screenshot": str(ARTIFACTS / "event-cascade.png"),
             "expect": [TRIGGERED_BY, TRIGGERS]},
        ]
        result = snapshot(tools, pages, tmp_path, "events")
    for page in result.values():
        assert_shown(page)
    text = result["cascade"]["text"]
    events = {json.loads(p.read_text())["id"]: json.loads(p.read_text())["properties"]["title"]
              for p in (sample_catalog / "events").glob("*/*.json")}
    assert events["nesthorn-rockfall-2025"] in text and events["lonza-dam-flood-2025"] in text
    # the groups in temporal order, then the annotations; the cascade's cause before its consequence
    assert _headings(result["order"]) == [PRE, CO, FIRST_POST, ANNOTATIONS]
    assert _headings(result["event"]) == [PRE, FIRST_POST, ANNOTATIONS]
    assert _headings(result["cascade"])[-2:] == [TRIGGERED_BY, TRIGGERS]
    # the relations' raw names never show as headings
    for name in ("Pre Event", "First Post Event", "Co Event", "Triggers Hazard"):
        assert f"\n{name}\n" not in result["order"]["text"] + result["cascade"]["text"], name
    # each group lists its acquisitions by title: the first image after the event under its heading
    ev = result["event"]["text"]
    group = ev[ev.index(f"\n{FIRST_POST}\n"):ev.index(f"\n{ANNOTATIONS}\n")]
    assert "sentinel-2 L2A 2021-01-02, first image after the event" in group and "before the event" not in group
    before = ev[ev.index(f"\n{PRE}\n"):ev.index(f"\n{FIRST_POST}\n")]
    assert "before the event" in before and "first image after the event" not in before


# --------------------------------------------------------------------------- the overview page

LAND_RGB = (0xE6, 0xE6, 0xE6)  # the land fill of the overview map (build/overview.py), Natural Earth polygons


@pytest.mark.browser
def test_overview_page_draws_offline(tools, sample_catalog: Path, tmp_path: Path) -> None:
    """The overview page, opened with every request off 127.0.0.1 blocked: Bokeh draws the map from what the
    page carries (nothing is requested elsewhere), land and event markers are pixels of the screenshot."""
    from PIL import Image

    with serve({"/catalog/": sample_catalog}) as base:
        page = {"name": "overview", "url": f"{base}catalog/overview/overview.html",
                "expect": ["stac-mmtp dataset overview", "Events per phenomenon"], "settle_ms": 3000,
                "screenshot": [{"path": str(ARTIFACTS / "overview-map.png"), "selector": "#ov-map"},
                               {"path": str(ARTIFACTS / "overview-page.png")}]}
        result = snapshot(tools, [page], tmp_path, "overview")["overview"]
    assert_shown(result)
    assert result["blocked"] == [] and not result["console"], (result["blocked"], result["console"])
    img = Image.open(ARTIFACTS / "overview-map.png").convert("RGB")
    px = list(img.getdata())
    assert img.size[0] > 600 and img.size[1] > 300, img.size  # the map is laid out at its size, not collapsed

    def near(p: tuple[int, ...], q: tuple[int, ...], tol: int) -> bool:
        return all(abs(a - b) <= tol for a, b in zip(p, q, strict=True))

    land = sum(1 for p in px if near(p, LAND_RGB, 3))
    # event markers: saturated pixels (tab20 colours), neither the greys of land, axes and text nor the sea
    marked = sum(1 for p in px if max(p) - min(p) > 60)
    assert land / len(px) > 0.10, (land, len(px))  # land is about a quarter of the map in 1:110m
    assert marked > 200, marked


def test_a_dropped_connection_is_no_error(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A browser drops connections mid-file (a COG range read cut short, a page left): the server goes on
    and writes nothing (socketserver printed a traceback per drop to the stderr of `stac-mmtp preview`)."""
    import socket
    import struct

    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "big.tif").write_bytes(b"\0" * (32 << 20))  # more than the socket buffers hold
    with serve({"/catalog/": tmp_path / "cat"}) as base:
        host, port = base[len("http://"):].rstrip("/").split(":")
        for _ in range(3):
            s = socket.create_connection((host, int(port)))
            s.sendall(b"GET /catalog/big.tif HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(1024).startswith(b"HTTP/1.0 200")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
            s.close()
        time.sleep(1.0)  # the handler threads meet the reset
        assert _get(base + "catalog/big.tif", {"Range": "bytes=0-3"})[2] == b"\0\0\0\0"  # still serving
    assert "Traceback" not in capfd.readouterr().err
