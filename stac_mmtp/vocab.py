"""Controlled vocabularies, read from our extension's JSON Schema so that there is one source of truth."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from .paths import extensions_dir


@cache
def extension_schema() -> dict[str, Any]:
    path = extensions_dir() / "mmtp" / "json-schema" / "schema.json"
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def _enum(name: str) -> tuple[str, ...]:
    return tuple(extension_schema()["definitions"][name]["enum"])


def phenomena() -> tuple[str, ...]:
    return _enum("phenomenon")


def states() -> tuple[str, ...]:
    return _enum("state")


def temporal_roles() -> tuple[str, ...]:
    return _enum("temporal_role")


def field_enum(field: str) -> tuple[str, ...]:
    """Enum of a `mmtp:` field (or of its array items)."""
    spec = extension_schema()["definitions"]["fields"]["properties"][field]
    if "items" in spec:
        spec = spec["items"]
    if "$ref" in spec:
        spec = extension_schema()["definitions"][spec["$ref"].rsplit("/", 1)[1]]
    return tuple(spec["enum"])
