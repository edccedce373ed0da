"""FLATSIM (CNES / ForM@Ter, NSBAS chain) InSAR deliveries: interferogram, time-series and auxiliary packages.

Packages are directories or zips named `NSBAS_<INT|TS|DAUX>-PKG_S1_<region>-<A|D><track>[...]`; INT package
names end with the pair's dates `_<YYYY-MM-DD>_<YYYY-MM-DD>`. Their rasters are named
`CNES_<product>_<radar|geo>[_<YYYYMMDD>_<YYYYMMDD>][_sd][_era]_<N>rlks.tiff`, each with an optional `.meta`
sidecar of `Key: value` lines. Geo products are float32 on a lat/lon grid (EPSG:4326), 0 = no data;
radar-geometry products have no CRS: they are reported as not georeferenced and skipped.

One package = one product = one item per event: an interferogram pair (INT), a LOS displacement cube
plus mean velocity (TS), or the auxiliary layers (DAUX: LOS unit vectors, DEM, temporal coherence).
Perpendicular baselines come from an NSBAS `list_images.txt` (date, ..., Bperp per acquisition) found
in the package or in a DAUX package of the same track beside it.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window, from_bounds
from shapely.geometry import box, mapping

from stac_mmtp import __version__
from stac_mmtp.errors import ProductError
from stac_mmtp.raster.assets import file_fields, write_overview_cog, write_png
from stac_mmtp.raster.cog import CogProfile, clip_to_cog
from stac_mmtp.raster.geo import reproject, utm_epsg
from stac_mmtp.sources.base import ProductMeta, Task
from stac_mmtp.sources.product_fs import ProductFS
from stac_mmtp.stac import (
    COG_MEDIA_TYPE,
    FILE,
    INSAR,
    MMTP,
    PNG_MEDIA_TYPE,
    PROCESSING,
    PRODUCT,
    PROJ,
    RASTER,
    SAR,
    SAT,
    SCIENTIFIC,
)
from stac_mmtp.stac.events import collection_metadata, event_fields
from stac_mmtp.stac.synthetic import is_synthetic, mark_item
from stac_mmtp.stac.tree import STAC_VERSION

log = logging.getLogger(__name__)

COLLECTION = "flatsim"
LICENSE = "CC-BY-NC-4.0"
LICENSE_URL = "https://creativecommons.org/licenses/by-nc/4.0/"
DOI = "10.24400/253171/FLATSIM2020"
CITATION = ("Thollard F., Clesse D., Doin M.-P. et al. (2021), FLATSIM: The ForM@Ter LArge-Scale multi-Temporal "
            "Sentinel-1 InterferoMetry Service, Remote Sensing 13(18), 3734; FLATSIM data, CNES / ForM@Ter, "
            "doi:10.24400/253171/FLATSIM2020")
S1_CENTER_FREQUENCY_GHZ = 5.405

PACKAGE_RE = re.compile(
    r"^NSBAS_(?P<kind>INT|TS|DAUX)-PKG_S1_(?P<region>[A-Za-z0-9]+)-(?P<dir>[AD])(?P<track>\d{1,3})(?P<rest>[A-Za-z0-9_.-]*?)"
    r"(?:\.zip)?$"
)
PAIR_IN_NAME_RE = re.compile(r"_(\d{4}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2})(?=$|_)")
FILE_RE = re.compile(
    r"^CNES_(?P<code>[A-Za-z][A-Za-z0-9-]*)_(?P<geom>radar|geo)(?:_(?P<d1>\d{8})_(?P<d2>\d{8}))?"
    r"(?P<flags>(?:_[a-z][a-z0-9]*)*)_(?P<looks>\d+)rlks\.(?P<ext>tiff?|meta)$"
)
CORRECTIONS = {"sd": "spectral diversity (azimuth coregistration)", "era": "ERA5 stratified tropospheric delay"}


@dataclass(frozen=True)
class Kind:
    """What a `CNES_<code>` raster is and how to convert it."""

    key: str  # asset key (stable, never the file name)
    title: str
    roles: tuple[str, ...]
    unit: str | None
    resampling: str  # overviews: "nearest" for wrapped phase (never average it), "average" for continuous fields
    bands: tuple[str, ...] = ()  # band names when the product has several fixed bands
    pair: bool = False  # carries the pair's two dates


KINDS: dict[str, Kind] = {
    "InW": Kind("wrapped_phase", "Wrapped interferogram (phase)", ("data", "phase"), "rad", "nearest", pair=True),
    "InWF": Kind("filtered_wrapped_phase", "Filtered wrapped interferogram", ("data", "phase"), "rad", "nearest",
                 ("filtered_phase", "filter_coherence"), pair=True),
    "InU": Kind("unwrapped_phase", "Unwrapped interferogram (phase)", ("data", "unwrapped_phase"), "rad", "average",
                pair=True),
    "Coh": Kind("coherence", "Spatial coherence", ("data", "coherence"), None, "average", pair=True),
    "DTs": Kind("displacement", "LOS cumulative displacement time series", ("data", "displacement"), "mm", "average"),
    "MV-LOS": Kind("velocity", "Mean LOS velocity", ("data", "velocity"), "mm/yr", "average"),
    "CosENU": Kind("los_vector", "LOS unit vector (east, north, up)", ("data", "los-vector"), None, "average",
                   ("east", "north", "up")),
    "DEM": Kind("dem", "Digital elevation model", ("data", "dem"), "m", "average"),
    "TCoh": Kind("temporal_coherence", "Temporal coherence", ("data", "coherence"), None, "average"),
    "Lut": Kind("lut", "Look-up table radar <-> ground geometry", ("data", "lut"), None, "nearest"),
}


@dataclass(frozen=True)
class FileName:
    """A parsed `CNES_..._<N>rlks.tiff` name."""

    code: str
    geometry: str  # "geo" | "radar"
    dates: tuple[datetime, datetime] | None
    flags: tuple[str, ...]  # corrections and qualifiers, e.g. ("sd", "era")
    looks: int
    ext: str

    @property
    def corrections(self) -> tuple[str, ...]:
        return tuple(f for f in self.flags if f in CORRECTIONS)


def _date8(s: str, where: str) -> datetime:
    try:
        return datetime.strptime(s, "%Y%m%d").replace(tzinfo=UTC)
    except ValueError:
        raise ProductError(f"invalid date {s!r} in the file name", where) from None


def parse_file_name(name: str) -> FileName | None:
    """Parse a FLATSIM raster or sidecar name; None if it is not one."""
    m = FILE_RE.match(name)
    if not m:
        return None
    dates = (_date8(m["d1"], name), _date8(m["d2"], name)) if m["d1"] else None
    flags = tuple(f for f in m["flags"].split("_") if f)
    return FileName(m["code"], m["geom"], dates, flags, int(m["looks"]), m["ext"])


@dataclass(frozen=True)
class PackageName:
    kind: str  # INT | TS | DAUX
    region: str
    orbit_state: str  # ascending | descending
    track: int
    pair: tuple[datetime, datetime] | None  # INT packages only

    @property
    def track_id(self) -> str:
        return f"{self.orbit_state[0].upper()}{self.track:03d}"


def parse_package_name(name: str) -> PackageName | None:
    m = PACKAGE_RE.match(name)
    if not m:
        return None
    pair = None
    dates = PAIR_IN_NAME_RE.findall(m["rest"])
    if dates:
        d1, d2 = dates[-1]
        try:
            pair = (datetime.fromisoformat(d1).replace(tzinfo=UTC), datetime.fromisoformat(d2).replace(tzinfo=UTC))
        except ValueError:
            return None
    return PackageName(m["kind"], m["region"], "ascending" if m["dir"] == "A" else "descending", int(m["track"]), pair)


def parse_meta(text: str, where: str) -> dict[str, str]:
    """`Key: value` lines (blank lines and `#` comments allowed); anything else is an error naming the line."""
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        key, sep, value = s.partition(":")
        if not sep or not key.strip() or " " in key.strip():
            raise ProductError(f"unparseable .meta line {n}: {s[:60]!r} (expected 'Key: value')", where)
        out[key.strip()] = value.strip()
    return out


def parse_list_images(text: str, where: str) -> dict[datetime, float]:
    """NSBAS `list_images.txt`: `index YYYYMMDD flag decimal_year dt bperp` -> {date: perpendicular baseline (m)}."""
    out: dict[datetime, float] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) < 6 or not re.fullmatch(r"\d{8}", parts[1]):
            raise ProductError(f"unparseable line {n} (expected 'index YYYYMMDD flag year dt bperp')", where)
        try:
            out[_date8(parts[1], where)] = float(parts[5])
        except ValueError:
            raise ProductError(f"unparseable perpendicular baseline on line {n}", where) from None
    return out


@dataclass
class Raster:
    rel: str
    name: FileName
    kind: Kind
    meta: dict[str, str]
    count: int = 1
    dtype: str = "float32"
    epsg: int | None = None
    bounds: tuple[float, float, float, float] | None = None
    descriptions: tuple[str | None, ...] = ()


@dataclass
class Package:
    fs: ProductFS
    id: str
    name: PackageName
    rasters: list[Raster]
    start: datetime
    end: datetime
    dates: list[datetime]  # TS: acquisition dates (one per cube band)
    baselines: dict[datetime, float]
    looks: int
    corrections: tuple[str, ...]
    notes: list[str] = field(default_factory=list)  # skipped files and why
    synthetic: bool = False  # a `stac-mmtp sample` package (marker file at its root)

    @property
    def footprint(self) -> Any:
        geo = [r.bounds for r in self.rasters if r.bounds]
        b = (min(g[0] for g in geo), min(g[1] for g in geo), max(g[2] for g in geo), max(g[3] for g in geo))
        return box(*b)


def _package_root_name(path: Path) -> str:
    return path.name[:-4] if path.suffix.lower() == ".zip" else path.name


def _date_iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class Flatsim:
    name = "flatsim"
    collection_id = COLLECTION

    # ---------------------------------------------------------------- detection
    def detect(self, path: Path) -> bool:
        path = Path(path)
        if parse_package_name(_package_root_name(path)) is None:
            return False
        return path.is_dir() or path.suffix.lower() == ".zip"

    # ---------------------------------------------------------------- metadata
    def parse(self, path: Path, warn: bool = True) -> Package:
        path = Path(path)
        pname = parse_package_name(_package_root_name(path))
        if pname is None:
            raise ProductError("not a FLATSIM package name (NSBAS_<INT|TS|DAUX>-PKG_S1_<region>-<A|D><track>...)", path)
        fs = ProductFS.open(path)  # files are found by name wherever they sit (a zip may hold the package folder)
        if pname.kind == "INT" and pname.pair is None:
            raise ProductError("interferogram package name has no pair dates (_YYYY-MM-DD_YYYY-MM-DD)", path)
        notes: list[str] = []
        rasters: list[Raster] = []
        unknown: list[str] = []
        has_lut = any((fn := parse_file_name(PurePosixPath(n).name)) and fn.code == "Lut" for n in fs.names)
        for rel in fs.names:
            base = PurePosixPath(rel).name
            if not base.startswith("CNES_") or not base.lower().endswith((".tif", ".tiff")):
                continue
            fn = parse_file_name(base)
            if fn is None:
                raise ProductError("malformed FLATSIM file name (CNES_<product>_<radar|geo>[_d1_d2][_sd][_era]_<N>rlks.tiff)",
                                   fs.display(rel))
            if fn.code not in KINDS:
                unknown.append(base)
                continue
            if fs.size(rel) == 0:
                raise ProductError("0-byte TIFF", fs.display(rel))
            kind = KINDS[fn.code]
            if pname.kind == "INT" and kind.pair:
                if fn.dates is None:
                    raise ProductError("interferogram product without pair dates in its name", fs.display(rel))
                if fn.dates != pname.pair:
                    raise ProductError(
                        f"file dates {fn.dates[0]:%Y%m%d}_{fn.dates[1]:%Y%m%d} disagree with the package name's "
                        f"{pname.pair[0]:%Y-%m-%d}_{pname.pair[1]:%Y-%m-%d}", fs.display(rel))
            meta = self._meta(fs, rel)
            if fn.geometry == "radar":
                why = "radar geometry: not georeferenced (no CRS), skipped"
                why += ("; geocoding through the look-up table is not implemented" if has_lut
                        else "; no look-up table (CNES_Lut_*) in the package to geocode it")
                notes.append(f"{fs.display(rel)}: {why}")
                continue
            rasters.append(self._raster_header(fs, rel, fn, kind, meta))
        if unknown:
            msg = f"{fs.path}: unknown FLATSIM product code(s), skipped: {', '.join(sorted(unknown))}"
            notes.append(msg)
        for n in notes if warn else []:
            log.warning(n)
        if not rasters:
            raise ProductError("no geocoded (_geo_) product to convert: " + ("; ".join(notes) or "no CNES_*.tiff file"),
                               fs.path)
        dates: list[datetime] = []
        baselines = self._baselines(fs, path, pname)
        if pname.kind == "INT":
            start, end = pname.pair
        else:
            cube = next((r for r in rasters if r.name.code == "DTs"), None)
            if cube is not None:
                dates = [self._band_date(d, i, fs.display(cube.rel)) for i, d in enumerate(cube.descriptions, start=1)]
            dates = dates or sorted(baselines)
            if not dates:
                raise ProductError("no acquisition dates: neither a CNES_DTs cube with dated bands nor list_images.txt",
                                   fs.path)
            start, end = min(dates), max(dates)
        looks = max(r.name.looks for r in rasters)
        corrections = tuple(c for c in CORRECTIONS if any(c in r.name.corrections for r in rasters))
        return Package(fs, _package_root_name(path), pname, sorted(rasters, key=lambda r: r.rel), start, end, dates,
                       baselines, looks, corrections, notes, is_synthetic(fs))

    @staticmethod
    def _meta(fs: ProductFS, rel: str) -> dict[str, str]:
        stem = rel.rsplit(".", 1)[0]
        for cand in (stem + ".meta", rel + ".meta"):
            if fs.exists(cand):
                return parse_meta(fs.read_bytes(cand).decode("utf-8", errors="replace"), fs.display(cand))
        return {}

    @staticmethod
    def _raster_header(fs: ProductFS, rel: str, fn: FileName, kind: Kind, meta: dict[str, str]) -> Raster:
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(fs.gdal_path(rel)) as ds:
                    if ds.crs is None:
                        raise ProductError("a _geo_ product without a CRS (not georeferenced, or a truncated TIFF)", fs.display(rel))
                    return Raster(rel, fn, kind, meta, ds.count, ds.dtypes[0], ds.crs.to_epsg(), tuple(ds.bounds),
                                  tuple(ds.descriptions))
        except RasterioIOError as exc:
            raise ProductError(f"unreadable or truncated TIFF ({exc})", fs.display(rel)) from None

    @staticmethod
    def _band_date(desc: str | None, band: int, where: str) -> datetime:
        m = re.search(r"(\d{8})", desc or "")
        if not m:
            raise ProductError(f"band {band} of the displacement cube has no date in its description ({desc!r})", where)
        return _date8(m.group(1), where)

    @staticmethod
    def _baselines(fs: ProductFS, path: Path, pname: PackageName) -> dict[datetime, float]:
        """Bperp per date from list_images.txt: in this package, else in a DAUX package of the same track beside it."""
        hits = fs.find("list_images.txt")
        if hits:
            return parse_list_images(fs.read_bytes(hits[0]).decode(), fs.display(hits[0]))
        for sib in sorted(path.parent.iterdir()) if path.parent.is_dir() else []:
            sp = parse_package_name(_package_root_name(sib))
            if sp and sp.kind == "DAUX" and (sp.region, sp.track, sp.orbit_state) == (pname.region, pname.track,
                                                                                      pname.orbit_state):
                try:
                    sfs = ProductFS.open(sib)
                except ProductError:
                    continue
                found = sfs.find("list_images.txt")
                if found:
                    return parse_list_images(sfs.read_bytes(found[0]).decode(), sfs.display(found[0]))
        return {}

    # ---------------------------------------------------------------- STAC
    def read(self, path: Path) -> ProductMeta:
        pkg = self.parse(path)
        item = self._base_item(pkg)
        item["assets"] = {
            PurePosixPath(r.rel).name: {"href": f"./{r.rel}", "type": "image/tiff; application=geotiff",
                                        "roles": list(r.kind.roles), "title": r.kind.title}
            for r in pkg.rasters
        }
        if pkg.notes:
            item["properties"]["flatsim:skipped"] = pkg.notes
        geom = mapping(pkg.footprint)
        if pkg.synthetic:
            mark_item(item, self.name, MMTP)
        return ProductMeta(Path(path), self.name, pkg.id, geom, pkg.start, pkg.end, item, pkg.synthetic)

    def _base_item(self, pkg: Package) -> dict[str, Any]:
        n = pkg.name
        props: dict[str, Any] = {
            "datetime": None,
            "start_datetime": _date_iso(pkg.start),
            "end_datetime": _date_iso(pkg.end),
            "constellation": "sentinel-1",
            "instruments": ["c-sar"],
            "sar:instrument_mode": "IW",
            "sar:frequency_band": "C",
            "sar:center_frequency": S1_CENTER_FREQUENCY_GHZ,
            "sar:polarizations": ["VV"],
            "sar:observation_direction": "right",
            "sar:looks_range": pkg.looks,
            "product:type": f"FLATSIM-{n.kind}",
            "sat:orbit_state": n.orbit_state,
            "sat:relative_orbit": n.track,
            "processing:level": "L3" if n.kind == "TS" else "L2",
            "processing:facility": "CNES (FLATSIM service, ForM@Ter)",
            "processing:lineage": self._lineage(pkg),
            "sci:doi": DOI,
            "sci:citation": CITATION,
            "license": LICENSE,
            "flatsim:region": n.region,
            "flatsim:track": n.track_id,
            "flatsim:package_type": n.kind,
            "flatsim:range_looks": pkg.looks,
            "flatsim:corrections": list(pkg.corrections),
        }
        extensions = [SAR, SAT, INSAR, PROCESSING, PRODUCT, SCIENTIFIC]
        if n.kind == "DAUX":  # auxiliary layers are not an interferometric measurement
            extensions.remove(INSAR)
        else:
            props["insar:reference_datetime"] = _date_iso(pkg.start)
            props["insar:secondary_datetime"] = _date_iso(pkg.end)
            props["insar:temporal_baseline"] = (pkg.end - pkg.start).days
            if n.kind == "INT" and pkg.start in pkg.baselines and pkg.end in pkg.baselines:
                props["insar:perpendicular_baseline"] = round(pkg.baselines[pkg.end] - pkg.baselines[pkg.start], 3)
        if pkg.dates:
            props["flatsim:dates"] = [d.strftime("%Y-%m-%d") for d in pkg.dates]
        fp = pkg.footprint
        return {
            "type": "Feature",
            "stac_version": STAC_VERSION,
            "stac_extensions": extensions,
            "id": pkg.id,
            "geometry": mapping(fp),
            "bbox": [round(v, 7) for v in fp.bounds],
            "properties": props,
            "links": [_cite_link(), _license_link()],
            "assets": {},
        }

    @staticmethod
    def _lineage(pkg: Package) -> str:
        corr = ", ".join(CORRECTIONS[c] for c in pkg.corrections) or "none"
        what = {"INT": "interferogram", "TS": "time-series inversion", "DAUX": "auxiliary layers"}[pkg.name.kind]
        if pkg.synthetic:  # a sample imitates the format only: no NSBAS chain, no FLATSIM service ran
            return (f"Synthetic sample in the FLATSIM {what} package format, written by stac-mmtp sample (track "
                    f"{pkg.name.track_id}, {pkg.looks} range looks, lat/lon grid); not produced by the FLATSIM service")
        return (f"NSBAS chain (FLATSIM, CNES/ForM@Ter) {what}, Sentinel-1 IW VV, track {pkg.name.track_id}, "
                f"{pkg.looks} range looks, geocoded on a lat/lon grid; corrections: {corr}")

    # ---------------------------------------------------------------- conversion
    def convert(self, task: Task, item_dir: Path) -> dict[str, Any]:
        pkg = self.parse(task.product.path, warn=False)  # read() already warned in the planning process
        ev = task.event
        epsg = utm_epsg(*ev.site)
        aoi = reproject(reproject(ev.shape, 4326, epsg).buffer(task.options.buffer_m), epsg, 4326)
        item = self._base_item(pkg)
        item["id"] = task.item_id
        item["stac_extensions"] = [PROJ, RASTER, FILE, *item["stac_extensions"], MMTP]
        assets: dict[str, Any] = {}
        keys = self._asset_keys(pkg.rasters)
        clip_box = None
        for r in pkg.rasters:
            key = keys[r.rel]
            gdal_path = pkg.fs.gdal_path(r.rel, verify=True)
            with rasterio.open(gdal_path) as src:
                win = _window(src, aoi.bounds)
                if win is None:
                    raise ProductError(f"the event AOI of {ev.id} does not overlap this product", pkg.fs.display(r.rel))
                wt = src.window_transform(win)
                shape_ = (int(win.height), int(win.width))
                descriptions = [d or self._band_name(r, i) for i, d in enumerate(src.descriptions)]
            dst = item_dir / f"{key}.tif"
            # FLATSIM writes 0 where there is no data but does not always tag it: tag it in the COG.
            profile = CogProfile(overview_resampling=r.kind.resampling, predictor=3, blocksize=256)
            try:
                clip_to_cog(gdal_path, dst, win, profile, nodata=0.0, descriptions=descriptions)
            except RasterioIOError as exc:
                raise ProductError(f"unreadable or truncated TIFF ({exc})", pkg.fs.display(r.rel)) from None
            assets[key] = {**self._asset(r, key, wt, shape_, descriptions), **file_fields(dst)}
            b = box(wt.c, wt.f + wt.e * shape_[0], wt.c + wt.a * shape_[1], wt.f)
            clip_box = b if clip_box is None else clip_box.union(b)
        thumb = self._thumbnail(item_dir, assets)
        if thumb:
            assets["thumbnail"] = thumb
        geom = clip_box.intersection(aoi.envelope).intersection(pkg.footprint)
        if geom.is_empty:
            raise ProductError(f"the package footprint does not overlap the AOI of {ev.id}", pkg.fs.path)
        item["geometry"] = mapping(geom)
        item["bbox"] = [round(v, 7) for v in geom.bounds]
        props = item["properties"]
        props.update(event_fields(ev))
        props["mmtp:temporal_role"] = task.temporal_role
        props["mmtp:days_from_event"] = task.days_from_event
        props["processing:software"] = {"stac-mmtp": __version__}
        props["providers"] = [
            {"name": "CNES / ForM@Ter (FLATSIM)", "roles": ["producer", "processor", "licensor"],
             "url": "https://www.poleterresolide.fr/projets/flatsim/"},
            {"name": "ESA (Copernicus Sentinel-1)", "roles": ["producer"], "url": "https://sentinel.esa.int/"},
            {"name": "stac-mmtp", "roles": ["processor"]},
        ]
        item["links"] = [
            *item["links"],
            {"rel": "related", "href": f"../../events/{ev.id}/{ev.id}.json", "type": "application/geo+json",
             "title": f"Event: {ev.title}"},
        ]
        item["assets"] = dict(sorted(assets.items()))
        return mark_item(item, self.name, MMTP) if pkg.synthetic else item

    @staticmethod
    def _asset_keys(rasters: list[Raster]) -> dict[str, str]:
        """Stable keys by role; when two files share a role (e.g. with and without corrections) the flags tell them apart."""
        by_key: dict[str, list[Raster]] = {}
        for r in rasters:
            by_key.setdefault(r.kind.key, []).append(r)
        out = {}
        for key, rs in by_key.items():
            best = max(rs, key=lambda r: (len(r.name.corrections), r.rel))
            for r in rs:
                out[r.rel] = key if r is best else f"{key}_{'_'.join(r.name.flags) or 'raw'}"
        return out

    @staticmethod
    def _band_name(r: Raster, i: int) -> str:
        if r.kind.bands and i < len(r.kind.bands):
            return r.kind.bands[i]
        return r.kind.key if r.count == 1 else f"{r.kind.key}_{i + 1}"

    def _asset(self, r: Raster, key: str, wt: Any, shape_: tuple[int, int], descriptions: list[str]) -> dict[str, Any]:
        unit = r.meta.get("Unit") or r.kind.unit
        # north-south pixel size in metres (1 degree of latitude ~ 110.6 km): the grid is in degrees
        res_m = round(abs(wt.e) * 110_574, 1) if r.epsg == 4326 else abs(wt.a)
        bands = []
        for i, desc in enumerate(descriptions):
            b: dict[str, Any] = {"name": self._band_name(r, i) if r.kind.bands or r.count == 1 else desc,
                                 "description": desc, "nodata": 0, "data_type": r.dtype,
                                 "raster:spatial_resolution": res_m}
            band_unit = None if (r.kind.key == "filtered_wrapped_phase" and i == 1) else unit
            if band_unit:
                b["unit"] = band_unit
            bands.append(b)
        title = r.kind.title + (f" ({', '.join(r.name.corrections)} corrected)" if r.name.corrections else "")
        return {
            "href": f"./{key}.tif",
            "type": COG_MEDIA_TYPE,
            "title": title,
            "description": f"From {PurePosixPath(r.rel).name}; overviews: {r.kind.resampling}",
            "roles": list(r.kind.roles),
            "proj:code": f"EPSG:{r.epsg}",
            "proj:shape": list(shape_),
            "proj:transform": [wt.a, wt.b, wt.c, wt.d, wt.e, wt.f],
            "bands": bands,
        }

    @staticmethod
    def _thumbnail(item_dir: Path, assets: dict[str, Any]) -> dict[str, Any] | None:
        """Wrapped phase on a cyclic colour map, else velocity (or unwrapped phase) on a diverging one."""
        for key in ("filtered_wrapped_phase", "wrapped_phase", "velocity", "unwrapped_phase"):
            if key in assets:
                break
        else:
            return None
        with rasterio.open(item_dir / f"{key}.tif") as ds:
            data, crs, transform = ds.read(1), ds.crs, ds.transform
        valid = (data != 0) & np.isfinite(data)
        png = item_dir / "thumbnail.png"
        if "wrapped" in key and "unwrapped" not in key:
            rgb = _cyclic(data, valid)
            desc = "Wrapped phase, cyclic colour map (one colour cycle = 2 pi rad = 2.8 cm of LOS motion), black = no data"
            scale: dict[str, Any] = {"min": -math.pi, "max": math.pi}
        else:
            vmax = float(np.percentile(np.abs(data[valid]), 98)) if valid.any() else 1.0
            vmax = vmax or 1.0
            rgb = _diverging(data, valid, vmax)
            unit = assets[key]["bands"][0].get("unit", "")
            desc = (f"{assets[key]['title']}, diverging colour map: blue -{vmax:.3g} {unit} (towards the satellite), "
                    f"white 0, red +{vmax:.3g} {unit} (away from the satellite); black = no data")
            scale = {"min": -round(vmax, 4), "max": round(vmax, 4)}
        write_png(rgb, png)
        assets["overview"] = {**write_overview_cog(rgb, item_dir / "overview.tif", crs, transform, f"Overview: {key}",
                                                   f"8-bit rendering for display, not for analysis: {desc}"),
                              "type": COG_MEDIA_TYPE}
        return {"href": "./thumbnail.png", "type": PNG_MEDIA_TYPE, "roles": ["thumbnail"], "title": f"Preview of {key}",
                "description": desc, "flatsim:colour_scale": {**scale, "asset": key}, **file_fields(png)}

    # ---------------------------------------------------------------- collection
    def collection(self, items: Any) -> dict[str, Any]:  # a list of items or a stac.tree.ItemStats
        from stac_mmtp.stac.tree import item_assets as derive_item_assets
        from stac_mmtp.stac.tree import summarise

        meta = collection_metadata(COLLECTION)
        # cube bands are dates and band descriptions name them: both differ per item
        item_assets = derive_item_assets(items, (), ("description",), no_bands=("displacement",))
        return {
            "type": "Collection",
            "stac_version": STAC_VERSION,
            "stac_extensions": [SAR, SAT, RASTER, PROJ, SCIENTIFIC, MMTP],
            **meta,
            "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
            "summaries": {
                "constellation": ["sentinel-1"],
                "instruments": ["c-sar"],
                "sar:instrument_mode": ["IW"],
                "sar:frequency_band": ["C"],
                "sar:polarizations": ["VV"],
                **summarise(items, ["mmtp:phenomenon", "mmtp:temporal_role", "mmtp:event_id", "sat:orbit_state",
                                    "sat:relative_orbit", "flatsim:package_type", "insar:temporal_baseline"]),
            },
            "item_assets": dict(sorted(item_assets.items())),
        }


def _window(src: Any, bounds: tuple[float, float, float, float]) -> Window | None:
    """Pixel window of `src` covering `bounds` (whole pixels, no resampling), None if they do not overlap."""
    win = from_bounds(*bounds, transform=src.transform)
    c0, r0 = math.floor(win.col_off + 1e-6), math.floor(win.row_off + 1e-6)
    c1, r1 = math.ceil(win.col_off + win.width - 1e-6), math.ceil(win.row_off + win.height - 1e-6)
    win = Window(c0, r0, c1 - c0, r1 - r0)
    try:
        win = win.intersection(Window(0, 0, src.width, src.height))
    except rasterio.errors.WindowError:
        return None
    return win if win.width > 0 and win.height > 0 else None


def _cyclic(phase: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Phase (rad) to RGB on a hue wheel: -pi and +pi get the same colour, as a wrapped phase must."""
    t = (np.mod(phase + np.pi, 2 * np.pi) / (2 * np.pi)).astype(np.float32)
    rgb = np.stack([0.5 + 0.5 * np.cos(2 * np.pi * (t - k / 3)) for k in range(3)])
    out = (rgb * 254 + 1).astype(np.uint8)
    out[:, ~valid] = 0
    return out


def _diverging(data: np.ndarray, valid: np.ndarray, vmax: float) -> np.ndarray:
    """Blue (negative) - white (0) - red (positive), clipped at +-vmax."""
    x = np.clip(data / vmax, -1, 1).astype(np.float32)
    pos, neg = np.clip(x, 0, 1), np.clip(-x, 0, 1)
    r = 1 - 0.8 * neg
    g = 1 - 0.8 * np.abs(x)
    b = 1 - 0.8 * pos
    out = (np.stack([r, g, b]) * 254 + 1).astype(np.uint8)
    out[:, ~valid] = 0
    return out


def _cite_link() -> dict[str, Any]:
    return {"rel": "cite-as", "href": f"https://doi.org/{DOI}", "type": "text/html", "title": "FLATSIM data (DOI)"}


def _license_link() -> dict[str, Any]:
    return {"rel": "license", "href": LICENSE_URL, "type": "text/html", "title": "CC BY-NC 4.0"}



def velocity_to_cog(src_path: Path, dst: Path, window: Window | None = None, unit: str = "mm/yr",
                    nodata: float = float("nan")) -> dict[str, Any]:
    """A generic InSAR LOS velocity GeoTIFF (e.g. NSBAS `lin_coeff.tif`: any CRS, NaN as no data) -> COG + asset.

    Same rules as FLATSIM velocities: the source grid is kept (no resampling), overviews are averaged.
    """
    with rasterio.open(src_path) as src:
        if src.crs is None:
            raise ProductError("velocity raster without a CRS (not georeferenced)", src_path)
        window = window or Window(0, 0, src.width, src.height)
        wt, shape_, dtype = src.window_transform(window), (int(window.height), int(window.width)), src.dtypes[0]
        code = f"EPSG:{src.crs.to_epsg()}" if src.crs.to_epsg() else src.crs.to_wkt()
    clip_to_cog(src_path, dst, window, CogProfile(overview_resampling="average", predictor=3, blocksize=256),
                nodata=nodata, descriptions=["velocity"])
    band = {"name": "velocity", "description": "Mean LOS velocity (positive away from the satellite)",
            "nodata": "nan" if math.isnan(nodata) else nodata, "data_type": dtype, "unit": unit,
            "raster:spatial_resolution": abs(wt.a)}
    return {"href": f"./{dst.name}", "type": COG_MEDIA_TYPE, "title": "Mean LOS velocity", "roles": ["data", "velocity"],
            "proj:code": code, "proj:shape": list(shape_), "proj:transform": [wt.a, wt.b, wt.c, wt.d, wt.e, wt.f],
            "bands": [band], **file_fields(dst)}


SOURCE = Flatsim()  # listed in sources/registry.py
