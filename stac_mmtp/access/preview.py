"""`stac-mmtp preview BUILD_DIR`: browse a built catalog in STAC Browser on 127.0.0.1.

STAC Browser 4 is published on npm as source only, so it is built here, once, from the pinned
`browser/package-lock.json` (hash history mode and a relative path prefix, so that the same build
works from any directory of any static host, S3 included) into a cache directory outside the
checkout. Our extension's labels come from `browser/fields.config.js` + `browser/mmtp-fields.json`.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from stac_mmtp.atomic import staged_dir
from stac_mmtp.errors import InputError, MmtpError
from stac_mmtp.stac import COG_MEDIA_TYPE, GEOJSON_MEDIA_TYPE, JSON_MEDIA_TYPE

STAC_BROWSER_VERSION = "4.0.1"
BROWSER_SRC = Path(__file__).resolve().parents[2] / "browser"
# Build-time options (SB_* environment variables read by STAC Browser's vue.config.js).
# displayPreview off: ol-stac would stretch a PNG thumbnail over the item's bbox (misplaced); the map shows
# only georeferenced COGs (each imagery item's `overview`/`visual` COG, a label item's class mask).
BUILD_OPTIONS = {"historyMode": "hash", "pathPrefix": "./", "catalogTitle": "stac-mmtp", "displayPreview": "false"}
# Files of browser/ that change what the build produces: they key the cache directory.
BUILD_INPUTS = ("package-lock.json", "fields.config.js", "mmtp-fields.json")
# Two edits to the copied sources, each (file, text it must contain, replacement): they key the cache too, and
# a build fails if a text is not found (another version of the package: look at the edit again).
PATCHES = (
    # STAC Browser groups an item's links by relation and titles each group with stac-fields' rel mapping;
    # our labels for our relations (fields.config.js) must be registered before the links are drawn, but
    # only the lazily loaded Metadata component imports fields.config.js. linkActions.config.js (another of
    # STAC Browser's configuration files) is imported by every link: it imports our fields first.
    ("stac-browser/linkActions.config.js", "import Cesium from './src/actions/links/Cesium.js';",
     "import './fields.config'; // stac-mmtp: our rel labels before any link group is titled\n"
     "import Cesium from './src/actions/links/Cesium.js';"),
    # ol-stac 1.2.0 draws a vector label item's `source` items under its outlines, but creates them without
    # their URL (our items have no absolute self link), so their relative asset hrefs resolve to nothing and
    # no imagery is drawn. Give each fetched source item the URL it was fetched from.
    ("ol-stac/layer/STAC.js", "const stac = create(response);",
     "const stac = create(response);\n                    stac.setAbsoluteUrl(link.getAbsoluteUrl()); // stac-mmtp"),
    # stac-js 0.1.9 (STAC Browser's) makes Asset objects of a Collection's or an Item's assets, not of a
    # Catalog's (STAC 1.1 allows them; our root catalog has the overview's): the root page then fails in
    # getThumbnails ("isPreview is not a function") and shows nothing. Wrap a Catalog's assets the same way.
    ("stac-js/src/catalog.js", "    super(data, absoluteUrl);",
     "    super(data, absoluteUrl, { assets: Asset.fromAssets }); // stac-mmtp: STAC 1.1 catalog assets"),
    ("stac-js/src/catalog.js", "import CatalogLike from './cataloglike.js';",
     "import Asset from './asset.js'; // stac-mmtp\nimport CatalogLike from './cataloglike.js';"),
)
# The packages of browser/node_modules that PATCHES edits: the build gets a copy of each.
PATCHED_PACKAGES = tuple(sorted({rel.split("/")[0] for rel, _, _ in PATCHES} - {"stac-browser"}))
# Packages whose installed version must match the lock file before a build (ol-stac is pinned to 1.2.0).
CHECKED_PACKAGES = ("@radiantearth/stac-browser", "ol-stac", "ol", "@radiantearth/stac-fields", "ol-stac/node_modules/stac-js")


class BrowserBuildError(MmtpError):
    """npm or node missing, `npm ci` or the STAC Browser build failed."""


# --------------------------------------------------------------------------- build


def cache_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "stac-mmtp"


def build_key(src: Path = BROWSER_SRC) -> str:
    """Short hash of the lock file, our fields configuration and the build options."""
    if not (src / "package-lock.json").is_file():
        raise BrowserBuildError("STAC Browser sources not found (browser/package-lock.json): run from a checkout, "
                                "or set STAC_MMTP_BROWSER_BUILD to a STAC Browser build", src)
    h = hashlib.sha256(json.dumps([BUILD_OPTIONS, PATCHES], sort_keys=True).encode())
    for name in BUILD_INPUTS:
        h.update(name.encode() + b"\0" + (src / name).read_bytes())
    return h.hexdigest()[:12]


def browser_build_dir(src: Path = BROWSER_SRC) -> Path:
    """Where the STAC Browser build lives: $STAC_MMTP_BROWSER_BUILD, or a cache directory keyed by its inputs."""
    if env := os.environ.get("STAC_MMTP_BROWSER_BUILD"):
        return Path(env)
    return cache_root() / f"stac-browser-{STAC_BROWSER_VERSION}-{build_key(src)}"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise BrowserBuildError(f"`{name}` not found on PATH: STAC Browser is built with Node.js >= 20 and npm")
    return path


def _run(cmd: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> None:
    """Run a build step with its output in `log`; on failure the error quotes the end of the log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as f:
        proc = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=env, check=False)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-25:])
        raise BrowserBuildError(f"`{' '.join(cmd[:3])}` failed (exit {proc.returncode}); end of {log}:\n{tail}", cwd)


def _installed_matches_lock(src: Path) -> bool:
    lock = json.loads((src / "package-lock.json").read_text(encoding="utf-8"))["packages"]
    for name in CHECKED_PACKAGES:
        pkg = src / "node_modules" / name / "package.json"
        if not pkg.is_file():
            return False
        if json.loads(pkg.read_text(encoding="utf-8"))["version"] != lock[f"node_modules/{name}"]["version"]:
            return False
    return True


def ensure_node_modules(src: Path = BROWSER_SRC) -> bool:
    """`npm ci` in browser/ unless node_modules already holds the locked versions; True if it ran."""
    build_key(src)  # raises if browser/ is not there
    if _installed_matches_lock(src):
        return False
    _run([_tool("npm"), "ci", "--no-audit", "--no-fund"], src, cache_root() / "logs" / "npm-ci.log")
    if not _installed_matches_lock(src):
        raise BrowserBuildError("node_modules does not match package-lock.json after `npm ci`", src)
    return True


def ensure_stac_browser(src: Path = BROWSER_SRC, out: Path | None = None) -> Path:
    """Return the STAC Browser build directory, building it first if it is missing.

    The package's sources are copied beside the output with our fields configuration laid over
    them, and built with vue-cli against browser/node_modules; the result replaces `out` atomically.
    """
    out = out or browser_build_dir(src)
    if (out / "index.html").is_file():
        return out
    ensure_node_modules(src)
    node = _tool("node")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".src", dir=out.parent))
    try:
        pkg = work / "stac-browser"
        shutil.copytree(src / "node_modules" / "@radiantearth" / "stac-browser", pkg)
        for name in ("fields.config.js", "mmtp-fields.json"):
            shutil.copy2(src / name, pkg / name)
        # Module resolution walks up from the copied sources: point it at the locked install, package by
        # package, with patched copies of ol-stac and stac-js (ol-stac's `ol` still resolves to the one
        # locked OpenLayers).
        modules = pkg / "node_modules"
        modules.mkdir()
        for entry in (src / "node_modules").resolve().iterdir():
            if entry.name not in PATCHED_PACKAGES:
                (modules / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
        for name in PATCHED_PACKAGES:
            shutil.copytree(src / "node_modules" / name, modules / name, symlinks=True)
        _apply_patches({"stac-browser": pkg, **{name: modules / name for name in PATCHED_PACKAGES}})
        env = dict(os.environ, **{f"SB_{k}": v for k, v in BUILD_OPTIONS.items()})
        cli = src / "node_modules" / "@vue" / "cli-service" / "bin" / "vue-cli-service.js"
        _run([node, str(cli), "build", "--noSourceMaps"], pkg, out.parent / "logs" / f"{out.name}.log", env)
        with staged_dir(out) as stage:
            shutil.copytree(pkg / "dist", stage, dirs_exist_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _apply_patches(roots: dict[str, Path]) -> None:
    for rel, old, new in PATCHES:
        top, _, inner = rel.partition("/")
        path = roots[top] / inner
        text = path.read_text(encoding="utf-8")
        if text.count(old) != 1:
            raise BrowserBuildError(f"cannot apply our edit to {rel}: {old!r} is not found once in it "
                                    "(another version of the package?)", path)
        path.write_text(text.replace(old, new), encoding="utf-8")


# --------------------------------------------------------------------------- serving

CONTENT_TYPES = {
    ".json": JSON_MEDIA_TYPE,
    ".geojson": GEOJSON_MEDIA_TYPE,
    ".tif": COG_MEDIA_TYPE,
    ".tiff": COG_MEDIA_TYPE,
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webp": "image/webp",
    ".parquet": "application/vnd.apache.parquet",
    ".xml": "application/xml",
    ".md": "text/markdown",
}
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Range, If-None-Match, If-Modified-Since, Authorization",
    "Access-Control-Expose-Headers": "Content-Range, Content-Length, Content-Type, ETag, Accept-Ranges",
    "Access-Control-Max-Age": "600",
}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class _Handler(SimpleHTTPRequestHandler):
    """Static files from several directories mounted under URL prefixes; byte ranges (COGs); optional CORS."""

    mounts: dict[str, Path] = {}
    cors = False
    redirect_root: str | None = None
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **CONTENT_TYPES}

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # the preview prints its URL; a log line per request would bury it

    def end_headers(self) -> None:
        if self.cors:
            for k, v in CORS_HEADERS.items():
                self.send_header(k, v)
        # a maintainer rebuilds and reloads: never serve a stale catalog from the browser cache
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def do_OPTIONS(self) -> None:  # noqa: N802 - stdlib naming
        self.send_response(HTTPStatus.NO_CONTENT if self.cors else HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def translate_path(self, path: str) -> str:
        path = posixpath.normpath(unquote(urlsplit(path).path))
        for prefix, root in sorted(self.mounts.items(), key=lambda kv: -len(kv[0])):
            base = prefix.rstrip("/")
            if path == base or path.startswith(base + "/"):
                rel = [p for p in path[len(base):].split("/") if p not in ("", ".", "..")]
                return str(root.joinpath(*rel))
        return str(Path(os.devnull) / "not-mounted")

    def send_head(self):  # noqa: ANN201 - returns a file object or None, as the stdlib's
        if self.redirect_root and urlsplit(self.path).path == "/":
            self.send_response(HTTPStatus.FOUND)
            host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
            self.send_header("Location", self.redirect_root.format(host=host))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        match = _RANGE.match(self.headers.get("Range", "").strip())
        path = Path(self.translate_path(self.path))
        if not match or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        first, last = match.groups()
        if first:
            start, end = int(first), min(int(last) if last else size - 1, size - 1)
        else:  # suffix range: the last N bytes
            start, end = max(size - int(last or 0), 0), size - 1
        if start > end or start >= size:
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        f = path.open("rb")
        f.seek(start)
        self.send_response(HTTPStatus.PARTIAL_CONTENT)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._remaining = end - start + 1
        return f

    def copyfile(self, source, outputfile) -> None:  # noqa: ANN001 - stdlib signature
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        while remaining > 0 and (chunk := source.read(min(65536, remaining))):
            outputfile.write(chunk)
            remaining -= len(chunk)
        self._remaining = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # Ctrl-C does not wait for a browser's open connections

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser drops connections mid-file all the time (a COG range read cut short, a page left): not
        an error, and a traceback per drop would fill the stderr of whoever reads it (a full pipe blocks the
        server). Anything else is printed as socketserver does."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def make_server(mounts: dict[str, Path], port: int = 0, cors: bool = False, redirect_root: str | None = None,
                host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A server of directories under URL prefixes (e.g. {"/catalog/": build}), bound but not yet serving.

    `redirect_root`: where "/" redirects to; "{host}" in it is replaced by the request's Host.
    """
    handler = type("Handler", (_Handler,), {"mounts": dict(mounts), "cors": cors, "redirect_root": redirect_root})
    try:
        server = _Server((host, port), handler)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return server


def base_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


@contextmanager
def serve(mounts: dict[str, Path], port: int = 0, cors: bool = False, redirect_root: str | None = None,
          host: str = "127.0.0.1") -> Iterator[str]:
    """`make_server` serving in a thread for the duration of the block; yields the base URL."""
    server = make_server(mounts, port, cors, redirect_root, host)
    thread = threading.Thread(target=server.serve_forever, name="stac-mmtp-serve", daemon=True)
    thread.start()
    try:
        yield base_url(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def browser_url(browser_base: str, catalog_url: str) -> str:
    """URL of STAC Browser (hash mode) opened on an absolute catalog URL.

    STAC Browser 4 routes external catalogs as `#/external/<host>/<path>` for https and
    `#/external/http:/<host>/<path>` otherwise.
    """
    parts = urlsplit(catalog_url)
    scheme = "" if parts.scheme == "https" else f"{parts.scheme}:/"
    return f"{browser_base.rstrip('/')}/#/external/{scheme}{parts.netloc}{parts.path}"
