"""Import Copernicus EMS rapid-mapping products (delineation / grading shapefile sets) as annotations.

A product is a set of layers named `<EMSR>_<AOI nn><NAME>_<DEL|GRA|FEP>[_MONITnn]_v<n>_<layer>`:
`observed_event_a` (the outlines, `dmg_src_id` -> source), `area_of_interest_a` (what was mapped),
`image_footprint_a` (`or_src_id` -> source) and the attribute-only `source` table (`src_id`, sensor,
date, time, event phase). Dates differ across products: `DD/MM/YYYY` with a separate free-text
time (`17:49 UTC`), or ISO (`2018-11-02`, `2018-11-02T05:18:00Z`, time field `T10:17:00Z`).
"""

from __future__ import annotations

import re
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import shapely
from shapely import wkb

from .annotations import feature_collection, parse_annotation, round_geometry
from .atomic import write_json
from .errors import InputError
from .inventory import Event

NAME = re.compile(
    r"^(?P<emsr>EMSR\d+)_(?P<aoi>\d{2})(?P<locality>[A-Za-z0-9]*)_(?P<ptype>[A-Z]{3})(?:_(?P<monit>MONIT\d+))?"
    r"_v(?P<version>\d+)_(?P<layer>.+)$"
)
PRODUCT_TYPES = {"DEL": "delineation", "GRA": "grading", "FEP": "first-estimate", "REF": "reference"}
METHODS = (  # det_method text -> our method (first match wins)
    ("semi-automatic", "semi-automatic"), ("semi automatic", "semi-automatic"), ("automatic", "automatic"),
    ("photo-interpretation", "manual"), ("photo interpretation", "manual"), ("visual", "manual"), ("manual", "manual"),
)
CLASS_WORDS = (  # obj_desc / event_type text -> our class (first match wins)
    ("flash flood", "flash-flood"), ("flood", "flood"), ("inundat", "flood"), ("lava", "lava-flow"),
    ("mudflow", "debris-flow"), ("debris", "debris-flow"), ("landslide", "landslide"), ("mass movement", "landslide"),
)
ROLES = {"pre-event": "pre-event", "post-event": "post-event"}
NOT_APPLICABLE = {"", "not applicable", "n/a", "na", "unknown"}


@dataclass(frozen=True)
class Source:
    id: int
    name: str
    datetime: datetime | None
    phase: str
    gsd: str | None
    date_text: str = ""


def _layers(path: Path) -> dict[str, str]:
    """Layer name -> GDAL path of every shapefile / dbf of a directory or a zip."""
    if path.is_dir():
        names = [(p.stem, str(p)) for p in sorted(path.rglob("*")) if p.suffix.lower() in (".shp", ".dbf")]
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = [(Path(n).stem, f"/vsizip/{path}/{n}") for n in sorted(zf.namelist())
                     if Path(n).suffix.lower() in (".shp", ".dbf")]
    else:
        raise InputError("expected a directory or a zip of an EMS shapefile set", path)
    out: dict[str, str] = {}
    for stem, gdal_path in names:
        if stem not in out or gdal_path.lower().endswith(".shp"):  # prefer the .shp of a shapefile, the .dbf of a table
            out[stem] = gdal_path
    return out


def _read(gdal_path: str, where: Path) -> tuple[list[dict[str, Any]], list[shapely.Geometry | None], str | None]:
    from pyogrio.raw import read

    try:
        meta, _fids, geoms, fields = read(gdal_path)
    except Exception as exc:  # pyogrio raises DataSourceError / DataLayerError
        raise InputError(f"cannot read {Path(gdal_path).name}: {exc}", where) from None
    names = list(meta["fields"])
    rows = [dict(zip(names, (_plain(col[i]) for col in fields), strict=True)) for i in range(len(fields[0]) if fields else 0)]
    shapes = [wkb.loads(g) if g is not None else None for g in geoms] if geoms is not None else [None] * len(rows)
    if not fields and geoms is not None:
        rows = [{} for _ in shapes]
    return rows, shapes, meta.get("crs")


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def parse_source_datetime(date: Any, time: Any = None, where: str | Path = "") -> datetime | None:
    """EMS source date + time fields -> UTC datetime; None when 'Not Applicable' or a bare year (CLC 2006)."""
    d = str(date or "").strip()
    t = str(time or "").strip()
    if d.lower() in NOT_APPLICABLE or re.fullmatch(r"\d{4}", d):
        return None
    try:
        if "T" in d:  # full ISO date-time in the date field
            dt = datetime.fromisoformat(d.replace("Z", "+00:00"))
            return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)
        for fmt in ("%d/%m/%Y", "%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y", "%d-%m-%Y"):
            try:
                day = datetime.strptime(d, fmt)
                break
            except ValueError:
                continue
        else:
            raise ValueError(d)
    except ValueError:
        raise InputError(f"unrecognised source date {d!r}", where, "src_date") from None
    if t.lower() in NOT_APPLICABLE:
        return day.replace(tzinfo=UTC)
    m = re.fullmatch(r"T?(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*(?:Z|UTC|GMT|\+00:?00)?", t, re.IGNORECASE)
    if not m:
        raise InputError(f"unrecognised source time {t!r}", where, "source_tm")
    return day.replace(hour=int(m[1]), minute=int(m[2]), second=int(m[3] or 0), tzinfo=UTC)


def _applicable(v: Any) -> Any:
    return None if isinstance(v, str) and v.strip().lower() in NOT_APPLICABLE else v


def _first(text: str, table: tuple[tuple[str, str], ...]) -> str | None:
    low = text.lower()
    return next((ours for words, ours in table if words in low), None)


def _to_wgs84(geom: shapely.Geometry, crs: str | None) -> shapely.Geometry:
    if crs in (None, "EPSG:4326", "OGC:CRS84"):
        return geom
    from .geo import reproject

    return reproject(geom, crs, 4326)


def _rfc3339(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def read_ems(path: Path) -> list[dict[str, Any]]:
    """Read each observed-event layer of an EMS product: [{name fields, aoi, sources, outlines}]."""
    layers = _layers(path)
    products: dict[str, dict[str, str]] = {}
    for stem, gdal_path in layers.items():
        m = NAME.match(stem)
        if m:
            products.setdefault(stem[: m.start("layer") - 1], {})[m["layer"].lower()] = gdal_path
    found = []
    for prefix, files in sorted(products.items()):
        if "observed_event_a" not in files:
            continue
        m = NAME.match(f"{prefix}_x")
        assert m is not None
        if "source" not in files:
            raise InputError(f"{prefix}: the source table ({prefix}_source.dbf) is missing", path)
        src_rows, _, _ = _read(files["source"], path)
        sources: dict[int, Source] = {}
        for row in src_rows:
            sid = int(row["src_id"])
            phase = str(row.get("eventphase") or "").strip().lower()
            gsd = str(row.get("sensor_gsd") or "").strip()
            sources[sid] = Source(sid, str(row.get("source_nam") or "").strip(),
                                  parse_source_datetime(row.get("src_date"), row.get("source_tm"), path), phase,
                                  None if gsd.lower() in NOT_APPLICABLE else gsd,
                                  " ".join(str(row.get(k) or "").strip() for k in ("src_date", "source_tm")).strip())
        rows, shapes, crs = _read(files["observed_event_a"], path)
        aoi_rows, aoi_shapes, aoi_crs = _read(files["area_of_interest_a"], path) if "area_of_interest_a" in files else ([], [], None)
        fp_ids: list[int] = []
        if "image_footprint_a" in files:
            fp_rows, _, _ = _read(files["image_footprint_a"], path)
            fp_ids = sorted({int(r["or_src_id"]) for r in fp_rows if r.get("or_src_id") is not None})
        aoi_geom = shapely.union_all([_to_wgs84(g, aoi_crs) for g in aoi_shapes if g is not None]) if aoi_shapes else None
        found.append({
            "prefix": prefix, "emsr": m["emsr"], "aoi": m["aoi"], "locality": m["locality"],
            "product_type": PRODUCT_TYPES.get(m["ptype"], m["ptype"].lower()), "monitoring": m["monit"],
            "version": int(m["version"]), "aoi_attrs": aoi_rows[0] if aoi_rows else {}, "aoi_geometry": aoi_geom,
            "sources": sources, "footprint_src_ids": fp_ids,
            "outlines": [(r, _to_wgs84(g, crs)) for r, g in zip(rows, shapes, strict=True) if g is not None],
        })
    if not found:
        raise InputError("no EMS observed-event layer (<EMSR>_<AOI>_<DEL|GRA>_v<n>_observed_event_a) found", path)
    return found


def ems_annotation(prod: dict[str, Any], event: Event, where: Path, confidence: float = 0.9) -> tuple[str, dict[str, Any]]:
    """(annotation id, FeatureCollection) in our layout, from one product read by `read_ems`."""
    sources: dict[int, Source] = prod["sources"]
    emsr, aoi_no = prod["emsr"], prod["aoi"]
    attrs = prod["aoi_attrs"]
    locality = str(attrs.get("locality") or prod["locality"]).strip()
    aid = "-".join(p for p in (emsr.lower(), aoi_no, re.sub(r"[^a-z0-9]+", "-", locality.lower()).strip("-"),
                               {"delineation": "del", "grading": "gra"}.get(prod["product_type"], prod["product_type"]),
                               (prod["monitoring"] or "").lower(), f"v{prod['version']}") if p)
    image_ids = sorted(set(prod["footprint_src_ids"]) | {int(r["dmg_src_id"]) for r, _ in prod["outlines"]
                                                       if r.get("dmg_src_id") is not None})
    features = []
    for i, (row, geom) in enumerate(prod["outlines"]):
        label = " ".join(str(row.get(k) or "") for k in ("obj_desc", "notation", "event_type"))
        cls = _first(label, CLASS_WORDS)
        if cls is None:
            raise InputError(f"feature {i}: no class for obj_desc/event_type {label.strip()!r}", where, "obj_desc")
        det = str(row.get("det_method") or "")
        method = _first(det, METHODS)
        if method is None:
            raise InputError(f"feature {i}: unknown det_method {det!r}", where, "det_method")
        dmg = row.get("dmg_src_id")
        if dmg is not None and int(dmg) not in sources:
            raise InputError(f"feature {i}: dmg_src_id {dmg} is not in the source table", where, "dmg_src_id")
        imagery = []
        for sid in image_ids:
            src = sources.get(sid)
            if src is None:
                raise InputError(f"or_src_id {sid} is not in the source table", where, "or_src_id")
            if src.datetime is None:
                continue
            imagery.append({"sensor": src.name, "datetime": _rfc3339(src.datetime),
                            "role": ROLES.get(src.phase, "reference"), "ems_src_id": sid,
                            **({"gsd": src.gsd} if src.gsd else {}), "delineated_on": dmg is not None and sid == int(dmg)})
        drawn = sources[int(dmg)] if dmg is not None else None
        observed = drawn.datetime if drawn is not None and drawn.datetime else event.end
        features.append({
            "type": "Feature",
            "id": f"observed-event-{i + 1}",
            "geometry": round_geometry(geom),
            "properties": {
                "class": cls,
                "observed": _rfc3339(observed),
                "method": method,
                "annotator": f"Copernicus EMS rapid mapping ({emsr})",
                "annotator_expertise": "expert",
                "confidence": confidence,
                "review_status": "reviewed",
                "imagery": imagery,
                "ems:event_type": row.get("event_type"),
                "ems:obj_desc": row.get("obj_desc"),
                "ems:det_method": det,
                "ems:notation": row.get("notation"),
                "ems:dmg_src_id": dmg,
            },
        })
    fields: dict[str, Any] = {
        "id": aid,
        "event_id": event.id,
        "title": f"Copernicus EMS {emsr} AOI {aoi_no} {locality}: {prod['product_type']} v{prod['version']}",
        "description": f"Observed event layer of the Copernicus EMS rapid-mapping product {prod['prefix']}, imported by stac-mmtp.",
        "license": "Copernicus EMS: free and open (EU Copernicus data policy); credit required",
        "provenance": {
            "provider": "Copernicus Emergency Management Service (© European Union)",
            "emsr": emsr, "aoi_number": aoi_no, "aoi_name": locality, "product_type": prod["product_type"],
            "map_type": attrs.get("map_type"), "monitoring": prod["monitoring"], "version": prod["version"],
            "product": prod["prefix"], "glide": _applicable(attrs.get("glide_no")),
            "href": f"https://emergency.copernicus.eu/mapping/list-of-components/{emsr}",
            "sources": [{"src_id": s.id, "name": s.name, "datetime": _rfc3339(s.datetime) if s.datetime else None,
                         "date_text": s.date_text, "phase": s.phase, "gsd": s.gsd} for s in sorted(sources.values(), key=lambda s: s.id)],
        },
    }
    if prod["aoi_geometry"] is not None:
        fields["annotated_area"] = round_geometry(prod["aoi_geometry"])
    return aid, feature_collection(fields, features)


def import_ems(path: Path, event_id: str, events: list[Event], out: Path, confidence: float = 0.9) -> list[Path]:
    """Convert every product in `path` and write `out/<event>/<id>.geojson`; check all before writing any."""
    by_id = {ev.id: ev for ev in events}
    if event_id not in by_id:
        raise InputError(f"unknown event {event_id!r} (not in the inventory)", path, "--event")
    docs = [ems_annotation(p, by_id[event_id], path, confidence) for p in read_ems(path)]
    with tempfile.TemporaryDirectory() as d:  # check the very files `annotations check` will read
        for aid, doc in docs:
            probe = Path(d) / event_id / f"{aid}.geojson"
            write_json(probe, doc)
            try:
                parse_annotation(probe, by_id)
            except InputError as exc:
                raise InputError(f"the converted annotation fails the checks: {exc.message}", path, exc.field) from None
    targets = []
    for aid, doc in docs:
        target = out / event_id / f"{aid}.geojson"
        write_json(target, doc)
        targets.append(target)
    return targets
