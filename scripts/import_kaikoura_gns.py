"""Convert the Kaikōura 2016 landslide points and the GNS Science landslide-dam points (as redistributed in
loreabad6/KaikouraDammedLakes_public @4f6db50b, ref_data/) into annotation files and the event
kaikoura-landslide-dams-2016. Not EMS products, so not `import-ems`; run once, results checked in:

    python scripts/import_kaikoura_gns.py REF_DATA_DIR
"""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np
import shapely
from pyogrio.raw import read

from stac_mmtp.atomic import write_text
from stac_mmtp.dataset.annotations import (
    dumps_annotation,
    feature_collection,
    parse_annotation,
    round_geometry,
)
from stac_mmtp.dataset.ems import dumps_event, event_box
from stac_mmtp.dataset.inventory import load_inventory, parse_event
from stac_mmtp.raster.geo import reproject

REPO = "https://github.com/loreabad6/KaikouraDammedLakes_public"
COMMIT = "4f6db50bc3c332c46c4818628fa01fee7b414e32"
ROOT = Path(__file__).resolve().parents[1]
DAMS_EVENT = "kaikoura-landslide-dams-2016"
COAST_EVENT = "kaikoura-coastal-landslides-2016"


def _date(v: object) -> str | None:
    return None if v is None or str(v) == "NaT" else str(np.datetime_as_string(v, unit="D"))


def dams(ref: Path) -> tuple[dict, dict]:
    feats, geoms = [], []
    for name in ("key_dams", "other_dams"):
        meta, _, g, f = read(str(ref / f"{name}.shp"))
        cols = list(meta["fields"])
        for i, wkb in enumerate(g):
            row = {c: f[j][i] for j, c in enumerate(cols)}
            pt = reproject(shapely.from_wkb(wkb), meta["crs"], 4326)
            geoms.append(pt)
            checked = _date(row["Last_Check"]) or _date(row["Photo_Date"])
            feats.append((name, row, pt, checked))
    minx, miny, maxx, maxy = event_box(geoms)
    box = shapely.box(minx, miny, maxx, maxy)
    kept = [x for x in feats if box.covers(x[2])]
    out = []
    for k, (name, row, pt, checked) in enumerate(kept):
        out.append({"type": "Feature", "id": f"dam-{k + 1}", "geometry": round_geometry(pt), "properties": {
            "class": "landslide-dam", "observed": checked or "2016-11-14", "method": "manual",
            "annotator": str(row["ORINGINATO"]), "annotator_expertise": "expert", "confidence": 0.8,
            "review_status": "reviewed", "imagery": [],
            "gns:name": row["NAME"], "gns:formal_name": row["Formal_Nam"], "gns:key_dam": row["Key_Dam"],
            "gns:hazard": row["HAZARD"], "gns:scale": row["SCALE"], "gns:lake": row["LAKE"],
            "gns:obs_method": row["OBS_METHOD"], "gns:location_accuracy": row["LOC_ACCURA"],
            "gns:dam_status": row["Dam_Status"], "gns:layer": name,
            **({} if checked else {"note": "no check date recorded: observed set to the day after the earthquake"}),
        }})
    event = {"type": "Feature", "id": DAMS_EVENT,
             "geometry": {"type": "Polygon", "coordinates": [[[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]]},
             "properties": {
                 "title": "Kaikōura earthquake landslide dams",
                 "description": "Landslides triggered by the Mw 7.8 Kaikōura earthquake of 14 November 2016 (local time) dammed "
                                "rivers of the Clarence, Conway and Hapuku catchments; GNS Science surveyed the dams by helicopter "
                                "(key dams checked until mid-2017). The AOI is a box of at most 48 km around the surveyed dams.",
                 "phenomenon": "landslide", "state": "ended", "datetime": "2016-11-13T11:02:56Z",
                 "datetime_precision": "second", "site": [173.2631, -42.4169], "countries": ["NZL"],
                 "hazard_codes": ["GH0300", "LS"], "triggered_by": ["kaikoura-earthquake-2016"], "review_status": "curated",
                 "references": [
                     {"title": "Abad et al. (2022) Detecting landslide-dammed lakes on Sentinel-2 imagery and monitoring their "
                               "spatio-temporal evolution following the Kaikōura earthquake. Science of The Total Environment",
                      "doi": "10.1016/j.scitotenv.2022.153335"},
                     {"title": "Massey et al. (2018) Landslides triggered by the 14 November 2016 Mw 7.8 Kaikōura earthquake. BSSA",
                      "doi": "10.1785/0120170305"}]}}
    doc = feature_collection({
        "id": "gns-landslide-dams-v1", "event_id": DAMS_EVENT,
        "title": "GNS Science landslide dams after the Kaikōura earthquake (points)",
        "description": "Landslide dams located by GNS Science (helicopter reconnaissance with GPS, satellite imagery): "
                       "key dams and other dams, one point per dam.",
        "license": "GNS Science data, redistributed in loreabad6/KaikouraDammedLakes_public (MIT); credit GNS Science",
        "provenance": {"provider": "GNS Science", "attribution": "Landslide dam data © GNS Science",
                       "source": {"repository": REPO, "commit": COMMIT, "path": "ref_data/key_dams.shp, ref_data/other_dams.shp"},
                       "features_in_source": len(feats), "outside_event_aoi": len(feats) - len(kept)},
    }, out)
    return event, doc


def coast(ref: Path, event_geom: dict) -> dict:
    meta, _, g, _ = read(str(ref / "Landslides_Kaikoura_2016.kmz"))
    pts = [shapely.force_2d(shapely.from_wkb(w)) for w in g]
    aoi = shapely.geometry.shape(event_geom)
    kept = [p for p in pts if aoi.covers(p)]
    feats = [{"type": "Feature", "id": f"landslide-{k + 1}", "geometry": round_geometry(p), "properties": {
        "class": "landslide", "observed": "2016-11-14", "method": "manual", "annotator": "Kaikōura 2016 landslide inventory",
        "annotator_expertise": "expert", "confidence": 0.7, "review_status": "reviewed", "imagery": [],
    }} for k, p in enumerate(kept)]
    return feature_collection({
        "id": "kaikoura-2016-landslide-points-v1", "event_id": COAST_EVENT,
        "title": "Kaikōura 2016 earthquake-triggered landslides (points, coastal AOI)",
        "description": "Points of the Kaikōura 2016 landslide inventory (Landslides_Kaikoura_2016.kmz, one point per landslide, "
                       "no attributes) that fall inside the coastal AOI. The KMZ records no mapping date: observed is the day "
                       "after the earthquake. The polygon inventory (LandslidePolygons.geojson, Massey et al., DesignSafe "
                       "PRJ-1699) is not in the repository copy.",
        "license": "as redistributed in loreabad6/KaikouraDammedLakes_public (MIT)",
        "provenance": {"source": {"repository": REPO, "commit": COMMIT, "path": "ref_data/Landslides_Kaikoura_2016.kmz"},
                       "features_in_source": len(pts), "outside_event_aoi": len(pts) - len(kept),
                       "attribution": "Kaikōura 2016 landslide inventory (Massey et al. 2018, doi:10.1785/0120170305)"},
    }, feats)


def main(ref: Path) -> None:
    event, dams_doc = dams(ref)
    with tempfile.TemporaryDirectory() as d:
        probe = Path(d) / f"{DAMS_EVENT}.geojson"
        write_text(probe, dumps_event(event))
        parse_event(probe)
    write_text(ROOT / "catalog" / "events" / f"{DAMS_EVENT}.geojson", dumps_event(event))
    events = {e.id: e for e in load_inventory(ROOT / "catalog" / "events")}
    coast_doc = coast(ref, events[COAST_EVENT].geometry)
    for doc in (dams_doc, coast_doc):
        target = ROOT / "catalog" / "annotations" / doc["event_id"] / f"{doc['id']}.geojson"
        write_text(target, dumps_annotation(doc))
        parse_annotation(target, events)
        print(target, len(doc["features"]), datetime.now().isoformat(timespec="seconds"))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
