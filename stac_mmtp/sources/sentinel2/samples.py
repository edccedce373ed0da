"""Small but format-faithful Sentinel-2 L2A/L1C SAFE products placed at real events.

Same layout and metadata schema as real products (manifest.safe, MTD_MSIL2A.xml / MTD_MSIL1C.xml,
GRANULE/<granule>/MTD_TL.xml, JPEG 2000 bands per resolution folder), but a 6 km tile instead of
109.8 km so that the demo stays small. Pixels are synthetic: a smooth landscape, a few clouds (and,
for L2A, thin cirrus) with their shadows away from the event site, plus, after the event, a bright
bare-soil scar around the event site, so that a change is visible. The cloud, shadow and no-data
percentages of the MTD files are computed from the pixels written (L2A: from the SCL band, with
ESA's definition: cloud = SCL classes 8, 9, 10 over the valid pixels); the other metadata (angles,
orbits, ids) are invented. Each product carries the sample marker (`synthetic.MARKER`).
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import rasterio
from pyproj import CRS, Transformer
from rasterio.transform import from_origin

from stac_mmtp.dataset.inventory import Event
from stac_mmtp.raster.geo import mgrs_tile, utm_epsg
from stac_mmtp.sources.safe_xml import manifest_data_objects
from stac_mmtp.sources.sentinel2 import BANDS
from stac_mmtp.stac.synthetic import write_marker

TILE_M = 6000  # tile side, metres (real tiles: 109800)
L2A_LAYOUT = {10: ["B02", "B03", "B04", "B08", "AOT", "WVP", "TCI"], 20: ["B05", "B06", "B07", "B8A", "B11", "B12", "SCL"], 60: ["B01", "B09"]}
L1C_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12", "TCI"]
NODATA_M = 120  # no-data strip on the west edge, in metres: the same ground at every resolution, as on real tiles
CELL_M = 60  # clouds are drawn on the 60 m grid and repeated at 20 and 10 m, so every band sees the same clouds
# SCL classes (ESA's legend) the sample writes
SCL_NODATA, SCL_SHADOW, SCL_VEG, SCL_SOIL, SCL_CLOUD_MED, SCL_CLOUD_HIGH, SCL_CIRRUS = 0, 3, 4, 5, 8, 9, 10
CLOUD_CLASSES = (SCL_CLOUD_MED, SCL_CLOUD_HIGH, SCL_CIRRUS)  # ESA's CLOUDY_PIXEL_PERCENTAGE (shadows counted apart)
# top-of-cloud reflectance per band (x 10000): bright and flat in the visible/NIR, lower in the SWIR
CLOUD = {"B01": 5200, "B02": 5100, "B03": 5000, "B04": 5000, "B05": 5100, "B06": 5200, "B07": 5200, "B08": 5200,
         "B8A": 5100, "B09": 2200, "B10": 600, "B11": 3600, "B12": 2600}
# typical vegetation / bare-soil surface reflectance per band (x 10000)
VEG = {"B01": 300, "B02": 350, "B03": 600, "B04": 400, "B05": 900, "B06": 2200, "B07": 2700, "B08": 3000, "B8A": 3100,
       "B09": 900, "B10": 20, "B11": 1600, "B12": 800}
SOIL = {"B01": 900, "B02": 1100, "B03": 1400, "B04": 1700, "B05": 1900, "B06": 2000, "B07": 2100, "B08": 2200, "B8A": 2300,
        "B09": 700, "B10": 20, "B11": 2900, "B12": 2500}


def _fields(shape: tuple[int, int], seed: int, scar_center: tuple[float, float] | None, res: int) -> tuple[np.ndarray, np.ndarray]:
    """(vegetation weight 0..1, scar mask) on a grid of `shape` at `res` metres."""
    rows, cols = shape
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32) * res
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, 4)
    veg = 0.6 + 0.2 * np.sin(x / 900 + phase[0]) * np.cos(y / 1300 + phase[1]) + 0.1 * np.sin((x + y) / 400 + phase[2])
    veg = np.clip(veg, 0, 1)
    scar = np.zeros(shape, dtype=bool)
    if scar_center is not None:
        cx, cy = scar_center
        scar = ((x - cx) / 700) ** 2 + ((y - cy) / 350) ** 2 <= 1.0
    return veg, scar


def cloud_classes(seed: int, target_pct: float, site_xy: tuple[float, float], cirrus: bool) -> np.ndarray:
    """SCL-style classes on the 60 m grid: 0 clear, 8/9 cloud (medium/high probability), 10 thin cirrus,
    3 cloud shadow. Clouds are added until they cover `target_pct` % of the valid cells, never within
    1.8 km of the event site (the scar and the annotations stay clear)."""
    n = TILE_M // CELL_M
    y, x = (np.mgrid[0:n, 0:n].astype(np.float64) + 0.5) * CELL_M
    valid = np.ones((n, n), dtype=bool)
    valid[:, : NODATA_M // CELL_M] = False
    out = np.zeros((n, n), dtype=np.uint8)
    rng = np.random.default_rng(seed ^ 0x5EED)
    goal = target_pct / 100 * valid.sum()
    if cirrus and target_pct > 0:  # a veil of thin cirrus, a sixth of the cloud cover
        cx, cy = site_xy[0] + 2200, site_xy[1] - 2000
        semi = math.sqrt(target_pct / 100 * valid.sum() * CELL_M**2 / 6 / (3 * math.pi))  # area: a sixth of the goal
        veil = (((x - cx) / (3 * semi)) ** 2 + ((y - cy) / semi) ** 2 <= 1) & valid
        out[veil] = SCL_CIRRUS
        goal -= veil.sum()
    for _ in range(500):
        if np.isin(out, CLOUD_CLASSES).sum() >= goal:
            break
        cx, cy = rng.uniform(NODATA_M + 300, TILE_M - 100), rng.uniform(100, TILE_M - 100)
        if math.hypot(cx - site_xy[0], cy - site_xy[1]) < 1800:
            continue
        r = rng.uniform(120, 360)
        d = np.hypot(x - cx, y - cy)
        out[(d <= r) & valid & (out != SCL_CLOUD_HIGH)] = SCL_CLOUD_MED
        out[(d <= 0.6 * r) & valid] = SCL_CLOUD_HIGH
    cloud = np.isin(out, CLOUD_CLASSES)
    # shadows fall away from the sun (south-south-east at these latitudes): north-north-west of each cloud
    shifted = np.zeros_like(cloud)
    shifted[:-3, :-1] = np.isin(out, (SCL_CLOUD_MED, SCL_CLOUD_HIGH))[3:, 1:]
    out[shifted & ~cloud & valid] = SCL_SHADOW
    return out


def _at(classes: np.ndarray, res: int) -> np.ndarray:
    k = CELL_M // res
    return np.repeat(np.repeat(classes, k, axis=0), k, axis=1)


def _nodata(data: np.ndarray, res: int) -> None:
    data[..., : NODATA_M // res] = 0  # a thin no-data strip on the west edge, as on real tile edges


def _band_data(band: str, shape: tuple[int, int], res: int, seed: int, scar_xy: tuple[float, float] | None, l2a: bool,
               clouds: np.ndarray | None = None) -> np.ndarray:
    veg, scar = _fields(shape, seed, scar_xy, res)
    refl = veg * VEG.get(band, 500) + (1 - veg) * SOIL.get(band, 500)
    refl[scar] = SOIL.get(band, 500) * 1.15
    if clouds is not None:
        c = _at(clouds, res)
        refl[c == SCL_SHADOW] *= 0.45
        refl[c == SCL_CIRRUS] += 900 if band == "B10" else 350
        refl[c == SCL_CLOUD_MED] = 0.75 * CLOUD.get(band, 5000) + 0.25 * refl[c == SCL_CLOUD_MED]
        refl[c == SCL_CLOUD_HIGH] = CLOUD.get(band, 5000)
    dn = refl + (1000 if l2a else 0)  # baseline >= 04.00 adds the radiometric offset
    dn = np.clip(dn, 1, 65535).astype(np.uint16)
    _nodata(dn, res)
    return dn


def _write_jp2(path: Path, data: np.ndarray, epsg: int, ulx: float, uly: float, res: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if data.ndim == 2:
        data = data[np.newaxis]
    with rasterio.open(path, "w", driver="JP2OpenJPEG", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs=f"EPSG:{epsg}", transform=from_origin(ulx, uly, res, res),
                       QUALITY=100, REVERSIBLE="YES", RESOLUTIONS=2) as ds:
        ds.write(data)
    Path(str(path) + ".aux.xml").unlink(missing_ok=True)


def _stamp(dt: datetime) -> str:
    return dt.strftime("%Y%m%dT%H%M%S")


def write_product(out: Path, event: Event, when: datetime, level: str = "L2A", platform: str = "S2B",
                  relative_orbit: int = 8, baseline: str = "05.10", scar: bool = False, cloud: float = 3.2) -> Path:
    """Write one SAFE directory for `event` acquired at `when`; returns its path. `cloud` is the cloud
    cover aimed at (%): the MTD files state the exact share of the cloud pixels written."""
    lon, lat = event.site
    epsg = utm_epsg(lon, lat)
    to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
    x, y = to_utm.transform(lon, lat)
    ulx = math.floor((x - TILE_M / 2) / 60) * 60
    uly = math.floor((y + TILE_M / 2) / 60) * 60
    tile = mgrs_tile(lon, lat)  # the real MGRS tile; the sample covers only a small window of it
    gen = when + timedelta(hours=1, minutes=17)
    n_base = baseline.replace(".", "")
    abs_orbit = 10000 + (int(when.timestamp()) // 86400) % 30000
    name = f"{platform}_MSI{level}_{_stamp(when)}_N{n_base}_R{relative_orbit:03d}_T{tile}_{_stamp(gen)}"
    safe = out / f"{name}.SAFE"
    granule = f"{level}_T{tile}_A{abs_orbit:06d}_{_stamp(when)}"
    l2a = level == "L2A"
    offset = float(baseline) >= 4.0
    scar_xy = (x - ulx, uly - y) if scar else None
    seed = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    clouds = cloud_classes(seed, cloud, (x - ulx, uly - y), cirrus=l2a)
    image_files: list[str] = []
    written: list[Path] = []
    if l2a:
        for res, bands in L2A_LAYOUT.items():
            for band in bands:
                rel = f"GRANULE/{granule}/IMG_DATA/R{res}m/T{tile}_{_stamp(when)}_{band}_{res}m"
                image_files.append(rel)
                written.append(_write_band(safe / f"{rel}.jp2", band, res, epsg, ulx, uly, seed, scar_xy, offset, clouds))
    else:
        for band in L1C_BANDS:
            res = BANDS[band][3] if band in BANDS else 10
            rel = f"GRANULE/{granule}/IMG_DATA/T{tile}_{_stamp(when)}_{band}"
            image_files.append(rel)
            written.append(_write_band(safe / f"{rel}.jp2", band, res, epsg, ulx, uly, seed, scar_xy, offset, clouds))
    qi = quality_indicators(safe, image_files, clouds, l2a)
    to_ll = Transformer.from_crs(epsg, 4326, always_xy=True)
    corners = [(ulx, uly), (ulx + TILE_M, uly), (ulx + TILE_M, uly - TILE_M), (ulx, uly - TILE_M), (ulx, uly)]
    ll = [to_ll.transform(cx, cy) for cx, cy in corners]
    ext_pos = " ".join(f"{la:.10f} {lo:.10f}" for lo, la in ll)  # SAFE footprints are written latitude first
    mtd_name = f"MTD_MSI{level}.xml"
    (safe / mtd_name).write_text(_product_mtd(level, name, when, gen, baseline, platform, relative_orbit,
                                              qi["CLOUDY_PIXEL_PERCENTAGE"], image_files, ext_pos, offset), encoding="utf-8")
    tl = safe / "GRANULE" / granule / "MTD_TL.xml"
    tl.write_text(_tile_mtd(level, platform, tile, abs_orbit, when, gen, baseline, epsg, ulx, uly, qi), encoding="utf-8")
    (safe / "manifest.safe").write_text(_manifest(safe, name), encoding="utf-8")
    write_marker(safe, "sentinel-2")  # after the manifest, which lists only the product's own files
    return safe


def quality_indicators(safe: Path, image_files: list[str], clouds: np.ndarray, l2a: bool) -> dict[str, float]:
    """The MTD percentages, from the pixels written: L2A from its own SCL band (read back), L1C from the
    cloud cells written into its bands. As ESA computes them: classes over the valid pixels, no data
    over all pixels, CLOUDY_PIXEL_PERCENTAGE = medium + high probability clouds + thin cirrus."""
    if l2a:
        scl_rel = next(f for f in image_files if f.endswith("_SCL_20m"))
        with rasterio.open(safe / f"{scl_rel}.jp2") as ds:
            scl = ds.read(1)
    else:
        scl = clouds.copy()
        _nodata(scl, CELL_M)
        scl[(scl == 0) & (np.arange(scl.shape[1]) >= NODATA_M // CELL_M)] = SCL_VEG  # clear: any valid class
    valid = scl != SCL_NODATA

    def pct(*classes: int) -> float:
        return round(100.0 * float(np.isin(scl[valid], classes).sum()) / float(valid.sum()), 6)

    qi = {"NODATA_PIXEL_PERCENTAGE": round(100.0 * float((~valid).sum()) / scl.size, 6),
          "CLOUDY_PIXEL_PERCENTAGE": pct(*CLOUD_CLASSES)}
    if l2a:
        qi.update({"CLOUD_SHADOW_PERCENTAGE": pct(SCL_SHADOW), "VEGETATION_PERCENTAGE": pct(SCL_VEG),
                   "NOT_VEGETATED_PERCENTAGE": pct(SCL_SOIL), "MEDIUM_PROBA_CLOUDS_PERCENTAGE": pct(SCL_CLOUD_MED),
                   "HIGH_PROBA_CLOUDS_PERCENTAGE": pct(SCL_CLOUD_HIGH), "THIN_CIRRUS_PERCENTAGE": pct(SCL_CIRRUS)})
    return qi


def _write_band(path: Path, band: str, res: int, epsg: int, ulx: float, uly: float, seed: int,
                scar_xy: tuple[float, float] | None, offset: bool, clouds: np.ndarray) -> Path:
    n = TILE_M // res
    if band == "TCI":
        rgb = [_band_data(b, (n, n), res, seed, scar_xy, offset, clouds) for b in ("B04", "B03", "B02")]
        sub = 1000 if offset else 0
        data = np.stack([np.clip((c.astype(np.float32) - sub) / 3000 * 255, 0, 255) for c in rgb]).astype(np.uint8)
        data[:, rgb[0] == 0] = 0
    elif band == "SCL":
        veg, scar = _fields((n, n), seed, scar_xy, res)
        data = np.where(veg > 0.5, SCL_VEG, SCL_SOIL).astype(np.uint8)
        data[scar] = SCL_SOIL
        c = _at(clouds, res)
        data[c != 0] = c[c != 0]
        _nodata(data, res)
    elif band in ("AOT", "WVP"):
        data = np.full((n, n), 150 if band == "AOT" else 1400, dtype=np.uint16)
        _nodata(data, res)
    else:
        data = _band_data(band, (n, n), res, seed, scar_xy, offset, clouds)
    _write_jp2(path, data, epsg, ulx, uly, res)
    return path


def _product_mtd(level: str, name: str, when: datetime, gen: datetime, baseline: str, platform: str, orbit: int,
                 cloud: float, image_files: list[str], ext_pos: str, offset: bool) -> str:
    l2a = level == "L2A"
    ns = "https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd" if l2a else \
        "https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-1C.xsd"
    tag = "Level-2A" if l2a else "Level-1C"
    t = when.strftime("%Y-%m-%dT%H:%M:%S.024Z")
    files = "\n".join(f"            <IMAGE_FILE>{escape(f)}</IMAGE_FILE>" for f in image_files)
    band_ids = range(13)
    if l2a:
        quant = ('        <BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>\n'
                 '        <AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE>\n'
                 '        <WVP_QUANTIFICATION_VALUE unit="cm">1000.0</WVP_QUANTIFICATION_VALUE>')
        offs = "\n".join(f'        <BOA_ADD_OFFSET band_id="{i}">-1000</BOA_ADD_OFFSET>' for i in band_ids)
        offs_block = f"      <BOA_ADD_OFFSET_VALUES_LIST>\n{offs}\n      </BOA_ADD_OFFSET_VALUES_LIST>" if offset else ""
        quant_block = f"      <QUANTIFICATION_VALUES_LIST>\n{quant}\n      </QUANTIFICATION_VALUES_LIST>\n{offs_block}"
    else:
        offs = "\n".join(f'        <RADIO_ADD_OFFSET band_id="{i}">-1000</RADIO_ADD_OFFSET>' for i in band_ids)
        offs_block = f"      <Radiometric_Offset_List>\n{offs}\n      </Radiometric_Offset_List>" if offset else ""
        quant_block = f'      <QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>\n{offs_block}'
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<n1:{tag}_User_Product xmlns:n1="{ns}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <n1:General_Info>
    <Product_Info>
      <PRODUCT_START_TIME>{t}</PRODUCT_START_TIME>
      <PRODUCT_STOP_TIME>{t}</PRODUCT_STOP_TIME>
      <PRODUCT_URI>{name}.SAFE</PRODUCT_URI>
      <PROCESSING_LEVEL>{tag}</PROCESSING_LEVEL>
      <PRODUCT_TYPE>S2MSI{level[1:]}</PRODUCT_TYPE>
      <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>
      <PRODUCT_DOI>https://doi.org/10.5270/S2_-{'znk9xsj' if l2a else '742ikth'}</PRODUCT_DOI>
      <GENERATION_TIME>{gen.strftime('%Y-%m-%dT%H:%M:%S.000000Z')}</GENERATION_TIME>
      <PREVIEW_IMAGE_URL>Not applicable</PREVIEW_IMAGE_URL>
      <PREVIEW_GEO_INFO>Not applicable</PREVIEW_GEO_INFO>
      <Datatake datatakeIdentifier="G{platform}_{_stamp(when)}_000000_N{baseline}">
        <SPACECRAFT_NAME>Sentinel-2{platform[-1]}</SPACECRAFT_NAME>
        <DATATAKE_TYPE>INS-NOBS</DATATAKE_TYPE>
        <DATATAKE_SENSING_START>{t}</DATATAKE_SENSING_START>
        <SENSING_ORBIT_NUMBER>{orbit}</SENSING_ORBIT_NUMBER>
        <SENSING_ORBIT_DIRECTION>DESCENDING</SENSING_ORBIT_DIRECTION>
      </Datatake>
      <Query_Options completeSingleTile="true">
        <PRODUCT_FORMAT>SAFE_COMPACT</PRODUCT_FORMAT>
      </Query_Options>
      <Product_Organisation>
        <Granule_List>
          <Granule datastripIdentifier="S2_DS_SYNTHETIC" granuleIdentifier="S2_TL_SYNTHETIC" imageFormat="JPEG2000">
{files}
          </Granule>
        </Granule_List>
      </Product_Organisation>
    </Product_Info>
    <Product_Image_Characteristics>
      <Special_Values>
        <SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT>
        <SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX>
      </Special_Values>
      <Special_Values>
        <SPECIAL_VALUE_TEXT>SATURATED</SPECIAL_VALUE_TEXT>
        <SPECIAL_VALUE_INDEX>65535</SPECIAL_VALUE_INDEX>
      </Special_Values>
{quant_block}
    </Product_Image_Characteristics>
  </n1:General_Info>
  <n1:Geometric_Info>
    <Product_Footprint>
      <Product_Footprint>
        <Global_Footprint>
          <EXT_POS_LIST>{ext_pos}</EXT_POS_LIST>
        </Global_Footprint>
      </Product_Footprint>
      <RASTER_CS_TYPE>POINT</RASTER_CS_TYPE>
      <PIXEL_ORIGIN>1</PIXEL_ORIGIN>
    </Product_Footprint>
    <Coordinate_Reference_System>
      <GEO_TABLES version="1">EPSG</GEO_TABLES>
      <HORIZONTAL_CS_TYPE>GEOGRAPHIC</HORIZONTAL_CS_TYPE>
    </Coordinate_Reference_System>
  </n1:Geometric_Info>
  <n1:Quality_Indicators_Info>
    <Cloud_Coverage_Assessment>{cloud:.6f}</Cloud_Coverage_Assessment>
  </n1:Quality_Indicators_Info>
</n1:{tag}_User_Product>
"""


def _tile_mtd(level: str, platform: str, tile: str, abs_orbit: int, when: datetime, gen: datetime, baseline: str,
              epsg: int, ulx: float, uly: float, qi: dict[str, float]) -> str:
    tid = f"{platform}_OPER_MSI_{level}_TL_SYNT_{_stamp(gen)}_A{abs_orbit:06d}_T{tile}_N{baseline}"
    ds = f"{platform}_OPER_MSI_{level}_DS_SYNT_{_stamp(gen)}_S{_stamp(when)}_N{baseline}"
    sizes = "\n".join(
        f'      <Size resolution="{r}">\n        <NROWS>{TILE_M // r}</NROWS>\n        <NCOLS>{TILE_M // r}</NCOLS>\n      </Size>'
        for r in (10, 20, 60))
    geos = "\n".join(
        f'      <Geoposition resolution="{r}">\n        <ULX>{ulx:.0f}</ULX>\n        <ULY>{uly:.0f}</ULY>\n'
        f"        <XDIM>{r}</XDIM>\n        <YDIM>-{r}</YDIM>\n      </Geoposition>" for r in (10, 20, 60))
    views = "\n".join(
        f'        <Mean_Viewing_Incidence_Angle bandId="{i}">\n          <ZENITH_ANGLE unit="deg">{5.2 + 0.01 * i:.4f}</ZENITH_ANGLE>\n'
        f'          <AZIMUTH_ANGLE unit="deg">{105.0 + 0.5 * i:.4f}</AZIMUTH_ANGLE>\n        </Mean_Viewing_Incidence_Angle>' for i in range(13))
    crs_name = CRS.from_epsg(epsg).name
    doy = when.timetuple().tm_yday
    qi_rest = "\n".join(f"      <{k}>{v:.6f}</{k}>" for k, v in qi.items() if k != "CLOUDY_PIXEL_PERCENTAGE")
    sun_zen = 90 - max(5.0, 90 - abs(_lat_of(epsg, ulx, uly) - 23.44 * math.sin(math.radians(360 * (doy - 81) / 365))))
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<n1:Level-{level[1:]}_Tile_ID xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-{level[1:]}_Tile_Metadata.xsd">
  <n1:General_Info>
    <TILE_ID metadataLevel="Brief">{tid}</TILE_ID>
    <DATASTRIP_ID metadataLevel="Standard">{ds}</DATASTRIP_ID>
    <SENSING_TIME metadataLevel="Standard">{when.strftime('%Y-%m-%dT%H:%M:%S.462000Z')}</SENSING_TIME>
  </n1:General_Info>
  <n1:Geometric_Info>
    <Tile_Geocoding metadataLevel="Brief">
      <HORIZONTAL_CS_NAME>{escape(crs_name)}</HORIZONTAL_CS_NAME>
      <HORIZONTAL_CS_CODE>EPSG:{epsg}</HORIZONTAL_CS_CODE>
{sizes}
{geos}
    </Tile_Geocoding>
    <Tile_Angles metadataLevel="Standard">
      <Mean_Sun_Angle>
        <ZENITH_ANGLE unit="deg">{sun_zen:.6f}</ZENITH_ANGLE>
        <AZIMUTH_ANGLE unit="deg">165.250000</AZIMUTH_ANGLE>
      </Mean_Sun_Angle>
      <Mean_Viewing_Incidence_Angle_List>
{views}
      </Mean_Viewing_Incidence_Angle_List>
    </Tile_Angles>
  </n1:Geometric_Info>
  <n1:Quality_Indicators_Info metadataLevel="Standard">
    <Image_Content_QI>
      <CLOUDY_PIXEL_PERCENTAGE>{qi["CLOUDY_PIXEL_PERCENTAGE"]:.6f}</CLOUDY_PIXEL_PERCENTAGE>
      <DEGRADED_MSI_DATA_PERCENTAGE>0.000000</DEGRADED_MSI_DATA_PERCENTAGE>
{qi_rest}
    </Image_Content_QI>
  </n1:Quality_Indicators_Info>
</n1:Level-{level[1:]}_Tile_ID>
"""


def _lat_of(epsg: int, x: float, y: float) -> float:
    return Transformer.from_crs(epsg, 4326, always_xy=True).transform(x, y)[1]


def _manifest(safe: Path, name: str) -> str:
    """An XFDU manifest listing every file with its size and MD5, like the real one."""
    body = manifest_data_objects(safe, lambda i, rel: f"obj_{i}", lambda rel: "application/octet-stream", md5_upper=True)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1" version="esa/safe/sentinel/1.1/sentinel-2/msi/archive_l2a_user_product">
  <informationPackageMap>
    <xfdu:contentUnit unitType="Product_Level-2A" textInfo="{name}"/>
  </informationPackageMap>
  <dataObjectSection>
{body}
  </dataObjectSection>
</xfdu:XFDU>
"""


def write_samples(out: Path, events: list[Event]) -> list[Path]:
    """For each event: an L2A product before and one after it; an L1C (pre-04.00 baseline) for the first."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, ev in enumerate(events):
        hour = timedelta(hours=10, minutes=44, seconds=41)
        pre = datetime(ev.start.year, ev.start.month, ev.start.day, tzinfo=ev.start.tzinfo) - timedelta(days=5) + hour
        post = datetime(ev.end.year, ev.end.month, ev.end.day, tzinfo=ev.end.tzinfo) + timedelta(days=3) + hour
        paths.append(write_product(out, ev, pre, "L2A", "S2A", cloud=1.5))
        paths.append(write_product(out, ev, post, "L2A", "S2B", scar=True, cloud=4.8))
        if i == 0:
            paths.append(write_product(out, ev, pre - timedelta(days=10), "L1C", "S2A", baseline="03.01", cloud=12.0))
    return paths
