"""Where the repository's data directories are, in a checkout or in an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _first_existing(*candidates: Path) -> Path:
    for c in candidates:
        if c.exists():
            return c
    return candidates[0]


def extensions_dir() -> Path:
    """`extensions/` of the checkout (editable install) or its copy inside the wheel."""
    return _first_existing(_PKG.parent / "extensions", _PKG / "_extensions")


def _is_inventory_root(d: Path) -> bool:
    return any((d / "events").glob("*.geojson"))


def catalog_source_dir() -> Path:
    """`catalog/` (events, annotations, collection metadata) of the package's checkout or its wheel copy.

    Never the current directory's `catalog/`: whatever a user keeps there (a previous build, another
    project) is not our inventory. A candidate counts only if it holds `events/*.geojson`.
    """
    candidates = (_PKG.parent / "catalog", _PKG / "_catalog")
    for c in candidates:
        if _is_inventory_root(c):
            return c
    return candidates[0]


def default_events_dir() -> Path:
    return catalog_source_dir() / "events"


def default_annotations_dir() -> Path:
    return catalog_source_dir() / "annotations"
