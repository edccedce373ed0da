"""Small writers for test inputs (the tests make their own data; nothing is copied from ../shared)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def box(lon: float, lat: float, half: float = 0.05) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [[[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
                         [lon - half, lat + half], [lon - half, lat - half]]],
    }


def event_doc(eid: str, **props: Any) -> dict[str, Any]:
    """A valid event Feature; keyword arguments override properties (None removes one)."""
    geometry = props.pop("geometry", box(11.04, 60.07))
    base: dict[str, Any] = {
        "title": f"Event {eid}",
        "description": "A test event.",
        "phenomenon": "landslide",
        "state": "ended",
        "datetime": "2020-12-30T03:00:00Z",
        "datetime_precision": "hour",
        "site": [11.04, 60.07],
        "countries": ["NOR"],
        "hazard_codes": ["LS"],
        "triggered_by": [],
        "references": [{"title": "A page", "href": "https://www.nve.no/"}],
    }
    for k, v in props.items():
        if v is None:
            base.pop(k, None)
        else:
            base[k] = v
    return {"type": "Feature", "id": eid, "geometry": geometry, "properties": base}


def write_event(directory: Path, eid: str, doc: dict[str, Any] | None = None, **props: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{eid}.geojson"
    path.write_text(json.dumps(doc or event_doc(eid, **props), indent=2), encoding="utf-8")
    return path
