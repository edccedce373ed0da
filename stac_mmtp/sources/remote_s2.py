"""Sentinel-2 L2A straight from the COGs of a STAC API (Earth Search, Planetary Computer), per plan entry.

Each acquisition of an acquisition plan (catalog/acquisitions/<event>.json, written by `discover`)
is one unit of work. The source item is fetched from its `self` href, and each band COG is read
remotely through GDAL's /vsicurl/ with only the internal tiles that the AOI (+ buffer) window
needs: the window becomes a VRT the COG driver streams from (cog.clip_to_cog), and GDAL merges
consecutive ranges into one request. The output is the item shape of local Sentinel-2 products.
`tasks_from_plans` makes the tasks of every plan entry: Sentinel-2 ones for this source, Sentinel-1
ones for remote_s1.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rasterio
from rasterio._err import CPLE_BaseError  # what GDAL errors raised mid-copy are (a cut transfer, a bad tile)
from rasterio.errors import RasterioError, WindowError
from rasterio.windows import Window, from_bounds
from shapely.geometry import box, mapping

from stac_mmtp import __version__
from stac_mmtp.dataset.inventory import Event
from stac_mmtp.discover.geometry import to_shape
from stac_mmtp.discover.providers import sign
from stac_mmtp.discover.redact import redact, redact_text
from stac_mmtp.errors import InputError, ProductError
from stac_mmtp.raster.assets import file_fields
from stac_mmtp.raster.cog import CogProfile, clip_to_cog
from stac_mmtp.raster.geo import reproject, round_geometry
from stac_mmtp.sources.base import BuildOptions, ProductMeta, Task
from stac_mmtp.sources.remote_io import VSI_OPTIONS, fetch_bytes, fetch_json, vsi  # noqa: F401 (re-exported)
from stac_mmtp.sources.safe_xml import COPERNICUS_LICENSE
from stac_mmtp.sources.sentinel2 import AUX, BANDS, COMMON_NAME, S2_EXT, SCL_CLASSES, Sentinel2
from stac_mmtp.stac import (
    CLASSIFICATION,
    COG_MEDIA_TYPE,
    EO,
    FILE,
    MMTP,
    PNG_MEDIA_TYPE,
    PROCESSING,
    PROJ,
    RASTER,
    SAT,
    VIEW,
)
from stac_mmtp.stac.events import event_fields
from stac_mmtp.stac.tree import STAC_VERSION

NAME = "remote-sentinel-2"
# asset keys of the providers -> our keys (Earth Search v1 already uses ours: red, nir08, scl, visual...)
KEY_ALIASES = {**{b: v[0] for b, v in BANDS.items()}, **{a: v[0] for a, v in AUX.items()}}
WANTED = {*(v[0] for v in BANDS.values()), "scl", "aot", "wvp", "visual"}
PROVIDER_HOSTS = {
    "earth-search": ("Element 84 Earth Search", "https://earth-search.aws.element84.com/v1"),
    "planetary-computer": ("Microsoft Planetary Computer", "https://planetarycomputer.microsoft.com"),
    "cdse": ("Copernicus Data Space Ecosystem", "https://dataspace.copernicus.eu"),
}


def _parse_dt(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1)).astimezone(UTC)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".") + "Z"


ROLE_FOR_ITEM = ("first-post-event", "first-usable-post-event", "pre-event", "co-event", "post-event")


def item_role(roles: list[str]) -> str:
    """The mmtp:temporal_role of a plan entry: one value, the first post-event image first (when it is also the
    usable one, it says so in the plan only)."""
    for r in ROLE_FOR_ITEM:
        if r in roles:
            return r
    return "post-event"


# the source that converts each modality of a plan entry (remote_s1 names itself "remote-sentinel-1")
PLAN_SOURCES = {"s2": NAME, "s1": "remote-sentinel-1"}


def tasks_from_plans(events: list[Event], directory: Path, options: BuildOptions) -> tuple[list[Task], list[str]]:
    """One task per Sentinel-2 or Sentinel-1 acquisition of every plan in `directory`; others are reported."""
    from stac_mmtp.discover.plan import read_plans

    if not directory.is_dir():
        raise InputError("no such acquisitions directory", directory)
    by_id = {e.id: e for e in events}
    tasks: list[Task] = []
    problems: list[str] = []
    for path, plan in read_plans(directory):
        ev = by_id.get(plan.get("event", ""))
        if ev is None:
            problems.append(f"{path}: event {plan.get('event')!r} is not in the inventory")
            continue
        for rec in plan.get("acquisitions", []):
            source = PLAN_SOURCES.get(rec.get("modality", ""))
            if source is None:
                problems.append(f"{path}: {rec.get('item_id')}: building {rec.get('modality')} from a plan is not "
                                "supported (Sentinel-2 L2A and Sentinel-1 GRD COGs only)")
                continue
            when = _parse_dt(rec["datetime"])
            meta = ProductMeta(path, source, rec["item_id"], ev.geometry, when, when, rec)
            tasks.append(Task(ev, meta, item_role(rec["roles"]), rec["days_from_event"], options))
    return tasks, problems


class PlanSource:
    """What a remote family shares: its tasks come from plan entries, never from a products directory,
    and its collection is the local family's (`local`), so local and remote items mix in one collection."""
    name: str
    collection_id: str
    local: Any

    def detect(self, path: Path) -> bool:
        return False  # never found in a products directory: plan entries make these tasks

    def read(self, path: Path) -> ProductMeta:
        raise ProductError(f"{self.name} products come from acquisition plans", path)

    def collection(self, items: Any) -> dict[str, Any]:  # a list of items or a stac.tree.ItemStats
        return self.local().collection(items)

    @staticmethod
    def source_item(task: Task) -> dict[str, Any]:
        """The STAC item a plan entry names (its `self` href), fetched with retries."""
        rec = task.product.item
        if not rec.get("self_href"):
            raise ProductError(f"{rec['item_id']}: the plan entry has no self href", task.product.path)
        return fetch_json(rec["self_href"])


class RemoteSentinel2(PlanSource):
    name = NAME
    collection_id = "sentinel-2"
    local = Sentinel2

    def convert(self, task: Task, item_dir: Path) -> dict[str, Any]:
        rec = task.product.item
        src_item = self.source_item(task)
        props = src_item.get("properties", {})
        epsg = props.get("proj:epsg") or int(str(props.get("proj:code", "EPSG:0")).split(":")[1])
        if not epsg:
            raise ProductError("the source item has no proj:epsg / proj:code", redact(rec["self_href"]))
        ev = task.event
        aoi_utm = reproject(ev.shape, 4326, epsg).buffer(task.options.buffer_m)
        assets: dict[str, Any] = {}
        clip_geom = None
        sources = {}
        for key, a in src_item.get("assets", {}).items():
            ours = key if key in WANTED else KEY_ALIASES.get(key)
            mt = str(a.get("type", ""))
            if ours in WANTED and "tiff" in mt and ours not in sources:
                sources[ours] = (key, a)
        if not sources:
            raise ProductError("the source item has no Sentinel-2 COG asset", redact(rec["self_href"]))
        with rasterio.Env(**VSI_OPTIONS):
            for ours, (_key, a) in sorted(sources.items()):
                href = sign(a["href"], rec.get("provider", ""))
                shown = redact(a["href"])
                dst = item_dir / f"{ours}.tif"
                try:
                    with rasterio.open(vsi(href)) as src:
                        win = _window(src, aoi_utm.bounds)
                        if win is None:
                            raise ProductError(f"the event AOI of {ev.id} does not overlap this asset", shown)
                        wt, shape_, dtype, count = src.window_transform(win), (int(win.height), int(win.width)), src.dtypes[0], src.count
                        if src.crs is None or src.crs.to_epsg() != epsg:
                            raise ProductError(f"asset CRS {src.crs} differs from the item's EPSG:{epsg}", shown)
                    profile = CogProfile(overview_resampling="nearest" if ours in ("scl", "visual") else "average",
                                         predictor=2, compress="DEFLATE")
                    clip_to_cog(vsi(href), dst, win, profile, nodata=0)
                except (RasterioError, CPLE_BaseError) as exc:
                    raise ProductError(f"unreadable or truncated remote asset ({redact_text(str(exc))[:300]})", shown) from None
                assets[ours] = {**_asset(ours, a, dtype, count, wt, shape_, epsg), **file_fields(dst)}
                if clip_geom is None:
                    clip_geom = box(wt.c, wt.f + wt.e * shape_[0], wt.c + wt.a * shape_[1], wt.f)
        if "visual" in assets:
            Sentinel2._thumbnail(item_dir / "visual.tif", item_dir / "thumbnail.png")
            assets["thumbnail"] = {"href": "./thumbnail.png", "type": PNG_MEDIA_TYPE, "roles": ["thumbnail"],
                                   "title": "True-colour preview", **file_fields(item_dir / "thumbnail.png")}
        footprint = to_shape(src_item.get("geometry") or {}, ev.site[0])
        geom = reproject(clip_geom, epsg, 4326).intersection(footprint)
        if geom.is_empty:
            raise ProductError(f"the product footprint does not overlap the AOI of {ev.id}", redact(rec["self_href"]))
        return _item(task, rec, src_item, epsg, geom, assets)


def _window(src: Any, bounds: tuple[float, float, float, float]) -> Window | None:
    """The AOI bounds snapped to the 60 m grid of the tile, so every resolution covers the same extent."""
    ulx, uly = src.transform.c, src.transform.f
    minx, miny, maxx, maxy = bounds
    minx = ulx + math.floor((minx - ulx) / 60) * 60
    maxx = ulx + math.ceil((maxx - ulx) / 60) * 60
    maxy = uly - math.floor((uly - maxy) / 60) * 60
    miny = uly - math.ceil((uly - miny) / 60) * 60
    win = from_bounds(minx, miny, maxx, maxy, transform=src.transform)
    win = Window(math.floor(win.col_off + 1e-6), math.floor(win.row_off + 1e-6),
                 math.ceil(win.width - 1e-6), math.ceil(win.height - 1e-6))
    try:
        win = win.intersection(Window(0, 0, src.width, src.height))
    except WindowError:
        return None
    return win if win.width > 0 and win.height > 0 else None


def _band_name(ours: str) -> str | None:
    return next((b for b, v in BANDS.items() if v[0] == ours), None)


def _asset(ours: str, src_asset: dict[str, Any], dtype: str, count: int, wt: Any, shape_: tuple[int, int],
           epsg: int) -> dict[str, Any]:
    res = round(abs(wt.a), 6)
    base = {
        "href": f"./{ours}.tif", "type": COG_MEDIA_TYPE, "gsd": res, "proj:code": f"EPSG:{epsg}",
        "proj:shape": list(shape_), "proj:transform": [round(v, 6) for v in (wt.a, wt.b, wt.c, wt.d, wt.e, wt.f)],
        "proj:bbox": [wt.c, wt.f + wt.e * shape_[0], wt.c + wt.a * shape_[1], wt.f],
    }
    # scale/offset as the provider states them (Earth Search v1 writes offset -0.1 for baselines >= 04.00)
    rb = (src_asset.get("raster:bands") or src_asset.get("bands") or [{}])[0]
    band_id = _band_name(ours)
    if band_id:
        cn, wl, fwhm, _ = BANDS[band_id]
        band = {
            "name": band_id, "description": f"{band_id} surface reflectance", "eo:common_name": COMMON_NAME.get(cn, cn),
            "eo:center_wavelength": wl, "eo:full_width_half_max": fwhm, "nodata": 0, "data_type": dtype,
            "raster:scale": rb.get("scale", rb.get("raster:scale", 0.0001)),
            "raster:offset": rb.get("offset", rb.get("raster:offset", 0.0)),
            "raster:spatial_resolution": res,
        }
        return {**base, "title": f"{band_id} {cn} ({res:g} m)", "roles": ["data", "reflectance"], "bands": [band]}
    if ours == "scl":
        return {**base, "title": "Scene classification (SCL)", "roles": ["data", "classification"],
                "bands": [{"name": "SCL", "nodata": 0, "data_type": dtype, "raster:spatial_resolution": res}],
                "classification:classes": [{"value": v, "name": n, "description": d} for v, n, d in SCL_CLASSES]}
    if ours == "visual":
        return {**base, "title": "True colour (TCI)", "roles": ["visual"],
                "bands": [{"name": n, "eo:common_name": n, "nodata": 0, "data_type": dtype} for n in ("red", "green", "blue")][:count]}
    band = {"name": ours.upper(), "nodata": 0, "data_type": dtype, "raster:scale": rb.get("scale", 0.001),
            "raster:spatial_resolution": res}
    if ours == "wvp":
        band["unit"] = "cm"
    return {**base, "title": {"aot": "Aerosol optical thickness", "wvp": "Water vapour"}[ours], "roles": ["data"],
            "bands": [band]}


SOURCE_PROPS = ("platform", "eo:cloud_cover", "sat:relative_orbit", "sat:orbit_state", "view:sun_azimuth",
                "view:sun_elevation", "s2:product_type", "s2:processing_baseline", "s2:product_uri", "s2:datastrip_id",
                "s2:granule_id", "s2:datatake_id", "s2:generation_time", "s2:mgrs_tile")


def _item(task: Task, rec: dict[str, Any], src_item: dict[str, Any], epsg: int, geom: Any,
          assets: dict[str, Any]) -> dict[str, Any]:
    sp = src_item.get("properties", {})
    props: dict[str, Any] = {"datetime": _iso(_parse_dt(sp.get("datetime") or rec["datetime"]))}
    props.update({k: sp[k] for k in SOURCE_PROPS if sp.get(k) is not None})
    props["platform"] = str(props.get("platform", src_item["id"][:3])).lower()
    orbit = re.search(r"_R(\d{3})_", str(sp.get("s2:product_uri", "")))
    if "sat:relative_orbit" not in props and orbit:  # Earth Search v1 items carry it only in the product name
        props["sat:relative_orbit"] = int(orbit.group(1))
    props.update({"constellation": "sentinel-2", "instruments": ["msi"], "gsd": 10, "proj:code": f"EPSG:{epsg}",
                  "processing:level": "L2A"})
    if sp.get("s2:processing_baseline"):
        props["processing:version"] = sp["s2:processing_baseline"]
    props.update(event_fields(task.event))
    props["mmtp:temporal_role"] = task.temporal_role
    props["mmtp:days_from_event"] = task.days_from_event
    props["processing:software"] = {"stac-mmtp": __version__}
    props["license"] = "other"
    host_name, host_url = PROVIDER_HOSTS.get(rec["provider"], (rec["provider"], rec["provider"]))
    props["providers"] = [
        {"name": "ESA", "roles": ["producer", "licensor"], "url": "https://sentinel.esa.int/web/sentinel/missions/sentinel-2"},
        {"name": host_name, "roles": ["host"], "url": redact(host_url)},
        {"name": "stac-mmtp", "roles": ["processor"]},
    ]
    source = redact(rec["self_href"])
    title = f"Source item {rec['item_id']} ({rec['collection']}, {host_name})"
    links = [
        {"rel": "via", "href": source, "type": "application/geo+json", "title": title},
        {"rel": "derived_from", "href": source, "type": "application/geo+json", "title": title},
        {"rel": "license", "href": COPERNICUS_LICENSE, "type": "application/pdf",
         "title": "Legal notice on the use of Copernicus Sentinel data (contains modified Copernicus Sentinel data)"},
        {"rel": "related", "href": f"../../events/{task.event.id}/{task.event.id}.json", "type": "application/geo+json",
         "title": f"Event: {task.event.title}"},
    ]
    return {
        "type": "Feature", "stac_version": STAC_VERSION,
        "stac_extensions": [e for e in (EO, RASTER, PROJ, SAT, VIEW, PROCESSING, S2_EXT, FILE, CLASSIFICATION, MMTP)
                            if e != SAT or any(k.startswith("sat:") for k in props)],
        "id": task.item_id, "geometry": round_geometry(mapping(geom)), "bbox": [round(v, 6) for v in geom.bounds],
        "properties": props, "links": links, "assets": assets,
    }


SOURCE = RemoteSentinel2()  # listed in sources/registry.py
