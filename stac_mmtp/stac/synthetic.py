"""Synthetic sample products: the marker they carry, and what every STAC object made from them says.

`stac-mmtp sample` writes format-faithful products whose pixels and acquisition metadata are made up.
Each carries a small sidecar file at its root, `STAC-MMTP-SYNTHETIC.json` (beside `manifest.safe` /
the MTD file / the FLATSIM rasters, inside the zip when zipped): the readers look for it, so a sample
is known as synthetic however it is copied, zipped or renamed. Real products never hold that file.
Objects built from a sample then carry `mmtp:synthetic: true`, say so in their title and description,
name stac-mmtp as their producer and licensor (CC-BY-4.0), and link to no real provider's product,
DOI or licence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from stac_mmtp import __version__

if TYPE_CHECKING:
    from stac_mmtp.sources.product_fs import ProductFS

MARKER = "STAC-MMTP-SYNTHETIC.json"
FIELD = "mmtp:synthetic"
PREFIX = "Synthetic sample"
LICENSE = "CC-BY-4.0"
LICENSE_LINK = {"rel": "license", "href": "https://spdx.org/licenses/CC-BY-4.0.html", "type": "text/html",
                "title": "CC BY 4.0: synthetic sample written by stac-mmtp (no third-party data)"}
PROVIDERS = [{"name": "stac-mmtp contributors", "roles": ["producer", "processor", "licensor"],
              "description": "Synthetic sample products written by `stac-mmtp sample`; not observations."}]
# Links that point to a real provider's product, DOI or licence: a synthetic object has none of them.
REAL_RELS = ("via", "derived_from", "cite-as", "license")
# Properties that would credit a real processor or publication.
REAL_FIELDS = ("sci:doi", "sci:citation", "sci:publications", "processing:facility")
SCIENTIFIC_PREFIX = "https://stac-extensions.github.io/scientific/"


@dataclass(frozen=True)
class Family:
    what: str  # the product format imitated
    derived: tuple[str, ...]  # metadata computed from the pixels the sample writer wrote
    invented: tuple[str, ...]  # metadata the sample writer made up


FAMILIES: dict[str, Family] = {
    "sentinel-2": Family(
        "a Sentinel-2 MSI SAFE product (format-faithful: same layout, MTD files and JPEG 2000 bands)",
        ("eo:cloud_cover (SCL classes 8, 9 and 10 over the valid SCL pixels for L2A, the cloud pixels written "
         "into the bands for L1C)", "s2:nodata_pixel_percentage (the no-data strip written)"),
        ("every pixel value", "acquisition and generation times", "platform and relative orbit", "tile, datastrip "
         "and granule ids", "sun and viewing angles", "processing baseline")),
    "sentinel-1": Family(
        "a Sentinel-1 IW GRD SAFE product (format-faithful: same manifest, annotation, calibration and noise "
        "files and measurement TIFFs with GCPs)",
        ("the geolocation grid (computed from the scene geometry the writer used)",),
        ("every pixel value (speckled sigma0)", "platform and its international designator", "acquisition times", "absolute and relative orbits", "datatake id",
         "slice numbers", "platform heading", "incidence angles", "calibration and noise LUTs", "IPF version")),
    "flatsim": Family(
        "a FLATSIM (NSBAS) InSAR package (format-faithful: same package and file names, .meta sidecars and "
        "list_images.txt)",
        ("wrapped phase, coherence and displacement (computed from the synthetic velocity and DEM)",),
        ("every pixel value", "acquisition dates", "track", "perpendicular baselines")),
}


# ---------------------------------------------------------------- the product marker


def write_marker(root: Path, family: str) -> Path:
    """Write the marker at the root of a sample product directory (before it is zipped, if it is)."""
    fam = FAMILIES[family]
    doc = {
        "synthetic": True,
        "family": family,
        "written_by": f"stac-mmtp {__version__} (stac-mmtp sample)",
        "statement": f"{PREFIX}: {fam.what}, written by stac-mmtp. Not an observation and not a product of "
                     "ESA, CNES or any data provider; its names and metadata only imitate the format.",
        "license": LICENSE,
        "derived_from_pixels": list(fam.derived),
        "invented": list(fam.invented),
    }
    path = root / MARKER
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path


def is_synthetic(fs: ProductFS) -> bool:
    """Does the product hold the marker at its root (or, in a zip, in the folder holding the product)?"""
    return any(PurePosixPath(n).name == MARKER and n.count("/") <= 1 for n in fs.names)


# ---------------------------------------------------------------- STAC objects


def describe(family: str) -> str:
    fam = FAMILIES[family]
    return (f"{PREFIX}: made from {fam.what} written by `stac-mmtp sample`. Not an observation: its pixels and "
            f"acquisition metadata are synthetic. Invented: {'; '.join(fam.invented)}. Computed from the written "
            f"pixels: {'; '.join(fam.derived)}.")


def mark_item(item: dict[str, Any], family: str, schema_uri: str) -> dict[str, Any]:
    """Make an item built from a sample say so: marker, words, own provenance, no link to a real product."""
    props = item["properties"]
    props[FIELD] = True
    props["description"] = describe(family)
    if props.get("title") and not props["title"].startswith(PREFIX):
        props["title"] = f"{PREFIX}: {props['title']}"
    for key in REAL_FIELDS:
        props.pop(key, None)
    software = {k: v for k, v in (props.get("processing:software") or {}).items() if k == "stac-mmtp"}
    if software:
        props["processing:software"] = software
    else:
        props.pop("processing:software", None)
    props["license"] = LICENSE
    props["providers"] = [dict(p) for p in PROVIDERS]
    item["links"] = [lk for lk in item.get("links", []) if lk.get("rel") not in REAL_RELS] + [dict(LICENSE_LINK)]
    exts = [e for e in item.get("stac_extensions", []) if not e.startswith(SCIENTIFIC_PREFIX)]
    item["stac_extensions"] = exts if schema_uri in exts else [*exts, schema_uri]
    return item


def is_synthetic_item(item: dict[str, Any]) -> bool:
    return item.get("properties", {}).get(FIELD) is True


def _counts(items: Any) -> tuple[int, int]:
    """(synthetic items, items) of a list of items or of a stac.tree.ItemStats (which counted them)."""
    if hasattr(items, "synthetic"):
        return items.synthetic, items.count
    items = list(items)
    return sum(is_synthetic_item(it) for it in items), len(items)


def mark_collection(coll: dict[str, Any], items: Any, sample_meta: dict[str, Any] | None) -> None:
    """A collection of sample items only takes the sample metadata (`sample_meta`: title, description,
    licence, providers, links); one that mixes them with other items keeps its metadata and says how
    many of its items are synthetic. Either way it carries `mmtp:synthetic: true` (it holds synthetic items).
    `items`: a list of items or a stac.tree.ItemStats."""
    n, total = _counts(items)
    if not n:
        return
    coll[FIELD] = True
    if n == total and sample_meta is not None:
        for key in REAL_FIELDS:
            coll.pop(key, None)
        coll.update({k: v for k, v in sample_meta.items() if k not in ("id", "links")})
        coll["links"] = [lk for lk in coll.get("links", []) if lk.get("rel") not in REAL_RELS]
        coll["links"] += sample_meta.get("links", [dict(LICENSE_LINK)])
        coll["stac_extensions"] = [e for e in coll.get("stac_extensions", []) if not e.startswith(SCIENTIFIC_PREFIX)]
        return
    coll["description"] = (f"{PREFIX} items included: {n} of the {total} items of this collection are made "
                           f"from synthetic sample products (they carry {FIELD}: true). " + coll.get("description", ""))


def mark_catalog(catalog: dict[str, Any], items: Any, schema_uri: str) -> None:
    """The root catalog of a build that holds any synthetic item says so first thing in its description.
    `items`: the items (any iterable) or (synthetic, total) counts."""
    n, total = items if isinstance(items, tuple) else _counts(items)
    if not n:
        return
    catalog[FIELD] = True
    catalog["stac_extensions"] = sorted({*catalog.get("stac_extensions", []), schema_uri})
    catalog["description"] = (
        f"{PREFIX} build: {n} of its {total} items are made from synthetic, format-faithful sample products "
        f"written by `stac-mmtp sample` (they carry {FIELD}: true and their titles begin with \"{PREFIX}\"): "
        "their pixels and acquisition metadata are not observations. The events are real; the real dataset is "
        "built from real products. " + catalog.get("description", ""))
