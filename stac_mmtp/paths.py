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


def catalog_source_dir() -> Path:
    """`catalog/` (events, annotations, collection metadata) of the checkout or the wheel."""
    return _first_existing(Path.cwd() / "catalog", _PKG.parent / "catalog", _PKG / "_catalog")


def default_events_dir() -> Path:
    return catalog_source_dir() / "events"


def default_annotations_dir() -> Path:
    return catalog_source_dir() / "annotations"
