"""What every catalogue importer shares: reading rows with their line numbers, dates, countries, the
Sentinel-era filter, the duplicate rule and the candidate features written atomically."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from stac_mmtp.atomic import dumps_json, write_text
from stac_mmtp.errors import InputError, MmtpError

# Sentinel-1A started operations in October 2014: nothing earlier can be observed by the dataset's sensors.
SENTINEL_ERA_START = datetime(2014, 10, 1, tzinfo=UTC)
# Sentinel-2A's first images are from the end of June 2015: an event before July 2015 is SAR-only.
SENTINEL2_START = datetime(2015, 7, 1, tzinfo=UTC)

# An event is in the era when it may have happened (or was still going on) on or after SENTINEL_ERA_START:
# a year-precision "2014" is kept, a "2014-09" is not.
# The duplicate rule: a candidate duplicates a known event of the same family of phenomena whose site is
# within max(DUPLICATE_KM, the candidate's location uncertainty) and whose dates are within DUPLICATE_DAYS
# (widened to the span of a month- or year-precision date).
DUPLICATE_KM = 5.0
DUPLICATE_DAYS = 3
_PRECISION_DAYS = {"month": 31, "year": 366}

OUT_OF_ERA = "before the Sentinel era (Oct 2014)"

FAMILIES = {
    "mass-movement": {"landslide", "debris-flow", "rock-avalanche", "rockfall", "rock-glacier", "slow-moving-landslide",
                      "glacier-collapse", "rock-ice-avalanche", "landslide-dam", "snow-avalanche", "lahar"},
    "water": {"flood", "flash-flood", "glacial-lake-outburst-flood", "landslide-dam-outburst-flood",
              "dam-failure-flood", "tsunami-inundation"},
    "volcanic": {"volcanic-eruption", "lahar"},
    "seismic": {"earthquake", "liquefaction"},
}

# UNDRR-ISC 2025 code and GLIDE code of the phenomena the importers produce; the same values as the
# vocabulary's table (`vocab.hazard_codes`, when the installed vocabulary has one, wins).
_HAZARD_CODES = {
    "landslide": ("GH0300", "LS"),
    "debris-flow": ("GH0303", "LS"),
    "rockfall": ("GH0301", "LS"),
    "slow-moving-landslide": ("GH0300", "LS"),
    "glacial-lake-outburst-flood": ("MH0607", "FL"),
    "volcanic-eruption": ("GH0201", "VO"),
    "earthquake": ("GH0101", "EQ"),
    "lahar": ("GH0204", "VO"),
    "snow-avalanche": ("MH0801", "AV"),
}

# Country names the catalogues use that ISO 3166 spells otherwise.
_COUNTRY_ALIASES = {"russia": "RUS", "turkey": "TUR", "burma": "MMR", "democratic republic of the congo": "COD",
                    "dr congo": "COD", "ivory coast": "CIV", "east timor": "TLS", "macedonia": "MKD",
                    "swaziland": "SWZ", "cape verde": "CPV", "micronesia": "FSM", "palestine": "PSE"}
_US_STATES = {
    "AK", "AL", "AR", "AZ", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "IA", "ID", "IL", "IN", "KS", "KY", "LA", "MA",
    "MD", "ME", "MI", "MN", "MO", "MS", "MT", "NC", "ND", "NE", "NH", "NJ", "NM", "NV", "NY", "OH", "OK", "OR", "PA",
    "RI", "SC", "SD", "TN", "TX", "UT", "VA", "VT", "WA", "WI", "WV", "WY", "Alaska", "California", "Hawaii", "Nevada",
    "Oregon", "Washington", "Montana", "Idaho", "Utah", "Wyoming", "Puerto Rico",
}


class RowError(MmtpError):
    """One row of a catalogue that cannot be imported; the others still are."""

    def __init__(self, message: str, file: Path, line: int | str, field: str | None = None):
        super().__init__(message, f"{file}:{line}", field)


class Skipped(Exception):  # noqa: N818 - a signal, not an error
    """A well-formed row that is not a candidate (out of the Sentinel era, not an earthquake...)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass
class Candidate:
    """One event read from a catalogue row, before it becomes a feature."""

    source: str  # SOURCE name, e.g. "nasa-glc"
    catalogue: str  # its full name
    source_id: str
    line: int | str
    title: str
    description: str
    phenomenon: str
    start: datetime
    precision: str
    site: tuple[float, float]
    half_km: float  # the AOI is a square of 2 x half_km around the site
    end: datetime | None = None  # None: an instantaneous event
    countries: list[str] = field(default_factory=list)
    references: list[dict[str, str]] = field(default_factory=list)
    licence: str = ""
    record: dict[str, Any] = field(default_factory=dict)  # a few source fields kept for the reviewer
    match_km: float = DUPLICATE_KM

    @property
    def id(self) -> str:
        return f"{self.source}-{slug(self.source_id)}"


@dataclass
class Known:
    """An event (curated or imported in this run) the duplicate rule compares with."""

    id: str
    phenomenon: str
    site: tuple[float, float]
    start: datetime
    end: datetime
    precision: str


@dataclass
class ImportReport:
    source: str
    file: Path
    out: Path
    rows: int = 0
    written: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)  # already in OUT: left as they are
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (candidate id, the event it duplicates)
    skipped: Counter[str] = field(default_factory=Counter)
    errors: list[MmtpError] = field(default_factory=list)


# --------------------------------------------------------------------------- reading
def read_text(path: Path) -> str:
    """The file's text: UTF-8 (BOM dropped), else Windows-1252 (the HMA GLOF database is), else Latin-1."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror or exc})", path) from None
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def parse_csv(path: Path, required: Iterable[str], what: str,
              candidate: Callable[[Path, int, dict[str, str]], Candidate],
              ) -> Iterator[tuple[int, Candidate | RowError | Skipped]]:
    """(line, candidate or the row's error or skip reason) for each record of a CSV source: one bad row
    never stops the others."""
    for line, row in csv_rows(path, required, what):
        if isinstance(row, RowError):
            yield line, row
            continue
        try:
            yield line, candidate(path, line, row)
        except (RowError, Skipped) as exc:
            yield line, exc


def csv_rows(path: Path, required: Iterable[str], what: str,
             header_rows: int = 2) -> Iterator[tuple[int, dict[str, str] | RowError]]:
    """(first line number, row) of each record of a CSV file, with its header found in the first `header_rows`
    rows (GVP downloads put a title line first). A file without the required columns is not this source: the
    InputError (exit 2) comes before the first row. A record with a wrong number of fields is a RowError."""
    required = list(required)
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    header: list[str] | None = None
    try:
        for _ in range(header_rows):
            row = next(reader, None)
            if row is None:
                break
            names = [c.strip() for c in row]
            if all(r in names for r in required):
                header = names
                break
    except csv.Error as exc:
        raise InputError(f"not a CSV file ({exc})", path) from None
    if header is None:
        raise InputError(f"not a {what} file: the columns {', '.join(required)} are missing", path)
    last = reader.line_num
    while True:
        start = last + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, RowError(f"unreadable CSV record ({exc})", path, start)
            last = reader.line_num
            continue
        last = reader.line_num
        if not any(v.strip() for v in row):
            continue
        # trailing empty columns (GVP's file has 8 unnamed ones) are tolerated; missing ones are not
        if len(row) < len([h for h in header if h]) or any(v.strip() for v in row[len(header):]):
            yield start, RowError(f"{len(row)} fields where the header has {len(header)} (a comma outside quotes?)",
                                  path, start)
            continue
        yield start, dict(zip(header, (v.strip() for v in row), strict=False))


def is_null(value: str | None) -> bool:
    return value is None or value.strip() in ("", "NA", "N/A", "NaN", "nan", "null", "None")


def number(row: dict[str, str], key: str, path: Path, line: int | str, lo: float, hi: float) -> float:
    value = row.get(key, "")
    if is_null(value):
        raise RowError("missing value", path, line, key)
    try:
        x = float(value)
    except ValueError:
        raise RowError(f"not a number: {value!r}", path, line, key) from None
    if not (lo <= x <= hi) or math.isnan(x):
        raise RowError(f"{x} is out of range [{lo}, {hi}]", path, line, key)
    return x


def coordinates(row: dict[str, str], lon_key: str, lat_key: str, path: Path, line: int | str) -> tuple[float, float]:
    return number(row, lon_key, path, line, -180, 180), number(row, lat_key, path, line, -90, 90)


_DATE_FORMATS = (
    ("%m/%d/%Y %I:%M:%S %p", "second"),  # NASA open-data portal export: 08/01/2014 12:00:00 AM
    ("%m/%d/%Y %H:%M:%S", "second"),
    ("%m/%d/%Y %H:%M", "minute"),
    ("%m/%d/%Y", "day"),
    ("%Y-%m-%d %H:%M:%S", "second"),
    ("%Y-%m-%d %H:%M", "minute"),
    ("%Y-%m-%d", "day"),
    ("%Y/%m/%d", "day"),
)


def parse_date(value: str, path: Path, line: int | str, key: str) -> tuple[datetime, str]:
    """(UTC date-time, precision) of the date formats the catalogues use; a value without a zone is taken as UTC."""
    if is_null(value):
        raise RowError("missing date", path, line, key)
    text = value.strip()
    if "T" in text:
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise RowError(f"not a date: {text!r}", path, line, key) from None
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC), "second"
    for fmt, precision in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC), precision
        except ValueError:
            continue
    raise RowError(f"not a date in a known format (M/D/YYYY [H:MM], YYYY-MM-DD [HH:MM:SS], ISO 8601): {text!r}",
                   path, line, key)


def date_from_parts(year: str, month: str, day: str, path: Path, line: int | str,
                    keys: tuple[str, str, str]) -> tuple[datetime, str]:
    """A date from year / month / day columns; a missing (empty, NA or 0) month or day lowers the precision."""
    try:
        y = int(year)
        m = 0 if is_null(month) else int(month)
        d = 0 if is_null(day) else int(day)
    except (TypeError, ValueError):
        raise RowError(f"not a date: year {year!r}, month {month!r}, day {day!r}", path, line, keys[0]) from None
    if y < 1:
        raise Skipped(OUT_OF_ERA)  # BCE years (negative): datetime cannot hold them and they are long gone
    try:
        if m == 0:
            return datetime(y, 1, 1, tzinfo=UTC), "year"
        if d == 0:
            return datetime(y, m, 1, tzinfo=UTC), "month"
        return datetime(y, m, d, tzinfo=UTC), "day"
    except ValueError as exc:
        raise RowError(f"not a date: {y}-{m}-{d} ({exc})", path, line, keys[1] if m > 12 else keys[2]) from None


@cache
def iso3(name_or_code: str) -> str | None:
    """ISO 3166-1 alpha-3 of a country name or alpha-2/alpha-3 code, None when unknown."""
    if is_null(name_or_code):
        return None
    import pycountry

    text = name_or_code.strip()
    if text.lower() in _COUNTRY_ALIASES:
        return _COUNTRY_ALIASES[text.lower()]
    try:
        return pycountry.countries.lookup(text).alpha_3
    except LookupError:
        return None


def place_country(place: str | None) -> str | None:
    """The country of a USGS place string ("134 km NNE of Tobelo, Indonesia"; US places end with the state)."""
    if place is None or is_null(place) or "," not in place:
        return None
    last = place.rsplit(",", 1)[1].strip()
    last = re.sub(r"\s+Earthquake$", "", last)
    return "USA" if last in _US_STATES else iso3(last)


def pick_phenomenon(*names: str) -> str | None:
    """The first of `names` the vocabulary knows (new phenomena are being added: prefer them when present)."""
    from stac_mmtp.dataset.vocab import phenomena

    known = phenomena()
    return next((n for n in names if n in known), None)


def hazard_codes(phenomenon: str) -> list[str]:
    from stac_mmtp.dataset import vocab

    table = getattr(vocab, "hazard_codes", None)
    if table is not None:
        try:
            codes, glide = table(phenomenon)
            return [codes[0], glide]
        except KeyError:
            pass
    return list(_HAZARD_CODES.get(phenomenon, ()))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def dois(text: str) -> list[str]:
    """Bare DOIs quoted in a free-text reference field."""
    if is_null(text):
        return []
    found = re.findall(r"10\.\d{4,9}/[^\s,;\"()]+", text)
    return list(dict.fromkeys(d.rstrip(".") for d in found))


# --------------------------------------------------------------------------- duplicates
def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lon, lat) points."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(h)))


@cache
def _family(phenomenon: str) -> frozenset[str]:
    return frozenset({f for f, members in FAMILIES.items() if phenomenon in members} or {phenomenon})


def precision_span(precision: str) -> timedelta:
    """How long after its written instant a date of this precision may really be."""
    return timedelta(days=_PRECISION_DAYS.get(precision, 1 if precision == "day" else 0))


class KnownIndex:
    """The known events on a 1-degree grid: a full import compares thousands of candidates with each other
    (a linear scan took 35 s on the 11,032 rows of the GLC)."""

    def __init__(self, known: Iterable[Known] = ()):
        self.cells: dict[tuple[int, int], list[Known]] = {}
        for k in known:
            self.add(k)

    def add(self, k: Known) -> None:
        self.cells.setdefault((math.floor(k.site[0]), math.floor(k.site[1])), []).append(k)

    def near(self, site: tuple[float, float], radius_km: float) -> Iterator[Known]:
        lon, lat = site
        dlat = radius_km / 111.32
        dlon = min(360.0, radius_km / (111.32 * max(math.cos(math.radians(min(abs(lat) + dlat, 90.0))), 1e-6)))
        for y in range(math.floor(lat - dlat), math.floor(lat + dlat) + 1):
            for x in range(math.floor(lon - dlon), math.floor(lon + dlon) + 1):
                xx = (x + 180) % 360 - 180  # across the antimeridian
                yield from self.cells.get((xx, y), ())


def find_duplicate(c: Candidate, known: KnownIndex) -> str | None:
    """Id of the first known event this candidate duplicates (rule: see DUPLICATE_KM / DUPLICATE_DAYS)."""
    end = c.end or c.start
    families = _family(c.phenomenon)
    radius = max(c.match_km, DUPLICATE_KM)
    for k in known.near(c.site, radius):
        if not (families & _family(k.phenomenon)) or distance_km(c.site, k.site) > radius:
            continue
        slack = timedelta(days=max(DUPLICATE_DAYS, _PRECISION_DAYS.get(c.precision, 0),
                                   _PRECISION_DAYS.get(k.precision, 0)))
        if c.start <= k.end + slack and k.start <= end + slack:
            return k.id
    return None


def load_known(events_dir: Path) -> list[Known]:
    """Site, dates and phenomenon of every event file in `events_dir`, read leniently: the inventory's own
    checks are `events check`'s job, and a file this cannot read is simply not compared with."""
    known = []
    for path in sorted(Path(events_dir).glob("*.geojson")) if Path(events_dir).is_dir() else []:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            p = doc["properties"]
            start = datetime.fromisoformat((p.get("datetime") or p["start_datetime"]).replace("Z", "+00:00"))
            end = datetime.fromisoformat((p.get("datetime") or p["end_datetime"]).replace("Z", "+00:00"))
            known.append(Known(doc["id"], p["phenomenon"], (float(p["site"][0]), float(p["site"][1])),
                               start, end, p.get("datetime_precision", "second")))
        except (ValueError, KeyError, TypeError, IndexError):
            continue
    return known


# --------------------------------------------------------------------------- features
def aoi(site: tuple[float, float], half_km: float) -> dict[str, Any]:
    """A square AOI of 2 x half_km around the site (lon/lat degrees, 6 decimals)."""
    lon, lat = site
    dlat = half_km / 111.32
    dlon = half_km / (111.32 * max(math.cos(math.radians(lat)), 0.01))
    w, s = round(max(lon - dlon, -180.0), 6), round(max(lat - dlat, -90.0), 6)
    e, n = round(min(lon + dlon, 180.0), 6), round(min(lat + dlat, 90.0), 6)
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_feature(c: Candidate, file: Path) -> dict[str, Any]:
    """The candidate as an inventory event Feature (same properties as catalog/events/*.geojson)."""
    description = c.description
    if c.start < SENTINEL2_START:
        description += " Before Sentinel-2's first images (July 2015): SAR only."
    props: dict[str, Any] = {
        "title": c.title,
        "description": description,
        "phenomenon": c.phenomenon,
        "state": "ended",
    }
    if c.end is None or c.end == c.start:
        props["datetime"] = _iso(c.start)
    else:
        props["start_datetime"], props["end_datetime"] = _iso(c.start), _iso(c.end)
    props.update({
        "datetime_precision": c.precision,
        "site": [round(c.site[0], 6), round(c.site[1], 6)],
        "countries": c.countries,
        "hazard_codes": hazard_codes(c.phenomenon),
        "triggered_by": [],
        "references": c.references,
        "review_status": "candidate",
        "sources": [{
            "catalogue": c.catalogue,
            "source": c.source,
            "id": c.source_id,
            "file": file.name,
            "line": c.line,
            "licence": c.licence,
            **({"record": c.record} if c.record else {}),
        }],
    })
    return {"type": "Feature", "id": c.id, "geometry": aoi(c.site, c.half_km), "properties": props}


# --------------------------------------------------------------------------- the import
Parser = Callable[[Path], Iterator["tuple[int | str, Candidate | RowError | Skipped]"]]


def run_import(source: str, parse: Parser, file: Path, out: Path, events_dir: Path,
               now: datetime | None = None) -> ImportReport:
    """Parse every row first (a bad FILE raises InputError before anything is written), then write each new
    candidate atomically. Existing files in OUT are never overwritten: re-running an import is a no-op."""
    now = now or datetime.now(UTC)
    if not file.is_file():
        raise InputError("no such file", file)
    report = ImportReport(source, file, out)
    known = KnownIndex(load_known(events_dir))
    features = []
    for line, item in parse(file):
        report.rows += 1
        if isinstance(item, MmtpError):
            report.errors.append(item)
            continue
        if isinstance(item, Skipped):
            report.skipped[item.reason] += 1
            continue
        # out of the era only when the whole span its precision allows ended before Oct 2014
        if (item.end or item.start) + precision_span(item.precision) <= SENTINEL_ERA_START:
            report.skipped[OUT_OF_ERA] += 1
            continue
        if item.start > now:
            report.errors.append(RowError(f"the date {item.start:%Y-%m-%d} is in the future", file, line))
            continue
        dup = find_duplicate(item, known)
        if dup is not None:
            report.duplicates.append((item.id, dup))
            continue
        known.add(Known(item.id, item.phenomenon, item.site, item.start, item.end or item.start, item.precision))
        features.append(to_feature(item, file))
    for feature in features:
        path = out / f"{feature['id']}.geojson"
        if path.exists():
            report.existing.append(feature["id"])
            continue
        write_text(path, dumps_json(feature))
        report.written.append(feature["id"])
    return report
