"""High Mountain Asia GLOF database (`HMAGLOFDB.csv`, Steiner et al. 2023) -> candidate outburst floods."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from stac_mmtp.dataset.importers.common import (
    Candidate,
    RowError,
    Skipped,
    coordinates,
    date_from_parts,
    dois,
    is_null,
    iso3,
    parse_csv,
    pick_phenomenon,
)

CATALOGUE = "High Mountain Asia GLOF database (HMAGLOFDB)"
LICENCE = "CC BY 4.0 (repository README; LICENSE file: CC0 1.0); cite Steiner et al. 2023"
REQUIRED = ("GF_ID", "Year_approx", "Year_exact", "Month", "Day", "Lake_name", "Lat_lake", "Lon_lake", "Country",
            "Lake_type", "River_Basin", "Mechanism", "Ref_scientific_full")
HALF_KM = 3.0  # the site is the lake; the impact site can be tens of km downstream (not in the AOI)
DATABASE_REF = {"title": "Steiner et al. (2023), A database of glacial lake outburst floods in High Mountain Asia "
                         "(HMAGLOFDB). Earth System Science Data 15", "doi": "10.5194/essd-15-3941-2023"}


def parse(path: Path) -> Iterator[tuple[int, Candidate | RowError | Skipped]]:
    return parse_csv(path, REQUIRED, "HMA GLOF database", _candidate)


def _candidate(path: Path, line: int, row: dict[str, str]) -> Candidate:
    gid = row["GF_ID"]
    if is_null(gid):
        raise RowError("missing GLOF id", path, line, "GF_ID")
    year = row["Year_exact"]
    end = None
    if is_null(year):
        # only an approximate year ("2015-2016", "May to June 2020", "1990s"): a year-precision period
        years = sorted(int(y) for y in re.findall(r"(?<!\d)([12]\d{3})(?!\d)", row["Year_approx"]))
        if not years:
            raise Skipped("no date in the source")
        start, precision = datetime(years[0], 1, 1, tzinfo=UTC), "year"
        end = datetime(years[-1], 1, 1, tzinfo=UTC) if years[-1] != years[0] else None
    else:
        start, precision = date_from_parts(year, row["Month"], row["Day"], path, line, ("Year_exact", "Month", "Day"))
    site = coordinates(row, "Lon_lake", "Lat_lake", path, line)
    phenomenon = pick_phenomenon("glacial-lake-outburst-flood", "flash-flood")
    if phenomenon is None:
        raise Skipped("no outburst-flood phenomenon in the vocabulary")
    lake = row["Lake_name"].strip()
    named = not is_null(lake) and lake.lower() not in ("unnamed", "unknown")
    basin = row["River_Basin"] if not is_null(row["River_Basin"]) else row["Country"]
    day = {"year": "%Y", "month": "%Y-%m"}.get(precision, "%Y-%m-%d")
    lake_type = row["Lake_type"].lower() if not is_null(row["Lake_type"]) else "glacial"
    mechanism = row["Mechanism"] if not is_null(row["Mechanism"]) and row["Mechanism"] != "Unknown" else None
    country = iso3(row["Country"])
    refs = [{"title": f"Reference quoted by HMAGLOFDB for GLOF {gid}", "doi": d} for d in dois(row["Ref_scientific_full"])]
    return Candidate(
        source="hma-glof", catalogue=CATALOGUE, source_id=gid, line=line,
        title=f"{lake if named else 'Unnamed lake'} glacial lake outburst flood {start.strftime(day)}",
        description=(f"Outburst flood of the {lake_type} lake {lake if named else '(unnamed)'} ({basin} basin, "
                     f"{row['Country']}) "
                     + (f"between {start:%Y} and {end:%Y}" if end else f"on {start.strftime(day)}")
                     + (f"; mechanism: {mechanism}" if mechanism else "")
                     + f". Imported from HMAGLOFDB, GLOF {gid}; the site is the lake, not the impact area."),
        phenomenon=phenomenon, start=start, end=end, precision=precision, site=site, half_km=HALF_KM,
        countries=[country] if country else [], references=[DATABASE_REF, *refs], licence=LICENCE,
        record={k: row[k] for k in ("Lat_impact", "Lon_impact", "Impact_type", "Driver_GLOF")
                if k in row and not is_null(row[k])},
    )
