"""The training index: a release's stac-geoparquet files, read once, filtered in memory.

No catalog walk and no STAC API: each collection's `items.parquet` (asset role `stac-items`) holds
every item with its assets, so one small download per collection gives the whole index, for a
local build or a published release (http(s)://, or s3://bucket/prefix read with boto3: endpoint
from the `endpoint_url` option or AWS_ENDPOINT_URL, anonymous unless credentials are found).
"""

from __future__ import annotations

import json
import tempfile
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stac_mmtp.access.ml import remote
from stac_mmtp.errors import InputError
from stac_mmtp.stac.geoparquet import PARQUET_MEDIA_TYPE, absolutize, collection_parquets, local_copy

IMAGERY = ("sentinel-2", "sentinel-1", "flatsim")
LABELS = "annotations"


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def readable_href(href: str) -> str:
    """An asset href as rasterio opens it: a local path for file:// URIs, the URL otherwise."""
    if href.startswith("file:"):
        return urllib.parse.unquote(urllib.parse.urlparse(href).path)
    return href


@dataclass(frozen=True)
class Entry:
    """One item of the index: what the samplers need, plain data (picklable, no open handles)."""

    id: str
    collection: str
    datetime: datetime
    properties: dict[str, Any] = field(repr=False)
    assets: dict[str, dict[str, Any]] = field(repr=False)
    links: tuple[dict[str, Any], ...] = field(repr=False, default=())
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    band: int = 1  # the band read from each asset: >1 for one date of a multi-band time series

    def series(self, key: str) -> list[Entry]:
        """One entry per band of asset `key` when it is a time series (FLATSIM displacement: one band
        per date, named YYYYMMDD); else [self]."""
        bands = self.assets.get(key, {}).get("bands") or []
        dates = [b.get("name", "") for b in bands]
        if len(bands) < 2 or not all(len(d) == 8 and d.isdigit() for d in dates):
            return [self]
        return [replace(self, band=i + 1, datetime=datetime.strptime(d, "%Y%m%d").replace(tzinfo=UTC))
                for i, d in enumerate(dates)]

    @property
    def event_id(self) -> str | None:
        return self.properties.get("mmtp:event_id")

    @property
    def temporal_role(self) -> str | None:
        return self.properties.get("mmtp:temporal_role")

    @property
    def split(self) -> str | None:
        return self.properties.get("ml-aoi:split")

    @property
    def phenomenon(self) -> str | None:
        return self.properties.get("mmtp:phenomenon")

    def href(self, key: str) -> str:
        try:
            return readable_href(self.assets[key]["href"])
        except KeyError:
            raise InputError(f"no asset {key!r} (has {', '.join(sorted(self.assets))})", self.id) from None


def _entry(item: dict[str, Any], collection: str) -> Entry:
    props = item.get("properties", {})
    when = _when(props.get("datetime") or props.get("start_datetime"))
    assets = {k: a for k, a in item.get("assets", {}).items() if a}  # the parquet stores absent keys as null
    bbox = item.get("bbox") or [0, 0, 0, 0]
    if isinstance(bbox, dict):
        bbox = [bbox["xmin"], bbox["ymin"], bbox["xmax"], bbox["ymax"]]
    return Entry(id=item["id"], collection=collection, datetime=when, properties=props, assets=assets,
                 links=tuple(item.get("links", [])), bbox=tuple(float(v) for v in bbox[:4]))


def _s3_json(href: str) -> dict[str, Any]:
    try:
        return json.loads(remote.get_all(href))
    except ValueError as exc:
        raise InputError(f"cannot read STAC JSON: {exc}", href) from exc


def _s3_parquets(root: str) -> dict[str, str]:
    """`collection_parquets` of an s3:// release (the stac layer reads http(s) and files only)."""
    root = root if root.endswith(".json") else root.rstrip("/") + "/catalog.json"
    out: dict[str, str] = {}
    for link in _s3_json(root).get("links", []):
        if link.get("rel") == "child":
            coll_href = remote.join(root, link["href"])
            coll = _s3_json(coll_href)
            for asset in coll.get("assets", {}).values():
                if "stac-items" in asset.get("roles", []) and asset.get("type") == PARQUET_MEDIA_TYPE:
                    out[coll["id"]] = remote.join(coll_href, asset["href"])
    if not out:
        raise InputError("no collection of this catalog has a stac-geoparquet asset (role stac-items)", root)
    return out


def _s3_absolutize(item: dict[str, Any], base: str) -> dict[str, Any]:
    item["assets"] = item.get("assets") or {}
    item["links"] = item.get("links") or []
    for obj in [*item["assets"].values(), *item["links"]]:
        obj["href"] = remote.join(base, obj["href"])
    return item


def _read_parquet(href: str) -> list[dict[str, Any]]:
    import rustac

    with tempfile.TemporaryDirectory(prefix="stac-mmtp-index-") as tmp:
        if href.startswith("s3://"):
            local = str(Path(tmp) / "items.parquet")
            Path(local).write_bytes(remote.get_all(href))
        else:  # a fresh copy per load: a re-published release is never stale
            local = local_copy(href, Path(tmp))
        try:
            doc = rustac.read_sync(readable_href(local))
        except Exception as exc:  # rustac raises its own error types for unreadable parquet
            raise InputError(f"cannot read the stac-geoparquet index: {exc}", href) from exc
    fix = _s3_absolutize if href.startswith("s3://") else absolutize
    return [fix(it, href) for it in doc.get("features", [])]


class Index:
    """Items of a release (local build dir, `catalog.json` path or URL, s3://bucket/prefix), from its
    parquet files. `endpoint_url`: the S3 endpoint of an s3:// release (else AWS_ENDPOINT_URL, else AWS)."""

    def __init__(self, release: str | Path | None = None, collections: Sequence[str] | None = None,
                 entries: Iterable[Entry] | None = None, endpoint_url: str | None = None):
        self.release = str(release) if release is not None else None
        self.endpoint_url = endpoint_url
        if entries is not None:
            self.entries = list(entries)
            return
        if release is None:
            raise InputError("an Index needs a release (build directory, catalog.json or URL)", "Index")
        if endpoint_url is not None:
            remote.configure_s3(endpoint_url)
        release = str(release)
        hrefs = _s3_parquets(release) if release.startswith("s3://") else collection_parquets(release)
        wanted = list(collections) if collections else [c for c in hrefs if c != "events"]
        unknown = sorted(set(wanted) - set(hrefs))
        if unknown:
            raise InputError(f"no stac-geoparquet for collection(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(hrefs))}", str(release))
        self.entries = sorted((_entry(it, cid) for cid in wanted for it in _read_parquet(hrefs[cid])),
                              key=lambda e: (e.collection, e.datetime, e.id))

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __getitem__(self, item_id: str) -> Entry:
        for e in self.entries:
            if e.id == item_id:
                return e
        raise KeyError(item_id)

    def filter(self, *, split: str | Sequence[str] | None = None, phenomenon: str | Sequence[str] | None = None,
               event: str | Sequence[str] | None = None, temporal_role: str | Sequence[str] | None = None,
               modality: str | Sequence[str] | None = None, datetime: tuple[Any, Any] | str | None = None,
               bbox: Sequence[float] | None = None) -> Index:
        """A new index with the entries matching every given filter (a str or a set of accepted values).

        `datetime`: (start, end) or "start/end" ISO strings, either open (None or ".."); `bbox`:
        lon/lat [west, south, east, north], kept when the item's bbox intersects it.
        """
        def accept(values: str | Sequence[str] | None) -> set[str] | None:
            return None if values is None else {values} if isinstance(values, str) else set(values)

        tests = [(accept(split), "split"), (accept(phenomenon), "phenomenon"), (accept(event), "event_id"),
                 (accept(temporal_role), "temporal_role"), (accept(modality), "collection")]
        start = end = None
        if datetime is not None:
            lo, hi = datetime.split("/") if isinstance(datetime, str) else datetime
            start = None if lo in (None, "..", "") else _when(lo)
            end = None if hi in (None, "..", "") else _when(hi)
        kept = []
        for e in self.entries:
            if any(ok is not None and getattr(e, attr) not in ok for ok, attr in tests):
                continue
            if (start and e.datetime < start) or (end and e.datetime > end):
                continue
            if bbox is not None and (e.bbox[0] > bbox[2] or e.bbox[2] < bbox[0] or e.bbox[1] > bbox[3]
                                     or e.bbox[3] < bbox[1]):
                continue
            kept.append(e)
        return Index(self.release, entries=kept, endpoint_url=self.endpoint_url)
