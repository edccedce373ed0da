"""`stac-mmtp preview`: browse a built catalog in STAC Browser, served on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import click

from stac_mmtp.access.preview import (
    base_url,
    browser_build_dir,
    browser_url,
    ensure_node_modules,
    ensure_stac_browser,
    make_server,
)
from stac_mmtp.errors import InputError, MmtpError


@click.command("preview", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("build_dir", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option("--port", type=int, default=8000, show_default=True, help="Port on 127.0.0.1 (0: any free port).")
@click.option("--build-only", is_flag=True,
              help="Only install browser/node_modules and build STAC Browser into its cache directory (each if "
                   "missing), print that directory and exit.")
def preview_command(build_dir: Path | None, port: int, build_only: bool) -> None:
    """Browse the catalog built in BUILD_DIR in STAC Browser, served on 127.0.0.1 until Ctrl-C.

    The first run builds STAC Browser 4.0.1 from browser/package-lock.json (npm ci + a vue build,
    a few minutes; needs Node.js >= 20 and npm) into ~/.cache/stac-mmtp; later runs reuse it.
    """
    from stac_mmtp import console
    from stac_mmtp.commands.common import fail

    if not build_only and (build_dir is None or not (build_dir / "catalog.json").is_file()):
        fail(InputError(f"{build_dir}: no catalog.json (give the output directory of `stac-mmtp build`)"))
    try:
        if build_only:  # CI: also the npm packages the browser tests drive Chromium with
            ensure_node_modules()
        if not console.quiet() and not (browser_build_dir() / "index.html").is_file():
            console.err.print("building STAC Browser (first run only, a few minutes)...", highlight=False)
        dist = ensure_stac_browser()
    except MmtpError as exc:
        fail(exc)
    if build_only:
        click.echo(str(dist))
        return
    assert build_dir is not None
    # "/" redirects to the browser, so the base URL alone finds the way back
    mounts = {"/catalog/": build_dir.resolve(), "/browser/": dist}
    try:
        server = make_server(mounts, port, redirect_root="/browser/#/external/http:/{host}/catalog/catalog.json")
    except MmtpError as exc:
        fail(exc)
    base = base_url(server)
    click.echo(browser_url(base + "browser/", base + "catalog/catalog.json"))
    if not console.quiet():
        console.err.print(f"serving {build_dir} at {base}catalog/ (Ctrl-C to stop)", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
