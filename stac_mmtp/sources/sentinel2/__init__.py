"""Sentinel-2 L1C/L2A: SAFE directories or zips, and the AWS tile layout (metadata.xml + tileInfo.json).

`read()` parses the product and tile MTD files only; `convert()` clips each band overlapping the
event AOI (plus buffer) on the tile's own pixel grid into COGs, adds a `visual` COG and a PNG
thumbnail, and returns the STAC 1.1 item.
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.windows import Window, from_bounds
from shapely.geometry import Polygon, box, mapping, shape

from stac_mmtp import __version__
from stac_mmtp.errors import ProductError, UnsupportedProduct
from stac_mmtp.raster.assets import file_fields, write_png
from stac_mmtp.raster.cog import CogProfile, clip_to_cog
from stac_mmtp.raster.geo import footprint_polygon, geometry_bbox, reproject, reproject_lonlat, round_geometry
from stac_mmtp.sources.base import ProductMeta, Task
from stac_mmtp.sources.product_fs import ProductFS
from stac_mmtp.sources.safe_xml import esa_providers, license_link
from stac_mmtp.sources.safe_xml import iso as _iso
from stac_mmtp.sources.safe_xml import parse_xml as _parse_xml
from stac_mmtp.sources.safe_xml import utc as _dt
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
from stac_mmtp.stac.events import collection_metadata, event_fields
from stac_mmtp.stac.synthetic import is_synthetic, mark_item
from stac_mmtp.stac.tree import STAC_VERSION

S2_EXT = "https://stac-extensions.github.io/sentinel-2/v1.0.0/schema.json"
COLLECTION = "sentinel-2"

# band id -> (asset key / common name, centre wavelength um, FWHM um, native resolution m)
BANDS: dict[str, tuple[str, float, float, int]] = {
    "B01": ("coastal", 0.443, 0.027, 60),
    "B02": ("blue", 0.490, 0.098, 10),
    "B03": ("green", 0.560, 0.045, 10),
    "B04": ("red", 0.665, 0.038, 10),
    "B05": ("rededge1", 0.704, 0.019, 20),
    "B06": ("rededge2", 0.740, 0.018, 20),
    "B07": ("rededge3", 0.783, 0.028, 20),
    "B08": ("nir", 0.842, 0.145, 10),
    "B8A": ("nir08", 0.865, 0.033, 20),
    "B09": ("nir09", 0.945, 0.026, 60),
    "B10": ("cirrus", 1.3735, 0.075, 60),
    "B11": ("swir16", 1.610, 0.143, 20),
    "B12": ("swir22", 2.190, 0.242, 20),
}
BAND_INDEX = {b: i for i, b in enumerate(["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"])}
# STAC eo common names differ from our asset keys for two bands
COMMON_NAME = {"rededge1": "rededge071", "rededge2": "rededge075", "rededge3": "rededge078"}
AUX = {"SCL": ("scl", 20), "AOT": ("aot", 10), "WVP": ("wvp", 10), "TCI": ("visual", 10)}
SCL_CLASSES = [
    (0, "no_data", "No data"), (1, "saturated_defective", "Saturated or defective"), (2, "dark_area", "Dark area pixels"),
    (3, "cloud_shadow", "Cloud shadows"), (4, "vegetation", "Vegetation"), (5, "not_vegetated", "Not vegetated"),
    (6, "water", "Water"), (7, "unclassified", "Unclassified"), (8, "cloud_medium_probability", "Cloud medium probability"),
    (9, "cloud_high_probability", "Cloud high probability"), (10, "thin_cirrus", "Thin cirrus"), (11, "snow", "Snow or ice"),
]
IMAGE_RE = re.compile(r"_(B\d[0-9A]|SCL|AOT|WVP|TCI)(?:_(\d+)m)?$")


def _text(root: ET.Element, tag: str, required: bool = True, where: str = "") -> str | None:
    el = root.find(f".//{tag}")
    if el is None or el.text is None:
        if required:
            raise ProductError(f"malformed metadata: element <{tag}> is missing", where)
        return None
    return el.text.strip()


@dataclass
class BandFile:
    band: str  # B04, SCL, TCI...
    key: str  # asset key
    rel: str  # path inside the product
    resolution: int


@dataclass
class S2Product:
    fs: ProductFS
    id: str
    layout: str  # "SAFE" | "AWS"
    level: str  # L1C | L2A
    product_type: str
    baseline: str
    platform: str
    start: datetime
    stop: datetime
    generation_time: datetime | None
    relative_orbit: int
    orbit_direction: str | None
    cloud_cover: float | None
    nodata_percentage: float | None
    footprint: Polygon  # lon/lat
    epsg: int
    tile_id: str | None
    datastrip_id: str | None
    quantification: float
    offsets: dict[str, float]
    sun_zenith: float | None
    sun_azimuth: float | None
    view_zenith: float | None
    view_azimuth: float | None
    geopositions: dict[int, tuple[float, float, int, int]]  # res -> (ulx, uly, rows, cols)
    files: dict[str, BandFile] = field(default_factory=dict)
    product_uri: str | None = None
    synthetic: bool = False  # a `stac-mmtp sample` product (marker file at its root)

    @property
    def offset_applies(self) -> bool:
        return float(self.baseline) >= 4.0


def _is_s2_safe_name(name: str) -> bool:
    return bool(re.match(r"^S2[ABCD]_MSI(L1C|L2A)_", name))


class Sentinel2:
    name = "sentinel-2"
    collection_id = COLLECTION

    # ---------------------------------------------------------------- detection
    def detect(self, path: Path) -> bool:
        path = Path(path)
        if path.is_dir():
            if (path / "MTD_MSIL2A.xml").exists() or (path / "MTD_MSIL1C.xml").exists():
                return True
            return (path / "metadata.xml").exists() and (path / "tileInfo.json").exists()
        return bool(path.suffix.lower() == ".zip" and _is_s2_safe_name(path.name))

    # ---------------------------------------------------------------- metadata
    def parse(self, path: Path) -> S2Product:
        path = Path(path)
        if path.suffix.lower() == ".zip":
            fs = ProductFS.open(path, root_marker=None)
            mtd = [n for n in fs.names if re.search(r"(^|/)MTD_MSIL(1C|2A)\.xml$", n)]
            if not mtd:
                raise ProductError("no MTD_MSIL1C.xml or MTD_MSIL2A.xml in the archive", path)
            fs = ProductFS.open(path, root_marker=mtd[0].rsplit("/", 1)[-1])
        else:
            fs = ProductFS.open(path)
        prod = self._parse_aws(fs) if fs.exists("tileInfo.json") and fs.exists("metadata.xml") else self._parse_safe(fs)
        prod.synthetic = is_synthetic(fs)
        return prod

    def _parse_safe(self, fs: ProductFS) -> S2Product:
        mtd_rel = "MTD_MSIL2A.xml" if fs.exists("MTD_MSIL2A.xml") else "MTD_MSIL1C.xml"
        if not fs.exists(mtd_rel):
            raise ProductError("missing product metadata MTD_MSIL1C.xml / MTD_MSIL2A.xml", fs.path)
        root = _parse_xml(fs, mtd_rel)
        where = fs.display(mtd_rel)
        uri = _text(root, "PRODUCT_URI", where=where)
        product_type = _text(root, "PRODUCT_TYPE", where=where)
        if product_type not in ("S2MSI1C", "S2MSI2A"):
            raise UnsupportedProduct(f"product type {product_type!r} is not supported (S2MSI1C, S2MSI2A)", where)
        level = "L2A" if product_type == "S2MSI2A" else "L1C"
        quant = _text(root, "BOA_QUANTIFICATION_VALUE", False) or _text(root, "QUANTIFICATION_VALUE", False) or "10000"
        offsets = {}
        for el in root.iter():
            if el.tag in ("BOA_ADD_OFFSET", "RADIO_ADD_OFFSET") and el.text:
                offsets[el.get("band_id", "")] = float(el.text)
        pos = _text(root, "EXT_POS_LIST", where=where).split()
        try:
            coords = [(float(pos[i + 1]), float(pos[i])) for i in range(0, len(pos) - 1, 2)]  # SAFE writes "lat lon"
        except ValueError:
            raise ProductError("malformed footprint EXT_POS_LIST", where) from None
        footprint = footprint_polygon(coords, where)
        granules = [n for n in fs.names if re.match(r"^GRANULE/[^/]+/MTD_TL\.xml$", n)]
        if not granules:
            raise ProductError("missing tile metadata GRANULE/*/MTD_TL.xml", fs.path)
        tile = _parse_xml(fs, granules[0])
        prod = S2Product(
            fs=fs,
            id=uri.removesuffix(".SAFE"),
            layout="SAFE",
            level=level,
            product_type=product_type,
            baseline=_text(root, "PROCESSING_BASELINE", where=where),
            platform=_text(root, "SPACECRAFT_NAME", where=where).lower(),
            start=_dt(_text(root, "PRODUCT_START_TIME", where=where)),
            stop=_dt(_text(root, "PRODUCT_STOP_TIME", where=where)),
            generation_time=_dt(g) if (g := _text(root, "GENERATION_TIME", False)) else None,
            relative_orbit=int(_text(root, "SENSING_ORBIT_NUMBER", where=where)),
            orbit_direction=(_text(root, "SENSING_ORBIT_DIRECTION", False) or "").lower() or None,
            cloud_cover=float(c) if (c := _text(root, "Cloud_Coverage_Assessment", False)) else None,
            nodata_percentage=None,
            footprint=footprint,
            epsg=0,
            tile_id=None,
            datastrip_id=None,
            quantification=float(quant),
            offsets={},
            sun_zenith=None,
            sun_azimuth=None,
            view_zenith=None,
            view_azimuth=None,
            geopositions={},
            product_uri=uri,
        )
        prod.offsets = {b: offsets.get(str(i), 0.0) for b, i in BAND_INDEX.items()}
        self._fill_tile(prod, tile, fs.display(granules[0]))
        granule_dir = granules[0].rsplit("/", 1)[0]
        for el in root.iter("IMAGE_FILE"):
            rel = (el.text or "").strip()
            m = IMAGE_RE.search(rel)
            if not m:
                continue
            band, res = m.group(1), int(m.group(2)) if m.group(2) else None
            if not rel.startswith(granule_dir):
                continue
            self._add_file(prod, band, rel + ".jp2", res)
        return prod

    def _parse_aws(self, fs: ProductFS) -> S2Product:
        info_rel = "tileInfo.json"
        try:
            info = json.loads(fs.read_bytes(info_rel))
        except json.JSONDecodeError as exc:
            raise ProductError(f"malformed JSON ({exc})", fs.display(info_rel)) from None
        tile = _parse_xml(fs, "metadata.xml")
        name = info.get("productName")
        if not name:
            raise ProductError("productName missing", fs.display(info_rel))
        m = re.match(r"^(S2[ABCD])_MSI(L1C|L2A)_(\d{8}T\d{6})_N(\d{2})(\d{2})_R(\d{3})_T(\w{5})_", name)
        if not m:
            raise ProductError(f"unexpected productName {name!r}", fs.display(info_rel))
        geom = info.get("tileDataGeometry") or info.get("tileGeometry")
        epsg = int(str(geom["crs"]["properties"]["name"]).rsplit(":", 1)[-1])
        utm = shape(geom)
        ll = reproject(utm, epsg, 4326)
        sensing = _dt(_text(tile, "SENSING_TIME", where=fs.display("metadata.xml")))
        prod = S2Product(
            fs=fs,
            id=name,
            layout="AWS",
            level=m.group(2),
            product_type="S2MSI2A" if m.group(2) == "L2A" else "S2MSI1C",
            baseline=f"{m.group(4)}.{m.group(5)}",
            platform="sentinel-2" + m.group(1)[-1].lower(),
            start=sensing,
            stop=sensing,
            generation_time=None,
            relative_orbit=int(m.group(6)),
            orbit_direction=None,
            cloud_cover=None,
            nodata_percentage=None,
            footprint=footprint_polygon(list(ll.exterior.coords), fs.display(info_rel)),
            epsg=epsg,
            tile_id=None,
            datastrip_id=(info.get("datastrip") or {}).get("id"),
            quantification=10000.0,
            offsets={b: (-1000.0 if float(f"{m.group(4)}.{m.group(5)}") >= 4 else 0.0) for b in BAND_INDEX},
            sun_zenith=None,
            sun_azimuth=None,
            view_zenith=None,
            view_azimuth=None,
            geopositions={},
            product_uri=name + ".SAFE",
        )
        self._fill_tile(prod, tile, fs.display("metadata.xml"))
        prod.cloud_cover = prod.cloud_cover if prod.cloud_cover is not None else info.get("cloudyPixelPercentage")
        for rel in fs.names:
            mm = re.match(r"^(?:R(\d+)m/)?(B\d[0-9A]|SCL|AOT|WVP|TCI)\.jp2$", rel)
            if mm:
                self._add_file(prod, mm.group(2), rel, int(mm.group(1)) if mm.group(1) else None)
        return prod

    def _fill_tile(self, prod: S2Product, tile: ET.Element, where: str) -> None:
        prod.tile_id = _text(tile, "TILE_ID", False)
        prod.datastrip_id = prod.datastrip_id or _text(tile, "DATASTRIP_ID", False)
        code = _text(tile, "HORIZONTAL_CS_CODE", where=where)
        try:
            prod.epsg = int(code.rsplit(":", 1)[-1])
        except ValueError:
            raise ProductError(f"unexpected HORIZONTAL_CS_CODE {code!r}", where) from None
        for size in tile.iter("Size"):
            res = int(size.get("resolution", "0"))
            rows, cols = int(_text(size, "NROWS", where=where)), int(_text(size, "NCOLS", where=where))
            prod.geopositions[res] = (0.0, 0.0, rows, cols)
        for geo in tile.iter("Geoposition"):
            res = int(geo.get("resolution", "0"))
            rows, cols = prod.geopositions.get(res, (0, 0, 0, 0))[2:]
            prod.geopositions[res] = (float(_text(geo, "ULX", where=where)), float(_text(geo, "ULY", where=where)), rows, cols)
        if (c := _text(tile, "CLOUDY_PIXEL_PERCENTAGE", False)) is not None and prod.cloud_cover is None:
            prod.cloud_cover = float(c)
        if (n := _text(tile, "NODATA_PIXEL_PERCENTAGE", False)) is not None:
            prod.nodata_percentage = float(n)
        sun = tile.find(".//Mean_Sun_Angle")
        if sun is not None:
            prod.sun_zenith = float(_text(sun, "ZENITH_ANGLE", where=where))
            prod.sun_azimuth = float(_text(sun, "AZIMUTH_ANGLE", where=where))
        views = tile.findall(".//Mean_Viewing_Incidence_Angle")
        zen = [float(_text(v, "ZENITH_ANGLE", where=where)) for v in views]
        azi = [float(_text(v, "AZIMUTH_ANGLE", where=where)) for v in views]
        if zen and np.isfinite(zen).any():  # AWS tiles of nodata slivers write NaN
            prod.view_zenith = float(np.nanmean(zen))
            prod.view_azimuth = float(np.nanmean(azi))

    @staticmethod
    def _add_file(prod: S2Product, band: str, rel: str, res: int | None) -> None:
        if band in BANDS:
            key, native = BANDS[band][0], BANDS[band][3]
        elif band in AUX:
            key, native = AUX[band]
        else:
            return
        res = res or native
        current = prod.files.get(key)
        # keep the native-resolution file (L2A ships resampled copies at coarser resolutions too)
        if current is None or (res == native) or (current.resolution != native and res < current.resolution):
            prod.files[key] = BandFile(band, key, rel, res)

    # ---------------------------------------------------------------- STAC
    def read(self, path: Path) -> ProductMeta:
        prod = self.parse(path)
        item = self._base_item(prod)
        item["id"] = prod.id
        item["assets"] = {
            f.key: {"href": f"./{f.rel}", "type": "image/jp2", "roles": ["data"], "title": f"{f.band} ({f.resolution} m)",
                    "bands": [self._metadata_band(prod, f)]}
            for f in sorted(prod.files.values(), key=lambda f: f.key)
        }
        if not item["assets"]:  # the raster extension requires raster fields: none without band files
            item["stac_extensions"] = [e for e in item["stac_extensions"] if e != RASTER]
        if prod.synthetic:
            mark_item(item, self.name, MMTP)
        return ProductMeta(Path(path), self.name, prod.id, item["geometry"], prod.start, prod.stop, item, prod.synthetic)

    @staticmethod
    def _metadata_band(prod: S2Product, f: BandFile) -> dict[str, Any]:
        """What the metadata alone says of a band file (every baseline): its resolution, and for
        reflectance bands the scale and offset from DN to reflectance."""
        band: dict[str, Any] = {"name": f.band, "nodata": 0, "raster:spatial_resolution": f.resolution}
        if f.band in BANDS:
            offset = prod.offsets.get(f.band, 0.0) / prod.quantification if prod.offset_applies else 0.0
            band.update({"data_type": "uint16", "raster:scale": round(1.0 / prod.quantification, 10),
                         "raster:offset": round(offset, 10)})
        return band

    def _base_item(self, prod: S2Product) -> dict[str, Any]:
        props: dict[str, Any] = {
            "datetime": _iso(prod.start),
            "platform": prod.platform,
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "gsd": 10,
            "sat:relative_orbit": prod.relative_orbit,
            "proj:code": f"EPSG:{prod.epsg}",
            "processing:level": prod.level,
            "processing:version": prod.baseline,
            "s2:product_type": prod.product_type,
            "s2:processing_baseline": prod.baseline,
        }
        if prod.orbit_direction:
            props["sat:orbit_state"] = prod.orbit_direction
        if prod.cloud_cover is not None:
            props["eo:cloud_cover"] = round(prod.cloud_cover, 6)
        if prod.nodata_percentage is not None:
            props["s2:nodata_pixel_percentage"] = prod.nodata_percentage
        if prod.product_uri:
            props["s2:product_uri"] = prod.product_uri
        if prod.tile_id:
            props["s2:tile_id"] = prod.tile_id
        if prod.datastrip_id:
            props["s2:datastrip_id"] = prod.datastrip_id
        if prod.generation_time:
            props["s2:generation_time"] = _iso(prod.generation_time)
        if prod.sun_zenith is not None:
            props["view:sun_elevation"] = round(90.0 - prod.sun_zenith, 6)
            props["view:sun_azimuth"] = round(prod.sun_azimuth, 6)
        if prod.view_zenith is not None:
            props["view:incidence_angle"] = round(prod.view_zenith, 6)
            props["view:azimuth"] = round(prod.view_azimuth, 6)
        geom = mapping(prod.footprint)
        return {
            "type": "Feature",
            "stac_version": STAC_VERSION,
            "stac_extensions": [EO, RASTER, PROJ, SAT, VIEW, PROCESSING, S2_EXT],
            "id": prod.id,
            "geometry": round_geometry(geom),
            "bbox": geometry_bbox(prod.footprint),
            "properties": props,
            "links": [_source_link(prod)],
            "assets": {},
        }

    # ---------------------------------------------------------------- conversion
    def convert(self, task: Task, item_dir: Path) -> dict[str, Any]:
        prod = self.parse(task.product.path)
        ev = task.event
        aoi_utm = reproject(ev.shape, 4326, prod.epsg).buffer(task.options.buffer_m)
        # snap to the 60 m grid of the tile so that every resolution covers exactly the same extent
        ulx, uly = (prod.geopositions.get(10) or prod.geopositions.get(20) or (0.0, 0.0, 0, 0))[:2]
        minx, miny, maxx, maxy = aoi_utm.bounds
        minx = ulx + math.floor((minx - ulx) / 60) * 60
        maxx = ulx + math.ceil((maxx - ulx) / 60) * 60
        maxy = uly - math.floor((uly - maxy) / 60) * 60
        miny = uly - math.ceil((uly - miny) / 60) * 60
        bounds = (minx, miny, maxx, maxy)
        data_files = {k: f for k, f in prod.files.items()}
        if not data_files:
            raise ProductError("no band files (JP2) listed in the metadata were found", prod.fs.path)
        item = self._base_item(prod)
        item["id"] = task.item_id
        item["stac_extensions"] = [*item["stac_extensions"], FILE, CLASSIFICATION, MMTP]
        assets: dict[str, Any] = {}
        clip_geom = None
        for key, f in sorted(data_files.items()):
            if not prod.fs.exists(f.rel):
                raise ProductError(f"band file listed in the metadata is missing: {f.rel}", prod.fs.path)
            if prod.fs.size(f.rel) == 0:
                raise ProductError("0-byte band file", prod.fs.display(f.rel))
            gdal_path = prod.fs.gdal_path(f.rel, verify=True)
            try:
                with rasterio.open(gdal_path) as src:
                    win = from_bounds(*bounds, transform=src.transform)
                    win = Window(math.floor(win.col_off + 1e-6), math.floor(win.row_off + 1e-6),
                                 math.ceil(win.width - 1e-6), math.ceil(win.height - 1e-6))
                    full = Window(0, 0, src.width, src.height)
                    try:
                        win = win.intersection(full)
                    except rasterio.errors.WindowError:
                        raise ProductError(f"the event AOI of {ev.id} does not overlap this tile", prod.fs.path) from None
                    if win.width <= 0 or win.height <= 0:
                        raise ProductError(f"the event AOI of {ev.id} does not overlap this tile", prod.fs.path)
                    if src.crs and src.crs.to_epsg() != prod.epsg:
                        raise ProductError(f"band CRS {src.crs} differs from the tile EPSG:{prod.epsg}", prod.fs.display(f.rel))
                    dtype = src.dtypes[0]
                    count = src.count
                    wt = src.window_transform(win)
                    shape_ = (int(win.height), int(win.width))
            except RasterioIOError as exc:
                raise ProductError(f"unreadable or truncated band file ({exc})", prod.fs.display(f.rel)) from None
            is_class = key == "scl"
            dst = item_dir / f"{key}.tif"
            profile = CogProfile(overview_resampling="nearest" if is_class or key == "visual" else "average",
                                 predictor=2, compress="DEFLATE")
            try:
                clip_to_cog(gdal_path, dst, win, profile, nodata=0)
            except RasterioIOError as exc:
                raise ProductError(f"unreadable or truncated band file ({exc})", prod.fs.display(f.rel)) from None
            asset = self._asset(prod, f, key, dtype, count, wt, shape_)
            asset.update(file_fields(dst))
            assets[key] = asset
            if clip_geom is None:
                clip_geom = box(wt.c, wt.f + wt.e * shape_[0], wt.c + wt.a * shape_[1], wt.f)
        if "visual" in assets:
            self._thumbnail(item_dir / "visual.tif", item_dir / "thumbnail.png")
            assets["thumbnail"] = {"href": "./thumbnail.png", "type": PNG_MEDIA_TYPE, "roles": ["thumbnail"],
                                   "title": "True-colour preview", **file_fields(item_dir / "thumbnail.png")}
        clip_ll = reproject_lonlat(clip_geom, prod.epsg)
        geom = clip_ll.intersection(prod.footprint)
        if geom.is_empty:
            raise ProductError(f"the product footprint does not overlap the AOI of {ev.id}", prod.fs.path)
        item["geometry"] = round_geometry(mapping(geom))
        item["bbox"] = geometry_bbox(geom)
        props = item["properties"]
        props.update(event_fields(ev))
        props["mmtp:temporal_role"] = task.temporal_role
        props["mmtp:days_from_event"] = task.days_from_event
        props["processing:software"] = {"stac-mmtp": __version__}
        props["license"] = "other"
        props["providers"] = esa_providers("sentinel-2")
        item["links"] = [
            _source_link(prod),
            license_link(),
            {"rel": "related", "href": f"../../events/{ev.id}/{ev.id}.json", "type": "application/geo+json",
             "title": f"Event: {ev.title}"},
        ]
        item["assets"] = assets
        return mark_item(item, self.name, MMTP) if prod.synthetic else item

    def _asset(self, prod: S2Product, f: BandFile, key: str, dtype: str, count: int, wt: Any, shape_: tuple[int, int]) -> dict[str, Any]:
        transform = [wt.a, wt.b, wt.c, wt.d, wt.e, wt.f]
        proj = {
            "proj:code": f"EPSG:{prod.epsg}",
            "proj:shape": list(shape_),
            "proj:transform": [round(v, 6) for v in transform],
            "proj:bbox": [wt.c, wt.f + wt.e * shape_[0], wt.c + wt.a * shape_[1], wt.f],
        }
        base = {"href": f"./{key}.tif", "type": COG_MEDIA_TYPE, "gsd": f.resolution, **proj}
        if f.band in BANDS:
            cn, wl, fwhm, _ = BANDS[f.band]
            offset = prod.offsets.get(f.band, 0.0) / prod.quantification if prod.offset_applies else 0.0
            band = {
                "name": f.band,
                "description": f"{f.band} {'surface' if prod.level == 'L2A' else 'top-of-atmosphere'} reflectance",
                "eo:common_name": COMMON_NAME.get(cn, cn),
                "eo:center_wavelength": wl,
                "eo:full_width_half_max": fwhm,
                "nodata": 0,
                "data_type": dtype,
                "raster:scale": round(1.0 / prod.quantification, 10),
                "raster:offset": round(offset, 10),
                "raster:spatial_resolution": f.resolution,
            }
            return {**base, "title": f"{f.band} {cn} ({f.resolution} m)", "roles": ["data", "reflectance"], "bands": [band]}
        if key == "scl":
            return {
                **base, "title": "Scene classification (SCL)", "roles": ["data", "classification"],
                "bands": [{"name": "SCL", "nodata": 0, "data_type": dtype, "raster:spatial_resolution": f.resolution}],
                "classification:classes": [{"value": v, "name": n, "description": d} for v, n, d in SCL_CLASSES],
            }
        if key == "visual":
            return {
                **base, "title": "True colour (TCI)", "roles": ["visual"],
                "bands": [{"name": n, "eo:common_name": n, "nodata": 0, "data_type": dtype} for n in ("red", "green", "blue")][:count],
            }
        scale = {"aot": 0.001, "wvp": 0.001}.get(key, 1.0)
        unit = {"wvp": "cm"}.get(key)
        band = {"name": f.band, "nodata": 0, "data_type": dtype, "raster:scale": scale, "raster:spatial_resolution": f.resolution}
        if unit:
            band["unit"] = unit
        return {**base, "title": {"aot": "Aerosol optical thickness", "wvp": "Water vapour"}.get(key, key),
                "roles": ["data"], "bands": [band]}

    @staticmethod
    def _thumbnail(visual: Path, png: Path) -> None:
        with rasterio.open(visual) as src:
            step = max(1, math.ceil(max(src.width, src.height) / 256))
            data = src.read(out_shape=(src.count, max(1, src.height // step), max(1, src.width // step)))
        write_png(data[:3], png)

    def collection(self, items: Any) -> dict[str, Any]:  # a list of items or a stac.tree.ItemStats
        from stac_mmtp.stac.tree import distinct, summarise
        from stac_mmtp.stac.tree import item_assets as derive_item_assets

        meta = collection_metadata(COLLECTION)
        item_assets = derive_item_assets(items, ("gsd",), ("raster:offset",))  # the offset depends on the baseline
        return {
            "type": "Collection",
            "stac_version": STAC_VERSION,
            "stac_extensions": [EO, RASTER, PROJ, MMTP],
            **meta,
            "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
            "summaries": {
                "platform": sorted(distinct(items, "platform")),
                "constellation": ["sentinel-2"],
                "instruments": ["msi"],
                **summarise(items, ["mmtp:phenomenon", "mmtp:temporal_role", "mmtp:event_id", "processing:level",
                                    "proj:code", "eo:cloud_cover", "sat:relative_orbit"]),
            },
            "item_assets": dict(sorted(item_assets.items())),
            "links": [license_link(item=False)],
        }




def _source_link(prod: S2Product) -> dict[str, Any]:
    name = prod.product_uri or prod.id + ".SAFE"
    query = urllib.parse.quote(f"Name eq '{name}'")
    return {"rel": "via", "href": f"https://catalogue.dataspace.copernicus.eu/odata/v1/Products?$filter={query}",
            "type": "application/json", "title": f"Source product {name} (Copernicus Data Space Ecosystem)"}


SOURCE = Sentinel2()  # listed in sources/registry.py
