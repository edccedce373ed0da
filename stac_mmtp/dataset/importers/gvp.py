"""Smithsonian Global Volcanism Program eruption list (`GVP_Eruption_Results.csv`) -> candidate eruptions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from stac_mmtp.dataset.importers.common import (
    OUT_OF_ERA,
    SENTINEL_ERA_START,
    Candidate,
    RowError,
    Skipped,
    coordinates,
    date_from_parts,
    is_null,
    parse_csv,
    pick_phenomenon,
    precision_span,
)

CATALOGUE = "Smithsonian Global Volcanism Program, Volcanoes of the World"
LICENCE = "(c) Smithsonian Institution, Global Volcanism Program; free use with citation"
REQUIRED = ("Volcano Number", "Volcano Name", "Eruption Number", "Eruption Category", "Start Year", "Start Month",
            "Start Day", "End Year", "End Month", "End Day", "Latitude", "Longitude")
HALF_KM = 10.0  # the coordinates are the volcano's, not the vent's: a 20 km AOI, duplicates within 10 km
_COARSER = ("second", "minute", "hour", "day", "month", "year")


def parse(path: Path) -> Iterator[tuple[int, Candidate | RowError | Skipped]]:
    return parse_csv(path, REQUIRED, "GVP eruption list", _candidate)


def _candidate(path: Path, line: int, row: dict[str, str]) -> Candidate:
    number, name, eruption = row["Volcano Number"], row["Volcano Name"], row["Eruption Number"]
    if is_null(eruption) or is_null(number):
        raise RowError("missing volcano or eruption number", path, line, "Eruption Number")
    if row["Eruption Category"] != "Confirmed Eruption":
        raise Skipped(f"not a confirmed eruption ({row['Eruption Category'] or 'no category'})")
    if is_null(row["Start Year"]):
        raise RowError("missing start year", path, line, "Start Year")
    start, p_start = date_from_parts(row["Start Year"], row["Start Month"], row["Start Day"], path, line,
                                     ("Start Year", "Start Month", "Start Day"))
    end, p_end = start, p_start
    if not is_null(row["End Year"]):
        end, p_end = date_from_parts(row["End Year"], row["End Month"], row["End Day"], path, line,
                                     ("End Year", "End Month", "End Day"))
        if end + precision_span(p_end) <= SENTINEL_ERA_START:
            raise Skipped(OUT_OF_ERA)
        if end < start:
            # "ended in 2015-02" with a start on 2015-02-04: the end is written as the month's first day
            if end + precision_span(p_end) <= start:
                raise RowError(f"ends ({end:%Y-%m-%d}) before it starts ({start:%Y-%m-%d})", path, line, "End Year")
            end = start
    elif start + precision_span(p_start) <= SENTINEL_ERA_START:
        raise Skipped(OUT_OF_ERA)
    site = coordinates(row, "Longitude", "Latitude", path, line)
    precision = max(p_start, p_end, key=_COARSER.index)
    phenomenon = pick_phenomenon("volcanic-eruption")
    if phenomenon is None:
        raise Skipped("no volcanic-eruption phenomenon in the vocabulary")
    day = {"year": "%Y", "month": "%Y-%m"}.get(precision, "%Y-%m-%d")
    span = f"from {start.strftime(day)} to {end.strftime(day)}" if end != start else f"on {start.strftime(day)}"
    return Candidate(
        source="gvp", catalogue=CATALOGUE, source_id=eruption, line=line,
        title=f"{name} eruption {start.strftime(day)}",
        description=(f"Eruption of {name} (GVP volcano {number}, eruption {eruption}) {span}. Imported from the GVP "
                     "eruption list: the site is the volcano's reference point, and for an eruption continuing at "
                     "the time of the export the end date is the export's date."),
        phenomenon=phenomenon, start=start, end=end, precision=precision, site=site, half_km=HALF_KM,
        references=[
            {"title": f"Global Volcanism Program: {name} ({number})",
             "href": f"https://volcano.si.edu/volcano.cfm?vn={number}"},
            {"title": "Global Volcanism Program (2013), Volcanoes of the World v. 4.x, Smithsonian Institution",
             "doi": "10.5479/si.GVP.VOTW4-2013"},
        ],
        licence=LICENCE, match_km=HALF_KM,
    )
