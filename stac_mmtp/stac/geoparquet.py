"""stac-geoparquet: one `items.parquet` per collection, and queries on it with no server.

A static catalog cannot answer `search()`. Each collection of the built tree carries its items as a
stac-geoparquet file (asset role `stac-items`), written with rustac. Properties become columns
(`mmtp:phenomenon`, `mmtp:event_id`, `mmtp:temporal_role`, ...), so a query reads a few columns of
one file instead of thousands of JSON documents. Queries go through rustac's DuckDB client, the
same engine `stac-mmtp serve` (stac-fastapi-geoparquet) uses.

Hrefs in the parquet are relative to the parquet file (`./<item>/red.tif`), like the JSON tree,
so the file stays valid wherever the release is published; readers resolve them against the
file's own URL (`absolutize`).
"""

from __future__ import annotations

import importlib
import json
import os
import posixpath
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from stac_mmtp.atomic import staged_file
from stac_mmtp.errors import InputError, MmtpError

PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
ITEMS_ASSET = "geoparquet-items"
# DuckDB extensions come from PyPI wheels (duckdb-extension-*), not from extensions.duckdb.org:
# CI and users behind a firewall reach the package index only. Their version must equal the
# DuckDB bundled in rustac (rustac 0.9.17 bundles DuckDB 1.5.5; pinned together in pyproject).
DUCKDB_VERSION = "v1.5.5"
DUCKDB_EXTENSIONS = ("spatial", "icu", "parquet")
_STRUCTURAL = {"root", "parent", "collection", "self", "child", "item"}


_URL_SCHEMES = frozenset(("http", "https", "s3", "file"))


def _is_url(href: str) -> bool:
    """`urlparse(href).scheme` in our URL schemes, without urlparse: it was a tenth of a large tree's write."""
    i = href.find(":")
    return i > 0 and href[:i].lower() in _URL_SCHEMES


def _rebase(href: str, prefix: str) -> str:
    """`href` relative to an item directory, made relative to the collection directory."""
    if _is_url(href) or href.startswith("/"):
        return href
    return "./" + posixpath.normpath(posixpath.join(prefix, href))


def parquet_ready(item: dict[str, Any]) -> dict[str, Any]:
    """An item as stored in the collection's parquet: hrefs relative to the collection directory."""
    return _parquet_fix(json.loads(json.dumps(item)))


def _parquet_fix(it: dict[str, Any]) -> dict[str, Any]:
    """`parquet_ready` on a private copy of the item (changed in place)."""
    prefix = it["id"]
    for asset in it.get("assets", {}).values():
        asset["href"] = _rebase(asset["href"], prefix)
    it["links"] = [
        {**lk, "href": _rebase(lk["href"], prefix)} for lk in it.get("links", []) if lk.get("rel") not in _STRUCTURAL
    ]
    # Arrow needs one type per column: label:classes lists class names (vector labels) or mask
    # values (raster labels) in the same collection, so the parquet stores them all as strings.
    for entry in it["properties"].get("label:classes", []):
        entry["classes"] = [str(c) for c in entry.get("classes", [])]
    # STAC writes a NaN nodata as the string "nan"; rustac's typed bands take numbers only, and JSON
    # has no NaN: the parquet copy omits such a nodata (the item JSON and the COG keep it).
    for band in [b for a in it.get("assets", {}).values() for b in a.get("bands", [])] + it["properties"].get(
            "bands", []):
        if isinstance(band.get("nodata"), str):
            del band["nodata"]
    return it


def export_items(items: list[dict[str, Any]], collection_dir: Path) -> Path:
    """Write `collection_dir/items.parquet` (atomically) from the collection's final items."""
    import rustac

    path = collection_dir / "items.parquet"
    with staged_file(path) as tmp:
        rustac.write_sync(str(tmp), [parquet_ready(it) for it in items])
    return path


# Bounds on what one step of the parquet writer holds, whatever the items' size: the JSON of a spill's items
# (1,000 S2 items are 12.5 MB) and the arrow tables of a row group (20,000 S2 items are 119 MiB).
CHUNK_BYTES = 16 << 20
GROUP_BYTES = 128 << 20


class ParquetStream:
    """`items.parquet` written as the items come, in row groups of `rows_per_group` (fewer when their arrow
    tables reach `group_bytes`), in bounded memory.

    Items are added as their JSON bytes (the item file's, so the parquet row is made from exactly what was
    written). Every `chunk` items (fewer when their JSON reaches `chunk_bytes`) go to a spill file written by rustac (its stac-geoparquet conversion and
    geo metadata); a collection that fits one chunk is that file, renamed: the bytes `export_items` writes.
    Larger ones are merged at `close`: one arrow schema unified over every chunk (a column or struct field
    absent from a chunk is null there), so it stays the same across row groups, and the geo metadata merged
    (geometry types, bbox)."""

    def __init__(self, collection_dir: Path, rows_per_group: int = 20_000, chunk: int = 1_000,
                 chunk_bytes: int = CHUNK_BYTES, group_bytes: int = GROUP_BYTES) -> None:
        self.dir = collection_dir
        self.rows_per_group = max(1, rows_per_group)
        self.chunk = max(1, min(chunk, self.rows_per_group))
        self.chunk_bytes, self.group_bytes = chunk_bytes, group_bytes
        self.batch: list[dict[str, Any]] = []
        self.batch_bytes = 0
        self.spills: list[Path] = []
        self.rows = 0

    def add(self, item_json: bytes) -> None:
        try:
            it = orjson.loads(item_json)
        except orjson.JSONDecodeError:  # NaN, which json writes and orjson does not read
            it = json.loads(item_json)
        self.batch.append(_parquet_fix(it))
        self.rows += 1
        self.batch_bytes += len(item_json)
        # by bytes too: an event item links every acquisition of its event (6,000 links each at 1M items)
        if len(self.batch) >= self.chunk or self.batch_bytes >= self.chunk_bytes:
            self._spill()

    def _spill(self) -> None:
        import rustac

        # rustac picks the format from the suffix: .parquet last
        path = self.dir / f".items.part-{len(self.spills):06d}.parquet"
        rustac.write_sync(str(path), self.batch)
        self.spills.append(path)
        self.batch, self.batch_bytes = [], 0

    def close(self) -> Path:
        """Write `items.parquet` (atomically) and return its path."""
        if self.batch:
            self._spill()
        path = self.dir / "items.parquet"
        with staged_file(path) as tmp:
            if len(self.spills) == 1:
                os.replace(self.spills.pop(), tmp)
            else:
                _merge(self.spills, tmp, self.rows_per_group, self.group_bytes)
        return path

    def discard(self) -> None:
        for p in self.spills:
            p.unlink(missing_ok=True)
        self.spills = []


def _merge(spills: list[Path], dst: Path, rows_per_group: int, group_bytes: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # one spill's footer at a time: a footer holds every column chunk's statistics, and a thousand of them
    # (a million items) held together were most of the merge's peak
    schema = merged = keep = codec = None
    for p in spills:
        meta = pq.read_metadata(p)
        s = meta.schema.to_arrow_schema()
        schema = s if schema is None else pa.unify_schemas([schema, s], promote_options="permissive")
        g = json.loads(meta.metadata[b"geo"])
        if merged is None:
            merged, keep = g, {k: v for k, v in (meta.metadata or {}).items() if k != b"ARROW:schema"}
            codec = meta.row_group(0).column(0).compression.lower()
            col = merged["columns"][merged["primary_column"]]
            continue
        other = g["columns"][g["primary_column"]]
        col["geometry_types"] = sorted({*col.get("geometry_types", []), *other.get("geometry_types", [])})
        if "bbox" in col and "bbox" in other:
            a, b = col["bbox"], other["bbox"]
            col["bbox"] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
        del meta
    assert schema is not None and merged is not None and keep is not None and codec is not None
    # columns in order of first appearance (as unify_schemas gives them), the geometry last (as rustac does)
    geom = merged["primary_column"]
    schema = pa.schema([f for f in schema if f.name != geom] + [schema.field(geom)])
    schema = schema.with_metadata({**keep, b"geo": json.dumps(merged, separators=(",", ":")).encode()})
    empty = schema.empty_table()
    with pq.ParquetWriter(str(dst), schema, compression=codec) as writer:
        group: list[Any] = []
        rows = size = 0

        def flush() -> None:
            # each chunk is brought to the unified schema (missing columns and struct fields as nulls)
            table = pa.concat_tables([empty, *group], promote_options="permissive").cast(schema)
            writer.write_table(table, row_group_size=max(1, len(table)))

        for p in spills:
            t = pq.read_table(p)
            group.append(t)
            rows, size = rows + t.num_rows, size + t.nbytes
            if rows >= rows_per_group or size >= group_bytes:
                flush()
                group, rows, size = [], 0, 0
        if group:
            flush()


def absolutize(item: dict[str, Any], base: str) -> dict[str, Any]:
    """Resolve an item's relative hrefs against `base`, the URL (or path) of its parquet file."""
    if not _is_url(base):
        base = Path(base).resolve().as_uri()
    # a parquet column is null where an item has none (events without thumbnails): no assets, not None
    item["assets"] = item.get("assets") or {}
    item["links"] = item.get("links") or []
    for asset in item["assets"].values():
        asset["href"] = urllib.parse.urljoin(base, asset["href"])
    for lk in item["links"]:
        lk["href"] = urllib.parse.urljoin(base, lk["href"])
    return item


def _extension_dir() -> Path:
    """A DuckDB extension directory assembled (by symlinks) from the installed extension wheels."""
    root = Path(os.environ.get("STAC_MMTP_CACHE", Path.home() / ".cache" / "stac-mmtp")) / "duckdb-extensions"
    platform = "linux_arm64" if os.uname().machine in ("aarch64", "arm64") else "linux_amd64"
    target = root / DUCKDB_VERSION / platform
    target.mkdir(parents=True, exist_ok=True)
    for name in DUCKDB_EXTENSIONS:
        try:
            mod = importlib.import_module(f"duckdb_extension_{name}")
        except ModuleNotFoundError as exc:
            raise MmtpError(f"the DuckDB extension {name!r} is missing: pip install 'duckdb-extension-{name}"
                            f"=={DUCKDB_VERSION[1:]}'") from exc
        src = Path(mod.__file__).parent / "extensions" / DUCKDB_VERSION / f"{name}.duckdb_extension"
        link = target / src.name
        if not link.exists():
            tmp = target / f".{src.name}.{os.getpid()}"
            os.symlink(src, tmp)
            os.replace(tmp, link)
    return root


def duckdb_client() -> Any:
    """rustac's DuckDB client, offline: extensions from the local wheels, never downloaded."""
    import rustac

    return rustac.DuckdbClient(extension_directory=_extension_dir(), install_extensions=False,
                               extensions=list(DUCKDB_EXTENSIONS))


def _read_json(href: str) -> dict[str, Any]:
    try:
        if _is_url(href) and not href.startswith("file:"):
            with urllib.request.urlopen(href, timeout=30) as resp:  # noqa: S310 (http(s) only)
                return json.load(resp)
        path = Path(urllib.parse.urlparse(href).path) if href.startswith("file:") else Path(href)
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read STAC JSON: {exc}", href) from exc


def collection_parquets(root: str) -> dict[str, str]:
    """collection id -> href of its items parquet, for a built tree (dir) or a published root URL."""
    if not _is_url(root):
        p = Path(root)
        root = str(p / "catalog.json") if p.is_dir() else str(p)
    elif not root.endswith(".json"):
        root = root.rstrip("/") + "/catalog.json"
    catalog = _read_json(root)
    out: dict[str, str] = {}
    for link in catalog.get("links", []):
        if link.get("rel") != "child":
            continue
        coll_href = _join(root, link["href"])
        coll = _read_json(coll_href)
        for asset in coll.get("assets", {}).values():
            if "stac-items" in asset.get("roles", []) and asset.get("type") == PARQUET_MEDIA_TYPE:
                out[coll["id"]] = _join(coll_href, asset["href"])
    if not out:
        raise InputError("no collection of this catalog has a stac-geoparquet asset (role stac-items)", root)
    return out


def _join(base: str, href: str) -> str:
    if _is_url(base):
        return urllib.parse.urljoin(base, href)
    return str((Path(base).parent / href).resolve())


def local_copy(href: str, workdir: Path) -> str:
    """DuckDB reads local files (and HTTP through httpfs, which needs a download): fetch URLs once."""
    if not _is_url(href) or href.startswith("file:"):
        return href
    dst = workdir / (urllib.parse.quote(href, safe="") + ".parquet")
    if not dst.exists():
        with urllib.request.urlopen(href, timeout=60) as resp, staged_file(dst) as tmp:  # noqa: S310
            tmp.write_bytes(resp.read())
    return str(dst)


def search(
    root: str,
    *,
    bbox: list[float] | None = None,
    datetime: str | None = None,
    collections: list[str] | None = None,
    ids: list[str] | None = None,
    filter: dict[str, Any] | str | None = None,  # noqa: A002 (the STAC API name)
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Items of a built or published catalog matching a STAC API-like query, straight from parquet."""
    hrefs = collection_parquets(root)
    unknown = sorted(set(collections or []) - set(hrefs))
    if unknown:
        raise InputError(f"unknown collection(s) {', '.join(unknown)}; known: {', '.join(sorted(hrefs))}", root)
    client = duckdb_client()
    kwargs: dict[str, Any] = {k: v for k, v in {"bbox": bbox, "datetime": datetime, "ids": ids,
                                                "filter": filter}.items() if v is not None}
    found: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="stac-mmtp-search-") as tmp:
        for cid in collections or sorted(hrefs):
            local = local_copy(hrefs[cid], Path(tmp))
            for it in client.search(local, **kwargs):
                it["collection"] = cid
                found.append(absolutize(it, hrefs[cid]))
                if limit and len(found) >= limit:
                    return found
    return found
