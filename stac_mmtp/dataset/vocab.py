"""Controlled vocabularies, read from our extension's JSON Schema so that there is one source of truth."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from stac_mmtp.paths import extensions_dir


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


# Hazard codes each phenomenon carries (UNDRR-ISC 2025 Hazard Information Profiles, as used by Monty's
# `monty:hazard_codes`, and GLIDE): an event lists at least one of the UNDRR-ISC codes and the GLIDE code.
# The same table is in extensions/mmtp/README.md (phenomenon vocabulary); a test keeps them equal.
HAZARD_CODES: dict[str, tuple[tuple[str, ...], str]] = {
    "landslide": (("GH0300",), "LS"),
    "debris-flow": (("GH0303",), "LS"),
    "rock-avalanche": (("GH0300", "GH0301"), "LS"),
    "rockfall": (("GH0301",), "LS"),
    "flood": (("MH0600", "MH0601", "MH0604", "MH0606"), "FL"),
    "flash-flood": (("MH0603",), "FF"),
    "glacial-lake-outburst-flood": (("MH0607",), "FL"),
    "volcanic-eruption": (("GH0201",), "VO"),
    "rock-glacier": (("GH0300",), "LS"),
    "slow-moving-landslide": (("GH0300",), "LS"),
    "glacier-collapse": (("MH0801",), "AV"),
    "rock-ice-avalanche": (("MH0801", "GH0300"), "AV"),
    "earthquake": (("GH0101",), "EQ"),
    "subsidence": (("GH0309",), "OT"),
    "tsunami-inundation": (("MH0705",), "TS"),
    "liquefaction": (("GH0307",), "EQ"),
    "lahar": (("GH0204",), "VO"),
    "snow-avalanche": (("MH0801",), "AV"),
    "landslide-dam": (("GH0300",), "LS"),
    "landslide-dam-outburst-flood": (("MH0603",), "FF"),
    "dam-failure-flood": (("TL0205",), "FL"),
}


def hazard_codes(phenomenon: str) -> tuple[tuple[str, ...], str]:
    """(UNDRR-ISC 2025 codes, one of which an event of this phenomenon carries; its GLIDE code)."""
    return HAZARD_CODES[phenomenon]
