"""What the Sentinel-1 and Sentinel-2 modules share: SAFE XML reading, UTC times, the Copernicus
licence and providers, and the XFDU manifest's data-object list written by the sample products."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from stac_mmtp.errors import ProductError
from stac_mmtp.sources.product_fs import ProductFS

COPERNICUS_LICENSE = "https://sentinels.copernicus.eu/documents/247904/690755/Sentinel_Data_Legal_Notice"


def parse_xml(fs: ProductFS, rel: str) -> ET.Element:
    """The root element, with namespaces dropped: they differ between manifest versions and MTD baselines."""
    data = fs.read_bytes(rel)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ProductError(f"malformed XML ({exc})", fs.display(rel)) from None
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


def utc(value: str) -> datetime:
    """An ISO time as aware UTC; Sentinel-1 writes UTC without a zone (`2021-08-09T17:39:53.153776`)."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def iso(dt: datetime) -> str:
    """STAC date-time: UTC with `Z`, fractional seconds only as far as they go."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".") + "Z"


def license_link(item: bool = True) -> dict[str, Any]:
    """The Copernicus Sentinel data legal notice; an item's says it holds modified data."""
    title = "Legal notice on the use of Copernicus Sentinel data"
    return {"rel": "license", "href": COPERNICUS_LICENSE, "type": "application/pdf",
            "title": title + " (contains modified Copernicus Sentinel data)" if item else title}


def esa_providers(mission: str) -> list[dict[str, Any]]:
    """ESA as producer and licensor of `mission` (e.g. "sentinel-1"), this project as processor."""
    return [{"name": "ESA", "roles": ["producer", "licensor"], "url": f"https://sentinel.esa.int/web/sentinel/missions/{mission}"},
            {"name": "stac-mmtp", "roles": ["processor"]}]


def manifest_data_objects(safe: Path, object_id: Callable[[int, str], str], mime: Callable[[str], str],
                          md5_upper: bool = False) -> str:
    """The XFDU `<dataObject>` entries of every file under `safe` but the manifest: size and MD5, as real ones."""
    objects = []
    for i, p in enumerate(sorted(q for q in safe.rglob("*") if q.is_file() and q.name != "manifest.safe")):
        rel = p.relative_to(safe).as_posix()
        md5 = hashlib.md5(p.read_bytes()).hexdigest()
        objects.append(f"""    <dataObject ID="{object_id(i, rel)}">
      <byteStream mimeType="{mime(rel)}" size="{p.stat().st_size}">
        <fileLocation locatorType="URL" href="./{escape(rel)}"/>
        <checksum checksumName="MD5">{md5.upper() if md5_upper else md5}</checksum>
      </byteStream>
    </dataObject>""")
    return "\n".join(objects)
