"""Sentinel-1 GRD from the items of a STAC API, per plan entry: Planetary Computer, Earth Search, CDSE.

A Planetary Computer GRD item holds the measurement COGs (`vv`, `vh`: uint16 DN in radar geometry,
no CRS, GCPs in EPSG:4326) and, as metadata assets, the calibration and noise XML of each
polarisation (`schema-calibration-<pol>`, `schema-noise-<pol>`). Its `schema-product-<pol>` points to
the RFI annotation, not to the product annotation, so the geolocation comes from the COG's own GCPs.
An Earth Search v1 item has the same asset keys on `s3://sentinel-s1-l1c`, a requester-pays bucket
(`storage:requester_pays`, `storage:region`): the measurement windows are read through /vsis3/ with
AWS_REQUEST_PAYER=requester and the XML with boto3's RequestPayer, credentials from the environment.

Per plan entry: the source item is fetched from its `self` href, the calibration and noise XML are
fetched whole (a few hundred KiB), and only the window of each measurement COG that the event's AOI
(+ buffer) needs is read through GDAL's /vsicurl/ or /vsis3/ (the AOI's output grid mapped back through
the GCPs). Then the chain of the local SAFE path (sources/sentinel1: noise removal, calibration to sigma0,
thin-plate-spline geocoding onto the event's UTM grid, COGs, dB overview, thumbnail) runs on that
window, and the item has the shape of a local Sentinel-1 item plus the source item's provenance.

A CDSE item (SAFE members on `s3://eodata`, and a `product` asset downloading the SAFE zip through
OData with a bearer token) is read the same way when S3 keys and an S3 endpoint are set (the XML found
by listing the SAFE's annotation/calibration/ folder when the item does not list it); otherwise the zip
is downloaded into the cache (sources/download.py) and the local SAFE reader converts it.

An input that says it is synthetic (the source item's `mmtp:synthetic`, or an XML holding the
sample marker's name) makes a synthetic item: marked, without links to a real product or licence.
"""

from __future__ import annotations

import dataclasses
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError  # what GDAL errors raised mid-read are (a cut transfer, a bad tile)
from rasterio.errors import RasterioError
from shapely.geometry import mapping

from stac_mmtp import __version__
from stac_mmtp.discover.geometry import to_shape
from stac_mmtp.discover.providers import sign
from stac_mmtp.discover.redact import redact, redact_text
from stac_mmtp.errors import ProductError
from stac_mmtp.raster.geo import round_geometry
from stac_mmtp.sources.base import Task
from stac_mmtp.sources.download import cache_dir, cdse_token, checksum_of
from stac_mmtp.sources.download import download as fetch_whole
from stac_mmtp.sources.remote_io import (
    VSI_OPTIONS,
    fetch_bytes,
    has_s3_credentials,
    require_s3_credentials,
    s3_endpoint_url,
    s3_gdal_options,
    s3_list,
    vsi,
)
from stac_mmtp.sources.remote_s2 import PROVIDER_HOSTS, PlanSource, _parse_dt
from stac_mmtp.sources.safe_xml import esa_providers, license_link
from stac_mmtp.sources.sentinel1 import (
    FILE_RE,
    INTERNATIONAL_DESIGNATOR,
    NAME_RE,
    CalibrationLUT,
    Grid,
    NoiseLUT,
    S1Product,
    Sentinel1,
    calibration_lut,
    display_assets,
    event_grid,
    item_geometry,
    lineage,
    measurement_gcps,
    noise_lut,
    relative_orbit,
    resolution_from_gcps,
    sigma0_cog,
    source_window,
)
from stac_mmtp.stac import FILE, MMTP, PROJ, RASTER
from stac_mmtp.stac.events import event_fields
from stac_mmtp.stac.synthetic import FIELD, MARKER, PREFIX, mark_item

NAME = "remote-sentinel-1"
POLS = ("VV", "VH", "HH", "HV")
# metadata asset keys per polarisation: Planetary Computer's, then plain ones (other providers, our tests)
CALIBRATION_KEYS = ("schema-calibration-{p}", "calibration-{p}")
NOISE_KEYS = ("schema-noise-{p}", "noise-{p}")
RESOLUTION_CLASS = {"full": "F", "high": "H", "medium": "M"}


def _asset_href(assets: dict[str, Any], keys: tuple[str, ...], pol: str) -> str | None:
    for k in keys:
        a = assets.get(k.format(p=pol.lower()))
        if a and a.get("href"):
            return str(a["href"])
    return None


def _xml(data: bytes, where: str) -> ET.Element:
    """The root element, namespaces dropped (as safe_xml.parse_xml does for files in a product)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ProductError(f"malformed XML ({exc})", where) from None
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


def _check_lut_covers(lut: CalibrationLUT | NoiseLUT, width: int, height: int, what: str, where: str) -> None:
    """A LUT of another product (other dimensions) would calibrate silently wrong: refuse it."""
    rng = lut.range if isinstance(lut, NoiseLUT) else lut
    last_px, last_line = float(rng.pixels[-1]), float(rng.lines[-1])
    if not (width - 1 <= last_px <= 1.05 * width and last_line >= height - 1):
        raise ProductError(f"the {what} LUT spans {last_px + 1:g} pixels x {last_line + 1:g} lines but the measurement "
                           f"is {width} x {height} pixels: not this product's", where)


class RemoteSentinel1(PlanSource):
    name = NAME
    collection_id = "sentinel-1"
    local = Sentinel1

    def convert(self, task: Task, item_dir: Path) -> dict[str, Any]:
        rec = task.product.item
        src_item = self.source_item(task)
        source = redact(rec["self_href"])
        sp = src_item.get("properties", {})
        assets = src_item.get("assets", {})
        synthetic = sp.get(FIELD) is True
        pols = [p for p in (sp.get("sar:polarizations") or POLS) if p.lower() in assets]
        download = _download_asset(assets)
        if not pols and download is None:
            raise ProductError("the source item has no measurement asset (vv, vh, hh, hv) nor a product download",
                               source)
        hrefs = [str(assets[p.lower()].get("href", "")) for p in pols]
        if download is not None and _read_whole(hrefs, assets, pols):
            return self._convert_download(task, item_dir, src_item, download)
        if not pols:
            raise ProductError("the source item has no measurement asset (vv, vh, hh, hv) to read remotely", source)
        if any(not h.startswith(("http://", "https://", "s3://")) for h in hrefs):
            raise ProductError("the measurement assets are neither http(s):// nor s3:// hrefs", redact(hrefs[0]))
        requester_pays, region = _storage(sp, assets[pols[0].lower()])
        s3 = [h for h in hrefs if h.startswith("s3://")]
        if s3:  # one clear line, before any request, when the bucket cannot be read at all
            require_s3_credentials(s3[0])
        provider = rec.get("provider", "")

        def fetch(href: str, what: str) -> bytes:
            return fetch_bytes(sign(href, provider), what, requester_pays=requester_pays, region=region)

        listed: dict[str, list[str]] = {}  # the SAFE folders listed, when the item does not name its XML
        inputs: list[tuple[str, str, CalibrationLUT, NoiseLUT | None, str, str | None]] = []
        for pol, measurement in zip(pols, hrefs, strict=True):  # every href found and every XML read first
            cal = _asset_href(assets, CALIBRATION_KEYS, pol) or _listed_xml(measurement, "calibration", pol,
                                                                            requester_pays, region, listed)
            if cal is None:
                raise ProductError(f"the source item has no calibration XML asset for {pol} "
                                   f"({' or '.join(k.format(p=pol.lower()) for k in CALIBRATION_KEYS)})", source)
            data = fetch(cal, f"the {pol} calibration XML")
            synthetic = synthetic or MARKER.encode() in data
            lut = calibration_lut(_xml(data, redact(cal)), redact(cal))
            noise = None
            noise_href = _asset_href(assets, NOISE_KEYS, pol) or _listed_xml(measurement, "noise", pol,
                                                                             requester_pays, region, listed)
            if noise_href is not None:
                data = fetch(noise_href, f"the {pol} noise XML")
                synthetic = synthetic or MARKER.encode() in data
                noise = noise_lut(_xml(data, redact(noise_href)), redact(noise_href))
            inputs.append((pol, measurement, lut, noise, redact(cal), noise_href and redact(noise_href)))
        prod = _product(src_item, inputs[0][1], pols, source)
        ev = task.event
        grid: Grid | None = None
        planes: dict[str, np.ndarray] = {}
        out_assets: dict[str, Any] = {}
        gdal = {**VSI_OPTIONS, **(s3_gdal_options(requester_pays, region) if s3 else {})}
        with rasterio.Env(**gdal):
            for pol, href, lut, noise, cal_where, noise_where in inputs:
                shown = redact(href)
                try:
                    with rasterio.open(vsi(sign(href, provider))) as src:
                        gcps = measurement_gcps(src, shown, "(nothing to georeference it from)")
                        _check_lut_covers(lut, src.width, src.height, "calibration", cal_where)
                        if noise is not None and noise_where:
                            _check_lut_covers(noise, src.width, src.height, "noise", noise_where)
                        if grid is None:
                            grid = event_grid(task, resolution_from_gcps(gcps, _nominal_spacing(sp, prod)))
                        win = source_window(gcps, grid, (src.height, src.width))
                        if win is None:
                            raise ProductError(f"the event AOI of {ev.id} does not overlap this scene", shown)
                        dn = src.read(1, window=win)
                        ipf = re.search(r"IPF (\d{3}\.\d{2})", src.tags().get("TIFFTAG_SOFTWARE", ""))
                        if ipf and not prod.ipf_version:
                            prod.ipf_version = ipf.group(1)
                except (RasterioError, CPLE_BaseError) as exc:
                    raise ProductError(f"unreadable or truncated remote measurement ({redact_text(str(exc))[:300]})",
                                       shown) from None
                planes[pol], out_assets[pol.lower()] = sigma0_cog(dn, win, gcps, lut, noise, grid, pol, item_dir,
                                                                  ev.id, shown)
                del dn
        assert grid is not None
        out_assets.update(display_assets(planes, grid, item_dir))
        geom = item_geometry(planes, grid, prod.footprint)
        return _item(task, rec, prod, grid, geom, out_assets, all(i[3] is not None for i in inputs), synthetic)

    def _convert_download(self, task: Task, item_dir: Path, src_item: dict[str, Any],
                          download: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        """The whole SAFE zip into the cache (resumable, checksummed, bearer token), then the local reader
        on it; the item keeps the remote provenance (the source item, the host)."""
        rec = task.product.item
        key, asset = download
        href = str(asset["href"])
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(src_item.get("id") or rec["item_id"]))
        where = redact(href)
        checksum = checksum_of(asset, where)
        path = fetch_whole(href, cache_dir() / f"{name}.zip", checksum,
                           lambda: {"Authorization": f"Bearer {cdse_token(href)}"}, f"the SAFE product ({key} asset)")
        local = Sentinel1()
        try:
            meta = local.read(path)
        except ProductError as exc:  # a bad archive in the cache: name it, so that it can be removed
            raise ProductError(f"the downloaded product is unreadable ({exc})", path) from None
        sub = Task(task.event, dataclasses.replace(meta, id=task.product.id), task.temporal_role,
                   task.days_from_event, task.options)
        item = local.convert(sub, item_dir)
        return item if item["properties"].get(FIELD) else remote_provenance(item, rec)



def _download_asset(assets: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The asset that downloads the whole SAFE zip (CDSE's `product`: OData `.../Products(<id>)/$value`)."""
    for key, a in sorted(assets.items()):
        href, media = str(a.get("href", "")), str(a.get("type", ""))
        if href.startswith(("http://", "https://")) and (
                key == "product" or "/$value" in href or media in ("application/zip", "application/x-zip-compressed")):
            return key, a
    return None


def _read_whole(hrefs: list[str], assets: dict[str, Any], pols: list[str]) -> bool:
    """Download the whole product rather than read its members remotely? `STAC_MMTP_S1_READ=download|remote`
    decides; by default the members are read remotely when they can be: http(s) COGs with their XML assets,
    or s3:// members with S3 credentials and an S3 endpoint set (CDSE's eodata needs both)."""
    mode = os.environ.get("STAC_MMTP_S1_READ", "auto").strip().lower()
    if mode in ("download", "remote"):
        return mode == "download"
    if not hrefs:
        return True
    if any(h.startswith("s3://") for h in hrefs):
        return not (s3_endpoint_url() and has_s3_credentials())
    if any(not h.startswith(("http://", "https://")) for h in hrefs):
        return True
    return any(_asset_href(assets, CALIBRATION_KEYS, p) is None for p in pols)


def _storage(props: dict[str, Any], asset: dict[str, Any]) -> tuple[bool, str | None]:
    """(requester pays, region) from the storage extension (v1 fields, as Earth Search v1 writes them, or
    v2's `storage:schemes`), on the asset or the item."""
    rp = asset.get("storage:requester_pays", props.get("storage:requester_pays"))
    region = asset.get("storage:region", props.get("storage:region"))
    for scheme in (props.get("storage:schemes") or {}).values():
        if isinstance(scheme, dict) and scheme.get("type") in ("aws-s3", "custom-s3"):
            rp = scheme.get("requester_pays", rp)
            region = scheme.get("region", region)
    return rp is True, str(region) if region else None


def _listed_xml(measurement: str, kind: str, pol: str, requester_pays: bool, region: str | None,
                listed: dict[str, list[str]]) -> str | None:
    """The SAFE's own calibration/noise XML next to an s3:// measurement (annotation/calibration/), for items
    that do not list them as assets: one LIST request per product (`listed` keeps it)."""
    if not measurement.startswith("s3://") or "/measurement/" not in measurement:
        return None
    folder = measurement.rsplit("/measurement/", 1)[0] + "/annotation/calibration/"
    if folder not in listed:
        listed[folder] = s3_list(folder, requester_pays, region)
    for href in listed[folder]:
        name = href.rsplit("/", 1)[-1]
        m = FILE_RE.match(name.removeprefix(f"{kind}-"))
        if name.startswith(f"{kind}-") and m and m.group(3).upper() == pol:
            return href
    return None


def remote_provenance(item: dict[str, Any], rec: dict[str, Any]) -> dict[str, Any]:
    """A locally converted product's item as a plan entry's: `via` and `derived_from` to the source STAC
    item, the host between ESA and the processor."""
    source = redact(rec["self_href"])
    host_name, host_url = PROVIDER_HOSTS.get(rec["provider"], (rec["provider"], rec["provider"]))
    title = f"Source item {rec['item_id']} ({rec['collection']}, {host_name})"
    kept = [lk for lk in item.get("links", []) if lk.get("rel") not in ("via", "derived_from")]
    item["links"] = [{"rel": "via", "href": source, "type": "application/geo+json", "title": title},
                     {"rel": "derived_from", "href": source, "type": "application/geo+json", "title": title}, *kept]
    esa, ours = esa_providers("sentinel-1")
    item["properties"]["providers"] = [esa, {"name": host_name, "roles": ["host"], "url": redact(host_url)}, ours]
    return item


def _nominal_spacing(sp: dict[str, Any], prod: S1Product) -> float | None:
    spacing = [sp.get("sar:pixel_spacing_range"), sp.get("sar:pixel_spacing_azimuth")]
    if all(isinstance(v, int | float) for v in spacing):
        return float(max(spacing))
    ch = prod.characteristics
    return max(ch[2], ch[3]) if ch else None


def _product(src_item: dict[str, Any], measurement_href: str, pols: list[str], where: str) -> S1Product:
    """The source item's metadata as the local reader's S1Product, so the item has the local shape.

    The full product name (with its 4-character unique id, which Planetary Computer's item ids drop)
    is the folder of the measurement COG when it matches the SAFE naming, else the item id."""
    sp = src_item.get("properties", {})
    folder = redact(measurement_href).rstrip("/").split("/")
    name = next((f.removesuffix(".SAFE") for f in reversed(folder) if NAME_RE.match(f.removesuffix(".SAFE"))),
                src_item.get("id", ""))
    m = NAME_RE.match(name)
    try:
        platform = str(sp.get("platform") or name[:3])[-1].upper()
        start = _parse_dt(sp.get("start_datetime") or sp["datetime"])
        stop = _parse_dt(sp.get("end_datetime") or sp["datetime"])
        absolute = int(sp["sat:absolute_orbit"])
        mode = str(sp.get("sar:instrument_mode") or (m.group(2) if m else ""))
    except (KeyError, TypeError, ValueError) as exc:
        raise ProductError(f"the source item lacks or mangles {exc}", where) from None
    product_type = str(sp.get("product:type") or sp.get("sar:product_type") or (m.group(3) if m else "GRD"))
    if product_type != "GRD":
        raise ProductError(f"Sentinel-1 {product_type} items are not supported (GRD only)", where)
    res_class = m.group(4) if m else RESOLUTION_CLASS.get(str(sp.get("s1:resolution", "")), "H")
    footprint = to_shape(src_item.get("geometry") or {}, float(np.mean(src_item.get("bbox", [0, 0, 0])[::2])))
    slice_no, total = sp.get("s1:slice_number"), sp.get("s1:total_slices")
    dtid = sp.get("s1:datatake_id")
    return S1Product(
        fs=None, id=name, layout="STAC", platform=platform, mode=mode, product_type=product_type,  # type: ignore[arg-type]
        resolution_class=res_class if res_class in ("F", "H", "M") else "H",
        polarisations=list(pols), start=start, stop=stop, absolute_orbit=absolute,
        relative_orbit=int(sp.get("sat:relative_orbit") or relative_orbit(platform, absolute)),
        orbit_state=sp.get("sat:orbit_state"), datatake=int(dtid) if dtid not in (None, "") else None,
        footprint=footprint,
        international_designator=sp.get("sat:platform_international_designator") or INTERNATIONAL_DESIGNATOR.get(platform),
        timeliness=sp.get("s1:product_timeliness"),
        product_class=m.group(6) if m else None,
        slice_number=int(slice_no) if slice_no not in (None, "") else None,
        total_slices=int(total) if total not in (None, "") else None,
    )


def _item(task: Task, rec: dict[str, Any], prod: S1Product, grid: Grid, geom: Any, assets: dict[str, Any],
          denoised: bool, synthetic: bool) -> dict[str, Any]:
    item = Sentinel1()._base_item(prod)
    item["id"] = task.item_id
    item["geometry"] = round_geometry(mapping(geom))
    item["bbox"] = [round(v, 6) for v in geom.bounds]
    ev = task.event
    props = item["properties"]
    props.update(event_fields(ev))
    props["mmtp:temporal_role"] = task.temporal_role
    props["mmtp:days_from_event"] = task.days_from_event
    props["processing:level"] = "GEC"
    props["processing:lineage"] = lineage(denoised, "the GCPs of the measurement COG", grid, task.options.buffer_m)
    props["processing:software"] = {**props.get("processing:software", {}), "stac-mmtp": __version__}
    props["proj:code"] = grid.crs.to_string()
    props["license"] = "other"
    item["stac_extensions"] = [*item["stac_extensions"], PROJ, RASTER, FILE, MMTP]
    item["links"] = [
        license_link(),
        {"rel": "related", "href": f"../../events/{ev.id}/{ev.id}.json", "type": "application/geo+json",
         "title": f"Event: {ev.title}"},
    ]
    remote_provenance(item, rec)  # via / derived_from first, the host in providers
    item["assets"] = assets
    if synthetic:
        mark_item(item, "sentinel-1", MMTP)
        props["description"] = (
            f"{PREFIX}: built by stac-mmtp from the source item {rec['item_id']}, whose item or calibration/noise "
            "XML is marked synthetic (not a Copernicus product's): its sigma0 values are not observations.")
    return item


SOURCE = RemoteSentinel1()  # listed in sources/registry.py
