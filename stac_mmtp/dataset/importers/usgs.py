"""USGS earthquake catalogues -> candidate earthquakes: ComCat GeoJSON (FeatureCollection as served by
earthquake.usgs.gov: summary feeds and `fdsnws/event/1/query?format=geojson`) and the M >= 5.5 CSV
(`earthquakes.csv`: Date, Time, Latitude, Longitude, Type, ..., Magnitude, ..., ID). Public domain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stac_mmtp.dataset.importers.common import (
    Candidate,
    RowError,
    Skipped,
    coordinates,
    csv_rows,
    is_null,
    number,
    parse_date,
    pick_phenomenon,
    place_country,
    read_text,
)
from stac_mmtp.errors import InputError

CATALOGUE = "USGS ANSS Comprehensive Earthquake Catalog (ComCat)"
LICENCE = "public domain (USGS)"
REQUIRED_CSV = ("Date", "Time", "Latitude", "Longitude", "Type", "Magnitude", "ID")


def half_km(magnitude: float | None) -> float:
    """The AOI is the most affected area around the epicentre: wider for the largest shocks (under 50 km)."""
    return 20.0 if magnitude is not None and magnitude >= 7 else 10.0


def parse(path: Path) -> Iterator[tuple[int | str, Candidate | RowError | Skipped]]:
    text = read_text(path)
    if text.lstrip().startswith("{"):
        yield from _geojson(path, text)
    else:
        yield from _csv(path)


def _candidate(path: Path, line: int | str, eid: str, when: datetime, site: tuple[float, float],
               mag: float | None, place: str | None, title: str | None, record: dict[str, Any]) -> Candidate:
    phenomenon = pick_phenomenon("earthquake")
    if phenomenon is None:
        raise Skipped("no earthquake phenomenon in the vocabulary")
    code = eid.lower()  # ComCat ids are lower case in its URLs ("US20002926" in the CSV is us20002926)
    m = f"M {mag:g}" if mag is not None else "Earthquake"
    country = place_country(place)
    return Candidate(
        source="usgs", catalogue=CATALOGUE, source_id=eid, line=line,
        title=title or f"{m} earthquake {when:%Y-%m-%d}" + (f", {place}" if place else ""),
        description=(f"{m} earthquake at {when:%Y-%m-%d %H:%M:%S} UTC" + (f", {place}" if place else "")
                     + f" (USGS event {code}). The site is the epicentre; the AOI a square around it."),
        phenomenon=phenomenon, start=when, precision="second", site=site, half_km=half_km(mag),
        countries=[country] if country else [],
        references=[{"title": f"USGS earthquake event page {code}",
                     "href": f"https://earthquake.usgs.gov/earthquakes/eventpage/{code}"}],
        licence=LICENCE, record=record,
    )


def _csv(path: Path) -> Iterator[tuple[int, Candidate | RowError | Skipped]]:
    for line, row in csv_rows(path, REQUIRED_CSV, "USGS earthquake CSV"):
        if isinstance(row, RowError):
            yield line, row
            continue
        try:
            eid = row["ID"]
            if is_null(eid):
                raise RowError("missing event id", path, line, "ID")
            if row["Type"].lower() != "earthquake":
                raise Skipped(f"not an earthquake ({row['Type'] or 'no type'})")
            site = coordinates(row, "Longitude", "Latitude", path, line)
            date, _ = parse_date(row["Date"], path, line, "Date")
            if "T" not in row["Date"]:  # ISO rows repeat the full date-time in both columns
                try:
                    t = datetime.strptime(row["Time"], "%H:%M:%S")
                except ValueError:
                    raise RowError(f"not a time (HH:MM:SS): {row['Time']!r}", path, line, "Time") from None
                date = date.replace(hour=t.hour, minute=t.minute, second=t.second)
            mag = number(row, "Magnitude", path, line, -2, 10)
            record = {"magnitude": mag, "magnitude_type": row.get("Magnitude Type", ""), "depth_km": row.get("Depth", "")}
            yield line, _candidate(path, line, eid, date, site, mag, None, None, record)
        except (RowError, Skipped) as exc:
            yield line, exc


def _geojson(path: Path, text: str) -> Iterator[tuple[str, Candidate | RowError | Skipped]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc})", path) from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise InputError("not a USGS GeoJSON FeatureCollection", path)
    for i, feat in enumerate(doc["features"]):
        where = f"features[{i}]"
        try:
            if not isinstance(feat, dict) or not isinstance(feat.get("properties"), dict):
                raise RowError("not a GeoJSON Feature with properties", path, where)
            props = feat["properties"]
            eid = feat.get("id")
            if not isinstance(eid, str) or not eid:
                raise RowError("missing event id", path, where, "id")
            where = f"features[{i}] ({eid})"
            if (props.get("type") or "earthquake") != "earthquake":
                raise Skipped(f"not an earthquake ({props.get('type')})")
            coords = (feat.get("geometry") or {}).get("coordinates")
            if not (isinstance(coords, list) and len(coords) >= 2):
                raise RowError("missing coordinates", path, where, "geometry")
            site = coordinates({"lon": str(coords[0]), "lat": str(coords[1])}, "lon", "lat", path, where)
            ms = props.get("time")
            if not isinstance(ms, int | float):
                raise RowError(f"time is not epoch milliseconds: {ms!r}", path, where, "time")
            when = datetime.fromtimestamp(ms / 1000, UTC).replace(microsecond=0)
            mag = props.get("mag") if isinstance(props.get("mag"), int | float) else None
            record = {"magnitude": mag, "magnitude_type": props.get("magType"),
                      "depth_km": coords[2] if len(coords) > 2 else None}
            yield where, _candidate(path, where, eid, when, site, mag, props.get("place"), props.get("title"),
                                    {k: v for k, v in record.items() if v is not None})
        except (RowError, Skipped) as exc:
            yield where, exc
