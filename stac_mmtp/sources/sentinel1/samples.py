"""Small but format-faithful Sentinel-1 IW GRD-HR SAFE products placed at real events.

Same layout and metadata schema as real products: `manifest.safe` (XFDU with platform, orbit,
acquisition period, lat,lon footprint and MD5 of every file), `annotation/s1a-iw-grd-<pol>-….xml`
(image information and a 21 x 10 geolocation grid), `annotation/calibration/calibration-….xml`
(sparse sigma0/beta0/gamma/dn LUT) and `noise-….xml`, and `measurement/s1a-iw-grd-<pol>-….tiff`
(uint16, no CRS, GCPs in EPSG:4326, 0 = no data on the swath edges). The image is 800 x 800
pixels at 10 m (real scenes: about 25000 x 16700) in radar geometry: lines run along the flight
track, pixels increase away from the satellite (right-looking), so ascending scenes are flipped
north-south and descending ones east-west, as in real GRD products.

Pixels are synthetic: speckled sigma0 (gamma distributed, ENL 4.4) over a smooth landscape; after
a landslide a rough, bright scar at the event site; after a flood dark open water.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.control import GroundControlPoint

from stac_mmtp.dataset.inventory import Event
from stac_mmtp.raster.geo import utm_epsg
from stac_mmtp.stac.synthetic import write_marker

LINES = SAMPLES = 800
SPACING = 10.0  # m, IW GRD-HR
AZIMUTH_TIME_INTERVAL = 1.499191837510891e-03  # s per line (IW)
FULL_SWATH = 25000  # pixels of a full IW GRD-HR scene: the sample is a crop starting at SWATH_OFFSET
SWATH_OFFSET = 9000
# S1A absolute orbit anchor (a real product: S1A_IW_GRDH_1SDV_20210809T173953_…_039156_…) and orbit period
ANCHOR = (datetime(2021, 8, 9, 17, 39, 53, 153776, tzinfo=UTC), 39156)
ORBIT_S = 12 * 86400 / 175
IPF = "003.31"
# (pass, platform heading in degrees) of the two geometries we write
HEADINGS = {"ascending": -12.9, "descending": -167.1}
BASE_VV, BASE_VH = 0.08, 0.016


def _incidence(pixel: np.ndarray | float) -> np.ndarray | float:
    return 30.5 + (SWATH_OFFSET + np.asarray(pixel)) / FULL_SWATH * 15.5


def _sigma_lut(pixel: np.ndarray, line: float) -> np.ndarray:
    """A (sigmaNought LUT value) falls with incidence across the swath; a slight drift along lines."""
    return (663.0 - 160.0 * (SWATH_OFFSET + pixel) / FULL_SWATH) * (1.0 + 2e-5 * line)


def _abs_orbit(when: datetime) -> int:
    return ANCHOR[1] + math.floor((when - ANCHOR[0]).total_seconds() / ORBIT_S)


def _ascending_node_time(when: datetime, lat: float, orbit_pass: str) -> datetime:
    """The last ascending-node crossing before `when`, for a circular sun-synchronous orbit (inclination
    98.18 degrees) over latitude `lat`: derived from the scene geometry, like the rest of the sample's orbit."""
    u = math.asin(max(-1.0, min(1.0, math.sin(math.radians(lat)) / math.sin(math.radians(98.18)))))
    if orbit_pass == "descending":
        u = math.pi - u
    return when - timedelta(seconds=(u % (2 * math.pi)) / (2 * math.pi) * ORBIT_S)


def _t(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")


class _Scene:
    """Radar geometry of the sample: (line, pixel) -> lon/lat by a straight flight over a flat earth in UTM."""

    def __init__(self, event: Event, orbit_pass: str):
        lon, lat = event.site
        self.epsg = utm_epsg(lon, lat)
        to_utm = Transformer.from_crs(4326, self.epsg, always_xy=True)
        self.to_ll = Transformer.from_crs(self.epsg, 4326, always_xy=True)
        x, y = to_utm.transform(lon, lat)
        self.heading = HEADINGS[orbit_pass]
        h = math.radians(self.heading)
        self.az = np.array([math.sin(h), math.cos(h)])  # along track (east, north)
        self.rg = np.array([math.cos(h), -math.sin(h)])  # 90 degrees right of the track
        self.origin = np.array([x, y]) - LINES / 2 * SPACING * self.az - SAMPLES / 2 * SPACING * self.rg

    def lonlat(self, line: np.ndarray, pixel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        line, pixel = np.asarray(line, dtype=np.float64), np.asarray(pixel, dtype=np.float64)
        x = self.origin[0] + line * SPACING * self.az[0] + pixel * SPACING * self.rg[0]
        y = self.origin[1] + line * SPACING * self.az[1] + pixel * SPACING * self.rg[1]
        return self.to_ll.transform(x, y)

    def metres_from_centre(self, line: np.ndarray, pixel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(east, north) offsets in metres from the scene centre (the event site)."""
        dl, dp = (line - LINES / 2) * SPACING, (pixel - SAMPLES / 2) * SPACING
        return dl * self.az[0] + dp * self.rg[0], dl * self.az[1] + dp * self.rg[1]


def _sigma0(scene: _Scene, seed: int, change: str | None) -> dict[str, np.ndarray]:
    line, pixel = np.mgrid[0:LINES, 0:SAMPLES].astype(np.float64)
    e, n = scene.metres_from_centre(line, pixel)
    rng = np.random.default_rng(seed)
    ph = rng.uniform(0, 2 * np.pi, 3)
    land = 1.0 + 0.5 * np.sin(e / 700 + ph[0]) * np.cos(n / 900 + ph[1]) + 0.2 * np.sin((e - n) / 300 + ph[2])
    # a river band (always dark) so that the images have structure
    river = np.abs(n - 0.35 * e - 1200) < 60
    out = {}
    for pol, base in (("VV", BASE_VV), ("VH", BASE_VH)):
        s = base * land
        s[river] = 0.004 if pol == "VV" else 0.0008
        if change == "landslide":
            scar = (e / 350) ** 2 + (n / 700) ** 2 <= 1.0
            s[scar] *= 2.5  # rough debris: brighter
        elif change == "flood":
            water = (e / 2500) ** 2 + ((n + 300) / 1200) ** 2 <= 1.0
            s[water] = 0.003 if pol == "VV" else 0.0006  # calm open water: specular, dark
        s = s * rng.gamma(4.4, 1 / 4.4, s.shape)  # multiplicative speckle of a 4.4-look GRD-HR
        out[pol] = s.astype(np.float32)
    return out


def write_product(out: Path, event: Event, when: datetime, orbit_pass: str = "ascending",
                  change: str | None = None) -> Path:
    """Write one GRD SAFE directory for `event` with its first line at `when`; returns its path."""
    when = when.astimezone(UTC)
    stop = when + timedelta(seconds=(LINES - 1) * AZIMUTH_TIME_INTERVAL)  # the time of the last line, as in real GRDs
    absolute = _abs_orbit(when)
    relative = (absolute - 73) % 175 + 1
    datatake = (absolute * 7919 + 12345) % 0x1000000
    s0, s1 = when.strftime("%Y%m%dT%H%M%S"), stop.strftime("%Y%m%dT%H%M%S")
    stem = f"S1A_IW_GRDH_1SDV_{s0}_{s1}_{absolute:06d}_{datatake:06X}"
    unique = hashlib.sha256((stem + event.id).encode()).hexdigest()[:4].upper()
    name = f"{stem}_{unique}"
    safe = out / f"{name}.SAFE"
    scene = _Scene(event, orbit_pass)
    anx = _ascending_node_time(when, event.site[1], orbit_pass)
    seed = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    sigma = _sigma0(scene, seed, change)
    # geolocation grid: 21 pixels x 10 lines, like the real 210-point grids
    g_lines = np.round(np.linspace(0, LINES - 1, 10)).astype(int)
    g_pixels = np.round(np.linspace(0, SAMPLES - 1, 21)).astype(int)
    gl, gp = np.meshgrid(g_lines, g_pixels, indexing="ij")
    glon, glat = scene.lonlat(gl, gp)
    height = 100.0
    grid = [(int(li), int(pi), float(la), float(lo)) for li, pi, la, lo in
            zip(gl.ravel(), gp.ravel(), glat.ravel(), glon.ravel(), strict=True)]
    for i, pol in enumerate(("VV", "VH"), start=1):
        fname = f"s1a-iw-grd-{pol.lower()}-{s0.lower()}-{s1.lower()}-{absolute:06d}-{datatake:06x}-{i:03d}"
        line, pixel = np.mgrid[0:LINES, 0:SAMPLES].astype(np.float64)
        a = _sigma_lut(pixel, line)
        dn = np.clip(np.round(a * np.sqrt(sigma[pol])), 1, 65535).astype(np.uint16)
        dn[:, :12] = 0  # no-data border on the near-range edge, as on real GRD swath edges
        dn[:4, :] = 0
        gcps = [GroundControlPoint(row=li, col=pi, x=lo, y=la, z=height, id=str(k + 1))
                for k, (li, pi, la, lo) in enumerate(grid)]
        tiff = safe / "measurement" / f"{fname}.tiff"
        tiff.parent.mkdir(parents=True, exist_ok=True)
        # one strip per line, uncompressed, as the IPF writes them (GDAL's SAFE driver calibrates a block at a time)
        with rasterio.open(tiff, "w", driver="GTiff", width=SAMPLES, height=LINES, count=1, dtype="uint16",
                           gcps=gcps, crs="EPSG:4326", blockysize=1) as ds:
            ds.write(dn, 1)
            ds.update_tags(TIFFTAG_IMAGEDESCRIPTION="Sentinel-1A IW GRD HR L1", TIFFTAG_SOFTWARE=f"Sentinel-1 IPF {IPF}",
                           TIFFTAG_DATETIME=(when + timedelta(hours=2)).strftime("%Y:%m:%d %H:%M:%S"))
        Path(str(tiff) + ".aux.xml").unlink(missing_ok=True)
        ann = safe / "annotation" / f"{fname}.xml"
        ann.parent.mkdir(parents=True, exist_ok=True)
        ann.write_text(_annotation(pol, i, when, stop, absolute, datatake, orbit_pass, scene.heading, grid, height, anx),
                       encoding="utf-8")
        cal = safe / "annotation" / "calibration" / f"calibration-{fname}.xml"
        cal.parent.mkdir(parents=True, exist_ok=True)
        cal.write_text(_calibration(pol, i, when, stop, absolute, datatake), encoding="utf-8")
        (cal.parent / f"noise-{fname}.xml").write_text(_noise(pol, i, when, stop, absolute, datatake), encoding="utf-8")
    corners = [(LINES - 1, 0), (LINES - 1, SAMPLES - 1), (0, SAMPLES - 1), (0, 0)]
    clon, clat = scene.lonlat(np.array([c[0] for c in corners]), np.array([c[1] for c in corners]))
    footprint = " ".join(f"{la:.6f},{lo:.6f}" for la, lo in zip(clat, clon, strict=True))  # lat,lon, ring not closed
    (safe / "manifest.safe").write_text(
        _manifest(safe, when, stop, absolute, relative, datatake, orbit_pass, footprint, anx), encoding="utf-8")
    write_marker(safe, "sentinel-1")  # after the manifest, which lists only the product's own files
    return safe


def _header(pol: str, image: int, start: datetime, stop: datetime, absolute: int, datatake: int) -> str:
    return f"""  <adsHeader>
    <missionId>S1A</missionId>
    <productType>GRD</productType>
    <polarisation>{pol}</polarisation>
    <mode>IW</mode>
    <swath>IW</swath>
    <startTime>{_t(start)}</startTime>
    <stopTime>{_t(stop)}</stopTime>
    <absoluteOrbitNumber>{absolute}</absoluteOrbitNumber>
    <missionDataTakeId>{datatake}</missionDataTakeId>
    <imageNumber>{image:03d}</imageNumber>
  </adsHeader>"""


def _annotation(pol: str, image: int, start: datetime, stop: datetime, absolute: int, datatake: int, orbit_pass: str,
                heading: float, grid: list[tuple[int, int, float, float]], height: float, anx: datetime) -> str:
    srt0 = 5.340119231434359e-03
    points = []
    for line, pixel, lat, lon in grid:
        az = start + timedelta(seconds=line * AZIMUTH_TIME_INTERVAL)
        inc = float(_incidence(pixel))
        points.append(f"""      <geolocationGridPoint>
        <azimuthTime>{_t(az)}</azimuthTime>
        <slantRangeTime>{srt0 + pixel * 6.0e-8:.15e}</slantRangeTime>
        <line>{line}</line>
        <pixel>{pixel}</pixel>
        <latitude>{lat:.15e}</latitude>
        <longitude>{lon:.15e}</longitude>
        <height>{height:.15e}</height>
        <incidenceAngle>{inc:.15e}</incidenceAngle>
        <elevationAngle>{inc - 3.3:.15e}</elevationAngle>
      </geolocationGridPoint>""")
    body = "\n".join(points)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<product>
{_header(pol, image, start, stop, absolute, datatake)}
  <generalAnnotation>
    <productInformation>
      <pass>{orbit_pass.capitalize()}</pass>
      <timelinessCategory>NRT-3h</timelinessCategory>
      <platformHeading>{heading:.15e}</platformHeading>
      <projection>Ground Range</projection>
      <rangeSamplingRate>6.434523812571428e+07</rangeSamplingRate>
      <radarFrequency>5.405000454334350e+09</radarFrequency>
      <azimuthSteeringRate>1.590368784000000e+00</azimuthSteeringRate>
    </productInformation>
  </generalAnnotation>
  <imageAnnotation>
    <imageInformation>
      <productFirstLineUtcTime>{_t(start)}</productFirstLineUtcTime>
      <productLastLineUtcTime>{_t(stop)}</productLastLineUtcTime>
      <ascendingNodeTime>{_t(anx)}</ascendingNodeTime>
      <productComposition>Slice</productComposition>
      <slantRangeTime>{srt0:.15e}</slantRangeTime>
      <pixelValue>Detected</pixelValue>
      <outputPixels>16 bit Unsigned Integer</outputPixels>
      <rangePixelSpacing>{SPACING:.6e}</rangePixelSpacing>
      <azimuthPixelSpacing>{SPACING:.6e}</azimuthPixelSpacing>
      <azimuthTimeInterval>{AZIMUTH_TIME_INTERVAL:.15e}</azimuthTimeInterval>
      <numberOfSamples>{SAMPLES}</numberOfSamples>
      <numberOfLines>{LINES}</numberOfLines>
      <incidenceAngleMidSwath>{float(_incidence(SAMPLES / 2)):.15e}</incidenceAngleMidSwath>
    </imageInformation>
    <processingInformation>
      <thermalNoiseCorrectionPerformed>false</thermalNoiseCorrectionPerformed>
      <ellipsoidName>WGS84</ellipsoidName>
      <ellipsoidSemiMajorAxis>6.378137000000000e+06</ellipsoidSemiMajorAxis>
      <ellipsoidSemiMinorAxis>6.356752314245000e+06</ellipsoidSemiMinorAxis>
    </processingInformation>
  </imageAnnotation>
  <swathTiming>
    <linesPerBurst>0</linesPerBurst>
    <samplesPerBurst>0</samplesPerBurst>
    <burstList count="0"/>
  </swathTiming>
  <geolocationGrid>
    <geolocationGridPointList count="{len(grid)}">
{body}
    </geolocationGridPointList>
  </geolocationGrid>
</product>
"""


def _lut_knots() -> tuple[np.ndarray, np.ndarray]:
    """Calibration knots: every 40 pixels and about every 75 lines, overshooting the image as real LUTs do."""
    pixels = np.arange(0, SAMPLES + 40, 40)
    lines = np.arange(0, LINES + 75, 75)
    return lines, pixels


def _calibration(pol: str, image: int, start: datetime, stop: datetime, absolute: int, datatake: int) -> str:
    lines, pixels = _lut_knots()
    vectors = []
    for line in lines:
        sig = _sigma_lut(pixels.astype(np.float64), float(line))
        inc = np.radians(_incidence(pixels))
        beta = np.full(len(pixels), 474.0)
        gamma = sig * np.sqrt(np.cos(inc))
        az = start + timedelta(seconds=float(line) * AZIMUTH_TIME_INTERVAL)
        vectors.append(f"""    <calibrationVector>
      <azimuthTime>{_t(az)}</azimuthTime>
      <line>{line}</line>
      <pixel count="{len(pixels)}">{' '.join(str(p) for p in pixels)}</pixel>
      <sigmaNought count="{len(pixels)}">{' '.join(f'{v:.6e}' for v in sig)}</sigmaNought>
      <betaNought count="{len(pixels)}">{' '.join(f'{v:.6e}' for v in beta)}</betaNought>
      <gamma count="{len(pixels)}">{' '.join(f'{v:.6e}' for v in gamma)}</gamma>
      <dn count="{len(pixels)}">{' '.join(f'{v:.6e}' for v in beta)}</dn>
    </calibrationVector>""")
    body = "\n".join(vectors)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<calibration>
{_header(pol, image, start, stop, absolute, datatake)}
  <calibrationInformation>
    <absoluteCalibrationConstant>1.000000e+00</absoluteCalibrationConstant>
  </calibrationInformation>
  <calibrationVectorList count="{len(lines)}">
{body}
  </calibrationVectorList>
</calibration>
"""


def _noise(pol: str, image: int, start: datetime, stop: datetime, absolute: int, datatake: int) -> str:
    lines, pixels = _lut_knots()
    vectors = "\n".join(f"""    <noiseRangeVector>
      <azimuthTime>{_t(start + timedelta(seconds=float(line) * AZIMUTH_TIME_INTERVAL))}</azimuthTime>
      <line>{line}</line>
      <pixel count="{len(pixels)}">{' '.join(str(p) for p in pixels)}</pixel>
      <noiseRangeLut count="{len(pixels)}">{' '.join('1.000000e+02' for _ in pixels)}</noiseRangeLut>
    </noiseRangeVector>""" for line in lines)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<noise>
{_header(pol, image, start, stop, absolute, datatake)}
  <noiseRangeVectorList count="{len(lines)}">
{vectors}
  </noiseRangeVectorList>
</noise>
"""


# repID of each SAFE file kind (as real IPF manifests write them), and the prefix of its dataObject ID
_KINDS = (("measurement", "s1Level1MeasurementSchema", ""), ("product", "s1Level1ProductSchema", "product"),
          ("noise", "s1Level1NoiseSchema", ""), ("calibration", "s1Level1CalibrationSchema", ""))


def _kind(rel: str) -> str | None:
    if rel.startswith("measurement/") and rel.endswith(".tiff"):
        return "measurement"
    if rel.startswith("annotation/calibration/"):
        name = rel.rsplit("/", 1)[-1]
        return next((k for k in ("calibration", "noise") if name.startswith(f"{k}-")), None)
    if rel.startswith("annotation/") and rel.count("/") == 1 and rel.endswith(".xml"):
        return "product"
    return None


def _manifest(safe: Path, start: datetime, stop: datetime, absolute: int, relative: int, datatake: int,
              orbit_pass: str, footprint: str, anx: datetime) -> str:
    """The XFDU manifest. Readers such as GDAL's SAFE driver find the images through it, not by file
    name: each measurement is a "Measurement Data Unit" whose dmdID names the metadata objects of its
    product annotation, noise and calibration files, each pointing to a dataObject of that repID."""
    objects, units, md_objects = [], [], []
    by_image: dict[str, dict[str, str]] = {}  # image stem (s1a-iw-grd-vv-...-001) -> kind -> dataObject ID
    for p in sorted(q for q in safe.rglob("*") if q.is_file() and q.name != "manifest.safe"):
        rel = p.relative_to(safe).as_posix()
        stem = rel.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        kind = _kind(rel)
        rep, prefix = next(((r, x) for k, r, x in _KINDS if k == kind), (None, ""))
        oid = prefix + stem.replace("-", "")
        mime = "application/octet-stream" if rel.endswith(".tiff") else "text/xml"
        md5 = hashlib.md5(p.read_bytes()).hexdigest()
        objects.append(f"""    <dataObject ID="{oid}"{f' repID="{rep}"' if rep else ''}>
      <byteStream mimeType="{mime}" size="{p.stat().st_size}">
        <fileLocation locatorType="URL" href="./{rel}"/>
        <checksum checksumName="MD5">{md5}</checksum>
      </byteStream>
    </dataObject>""")
        if kind is not None:
            image = stem.split("-", 1)[1] if kind in ("calibration", "noise") else stem
            by_image.setdefault(image, {})[kind] = oid
    for image in sorted(by_image, reverse=True):  # metadata units first, one per annotation file, as in real manifests
        for kind, rep, _ in _KINDS[1:]:
            oid = by_image[image].get(kind)
            if oid is None:
                continue
            units.append(f"""      <xfdu:contentUnit unitType="Metadata Unit" repID="{rep}">
        <dataObjectPointer dataObjectID="{oid}"/>
      </xfdu:contentUnit>""")
            md_objects.append(f"""    <metadataObject ID="{oid}Annotation" classification="DESCRIPTION" category="DMD">
      <dataObjectPointer dataObjectID="{oid}"/>
    </metadataObject>""")
    for image in sorted(by_image, reverse=True):
        ids = by_image[image]
        if "measurement" not in ids:
            continue
        dmd = "".join(f"{ids[k]}Annotation " for k in ("product", "noise", "calibration") if k in ids)
        units.append(f"""      <xfdu:contentUnit unitType="Measurement Data Unit" repID="s1Level1MeasurementSchema" dmdID="{dmd}">
        <dataObjectPointer dataObjectID="{ids['measurement']}"/>
      </xfdu:contentUnit>""")
    body = "\n".join(objects)
    content_units = "\n".join(units)
    annotation_objects = "\n".join(md_objects)
    processed = stop + timedelta(hours=2, minutes=31)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xfdu:XFDU xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:gml="http://www.opengis.net/gml" xmlns:xfdu="urn:ccsds:schema:xfdu:1" xmlns:safe="http://www.esa.int/safe/sentinel-1.0" xmlns:s1="http://www.esa.int/safe/sentinel-1.0/sentinel-1" xmlns:s1sarl1="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-1" version="esa/safe/sentinel-1.0/sentinel-1/sar/level-1/grd/standard/iwdp">
  <informationPackageMap>
    <xfdu:contentUnit unitType="SAFE Archive Information Package" textInfo="Sentinel-1 IW Level-1 GRD Product" dmdID="acquisitionPeriod platform generalProductInformation measurementOrbitReference measurementFrameSet" pdiID="processing">
{content_units}
    </xfdu:contentUnit>
  </informationPackageMap>
  <metadataSection>
{annotation_objects}
    <metadataObject ID="processing" classification="PROVENANCE" category="PDI">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Processing">
        <xmlData>
          <safe:processing name="GRD Post Processing" start="{_t(processed - timedelta(minutes=11))}" stop="{_t(processed)}">
            <safe:facility country="Germany" name="Copernicus S1 Core Ground Segment - DPA" organisation="ESA" site="DLR-Oberpfaffenhofen">
              <safe:software name="Sentinel-1 IPF" version="{IPF}"/>
            </safe:facility>
          </safe:processing>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="platform" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Platform Description">
        <xmlData>
          <safe:platform>
            <safe:nssdcIdentifier>2014-016A</safe:nssdcIdentifier>
            <safe:familyName>SENTINEL-1</safe:familyName>
            <safe:number>A</safe:number>
            <safe:instrument>
              <safe:familyName abbreviation="SAR">Synthetic Aperture Radar</safe:familyName>
              <safe:extension>
                <s1sarl1:instrumentMode>
                  <s1sarl1:mode>IW</s1sarl1:mode>
                  <s1sarl1:swath>IW</s1sarl1:swath>
                </s1sarl1:instrumentMode>
              </safe:extension>
            </safe:instrument>
          </safe:platform>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="measurementOrbitReference" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Orbit Reference">
        <xmlData>
          <safe:orbitReference>
            <safe:orbitNumber type="start">{absolute}</safe:orbitNumber>
            <safe:orbitNumber type="stop">{absolute}</safe:orbitNumber>
            <safe:relativeOrbitNumber type="start">{relative}</safe:relativeOrbitNumber>
            <safe:relativeOrbitNumber type="stop">{relative}</safe:relativeOrbitNumber>
            <safe:extension>
              <s1:orbitProperties>
                <s1:pass>{orbit_pass.upper()}</s1:pass>
                <s1:ascendingNodeTime>{_t(anx)}</s1:ascendingNodeTime>
              </s1:orbitProperties>
            </safe:extension>
          </safe:orbitReference>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="generalProductInformation" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="General Product Information">
        <xmlData>
          <s1sarl1:standAloneProductInformation>
            <s1sarl1:instrumentConfigurationID>7</s1sarl1:instrumentConfigurationID>
            <s1sarl1:missionDataTakeID>{datatake}</s1sarl1:missionDataTakeID>
            <s1sarl1:transmitterReceiverPolarisation>VV</s1sarl1:transmitterReceiverPolarisation>
            <s1sarl1:transmitterReceiverPolarisation>VH</s1sarl1:transmitterReceiverPolarisation>
            <s1sarl1:productClass>S</s1sarl1:productClass>
            <s1sarl1:productClassDescription>SAR Standard L1 Product</s1sarl1:productClassDescription>
            <s1sarl1:productComposition>Slice</s1sarl1:productComposition>
            <s1sarl1:productType>GRD</s1sarl1:productType>
            <s1sarl1:productTimelinessCategory>NRT-3h</s1sarl1:productTimelinessCategory>
            <s1sarl1:sliceProductFlag>true</s1sarl1:sliceProductFlag>
            <s1sarl1:sliceNumber>4</s1sarl1:sliceNumber>
            <s1sarl1:totalSlices>11</s1sarl1:totalSlices>
          </s1sarl1:standAloneProductInformation>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="acquisitionPeriod" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Acquisition Period">
        <xmlData>
          <safe:acquisitionPeriod>
            <safe:startTime>{_t(start)}</safe:startTime>
            <safe:stopTime>{_t(stop)}</safe:stopTime>
          </safe:acquisitionPeriod>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="measurementFrameSet" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Frame Set">
        <xmlData>
          <safe:frameSet>
            <safe:frame>
              <safe:footPrint srsName="http://www.opengis.net/gml/srs/epsg.xml#4326">
                <gml:coordinates>{footprint}</gml:coordinates>
              </safe:footPrint>
            </safe:frame>
          </safe:frameSet>
        </xmlData>
      </metadataWrap>
    </metadataObject>
  </metadataSection>
  <dataObjectSection>
{body}
  </dataObjectSection>
</xfdu:XFDU>
"""


def write_samples(out: Path, events: list[Event]) -> list[Path]:
    """For each event: the first GRD after it and one 12 days earlier on the same track (same geometry).

    Floods: descending pass at 05:18 UTC (EMSR332 mapped the Veneto flood from such an image of
    2 November 2018); other events: ascending pass at 16:42 UTC.
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for ev in events:
        flood = "flood" in ev.phenomenon
        orbit_pass = "descending" if flood else "ascending"
        tod = timedelta(hours=5, minutes=18, seconds=7) if flood else timedelta(hours=16, minutes=42, seconds=11)
        day = datetime(ev.end.year, ev.end.month, ev.end.day, tzinfo=UTC)
        post = day + tod if day + tod > ev.end else day + timedelta(days=1) + tod
        if not flood:
            post += timedelta(days=6)
        pre = post - timedelta(days=12)
        if pre >= ev.start:
            pre = post - timedelta(days=12 * math.ceil((post - ev.start).days / 12 + 1))
        paths.append(write_product(out, ev, pre, orbit_pass))
        paths.append(write_product(out, ev, post, orbit_pass, change="flood" if flood else "landslide"))
    return paths
