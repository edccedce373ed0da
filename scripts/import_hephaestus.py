"""Store the Hephaestus InSAR annotations (Orion-AI-Lab/Hephaestus-minicubes @253dcdd2,
dataset/annotations.tar.gz + dataset/frame_names.json) of the inventory's volcanoes as
interferogram-level labels: catalog/annotations/<event>/hephaestus-insar-v1.json.

The masks are polygons in LiCSAR frame pixel coordinates; georeferencing them needs each frame's
geometry (LiCSAR products), which is not available offline, so they are kept as given, with the
frame id, not turned into outlines (hence a .json beside the .geojson outlines: `annotations check`
and `build` read only the latter).

    python scripts/import_hephaestus.py EXTRACTED_ANNOTATIONS_DIR FRAME_NAMES_JSON
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

from stac_mmtp.atomic import write_text
from stac_mmtp.dataset.inventory import load_inventory

ROOT = Path(__file__).resolve().parents[1]
REPO = "https://github.com/Orion-AI-Lab/Hephaestus-minicubes"
COMMIT = "253dcdd20e12efe6d11c26ecce288ae5eddeffc3"
# event -> (LiCSAR frames covering it, volcano names of frame_names.json that the frame must list)
VOLCANOES = {
    "cumbre-vieja-eruption-2021": ("La Palma",),
    "nyiragongo-eruption-2021": ("Nyiragongo",),
    "fagradalsfjall-eruption-2021": ("Krysuvik",),  # Fagradalsfjall lies in the Krýsuvík-Reykjanes system frames
    "etna-paroxysms-2021": ("Etna",),
    "piton-de-la-fournaise-eruption-2021": ("Piton de la Fournaise",),
}
BEFORE, AFTER = timedelta(days=60), timedelta(days=90)  # the build's default time window


def _day(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d")


def main(ann_dir: Path, frame_names: Path) -> None:
    frames = json.loads(frame_names.read_text())
    labels = [json.loads(p.read_text()) for p in sorted(ann_dir.glob("*.json"))]
    events = {e.id: e for e in load_inventory(ROOT / "catalog" / "events")}
    for eid, names in VOLCANOES.items():
        ev = events[eid]
        ids = sorted(f for f, listed in frames.items() if any(n in [x.strip() for x in listed.split(",")] for n in names))
        start, end = ev.start.replace(tzinfo=None) - BEFORE, ev.end.replace(tzinfo=None) + AFTER
        kept = [a for a in labels if a["frameID"] in ids and _day(a["primary_date"]) <= end and _day(a["secondary_date"]) >= start]
        kept.sort(key=lambda a: (a["frameID"], a["primary_date"], a["secondary_date"], a["uniqueID"]))
        doc = {
            "type": "InterferogramLabels", "id": "hephaestus-insar-v1", "event_id": eid,
            "title": f"Hephaestus InSAR annotations of the LiCSAR frames over {', '.join(names)}",
            "description": "Interferogram-level expert labels (deformation or not, activity type, intensity, phase, "
                           "atmospheric/orbital/glacier fringes, confidence, caption) of the Hephaestus dataset, for the "
                           "interferograms whose dates overlap the event window (60 days before to 90 after). The "
                           "segmentation masks are polygons in LiCSAR frame pixel coordinates, kept as given: they are "
                           "not georeferenced (the LiCSAR frame geometry is not available offline). A frame covers several "
                           "volcanoes: a deformation label may concern another volcano of the frame.",
            "license": "MIT (Hephaestus-minicubes repository); cite Bountos et al. (2022), Hephaestus: a large scale "
                       "multitask dataset towards InSAR understanding, CVPR Workshops (EarthVision)",
            "provenance": {"source": {"repository": REPO, "commit": COMMIT,
                                      "path": "dataset/annotations.tar.gz, dataset/frame_names.json"},
                           "annotator_expertise": "expert", "frames": {f: frames[f] for f in ids},
                           "window": [f"{start:%Y-%m-%d}", f"{end:%Y-%m-%d}"]},
            "labels": kept,
        }
        if not kept:
            print(eid, ids, "no interferogram in the window: nothing written")
            continue
        target = ROOT / "catalog" / "annotations" / eid / "hephaestus-insar-v1.json"
        head = json.dumps({k: v for k, v in doc.items() if k != "labels"}, indent=2, ensure_ascii=False)[:-2]
        body = ",\n".join("    " + json.dumps(a, ensure_ascii=False, separators=(",", ":")) for a in kept)
        write_text(target, f'{head},\n  "labels": [\n{body}\n  ]\n}}\n')
        print(eid, ids, len(kept))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
