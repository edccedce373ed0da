"""Import Copernicus EMS rapid-mapping products (delineation / grading shapefile sets) as annotations.

A product is a set of layers named `<EMSR>_<AOI nn><NAME>_<DEL|GRA|FEP>[_MONITnn]_v<n>_<layer>`:
`observed_event_a` (the outlines, `dmg_src_id` -> source), `area_of_interest_a` (what was mapped),
`image_footprint_a` (`or_src_id` -> source) and the attribute-only `source` table (`src_id`, sensor,
date, time, event phase). Dates differ across products: `DD/MM/YYYY` with a separate free-text
time (`17:49 UTC`), or ISO (`2018-11-02`, `2018-11-02T05:18:00Z`, time field `T10:17:00Z`).
"""

from __future__ import annotations

import gzip
import re
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import shapely
from shapely import wkb

from stac_mmtp.atomic import staged_file, write_text
from stac_mmtp.dataset.annotations import SUFFIXES as ANNOTATION_SUFFIXES
from stac_mmtp.dataset.annotations import (
    annotation_path,
    dumps_annotation,
    feature_collection,
    parse_annotation,
    round_geometry,
)
from stac_mmtp.dataset.inventory import Event
from stac_mmtp.errors import InputError

NAME = re.compile(
    r"^(?P<emsr>EMSR\d+)_(?P<aoi>\d{2})(?P<locality>[A-Za-z0-9]*)_(?P<ptype>[A-Z]{3})(?:_(?P<monit>MONIT\d+))?"
    r"_v(?P<version>\d+)_(?P<layer>.+)$"
)
# The newer naming (from 2021): <EMSR>_AOI<nn>_<DEL|GRA>_<PRODUCT|MONITnn>_<layerCamelCase>[_r<n>]_v<n>
NAME_2021 = re.compile(
    r"^(?P<emsr>EMSR\d+)_AOI(?P<aoi>\d{2})_(?P<ptype>[A-Z]{3})_(?P<monit>PRODUCT|MONIT\d+)_(?P<layer>[A-Za-z]+)"
    r"(?:_r(?P<release>\d+))?_v(?P<version>\d+)$"
)
GRADES = (  # damage_gra text -> our class (first match wins)
    ("no visible", "building-no-visible-damage"), ("possibly", "building-possibly-damaged"),
    ("negligible", "building-possibly-damaged"), ("destroyed", "building-destroyed"), ("damaged", "building-damaged"),
)
SUFFIXES = (".shp", ".dbf", ".json", ".geojson", ".kmz")
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
NOT_APPLICABLE = {"", "not applicable", "notapplicable", "n/a", "na", "unknown"}


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
        names = [(p.stem, str(p)) for p in sorted(path.rglob("*")) if p.suffix.lower() in SUFFIXES]
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = [(Path(n).stem, f"/vsizip/{path}/{n}") for n in sorted(zf.namelist())
                     if Path(n).suffix.lower() in (".shp", ".dbf")]
    elif path.suffix.lower() in SUFFIXES:  # one layer file (GeoJSON / KMZ), or a merged GeoJSON naming its layer
        names = [(_layer_name(path), str(path))]
    else:
        raise InputError("expected a directory or a zip of an EMS shapefile set, or one EMS layer file", path)
    out: dict[str, str] = {}
    for stem, gdal_path in names:
        low = gdal_path.lower()
        if not low.startswith("/vsizip/") and Path(gdal_path).stat().st_size == 0:
            continue  # a file the repository copy lacks (e.g. a Git LFS object): never read it as data
        rank = (".shp", ".json", ".geojson", ".kmz", ".dbf")
        if stem not in out or rank.index(Path(low).suffix) < rank.index(Path(out[stem].lower()).suffix):
            out[stem] = gdal_path  # prefer the .shp of a shapefile, its GeoJSON or KMZ, the .dbf of a table
    return out


def _layer_name(path: Path) -> str:
    """The EMS layer name of a single file: its stem, or the `layer` attribute of a merged GeoJSON."""
    if NAME.match(path.stem) or NAME_2021.match(path.stem):
        return path.stem
    from pyogrio.raw import read

    try:
        meta, _, _, fields = read(str(path), read_geometry=False, max_features=1)
    except Exception as exc:  # pyogrio raises DataSourceError / DataLayerError
        raise InputError(f"cannot read it: {exc}", path) from None
    names = list(meta["fields"])
    if "layer" in names and fields[names.index("layer")].size:
        return str(fields[names.index("layer")][0])
    raise InputError("not an EMS layer name, and no `layer` attribute naming one", path)


def _parse_name(stem: str) -> dict[str, Any] | None:
    """Name parts of an EMS layer (both namings); `layer` in snake case (observedEventA -> observed_event_a)."""
    if m := NAME.match(stem):
        return {**m.groupdict(), "release": None, "prefix": stem[: m.start("layer") - 1], "layer": m["layer"].lower()}
    if m := NAME_2021.match(stem):
        layer = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", m["layer"]).lower()
        monit = None if m["monit"] == "PRODUCT" else m["monit"]
        prefix = f"{m['emsr']}_AOI{m['aoi']}_{m['ptype']}_{m['monit']}" + (f"_r{m['release']}" if m["release"] else "")
        return {**m.groupdict(), "locality": "", "monit": monit, "layer": layer, "prefix": f"{prefix}_v{m['version']}"}
    return None


def _read(gdal_path: str, where: Path) -> tuple[list[dict[str, Any]], list[shapely.Geometry | None], str | None]:
    from pyogrio.raw import read

    try:
        meta, _fids, geoms, fields = read(gdal_path)
        table = Path(gdal_path).with_suffix(".dbf")
        if gdal_path.lower().endswith(".kmz") and table.is_file():
            # A KMZ keeps the attributes only as HTML: take them from the product's .dbf, in the same order
            meta_t, _, _, fields = read(str(table), read_geometry=False)
            if len(fields[0]) != len(geoms):
                raise InputError(f"{table.name} has {len(fields[0])} rows, {Path(gdal_path).name} {len(geoms)} placemarks",
                                 where)
            meta = {**meta, "fields": meta_t["fields"]}
    except InputError:
        raise
    except Exception as exc:  # pyogrio raises DataSourceError / DataLayerError
        raise InputError(f"cannot read {Path(gdal_path).name}: {exc}", where) from None
    names = list(meta["fields"])
    rows = [dict(zip(names, (_plain(col[i]) for col in fields), strict=True)) for i in range(len(fields[0]) if fields else 0)]
    shapes = [shapely.force_2d(wkb.loads(g)) if g is not None else None for g in geoms] if geoms is not None else [None] * len(rows)
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
    from stac_mmtp.raster.geo import reproject

    return reproject(geom, crs, 4326)


def _rfc3339(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def read_ems(path: Path) -> list[dict[str, Any]]:
    """Read each observed-event (or graded built-up) layer of an EMS product: [{name fields, aoi, sources, outlines}]."""
    layers = _layers(path)
    products: dict[str, dict[str, str]] = {}
    names: dict[str, dict[str, Any]] = {}
    for stem, gdal_path in layers.items():
        parts = _parse_name(stem)
        if parts:
            products.setdefault(parts["prefix"], {})[parts["layer"]] = gdal_path
            names.setdefault(parts["prefix"], parts)
    found = []
    for prefix, files in sorted(products.items()):
        layer = "observed_event_a" if "observed_event_a" in files else "built_up_p" if "built_up_p" in files else None
        if layer is None:
            continue
        m = names[prefix]
        sources: dict[int, Source] = {}
        src_rows, _, _ = _read(files["source"], path) if "source" in files else ([], [], None)
        for row in src_rows:
            sid = int(row["src_id"])
            phase = str(row.get("eventphase") or "").strip().lower()
            gsd = str(row.get("sensor_gsd") or "").strip()
            sources[sid] = Source(sid, str(row.get("source_nam") or "").strip(),
                                  parse_source_datetime(row.get("src_date"), row.get("source_tm"), path), phase,
                                  None if gsd.lower() in NOT_APPLICABLE else gsd,
                                  " ".join(str(row.get(k) or "").strip() for k in ("src_date", "source_tm")).strip())
        rows, shapes, crs = _read(files[layer], path)
        if layer == "built_up_p":  # a grading product: only the graded buildings are annotations
            kept = [(r, g) for r, g in zip(rows, shapes, strict=True) if _applicable(r.get("damage_gra"))]
            if not kept:
                continue
            rows, shapes = [r for r, _ in kept], [g for _, g in kept]
        aoi_rows, aoi_shapes, aoi_crs = _read(files["area_of_interest_a"], path) if "area_of_interest_a" in files else ([], [], None)
        fp_ids: list[int] = []
        if "image_footprint_a" in files:
            fp_rows, _, _ = _read(files["image_footprint_a"], path)
            fp_ids = sorted({int(r["or_src_id"]) for r in fp_rows if r.get("or_src_id") is not None})
        aoi_geom = shapely.union_all([_to_wgs84(g, aoi_crs) for g in aoi_shapes if g is not None]) if aoi_shapes else None
        outlines, repaired = [], 0
        for r, g in zip(rows, shapes, strict=True):
            if g is None:
                continue
            g = _to_wgs84(g, crs)
            if not g.is_valid:  # self-intersections in the delivered rings: GEOS repairs them (counted in provenance)
                g = shapely.make_valid(g)
                g = shapely.union_all([p for p in getattr(g, "geoms", [g]) if p.geom_type in ("Polygon", "MultiPolygon")])
                repaired += 1
            outlines.append((r, g))
        found.append({
            "metadata_date": _metadata_date(files[layer]),
            "prefix": prefix, "emsr": m["emsr"].upper(), "aoi": m["aoi"], "locality": m["locality"],
            "product_type": PRODUCT_TYPES.get(m["ptype"], m["ptype"].lower()), "monitoring": m["monit"],
            "version": int(m["version"]), "release": m["release"], "aoi_attrs": aoi_rows[0] if aoi_rows else {},
            "aoi_geometry": aoi_geom, "sources": sources, "has_source_table": "source" in files,
            "footprint_src_ids": fp_ids, "layer": layer, "repaired": repaired, "outlines": outlines,
            "files": sorted(Path(f.rsplit("/vsizip/", 1)[-1]).name for f in files.values()),
        })
    if not found:
        raise InputError("no EMS observed-event layer (<EMSR>_<AOI>_<DEL|GRA>_v<n>_observed_event_a) found", path)
    return found


def attribution(emsr: str, year: int) -> str:
    """The credit line the Copernicus EMS terms ask for."""
    return f"© European Union, {year}, Copernicus Emergency Management Service ({emsr})"


def _aid(prod: dict[str, Any]) -> str:
    locality = str(prod["aoi_attrs"].get("locality") or prod["locality"]).strip()
    return "-".join(p for p in (prod["emsr"].lower(), prod["aoi"], re.sub(r"[^a-z0-9]+", "-", locality.lower()).strip("-"),
                                {"delineation": "del", "grading": "gra"}.get(prod["product_type"], prod["product_type"]),
                                (prod["monitoring"] or "").lower(), f"v{prod['version']}") if p)


def ems_annotation(prod: dict[str, Any], event: Event, where: Path, confidence: float = 0.9,
                   observed: datetime | None = None, provenance: dict[str, Any] | None = None,
                   digits: int = 7) -> tuple[str, dict[str, Any]]:
    """(annotation id, FeatureCollection) in our layout, from one product read by `read_ems`.

    `observed` stands in for the image date when the product comes without its source table (some
    repository copies keep only the observed-event layer); `provenance` is merged into the file's."""
    sources: dict[int, Source] = prod["sources"]
    emsr, aoi_no = prod["emsr"], prod["aoi"]
    attrs = prod["aoi_attrs"]
    locality = str(attrs.get("locality") or prod["locality"]).strip()
    aid = _aid(prod)
    grading = prod["layer"] == "built_up_p"
    image_ids = sorted(set(prod["footprint_src_ids"]) | {int(r["dmg_src_id"]) for r, _ in prod["outlines"]
                                                       if r.get("dmg_src_id") is not None})
    basis = "given at import (--observed)"
    if not prod["has_source_table"] and observed is None:
        observed, basis = prod["metadata_date"], "the product's metadata date (dateStamp of its .xml), an upper bound"
        if observed is None:
            raise InputError(f"{prod['prefix']}: no source table, so no image date: give the observation date (--observed)",
                             where)
    features = []
    for i, (row, geom) in enumerate(prod["outlines"]):
        if grading:
            grade = str(row.get("damage_gra") or "")
            cls = _first(grade, GRADES)
            if cls is None:
                raise InputError(f"feature {i}: unknown damage grade {grade!r}", where, "damage_gra")
        else:
            label = " ".join(str(row.get(k) or "") for k in ("obj_desc", "notation", "event_type"))
            cls = _first(label, CLASS_WORDS)
            if cls is None:
                raise InputError(f"feature {i}: no class for obj_desc/event_type {label.strip()!r}", where, "obj_desc")
        det = str(row.get("det_method") or "")
        method = _first(det, METHODS)
        if method is None:
            raise InputError(f"feature {i}: unknown det_method {det!r}", where, "det_method")
        dmg = row.get("dmg_src_id")
        if prod["has_source_table"] and dmg is not None and int(dmg) not in sources:
            raise InputError(f"feature {i}: dmg_src_id {dmg} is not in the source table", where, "dmg_src_id")
        imagery = []
        for sid in image_ids if prod["has_source_table"] else ():
            src = sources.get(sid)
            if src is None:
                raise InputError(f"or_src_id {sid} is not in the source table", where, "or_src_id")
            if src.datetime is None:
                continue
            imagery.append({"sensor": src.name, "datetime": _rfc3339(src.datetime),
                            "role": ROLES.get(src.phase, "reference"), "ems_src_id": sid,
                            **({"gsd": src.gsd} if src.gsd else {}), "delineated_on": dmg is not None and sid == int(dmg)})
        drawn = sources.get(int(dmg)) if dmg is not None else None
        when = drawn.datetime if drawn is not None and drawn.datetime else observed or event.end
        props = {
            "class": cls,
            "observed": _rfc3339(when),
            "method": method,
            "annotator": f"Copernicus EMS rapid mapping ({emsr})",
            "annotator_expertise": "expert",
            "confidence": confidence,
            "review_status": "reviewed",
            "imagery": imagery,
            **({"ems:damage_gra": row.get("damage_gra"), "ems:obj_type": row.get("obj_type")} if grading else
               {"ems:event_type": row.get("event_type"), "ems:obj_desc": row.get("obj_desc")}),
            "ems:det_method": det,
            "ems:notation": row.get("notation"),
            "ems:dmg_src_id": dmg,
        }
        features.append({"type": "Feature", "id": f"{'building' if grading else 'observed-event'}-{i + 1}",
                         "geometry": round_geometry(geom, digits), "properties": props})
    year = max(_date_of(f["properties"]["observed"]).year for f in features)
    what = "graded buildings (built-up points)" if grading else "observed event layer"
    fields: dict[str, Any] = {
        "id": aid,
        "event_id": event.id,
        "title": f"Copernicus EMS {emsr} AOI {aoi_no}{' ' + locality if locality else ''}: {prod['product_type']}"
                 f"{' ' + prod['monitoring'] if prod['monitoring'] else ''} v{prod['version']}",
        "description": f"The {what} of the Copernicus EMS rapid-mapping product {prod['prefix']}, imported by stac-mmtp.",
        "license": "Copernicus EMS: free and open (EU Copernicus data policy); credit required",
        "provenance": {
            "provider": "Copernicus Emergency Management Service (© European Union)",
            "attribution": attribution(emsr, year),
            "license_terms": "https://emergency.copernicus.eu/mapping/ems/cite-copernicus-ems-mapping-portal",
            "emsr": emsr, "aoi_number": aoi_no, "aoi_name": locality, "product_type": prod["product_type"],
            "map_type": attrs.get("map_type"), "monitoring": prod["monitoring"], "version": prod["version"],
            "product": prod["prefix"], "layer": prod["layer"], "files": prod["files"],
            "glide": _applicable(attrs.get("glide_no")),
            "href": f"https://emergency.copernicus.eu/mapping/list-of-components/{emsr}",
            "sources": [{"src_id": s.id, "name": s.name, "datetime": _rfc3339(s.datetime) if s.datetime else None,
                         "date_text": s.date_text, "phase": s.phase, "gsd": s.gsd} for s in sorted(sources.values(), key=lambda s: s.id)],
            **({"observed_basis": f"no source table in this copy of the product: the observation date is {basis}"}
               if not prod["has_source_table"] else {}),
            **({"repaired_geometries": prod["repaired"],
                "repair": "invalid rings (self-intersections) repaired with GEOS make_valid"} if prod["repaired"] else {}),
            **({"coordinate_decimals": digits} if digits != 7 else {}),
            **({"outside_event_aoi": prod["outside_event_aoi"],
                "selection": "outlines not touching the event AOI were left out (none was clipped)"}
               if prod.get("outside_event_aoi") else {}),
            **(provenance or {}),
        },
    }
    if prod["aoi_geometry"] is not None:
        fields["annotated_area"] = round_geometry(prod["aoi_geometry"], digits)
    return aid, feature_collection(fields, features)


def _metadata_date(gdal_path: str) -> datetime | None:
    """The creation date of a layer's ISO 19139 metadata (`<layer>.xml` beside it), None without one."""
    xml = Path(gdal_path).with_suffix(".xml")
    if gdal_path.startswith("/vsizip/") or not xml.is_file():
        return None
    m = re.search(r"<dateStamp>\s*<gco:Date>(\d{4}-\d{2}-\d{2})</gco:Date>", xml.read_text(encoding="utf-8", errors="replace"))
    return datetime.strptime(m[1], "%Y-%m-%d").replace(tzinfo=UTC) if m else None


def _date_of(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def new_event(prod: dict[str, Any], event_id: str, where: Path, observed: datetime | None = None) -> dict[str, Any]:
    """An inventory event (GeoJSON Feature) from what an EMS product states: its AOI, activation code and image dates.

    EMS layers give no event date, only the images': the event lies after the latest pre-event image
    and before the first post-event one, so the event spans that window, `review_status: candidate`
    until a curator checks it (the product alone never makes an event `curated`)."""
    aoi = prod["aoi_geometry"]
    if aoi is None:
        raise InputError(f"{prod['prefix']}: no area_of_interest_a layer, so no AOI for a new event", where)
    emsr = prod["emsr"]
    srcs = [s for s in prod["sources"].values() if s.datetime]
    pre = [s.datetime for s in srcs if s.phase == "pre-event"]
    post = [s.datetime for s in srcs if s.phase == "post-event"]
    if post:
        end = min(post)
    elif observed is not None:
        end = observed
    else:
        raise InputError(f"{prod['prefix']}: no post-event image date in the source table: give --observed", where)
    start = max([d for d in pre if d <= end], default=end)
    cls = {_first(" ".join(str(r.get(k) or "") for k in ("obj_desc", "notation", "event_type")), CLASS_WORDS)
           for r, _ in prod["outlines"]} if prod["layer"] == "observed_event_a" else {"earthquake"}
    found = sorted(c for c in cls if c)
    phenomenon = {"flood": "flood", "flash-flood": "flash-flood", "lava-flow": "volcanic-eruption",
                  "debris-flow": "debris-flow", "landslide": "landslide", "earthquake": "earthquake"}.get(
        found[0] if found else "")
    if phenomenon is None:
        raise InputError(f"{prod['prefix']}: no phenomenon for classes {sorted(c for c in cls if c)}", where)
    locality = str(prod["aoi_attrs"].get("locality") or prod["locality"]).strip().title()
    minx, miny, maxx, maxy = event_box([g for _, g in prod["outlines"]])
    box = shapely.box(minx, miny, maxx, maxy)
    # The site: a point of the mapped outline nearest the box centre, inside the box
    nearest = min((g for _, g in prod["outlines"] if g.intersects(box)), key=lambda g: g.distance(box.centroid))
    spot = nearest.intersection(box).representative_point()
    site = [round(spot.x, 4), round(spot.y, 4)]
    glide = _applicable(prod["aoi_attrs"].get("glide_no"))
    props: dict[str, Any] = {
        "title": f"{phenomenon.replace('-', ' ').capitalize()} mapped by Copernicus EMS {emsr} AOI {prod['aoi']} ({locality})",
        "description": f"Event created from the Copernicus EMS rapid-mapping product {prod['prefix']} ({emsr}, area of "
                       f"interest {prod['aoi']} '{locality}'): the AOI is the bounding box of its outlines (at most "
                       f"{MAX_AOI_KM:.0f} km across), the dates the window between its latest pre-event image and its "
                       f"first post-event image.",
        "phenomenon": phenomenon,
        "state": "ended",
        "start_datetime": _rfc3339(start),
        "end_datetime": _rfc3339(end),
        "datetime_precision": "day",
        "site": site,
        "countries": [],
        "hazard_codes": [],
        **({"glide": glide} if glide else {}),
        "triggered_by": [],
        "review_status": "candidate",
        "references": [{"title": f"Copernicus EMS rapid mapping {emsr}",
                        "href": f"https://rapidmapping.emergency.copernicus.eu/{emsr}/"}],
    }
    return {"type": "Feature", "id": event_id,
            "geometry": {"type": "Polygon", "coordinates": [[[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]]},
            "properties": props}


def dumps_event(doc: dict[str, Any]) -> str:
    """An event file in the inventory's layout: geometry and lists on one line each."""
    import json

    one = lambda v: json.dumps(v, ensure_ascii=False)  # noqa: E731
    props = ",\n".join(f"    {one(k)}: {one(v)}" if k != "references" else
                       f"    {one(k)}: [\n" + ",\n".join(f"      {one(r)}" for r in v) + "\n    ]"
                       for k, v in doc["properties"].items())
    return (f'{{\n  "type": "Feature",\n  "id": {one(doc["id"])},\n  "geometry": {one(doc["geometry"])},\n'
            f'  "properties": {{\n{props}\n  }}\n}}\n')


MAX_AOI_KM = 48.0  # the inventory refuses AOIs of 50 km or more


def event_box(geoms: list[shapely.Geometry]) -> tuple[float, float, float, float]:
    """Bounding box of the outlines, cut to MAX_AOI_KM around their area-weighted centre when larger."""
    import math

    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    weights = [max(g.area, 1e-12) for g in geoms]
    cx = sum(g.centroid.x * w for g, w in zip(geoms, weights, strict=True)) / sum(weights)
    cy = sum(g.centroid.y * w for g, w in zip(geoms, weights, strict=True)) / sum(weights)
    half_lat = MAX_AOI_KM / 2 / 111.32
    half_lon = half_lat / math.cos(math.radians(cy))
    if maxx - minx > 2 * half_lon:
        cx = min(max(cx, minx + half_lon), maxx - half_lon)
        minx, maxx = cx - half_lon, cx + half_lon
    if maxy - miny > 2 * half_lat:
        cy = min(max(cy, miny + half_lat), maxy - half_lat)
        miny, maxy = cy - half_lat, cy + half_lat
    # Rounded outwards (4 decimals, ~10 m): an outline on the edge stays inside
    return (math.floor(minx * 1e4) / 1e4, math.floor(miny * 1e4) / 1e4, math.ceil(maxx * 1e4) / 1e4,
            math.ceil(maxy * 1e4) / 1e4)


def _within(prod: dict[str, Any], event: Event) -> dict[str, Any]:
    """The product restricted to the outlines that touch the event's AOI (an EMS AOI can be wider than the
    inventory allows); how many were left out is recorded in the provenance. Geometries are never clipped."""
    aoi = event.shape
    kept = [(r, g) for r, g in prod["outlines"] if g.intersects(aoi)]
    return {**prod, "outlines": kept, "outside_event_aoi": len(prod["outlines"]) - len(kept)}


def import_ems(path: Path, event_id: str | None, events: list[Event], out: Path, confidence: float = 0.9,
               observed: datetime | None = None, provenance: dict[str, Any] | None = None, digits: int = 7,
               new_event_dir: Path | None = None, countries: tuple[str, ...] = ()) -> list[Path]:
    """Convert every product in `path` and write `out/<event>/<id>.geojson`; check all before writing any.

    With `new_event_dir`, the event is first created there (`new_event`) from the first product,
    unless the inventory has it already: `event_id` defaults to `<emsr>-<aoi>-<locality>`."""
    from stac_mmtp.dataset.inventory import parse_event

    by_id = {ev.id: ev for ev in events}
    products = read_ems(path)
    created: tuple[Path, dict[str, Any]] | None = None
    if new_event_dir is not None:
        event_id = event_id or "-".join(_aid(products[0]).split("-")[:3])
        if event_id not in by_id:
            doc = new_event(products[0], event_id, path, observed)
            if not countries:
                raise InputError("an EMS product does not name its country: give it for the new event (--country)",
                                 path, "--country")
            doc["properties"]["countries"] = list(countries)
            target = new_event_dir / f"{event_id}.geojson"
            if target.exists():
                raise InputError(f"{target} exists but is not a valid inventory event", path, "--event-id")
            with tempfile.TemporaryDirectory() as d:
                probe = Path(d) / f"{event_id}.geojson"
                write_text(probe, dumps_event(doc))
                try:
                    by_id[event_id] = parse_event(probe)
                except InputError as exc:
                    raise InputError(f"the new event fails the inventory checks: {exc.message}", path, exc.field) from None
            created = (target, doc)  # written by dumps_event below
    if event_id not in by_id:
        raise InputError(f"unknown event {event_id!r} (not in the inventory)", path, "--event")
    for p in products:  # an unrelated event: say so before anything else
        if p["aoi_geometry"] is not None and not p["aoi_geometry"].intersects(by_id[event_id].shape):
            raise InputError(f"the converted annotation fails the checks: the annotated area does not overlap the AOI of "
                             f"event {event_id!r}", path, "annotated_area")
    products = [_within(p, by_id[event_id]) for p in products]
    if empty := [p["prefix"] for p in products if not p["outlines"]]:
        raise InputError(f"no outline of {', '.join(empty)} touches the AOI of event {event_id!r}", path, "--event")
    docs = [ems_annotation(p, by_id[event_id], path, confidence, observed, provenance, digits) for p in products]
    with tempfile.TemporaryDirectory() as d:  # check the very files `annotations check` will read
        for aid, doc in docs:
            probe = Path(d) / event_id / f"{aid}.geojson"
            write_text(probe, dumps_annotation(doc))
            try:
                parse_annotation(probe, by_id)
            except InputError as exc:
                raise InputError(f"the converted annotation fails the checks: {exc.message}", path, exc.field) from None
    targets = []
    if created is not None:
        write_text(created[0], dumps_event(created[1]))
        targets.append(created[0])
    for aid, doc in docs:
        text = dumps_annotation(doc)
        # a set already there keeps its file (re-importing never leaves a .geojson and a .geojson.gz of one id)
        existing = [out / event_id / f"{aid}{suffix}" for suffix in ANNOTATION_SUFFIXES if (out / event_id / f"{aid}{suffix}").exists()]
        target = existing[0] if existing else annotation_path(out / event_id, aid, text)
        if target.name.endswith(".gz"):
            with staged_file(target) as tmp, gzip.open(tmp, "wt", encoding="utf-8", compresslevel=9) as f:
                f.write(text)
        else:
            write_text(target, text)
        targets.append(target)
    return targets
