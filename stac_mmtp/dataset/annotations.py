"""Expert annotations (`catalog/annotations/<event-id>/*.geojson`): load, check, import, CLI.

One file = one annotation set: a GeoJSON FeatureCollection of phenomenon outlines drawn for one
event, with foreign members `id`, `event_id`, `title`, `license` and, optionally, `annotated_area`
(the polygon the annotator examined: outside it nothing is known, so masks mark it "ignore") and
`valid_days` (how long after its observation an outline still describes the ground). Every feature
carries its own provenance (see docs/annotations.md for the field list).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.validation import explain_validity

from stac_mmtp.dataset.inventory import ID_PATTERN, Event, parse_datetime
from stac_mmtp.dataset.vocab import field_enum
from stac_mmtp.errors import InputError, InputErrors

# Class name -> mask value. Fixed for the whole dataset so that a value means the same thing in
# every mask; append new classes, never renumber. 0 = examined, nothing there; 255 = ignore.
CLASSES: dict[str, int] = {
    "background": 0,
    "flood": 1,
    "flash-flood": 2,
    "landslide": 3,
    "landslide-source": 4,
    "landslide-deposit": 5,
    "debris-flow": 6,
    "rock-avalanche": 7,
    "rockfall": 8,
    "lava-flow": 9,
    "deforming-area": 10,
    "glacier-collapse": 11,
    "rock-ice-avalanche": 12,
    "rock-glacier": 13,
    "subsidence": 14,
    # Damage grades of buildings (Copernicus EMS grading), points: vector labels, not burnt into masks.
    "building-no-visible-damage": 15,
    "building-possibly-damaged": 16,
    "building-damaged": 17,
    "building-destroyed": 18,
    "landslide-dam": 19,
}
CLASS_DESCRIPTIONS: dict[str, str] = {
    "background": "examined, no phenomenon",
    "flood": "flooded land (riverine, coastal or pluvial)",
    "flash-flood": "land flooded by a flash flood",
    "landslide": "landslide, source and deposit not separated",
    "landslide-source": "landslide source area (scar, depletion zone)",
    "landslide-deposit": "landslide deposit (accumulation zone)",
    "debris-flow": "debris-flow track and deposit",
    "rock-avalanche": "rock-avalanche source, path and deposit",
    "rockfall": "rockfall source and deposit",
    "lava-flow": "lava flow",
    "deforming-area": "area deforming (InSAR, slow motion)",
    "glacier-collapse": "collapsed glacier part and its deposit",
    "rock-ice-avalanche": "rock-ice avalanche path and deposit",
    "rock-glacier": "rock-glacier outline",
    "subsidence": "subsiding area",
    "building-no-visible-damage": "building graded 'no visible damage'",
    "building-possibly-damaged": "building graded 'possibly damaged' (or negligible to slight damage)",
    "building-damaged": "building graded 'damaged' (moderately or highly)",
    "building-destroyed": "building graded 'destroyed'",
    "landslide-dam": "landslide that dams a river (a point on the dam)",
}
# Display colour of each class on a map (`color_hint` of classification:classes, RRGGBB): STAC Browser draws
# a mask in these colours. Background and ignore have none, so they stay transparent over the imagery.
CLASS_COLOURS: dict[str, str] = {
    "flood": "1F78B4", "flash-flood": "00C0F0", "landslide": "E31A1C", "landslide-source": "B10026",
    "landslide-deposit": "FD8D3C", "debris-flow": "8C510A", "rock-avalanche": "6A3D9A", "rockfall": "B15928",
    "lava-flow": "FF7F00", "deforming-area": "FFD700", "glacier-collapse": "A6CEE3", "rock-ice-avalanche": "CAB2D6",
    "rock-glacier": "7570B3", "subsidence": "E7298A", "building-no-visible-damage": "1A9850",
    "building-possibly-damaged": "FEE08B", "building-damaged": "F46D43", "building-destroyed": "A50026",
    "landslide-dam": "01665E",
}
IGNORE = 255  # mask value for pixels nobody examined or without image data
ROLES = ("pre-event", "post-event", "co-event", "reference")
DEFAULT_VALID_DAYS = 30
MAX_DAYS_AFTER_EVENT = 366
REQUIRED = ("class", "observed", "method", "annotator", "annotator_expertise", "confidence", "review_status")
TOLERANCE = {"second": 1, "minute": 1, "hour": 1, "day": 1, "month": 31, "year": 366}  # days, from the event precision


class AnnotationErrors(InputErrors):
    """Every problem found in the annotations, each naming its file and feature."""

    what = "the annotations"


@dataclass(frozen=True)
class Imagery:
    datetime: datetime
    role: str
    sensor: str | None = None
    id: str | None = None
    delineated_on: bool = False


@dataclass(frozen=True)
class Outline:
    """One checked feature."""

    id: str
    cls: str
    geometry: dict[str, Any]
    observed: datetime
    method: str
    annotator: str
    expertise: str
    confidence: float
    review_status: str
    imagery: tuple[Imagery, ...] = ()
    artefacts: tuple[str, ...] = ()

    @property
    def shape(self) -> shapely.Geometry:
        return shape(self.geometry)

    @property
    def is_area(self) -> bool:  # points (a graded building, a dam) locate a phenomenon, they do not outline it
        return self.geometry["type"] in ("Polygon", "MultiPolygon")


@dataclass(frozen=True)
class AnnotationSet:
    id: str
    event_id: str
    path: Path
    title: str
    license: str
    outlines: tuple[Outline, ...]
    annotated_area: dict[str, Any] | None = None
    valid_days: int = DEFAULT_VALID_DAYS
    description: str = ""
    provenance: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def item_id(self) -> str:
        return f"{self.event_id}_{self.id}"

    @property
    def classes(self) -> list[str]:
        return sorted({o.cls for o in self.outlines}, key=CLASSES.__getitem__)

    @property
    def observed(self) -> datetime:
        return min(o.observed for o in self.outlines)

    @property
    def method(self) -> str:  # the least automatic method present: a set with one manual outline is "manual"
        methods = {o.method for o in self.outlines}
        return next(m for m in ("manual", "semi-automatic", "automatic") if m in methods)

    @property
    def review_status(self) -> str:  # the least reviewed status present
        statuses = {o.review_status for o in self.outlines}
        return next(s for s in ("draft", "rejected", "reviewed", "validated") if s in statuses)

    @property
    def confidence(self) -> float:
        return min(o.confidence for o in self.outlines)

    @property
    def annotators(self) -> list[str]:
        return sorted({o.annotator for o in self.outlines})

    @property
    def expertise(self) -> str:  # the weakest expertise present
        levels = {o.expertise for o in self.outlines}
        return next(e for e in ("novice", "algorithm", "trained", "expert") if e in levels)


def _date(value: Any, path: Path, where: str) -> datetime:
    """An RFC 3339 date-time, or a plain YYYY-MM-DD date (= 00:00 UTC)."""
    if isinstance(value, str) and len(value) == 10:
        try:
            return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise InputError(f"not a date (YYYY-MM-DD): {value!r}", path, where) from None
    return parse_datetime(value, path, where)


def _polygon(geom_json: Any, path: Path, where: str, points: bool = False) -> shapely.Geometry:
    kinds = ("Polygon", "MultiPolygon", "Point", "MultiPoint") if points else ("Polygon", "MultiPolygon")
    if not isinstance(geom_json, dict) or geom_json.get("type") not in kinds:
        raise InputError(f"expected a GeoJSON {', '.join(kinds[:-1])} or {kinds[-1]}", path, where)
    try:
        geom = shape(geom_json)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        raise InputError(f"malformed coordinates: {exc}", path, where) from None
    if geom.is_empty:
        raise InputError("empty geometry", path, where)
    if not geom.is_valid:
        raise InputError(f"invalid polygon ({explain_validity(geom)})", path, where)
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InputError("coordinates out of range: GeoJSON is longitude, latitude in degrees", path, where)
    return geom


def _check_event_time(when: datetime, ev: Event, path: Path, where: str) -> None:
    tol = timedelta(days=TOLERANCE.get(ev.precision, 1))
    if when < ev.start - tol:
        raise InputError(f"observed {when:%Y-%m-%d} is before the event ({ev.start:%Y-%m-%d})", path, where)
    if when > ev.end + timedelta(days=MAX_DAYS_AFTER_EVENT):
        raise InputError(
            f"observed {when:%Y-%m-%d} is more than {MAX_DAYS_AFTER_EVENT} days after the event ({ev.end:%Y-%m-%d})", path, where
        )


def _imagery(value: Any, ev: Event, path: Path, where: str) -> tuple[Imagery, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InputError("expected a list of {datetime, role, sensor, id} objects", path, where)
    out = []
    tol = timedelta(days=TOLERANCE.get(ev.precision, 1))
    for i, im in enumerate(value):
        w = f"{where}[{i}]"
        if not isinstance(im, dict):
            raise InputError("expected an object", path, w)
        when = _date(im.get("datetime"), path, f"{w}.datetime")
        role = im.get("role")
        if role not in ROLES:
            raise InputError(f"unknown role {role!r}; known: {', '.join(ROLES)}", path, f"{w}.role")
        if role == "pre-event" and when > ev.end + tol:
            raise InputError(f"pre-event image dated {when:%Y-%m-%d}, after the event ({ev.end:%Y-%m-%d})", path, w)
        if role == "post-event" and when < ev.start - tol:
            raise InputError(f"post-event image dated {when:%Y-%m-%d}, before the event ({ev.start:%Y-%m-%d})", path, w)
        for key in ("sensor", "id"):
            if im.get(key) is not None and not isinstance(im[key], str):
                raise InputError("expected a string", path, f"{w}.{key}")
        out.append(Imagery(when, role, im.get("sensor"), im.get("id"), bool(im.get("delineated_on", False))))
    return tuple(out)


def _outline(feat: Any, index: int, ev: Event, aoi: shapely.Geometry, path: Path) -> Outline:
    fid = feat.get("id") if isinstance(feat, dict) else None
    where = f"feature {fid!r}" if fid is not None else f"features[{index}]"
    if not isinstance(feat, dict) or feat.get("type") != "Feature":
        raise InputError("expected a GeoJSON Feature", path, where)
    if not isinstance(fid, str) or not ID_PATTERN.match(fid):
        raise InputError(f"feature id {fid!r} is missing or not URL-safe (lowercase letters, digits, '-')", path, where)
    geom = _polygon(feat.get("geometry"), path, f"{where}.geometry", points=True)
    if not geom.intersects(aoi):
        raise InputError(f"the outline does not overlap the AOI of event {ev.id!r}", path, f"{where}.geometry")
    props = feat.get("properties")
    if not isinstance(props, dict):
        raise InputError("missing properties", path, where)
    missing = [k for k in REQUIRED if k not in props]
    if missing:
        raise InputError(f"missing provenance field(s): {', '.join(missing)}", path, where)
    cls = props["class"]
    if cls not in CLASSES or cls == "background":
        raise InputError(f"unknown class {cls!r}; known: {', '.join(c for c in CLASSES if c != 'background')}", path,
                         f"{where}.class")
    observed = _date(props["observed"], path, f"{where}.observed")
    _check_event_time(observed, ev, path, f"{where}.observed")
    for key, fname in (("method", "mmtp:annotation_method"), ("annotator_expertise", "mmtp:annotator_expertise"),
                       ("review_status", "mmtp:review_status")):
        if props[key] not in field_enum(fname):
            raise InputError(f"unknown {key} {props[key]!r}; known: {', '.join(field_enum(fname))}", path, f"{where}.{key}")
    if not isinstance(props["annotator"], str) or not props["annotator"].strip():
        raise InputError("the annotator must be a non-empty string", path, f"{where}.annotator")
    conf = props["confidence"]
    if not isinstance(conf, int | float) or isinstance(conf, bool) or not 0 <= conf <= 1:
        raise InputError(f"confidence must be a number from 0 to 1, got {conf!r}", path, f"{where}.confidence")
    artefacts = props.get("artefacts", [])
    known = field_enum("mmtp:artefacts")
    if not isinstance(artefacts, list) or any(a not in known for a in artefacts):
        raise InputError(f"artefacts must be a list of: {', '.join(known)}", path, f"{where}.artefacts")
    imagery = _imagery(props.get("imagery"), ev, path, f"{where}.imagery")
    return Outline(fid, cls, feat["geometry"], observed, props["method"], props["annotator"].strip(),
                   props["annotator_expertise"], float(conf), props["review_status"], imagery, tuple(artefacts))


# An annotation set is `<id>.geojson`, or `<id>.geojson.gz` when it is large: the repository keeps no file
# over 5 MiB, and a delineation of a thousand flood polygons (EMSR664) is 8 MiB of coordinates.
SUFFIXES = (".geojson", ".geojson.gz")
GZIP_FROM_BYTES = 5 * 1024 * 1024


def annotation_files(directory: Path) -> list[Path]:
    """Every annotation file under `directory` (`<event-id>/<id>.geojson[.gz]`), sorted."""
    return sorted(p for suffix in SUFFIXES for p in Path(directory).glob(f"*/*{suffix}"))


def annotation_id(path: Path) -> str:
    """The set id a file name carries (its name without .geojson / .geojson.gz)."""
    return next(path.name[: -len(s)] for s in reversed(SUFFIXES) if path.name.endswith(s))


def annotation_path(directory: Path, annotation: str, text: str) -> Path:
    """Where a set of this size is written: gzipped from GZIP_FROM_BYTES on."""
    return directory / (f"{annotation}.geojson.gz" if len(text.encode()) >= GZIP_FROM_BYTES else f"{annotation}.geojson")


def read_annotation(path: Path) -> str:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return f.read()
    return path.read_text(encoding="utf-8")


def parse_annotation(path: Path, events: dict[str, Event]) -> AnnotationSet:
    """Parse and check one annotation file against the inventory; raise InputError naming file and feature."""
    try:
        doc = json.loads(read_annotation(path))
    except (json.JSONDecodeError, UnicodeDecodeError, gzip.BadGzipFile, EOFError) as exc:
        raise InputError(f"not valid JSON ({exc})", path) from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise InputError("expected a GeoJSON FeatureCollection", path, "type")
    aid = doc.get("id")
    if not isinstance(aid, str) or not ID_PATTERN.match(aid):
        raise InputError(f"id {aid!r} is not URL-safe (lowercase letters, digits and single '-')", path, "id")
    if annotation_id(path) != aid:
        raise InputError(f"id {aid!r} differs from the file name {path.name!r}", path, "id")
    eid = doc.get("event_id")
    if eid not in events:
        raise InputError(f"unknown event {eid!r} (not in the inventory)", path, "event_id")
    if path.parent.name != eid:
        raise InputError(f"event {eid!r} differs from the directory name {path.parent.name!r}", path, "event_id")
    ev = events[eid]
    for key in ("title", "license"):
        if not isinstance(doc.get(key), str) or not doc[key].strip():
            raise InputError("missing or empty", path, key)
    aoi = ev.shape
    area = doc.get("annotated_area")
    if area is not None and not _polygon(area, path, "annotated_area").intersects(aoi):
        raise InputError(f"the annotated area does not overlap the AOI of event {eid!r}", path, "annotated_area")
    valid_days = doc.get("valid_days", DEFAULT_VALID_DAYS)
    if not isinstance(valid_days, int) or isinstance(valid_days, bool) or valid_days < 0:
        raise InputError(f"expected a number of days >= 0, got {valid_days!r}", path, "valid_days")
    feats = doc.get("features")
    if not isinstance(feats, list) or not feats:
        raise InputError("an annotation needs at least one feature", path, "features")
    outlines = [_outline(f, i, ev, aoi, path) for i, f in enumerate(feats)]
    seen: set[str] = set()
    for o in outlines:
        if o.id in seen:
            raise InputError("duplicate feature id", path, f"feature {o.id!r}")
        seen.add(o.id)
    return AnnotationSet(aid, eid, path, doc["title"].strip(), doc["license"].strip(), tuple(outlines), area, valid_days,
                         str(doc.get("description", "")).strip(), doc.get("provenance") or {})


def load_annotations(directory: Path, events: list[Event], only_known_events: bool = False) -> list[AnnotationSet]:
    """Every `<event-id>/*.geojson[.gz]` under `directory`, sorted; raise AnnotationErrors listing every problem.

    `only_known_events` skips event folders absent from `events` (a build on part of the inventory).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    by_id = {ev.id: ev for ev in events}
    errors: list[InputError] = []
    sets: list[AnnotationSet] = []
    for path in annotation_files(directory):
        if only_known_events and path.parent.name not in by_id:
            continue
        try:
            sets.append(parse_annotation(path, by_id))
        except InputError as exc:
            errors.append(exc)
    if errors:
        raise AnnotationErrors(errors)
    return sets


def feature_collection(aset_fields: dict[str, Any], features: list[dict[str, Any]]) -> dict[str, Any]:
    """Our annotation file layout (the key order the checked-in files use)."""
    return {"type": "FeatureCollection", **aset_fields, "features": features}


def dumps_annotation(doc: dict[str, Any]) -> str:
    """An annotation file as text: the header members indented, one compact line per feature (a product
    with a thousand polygons stays a few MB and diffs feature by feature)."""
    head = {k: v for k, v in doc.items() if k != "features"}
    text = json.dumps(head, indent=2, ensure_ascii=False)[:-2]
    feats = ",\n".join("    " + json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in doc["features"])
    return f"{text},\n  \"features\": [\n{feats}\n  ]\n}}\n"


def round_geometry(geom: shapely.Geometry, digits: int = 7) -> dict[str, Any]:
    """GeoJSON of `geom` with coordinates rounded (7 decimals = 1 cm): stable, diff-friendly files."""
    import numpy as np

    rounded = shapely.transform(geom, lambda xy: np.round(xy, digits))
    if not rounded.is_valid:  # rounding can pinch a ring: let GEOS repair it rather than write an invalid polygon
        rounded = shapely.make_valid(rounded)
        if rounded.geom_type == "GeometryCollection":  # keep the areas, drop the slivers collapsed to lines/points
            rounded = shapely.union_all([g for g in rounded.geoms if g.geom_type in ("Polygon", "MultiPolygon")])
    return json.loads(json.dumps(shapely.geometry.mapping(rounded)))


def area_m2(geom: shapely.Geometry) -> float:
    """Area of a lon/lat geometry in m2 (in its local UTM zone)."""
    from stac_mmtp.raster.geo import reproject, utm_epsg

    c = geom.centroid
    return reproject(geom, 4326, utm_epsg(c.x, c.y)).area
