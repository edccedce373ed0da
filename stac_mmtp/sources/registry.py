"""Which product families exist, and finding the family of a product on disk.

Families are named by "module:attribute" strings and imported on first use, so that `--help` stays
fast and the families (which import `sources.base`) never import the registry back.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from stac_mmtp.errors import InputError, ProductError
from stac_mmtp.sources.base import ProductMeta, Source

# "module:attribute" of each family's Source instance, in the order `detect` tries them
SOURCE_MODULES: tuple[str, ...] = (
    "stac_mmtp.sources.sentinel2:SOURCE",
    "stac_mmtp.sources.sentinel1:SOURCE",
    "stac_mmtp.sources.flatsim:SOURCE",
    "stac_mmtp.sources.remote_s2:SOURCE",
    "stac_mmtp.sources.remote_s1:SOURCE",
)

_LOADED: dict[str, Source] = {}


def _load(ref: str) -> Source:
    mod, _, attr = ref.partition(":")
    return getattr(importlib.import_module(mod), attr)


def all_sources() -> dict[str, Source]:
    if len(_LOADED) < len(SOURCE_MODULES):
        for ref in SOURCE_MODULES:
            source = _load(ref)
            _LOADED[source.name] = source
    return _LOADED


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
