"""Load and check the event inventory (`catalog/events/*.geojson`), one GeoJSON Feature per event."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import Point, shape
from shapely.validation import explain_validity

from stac_mmtp.dataset.vocab import phenomena, states
from stac_mmtp.errors import InputError, InputErrors

ID_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
COUNTRY_PATTERN = re.compile(r"^[A-Z]{3}$")
DOI_PATTERN = re.compile(r"^10\.\d{4,9}/\S+$")
PRECISIONS = ("second", "minute", "hour", "day", "month", "year")
MAX_AOI_KM = 50.0
REVIEW_STATUSES = ("curated", "candidate")
MODALITIES = ("sentinel-1", "sentinel-2")
# The Sentinel era. Sentinel-1A was launched on 3 April 2014 and acquired during its commissioning phase
# (those products are in the Copernicus archive); routine operations started on 3 October 2014.
# Sentinel-2A was launched on 23 June 2015. An event is only worth including if a Sentinel image can see it.
S1_FIRST = datetime(2014, 4, 3, tzinfo=UTC)
S1_OPERATIONS = datetime(2014, 10, 3, tzinfo=UTC)
S2_FIRST = datetime(2015, 6, 23, tzinfo=UTC)
CONTINENTS = ("Europe", "Asia", "Africa", "North America", "South and Central America", "Oceania/Pacific")
# Dates the inventory accepts: the Sentinel era, with room for the future. Outside it there is no
# product to pair with, and a year-1 date would overflow the build's time windows.
MIN_DATE = datetime(2014, 1, 1, tzinfo=UTC)
MAX_DATE = datetime(2100, 12, 31, 23, 59, 59, tzinfo=UTC)


class InventoryErrors(InputErrors):
    """Every problem found in an inventory, each naming its file and field."""

    what = "the inventory"


@dataclass(frozen=True)
class Reference:
    title: str
    href: str | None = None
    doi: str | None = None

    @property
    def url(self) -> str:
        return self.href if self.href else f"https://doi.org/{self.doi}"


@dataclass(frozen=True)
class Event:
    """One inventory event. Instantaneous events have start == end."""

    id: str
    path: Path
    title: str
    description: str
    phenomenon: str
    state: str
    start: datetime
    end: datetime
    instant: bool
    precision: str
    site: tuple[float, float]
    geometry: dict[str, Any]
    countries: tuple[str, ...]
    hazard_codes: tuple[str, ...] = ()
    glide: str | None = None
    triggered_by: tuple[str, ...] = ()
    references: tuple[Reference, ...] = ()
    review_status: str = "curated"
    modalities: tuple[str, ...] = MODALITIES
    triggers: tuple[str, ...] = field(default=())  # filled by load_inventory from the other events
    ongoing: bool = False  # an active event with no end_datetime: `end` is the time of loading

    @property
    def datetime(self) -> datetime:
        return self.start

    @property
    def shape(self) -> shapely.Geometry:
        return shape(self.geometry)

    @property
    def bbox(self) -> list[float]:
        return [round(v, 6) for v in self.shape.bounds]


def parse_datetime(value: Any, path: Path, name: str) -> datetime:
    if not isinstance(value, str):
        raise InputError(f"expected an ISO 8601 date-time string, got {value!r}", path, name)
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"not an ISO 8601 date-time: {value!r}", path, name) from None
    if dt.tzinfo is None:
        raise InputError(f"date-time {value!r} has no time zone (write it in UTC with a trailing Z)", path, name)
    return dt.astimezone(UTC)


def aoi_extent_km(geom: shapely.Geometry) -> tuple[float, float]:
    """Width and height of a lon/lat geometry's bounding box in km (spherical approximation)."""
    minx, miny, maxx, maxy = geom.bounds
    lat = math.radians((miny + maxy) / 2)
    km_per_deg = 111.32
    return (maxx - minx) * km_per_deg * math.cos(lat), (maxy - miny) * km_per_deg


def _check_geometry(geom_json: Any, path: Path) -> shapely.Geometry:
    if not isinstance(geom_json, dict) or geom_json.get("type") not in ("Polygon", "MultiPolygon"):
        raise InputError("the AOI must be a GeoJSON Polygon or MultiPolygon", path, "geometry")
    try:
        geom = shape(geom_json)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        raise InputError(f"malformed coordinates: {exc}", path, "geometry") from None
    if geom.is_empty:
        raise InputError("the AOI is empty", path, "geometry")
    if not geom.is_valid:
        raise InputError(f"invalid AOI polygon ({explain_validity(geom)})", path, "geometry")
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InputError("coordinates out of range: GeoJSON is longitude, latitude in degrees", path, "geometry")
    w, h = aoi_extent_km(geom)
    if max(w, h) > MAX_AOI_KM:
        raise InputError(f"the AOI is {max(w, h):.0f} km across; keep it under {MAX_AOI_KM:.0f} km", path, "geometry")
    return geom


def _str_list(props: dict[str, Any], key: str, path: Path) -> tuple[str, ...]:
    value = props.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError("expected a list of strings", path, key)
    return tuple(value)


def parse_event(path: Path, now: datetime | None = None) -> Event:
    """Parse and check one event file; raise InputError naming the file and field."""
    now = now or datetime.now(UTC)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc})", path) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start}): save the file as UTF-8", path) from None
    except IsADirectoryError:
        raise InputError("a directory, not an event file", path) from None
    except FileNotFoundError:
        raise InputError("cannot be read (a dangling symbolic link?)", path) from None
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror or exc})", path) from None
    if not isinstance(doc, dict) or doc.get("type") != "Feature":
        raise InputError("expected one GeoJSON Feature per file", path, "type")
    eid = doc.get("id")
    if not isinstance(eid, str) or not ID_PATTERN.match(eid):
        raise InputError(
            f"id {eid!r} is not URL-safe (lowercase letters, digits and single '-' only; no '/', '..' or spaces)",
            path,
            "id",
        )
    if path.suffix == ".geojson" and path.stem != eid:
        raise InputError(f"id {eid!r} differs from the file name {path.name!r}", path, "id")
    props = doc.get("properties")
    if not isinstance(props, dict):
        raise InputError("missing properties", path, "properties")
    for key in ("title", "description"):
        if not isinstance(props.get(key), str) or not props[key].strip():
            raise InputError("missing or empty", path, key)
    phen = props.get("phenomenon")
    if phen not in phenomena():
        raise InputError(f"unknown phenomenon {phen!r}; known: {', '.join(phenomena())}", path, "phenomenon")
    state = props.get("state", "ended")
    if state not in states():
        raise InputError(f"unknown state {state!r}; known: {', '.join(states())}", path, "state")

    geom = _check_geometry(doc.get("geometry"), path)
    site = props.get("site")
    if not (isinstance(site, list) and len(site) == 2 and all(isinstance(v, int | float) for v in site)):
        raise InputError("expected [longitude, latitude] of the real site", path, "site")
    if not geom.covers(Point(site)):
        raise InputError(f"the site {site} is outside the AOI polygon", path, "site")

    ongoing = False
    if "datetime" in props:
        if "start_datetime" in props or "end_datetime" in props:
            raise InputError("give either datetime or start_datetime/end_datetime, not both", path, "datetime")
        start = end = parse_datetime(props["datetime"], path, "datetime")
        instant = True
    elif "start_datetime" in props and props.get("end_datetime") is None and state == "active":
        # Ongoing activity: an active event may leave end_datetime null or absent; it then runs to the
        # start of today (UTC), so that builds of one day agree.
        start = parse_datetime(props["start_datetime"], path, "start_datetime")
        end = max(start, now.replace(hour=0, minute=0, second=0, microsecond=0))
        instant, ongoing = False, True
    elif "start_datetime" in props and "end_datetime" in props:
        start = parse_datetime(props["start_datetime"], path, "start_datetime")
        end = parse_datetime(props["end_datetime"], path, "end_datetime")
        instant = False
        if start > end:
            raise InputError(f"start_datetime {start:%Y-%m-%d} is after end_datetime {end:%Y-%m-%d}", path, "start_datetime")
    else:
        raise InputError("missing datetime (or start_datetime and end_datetime)", path, "datetime")
    if start > now:
        raise InputError(f"the event date {start:%Y-%m-%d} is in the future", path, "datetime" if instant else "start_datetime")
    if not instant and not ongoing and end > now:
        hint = "; for ongoing activity set end_datetime to null" if state == "active" else ""
        raise InputError(f"end_datetime {end:%Y-%m-%d} is in the future{hint}", path, "end_datetime")
    for name, value in (("datetime" if instant else "start_datetime", start), ("end_datetime", end)):
        if not MIN_DATE <= value <= MAX_DATE:
            raise InputError(f"{value.date().isoformat()} is outside {MIN_DATE:%Y}-{MAX_DATE:%Y} (Sentinel-1 was launched in "
                             "2014: earlier events have no product to pair with)", path, name)
    precision = props.get("datetime_precision", "second")
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}", path, "datetime_precision")

    countries = _str_list(props, "countries", path)
    if not countries or not all(COUNTRY_PATTERN.match(c) for c in countries):
        raise InputError("expected ISO 3166-1 alpha-3 codes, e.g. ['NOR']", path, "countries")
    refs = props.get("references")
    if not isinstance(refs, list) or not refs:
        raise InputError("at least one reference (a DOI or an authoritative page) is required", path, "references")
    references = []
    for i, ref in enumerate(refs):
        key = f"references[{i}]"
        if not isinstance(ref, dict) or not isinstance(ref.get("title"), str):
            raise InputError("each reference needs a title", path, key)
        href, doi = ref.get("href"), ref.get("doi")
        if href is None and doi is None:
            raise InputError("each reference needs an href or a doi", path, key)
        if href is not None and not (isinstance(href, str) and href.startswith("https://")):
            raise InputError(f"href must be an https URL, got {href!r}", path, key)
        if doi is not None and not (isinstance(doi, str) and DOI_PATTERN.match(doi)):
            raise InputError(f"not a bare DOI (10.xxxx/yyyy): {doi!r}", path, key)
        references.append(Reference(title=ref["title"], href=href, doi=doi))
    triggered_by = _str_list(props, "triggered_by", path)
    if eid in triggered_by:
        raise InputError("an event cannot trigger itself", path, "triggered_by")
    review_status = props.get("review_status", "curated")
    if review_status not in REVIEW_STATUSES:
        raise InputError(
            f"unknown review_status {review_status!r}; known: {', '.join(REVIEW_STATUSES)}", path, "review_status"
        )
    modalities = _str_list(props, "modalities", path) if "modalities" in props else MODALITIES
    if not modalities or any(m not in MODALITIES for m in modalities) or len(set(modalities)) != len(modalities):
        raise InputError(f"expected a non-empty list of distinct {', '.join(MODALITIES)}", path, "modalities")
    return Event(
        id=eid,
        path=path,
        title=props["title"].strip(),
        description=props["description"].strip(),
        phenomenon=phen,
        state=state,
        start=start,
        end=end,
        instant=instant,
        precision=precision,
        site=(float(site[0]), float(site[1])),
        geometry=doc["geometry"],
        countries=countries,
        hazard_codes=_str_list(props, "hazard_codes", path),
        glide=props.get("glide"),
        triggered_by=triggered_by,
        references=tuple(references),
        review_status=review_status,
        modalities=modalities,
        ongoing=ongoing,
    )


def load_inventory(directory: Path, now: datetime | None = None, include_candidates: bool = False) -> list[Event]:
    """Load every `*.geojson` event of `directory`, sorted by id; raise InventoryErrors listing every problem.

    An event with `review_status: candidate` (from an importer or `annotations import-ems --new-event`, not
    yet reviewed) is checked like any other but left out unless `include_candidates`: the build uses the
    default, so no candidate ever reaches a release. A curated event cannot be triggered by a candidate.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError("no such inventory directory", directory)
    files = sorted(directory.glob("*.geojson"))
    if not files:
        raise InputError("the inventory directory holds no *.geojson event file", directory)
    errors: list[InputError] = []
    events: dict[str, Event] = {}
    for path in files:
        try:
            ev = parse_event(path, now)
        except InputError as exc:
            errors.append(exc)
            continue
        if ev.id in events:
            errors.append(InputError(f"duplicate id {ev.id!r} (also in {events[ev.id].path.name})", path, "id"))
            continue
        events[ev.id] = ev
    if not include_candidates:
        skipped = {eid: ev for eid, ev in events.items() if ev.review_status != "curated"}
        events = {eid: ev for eid, ev in events.items() if eid not in skipped}
        for ev in events.values():
            for trig in ev.triggered_by:
                if trig in skipped:
                    errors.append(
                        InputError(
                            f"trigger {trig!r} is a {skipped[trig].review_status} event, not curated: review it first",
                            ev.path,
                            "triggered_by",
                        )
                    )
        if errors:
            raise InventoryErrors(errors)
    triggers: dict[str, list[str]] = {eid: [] for eid in events}
    for ev in events.values():
        for trig in ev.triggered_by:
            if trig not in events:
                errors.append(InputError(f"unknown trigger event {trig!r}", ev.path, "triggered_by"))
            elif events[trig].start > ev.start:
                errors.append(
                    InputError(
                        f"trigger {trig!r} ({events[trig].start:%Y-%m-%d}) happens after this event ({ev.start:%Y-%m-%d})",
                        ev.path,
                        "triggered_by",
                    )
                )
            else:
                triggers[trig].append(ev.id)
    if not errors:
        _check_acyclic(events, errors)
    if errors:
        raise InventoryErrors(errors)
    return [
        Event(**{**ev.__dict__, "triggers": tuple(sorted(triggers[ev.id]))}) for ev in sorted(events.values(), key=lambda e: e.id)
    ]


def _check_acyclic(events: dict[str, Event], errors: list[InputError]) -> None:
    """Same-day triggers pass the date check, so look for cycles explicitly."""
    state: dict[str, int] = {}

    def visit(eid: str, stack: list[str]) -> None:
        state[eid] = 1
        for trig in events[eid].triggered_by:
            if state.get(trig) == 1:
                cycle = " -> ".join([*stack[stack.index(trig) :], trig]) if trig in stack else trig
                errors.append(InputError(f"trigger cycle: {cycle}", events[eid].path, "triggered_by"))
            elif trig not in state:
                visit(trig, [*stack, trig])
        state[eid] = 2

    for eid in sorted(events):
        if eid not in state:
            visit(eid, [eid])


def cascades(events: list[Event]) -> list[tuple[str, str]]:
    """All (trigger, triggered) pairs of the inventory."""
    return sorted((trig, ev.id) for ev in events for trig in ev.triggered_by)


def sentinel_era_problems(events: list[Event]) -> list[InputError]:
    """The Sentinel-era rules of the curated inventory (`stac-mmtp events check`).

    - an event that started after Sentinel-2's first images (23 June 2015) lists both modalities;
    - one that started between Sentinel-1A's launch (3 April 2014) and then is SAR-only:
      `modalities: ["sentinel-1"]`;
    - nothing started earlier, except slow motion still `active` over the Sentinel era.
    """
    problems: list[InputError] = []
    for ev in events:
        mods = set(ev.modalities)
        if ev.start >= S2_FIRST:
            if mods != set(MODALITIES):
                problems.append(
                    InputError(
                        f"started {ev.start:%Y-%m-%d}, after Sentinel-2's first images ({S2_FIRST:%Y-%m-%d}): "
                        "both sentinel-1 and sentinel-2 see it",
                        ev.path,
                        "modalities",
                    )
                )
        elif ev.state == "active" and ev.end >= S2_FIRST:
            continue  # slow motion observed over the Sentinel era: both modalities
        elif ev.start >= S1_FIRST:
            if mods != {"sentinel-1"}:
                problems.append(
                    InputError(
                        f"started {ev.start:%Y-%m-%d}, before Sentinel-2's first images ({S2_FIRST:%Y-%m-%d}): "
                        'mark it SAR-only with modalities: ["sentinel-1"]',
                        ev.path,
                        "modalities",
                    )
                )
        else:
            problems.append(
                InputError(
                    f"started {ev.start:%Y-%m-%d}, before Sentinel-1A's launch ({S1_FIRST:%Y-%m-%d}): no Sentinel "
                    "image sees it (only slow motion still active over the Sentinel era may start earlier)",
                    ev.path,
                    "datetime" if ev.instant else "start_datetime",
                )
            )
    return problems


def check_inventory(directory: Path, now: datetime | None = None) -> list[Event]:
    """`load_inventory` plus the curated inventory's policy rules; raise InventoryErrors listing every problem."""
    events = load_inventory(directory, now)
    problems = sentinel_era_problems(events)
    if problems:
        raise InventoryErrors(problems)
    return events


# ISO 3166-1 alpha-3 -> continent, for the countries of the inventory and their neighbours. Mexico is in North
# America (Central America starts at Guatemala); "South and Central America" includes the Caribbean islands;
# "Oceania/Pacific" includes the Pacific islands; overseas parts of a country are placed by their site
# (see `continent`).
_COUNTRIES: dict[str, tuple[str, ...]] = {
    "Europe": (
        "ALA", "FRO", "GGY", "GIB", "IMN", "JEY", "MCO", "SMR", "VAT",
        "ALB", "AND", "AUT", "BEL", "BGR", "BIH", "BLR", "CHE", "CZE", "DEU", "DNK", "ESP", "EST",
        "FIN", "FRA", "GBR", "GRC", "HRV", "HUN", "IRL", "ISL", "ITA", "LIE", "LTU", "LUX", "LVA",
        "MDA", "MKD", "MLT", "MNE", "NLD", "NOR", "POL", "PRT", "ROU", "SRB", "RUS", "SJM", "SVK",
        "SVN", "SWE", "UKR",
    ),
    "Asia": (
        "ARE", "BHR", "BRN", "CCK", "CXR", "HKG", "IOT", "KHM", "KWT", "MAC", "MDV", "OMN", "PSE", "QAT", "SGP",
        "AFG", "ARM", "AZE", "BGD", "BTN", "CHN", "CYP", "GEO", "IDN", "IND", "IRN", "IRQ", "ISR",
        "JOR", "JPN", "KAZ", "KGZ", "KOR", "LAO", "LBN", "MMR", "MNG", "MYS", "NPL", "PAK", "PHL",
        "PRK", "SAU", "SYR", "THA", "TJK", "TKM", "TLS", "TUR", "TWN", "UZB", "VNM", "YEM", "LKA",
    ),
    "Africa": (
        "AGO", "BDI", "BEN", "CMR", "COD", "COG", "CPV", "DZA", "EGY", "ETH", "GHA", "GIN", "KEN",
        "LBR", "LBY", "MAR", "MDG", "MOZ", "MWI", "NER", "NGA", "REU", "RWA", "SDN", "SLE", "SOM",
        "SSD", "TUN", "TZA", "UGA", "ZAF", "ZMB", "ZWE", "COM",
        "BFA", "BWA", "CAF", "CIV", "DJI", "ERI", "ESH", "GAB", "GMB", "GNB", "GNQ", "LSO", "MLI", "MRT",
        "MUS", "MYT", "NAM", "SEN", "SHN", "STP", "SWZ", "SYC", "TCD", "TGO",
    ),
    "North America": (
        "BMU", "SPM",
        "CAN", "USA", "GRL", "MEX",
    ),
    "South and Central America": (
        "ABW", "AIA", "ATG", "BES", "BHS", "BLM", "BLZ", "BRB", "CUW", "CYM", "FLK", "GRD", "GUF", "KNA", "LCA", "MAF", "SGS", "SXM", "TCA", "TTO", "VGB", "VIR",
        "GTM", "HND", "SLV", "NIC", "CRI", "PAN", "CUB", "HTI", "DOM", "JAM", "PRI", "MTQ", "GLP",
        "DMA", "VCT", "MSR", "ARG", "BOL", "BRA", "CHL", "COL", "ECU", "PER", "PRY", "URY", "VEN",
        "GUY", "SUR",
    ),
    "Oceania/Pacific": (
        "COK", "FSM", "MHL", "MNP", "NFK", "NIU", "NRU", "PCN", "PLW", "TKL", "TUV", "UMI", "WLF",
        "AUS", "NZL", "PNG", "FJI", "TON", "WSM", "VUT", "SLB", "NCL", "PYF", "ASM", "GUM", "KIR",
    ),
}
_CONTINENT_OF: dict[str, str] = {code: name for name, codes in _COUNTRIES.items() for code in codes}


def continent_of_countries(countries: Sequence[str], site: tuple[float, float] | None = None) -> str:
    """The continent of the first of `countries` (ISO 3166-1 alpha-3) that the table knows, "unknown" if none.

    With the `site` (longitude, latitude), overseas parts of a country go to their own continent: Hawaii to
    Oceania/Pacific, the Canary Islands and Madeira to Africa. Without it they count with the country."""
    known = [c for c in countries if c in _CONTINENT_OF]
    if not known:
        return "unknown"
    country = known[0]
    if site is not None:
        lon, lat = site
        if country == "USA" and lon < -140 and lat < 30:
            return "Oceania/Pacific"  # Hawaii
        if country in ("ESP", "PRT") and lat < 34:
            return "Africa"  # Canary Islands, Madeira
    return _CONTINENT_OF[country]


def continent(ev: Event) -> str:
    """The continent of an event, from its first country and, for overseas parts of a country, its site."""
    name = continent_of_countries(ev.countries[:1], ev.site)
    if name == "unknown":
        raise InputError(f"no continent known for country {ev.countries[0]!r}", ev.path, "countries")
    return name


def summary_table(events: list[Event]) -> tuple[list[str], list[list[str]]]:
    """Counts per phenomenon (rows) x continent (columns), with totals: the README's inventory table."""
    counts: dict[tuple[str, str], int] = {}
    for ev in events:
        key = (ev.phenomenon, continent(ev))
        counts[key] = counts.get(key, 0) + 1
    header = ["phenomenon", *CONTINENTS, "total"]
    rows = []
    for phen in sorted({ev.phenomenon for ev in events}):
        cells = [counts.get((phen, c), 0) for c in CONTINENTS]
        rows.append([phen, *map(str, cells), str(sum(cells))])
    totals = [sum(counts.get((p, c), 0) for p in {ev.phenomenon for ev in events}) for c in CONTINENTS]
    rows.append(["**total**", *map(str, totals), str(len(events))])
    return header, rows


def summary_markdown(events: list[Event]) -> str:
    """The summary table in Markdown, with the cascade count (what README.md's inventory block holds)."""
    header, rows = summary_table(events)
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
        f"{len(events)} events, {len({e.phenomenon for e in events})} phenomena, {len(cascades(events))} cascades "
        "(`triggered_by` links).",
    ]
    return "\n".join(lines) + "\n"
