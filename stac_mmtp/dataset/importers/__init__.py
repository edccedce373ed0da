"""Importers of public event catalogues: rows of a catalogue file -> candidate events (`review_status: candidate`).

One module per source (`nasa_glc`, `gvp`, `hma_glof`, `usgs`), each with a `parse(path)` generator of
candidates; `common` reads the files, checks the Sentinel era, finds duplicates and writes the features.
This module imports nothing heavy, so the command line can list the sources cheaply.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from stac_mmtp.errors import InputError

if TYPE_CHECKING:
    from stac_mmtp.dataset.importers.common import ImportReport

# SOURCE name on the command line -> module
SOURCES = {
    "nasa-glc": "nasa_glc",
    "gvp": "gvp",
    "hma-glof": "hma_glof",
    "usgs": "usgs",
}


def import_catalogue(source: str, file: Path, out: Path | None = None, events_dir: Path | None = None,
                     now: datetime | None = None) -> ImportReport:
    """Import FILE of catalogue SOURCE as candidate events into OUT (default catalog/candidates/<source>/)."""
    from stac_mmtp.dataset.importers.common import run_import
    from stac_mmtp.paths import default_events_dir

    if source not in SOURCES:
        raise InputError(f"unknown source {source!r}; known: {', '.join(SOURCES)}")
    module = importlib.import_module(f"{__name__}.{SOURCES[source]}")
    # an output, so relative to the current directory (as build's build/catalog); the duplicates are looked
    # for in the package's own inventory (paths.default_events_dir), never in a ./catalog it may not be
    out = Path(out or Path("catalog") / "candidates" / source)
    events_dir = Path(events_dir or default_events_dir())
    if out.resolve() == events_dir.resolve():
        raise InputError("candidates are never written into the curated inventory: choose another --out", out)
    return run_import(source, module.parse, Path(file), out, events_dir, now)
