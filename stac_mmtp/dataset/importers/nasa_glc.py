"""NASA Global Landslide Catalog (GLC) CSV export -> candidate landslides (public domain, NASA GSFC)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from stac_mmtp.dataset.importers.common import (
    Candidate,
    RowError,
    Skipped,
    coordinates,
    is_null,
    iso3,
    parse_csv,
    parse_date,
    pick_phenomenon,
)

CATALOGUE = "NASA Global Landslide Catalog"
LICENCE = "public domain (NASA open data); cite Kirschbaum et al. 2010, 2015"
REQUIRED = ("event_id", "event_date", "location_description", "location_accuracy", "landslide_category",
            "landslide_trigger", "country_code", "longitude", "latitude")

# landslide_category -> our phenomena, best first (the first the vocabulary knows is used)
CATEGORIES: dict[str, tuple[str, ...]] = {
    "landslide": ("landslide",),
    "mudslide": ("debris-flow",),  # the GLC's "mudslide" is a flow of mud and debris
    "debris_flow": ("debris-flow",),
    "earth_flow": ("debris-flow",),
    "rock_fall": ("rockfall",),
    "topple": ("rockfall",),
    "translational_slide": ("landslide",),
    "rotational_slide": ("landslide",),
    "complex": ("landslide",),
    "riverbank_collapse": ("landslide",),
    "creep": ("slow-moving-landslide",),
    "lahar": ("lahar", "debris-flow"),
    "snow_avalanche": ("snow-avalanche",),
    "other": ("landslide",),
    "unknown": ("landslide",),
    "": ("landslide",),
}
# location_accuracy -> half-size of the AOI in km; coarser locations make no useful AOI (skipped)
ACCURACY_KM = {"exact": 2.0, "1km": 2.0, "5km": 5.0, "10km": 10.0, "25km": 20.0}

REFERENCES = [
    {"title": "Kirschbaum et al. (2010), A global landslide catalog for hazard applications: method, results, "
              "and limitations. Natural Hazards 52", "doi": "10.1007/s11069-009-9401-4"},
    {"title": "Kirschbaum et al. (2015), Spatial and temporal analysis of a global landslide catalog. "
              "Geomorphology 249", "doi": "10.1016/j.geomorph.2015.03.016"},
]


def parse(path: Path) -> Iterator[tuple[int, Candidate | RowError | Skipped]]:
    return parse_csv(path, REQUIRED, "NASA Global Landslide Catalog export", _candidate)


def _candidate(path: Path, line: int, row: dict[str, str]) -> Candidate:
    eid = row["event_id"]
    if is_null(eid):
        raise RowError("missing event id", path, line, "event_id")
    site = coordinates(row, "longitude", "latitude", path, line)
    # event_date is in local (or unknown) time: only its day is kept
    start, _ = parse_date(row["event_date"], path, line, "event_date")
    start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    accuracy = row["location_accuracy"].lower()
    if accuracy not in ACCURACY_KM:
        raise Skipped(f"location accuracy coarser than 25 km ({accuracy or 'unknown'})")
    category = row["landslide_category"].lower()
    phenomenon = pick_phenomenon(*CATEGORIES.get(category, ("landslide",)))
    if phenomenon is None:
        raise Skipped(f"no phenomenon in the vocabulary for {category!r}")
    country = iso3(row["country_code"]) or iso3(row.get("country_name", ""))
    what = category.replace("_", " ") or "landslide"
    place = row["location_description"] or row.get("country_name") or "unknown place"
    trigger = row["landslide_trigger"].replace("_", " ")
    details = [f"{what.capitalize()} at {place}"]
    if trigger and trigger != "unknown":
        details.append(f"triggered by {trigger}")
    if not is_null(row.get("fatality_count")) and row["fatality_count"] not in ("0", ""):
        details.append(f"{row['fatality_count']} fatalities")
    by = f" (reported by {row['source_name']})" if row.get("source_name") else ""
    description = (", ".join(details) + f"{by}. Location accuracy: {accuracy}. "
                   f"Imported from the NASA Global Landslide Catalog, event {eid}; date in local time, day precision.")
    refs = list(REFERENCES)
    link = row.get("source_link", "")
    if link.startswith("https://"):
        refs = [{"title": f"Report: {row.get('source_name') or 'source'}", "href": link}, *refs]
    record = {k: row[k] for k in ("source_link", "landslide_trigger", "landslide_size", "fatality_count")
              if not is_null(row.get(k))}
    return Candidate(
        source="nasa-glc", catalogue=CATALOGUE, source_id=eid, line=line,
        title=f"{what.capitalize()}, {place}"[:120], description=description, phenomenon=phenomenon,
        start=start, precision="day", site=site, half_km=ACCURACY_KM[accuracy],
        countries=[country] if country else [], references=refs, licence=LICENCE, record=record,
        match_km=ACCURACY_KM[accuracy],
    )
