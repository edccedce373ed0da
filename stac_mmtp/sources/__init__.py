"""Product families. Each module registers one `Source` with the same small shape:

- `detect(path)`: is this a product of my family (directory or .zip)? Cheap, no parsing.
- `read(path)`: parse metadata only -> `ProductMeta` (id, lon/lat footprint, times, and the
  metadata-only STAC item that `stac-mmtp inspect` prints). Raise `ProductError` naming the file.
- `convert(task, item_dir)`: the unit of work, a pure function of (event, product): write the
  clipped COGs/thumbnail into `item_dir` and return the item dict (asset hrefs `./name.tif`).
- `collection(items)`: the collection dict (no links or extent: the tree writer adds those).

A product holding the sample marker (`synthetic.MARKER`, written by `stac-mmtp sample`) is read with
`ProductMeta.synthetic` set, and every item made from it is marked (`synthetic.mark_item`).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from stac_mmtp.errors import InputError, ProductError
from stac_mmtp.sources.base import _REGISTRY, BuildOptions, ProductMeta, Source, Task, register

__all__ = ["SOURCE_MODULES", "BuildOptions", "ProductMeta", "Source", "Task", "register", "all_sources", "get_source",
           "detect", "read_product", "discover"]

# Modules that define a source; imported lazily so that `--help` stays fast.
SOURCE_MODULES: tuple[str, ...] = (
    "stac_mmtp.sources.sentinel2",
    "stac_mmtp.sources.sentinel1",
    "stac_mmtp.sources.flatsim",
    "stac_mmtp.sources.remote_s2",
)


def all_sources() -> dict[str, Source]:
    for mod in SOURCE_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:  # a real missing dependency, not a family not written yet
                raise
    return _REGISTRY


def get_source(name: str) -> Source:
    return all_sources()[name]


def detect(path: Path) -> Source | None:
    for source in all_sources().values():
        if source.detect(path):
            return source
    return None


def read_product(path: Path) -> ProductMeta:
    source = detect(path)
    if source is None and Path(path).suffix.lower() == ".safe":
        raise ProductError("not a readable Sentinel product (no manifest.safe or MTD_*.xml: an interrupted download?)", path)
    if source is None:
        raise ProductError("not a product of a supported family (Sentinel-2 SAFE/AWS tile, Sentinel-1 GRD, FLATSIM)", path)
    return source.read(path)


def discover(dirs: list[Path]) -> tuple[list[tuple[Path, Source]], list[Path]]:
    """Find products under `dirs`: entries a source detects, searching directories it does not."""
    found: list[tuple[Path, Source]] = []
    unknown: list[Path] = []

    def walk(path: Path, depth: int) -> None:
        source = detect(path)
        if source is not None:
            found.append((path, source))
        elif path.suffix.lower() == ".safe":  # a SAFE no source detects (no manifest/MTD): do not look inside
            unknown.append(path)
        elif path.is_dir() and depth < 6:
            for child in sorted(path.iterdir()):
                if not child.name.startswith("."):
                    walk(child, depth + 1)
        elif depth > 0 and path.suffix.lower() in (".zip", ".safe"):
            unknown.append(path)

    for d in dirs:
        if not d.exists():
            raise InputError("no such products directory", d)
        walk(d, 0)
    return found, unknown
