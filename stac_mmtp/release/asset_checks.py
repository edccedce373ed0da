"""Check the bytes behind a STAC object's local assets against what its JSON says about them.

For every local asset: the file exists, `file:size` and `file:checksum` (sha2-256 multihash) match,
a COG is a valid Cloud-Optimized GeoTIFF (rio-cogeo's validator), and a GeoTIFF's `proj:*`
(code, shape, transform, bbox) and `bands` / `raster:bands` (data_type, nodata, count) agree with
the file. Valid-JSON metadata over garbage bytes is exactly what a schema cannot see.

Results are cached (digests.Cache, "valid" table) under a key made of the file's stat key (path,
size, mtime, inode) and the asset's JSON: an untouched asset with unchanged metadata is not read
again. File digests go to the same digest table `publish` reads, so a publish after a validate
hashes nothing again.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stac_mmtp.digests import Cache, stat_key

COG_PROFILE = "profile=cloud-optimized"
SHA256_MULTIHASH = "1220"
CHECK_VERSION = "asset-check-v1"  # bump when the checks change: cached "valid" results then expire


@dataclass
class AssetRef:
    """One local asset of one object: where the JSON is (`where`), the asset key and its fields."""

    where: str  # the object's path relative to the tree root (what a Problem names)
    key: str
    href: str
    path: str  # absolute path of the file
    asset: dict[str, Any]
    defaults: dict[str, Any]  # item-level proj:* fields (apply to an asset that does not override them)


def local_assets(json_path: Path, where: str, obj: dict[str, Any]) -> list[AssetRef]:
    here = os.path.dirname(json_path)
    props = obj.get("properties") if obj.get("type") == "Feature" else obj
    defaults = {k: v for k, v in (props or {}).items() if isinstance(k, str) and k.startswith("proj:")}
    out = []
    for key, asset in (obj.get("assets") or {}).items():
        if not isinstance(asset, dict):
            continue
        href = asset.get("href", "")
        if not isinstance(href, str) or not href or "://" in href or href.startswith("/"):
            continue
        out.append(AssetRef(where, key, href, os.path.normpath(os.path.join(here, href)), asset, defaults))
    return out


def _close(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol


def _same_nodata(declared: Any, actual: float | None) -> bool:
    if declared is None:
        return actual is None
    if actual is None:
        return False
    if isinstance(declared, str):
        value = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}.get(declared)
        if value is None:
            return False
        declared = value
    if isinstance(declared, bool) or not isinstance(declared, int | float):
        return False
    if math.isnan(declared) or math.isnan(actual):
        return math.isnan(declared) and math.isnan(actual)
    return declared == actual


def _raster_problems(ref: AssetRef) -> list[str]:
    """proj:* and band fields against the file (rasterio), and COG validity for a COG media type."""
    import rasterio
    from rasterio.crs import CRS

    a = ref.asset
    out: list[str] = []
    media = str(a.get("type", ""))
    try:
        ds = rasterio.open(ref.path)
    except Exception as exc:  # noqa: BLE001 - rasterio raises several classes for unreadable bytes
        reason = str(exc).splitlines()[0].replace(f"'{ref.path}' ", "").replace(ref.path, ref.href)
        return [f"not a readable GeoTIFF ({reason[:200]})"]
    with ds:
        if COG_PROFILE in media:
            from rio_cogeo.cogeo import cog_validate

            try:
                valid, errors, _warnings = cog_validate(ref.path, quiet=True)
            except Exception as exc:  # noqa: BLE001
                valid, errors = False, [str(exc).splitlines()[0][:200]]
            if not valid:
                out.append("type says Cloud-Optimized GeoTIFF, the file is not one: " + "; ".join(errors)[:300])
        fields = {**ref.defaults, **{k: v for k, v in a.items() if k.startswith("proj:")}}
        code = fields.get("proj:code")
        if code is not None:
            try:
                same = ds.crs is not None and ds.crs == CRS.from_user_input(code)
            except Exception:  # noqa: BLE001 - an unknown code is a mismatch
                same = False
            if not same:
                actual = f"EPSG:{ds.crs.to_epsg()}" if ds.crs is not None and ds.crs.to_epsg() else (ds.crs or "no CRS")
                out.append(f"proj:code {code} in the metadata, the file has {actual}")
        shape = fields.get("proj:shape")
        if shape is not None and list(shape) != [ds.height, ds.width]:
            out.append(f"proj:shape {list(shape)} in the metadata, the file has {[ds.height, ds.width]}")
        t = ds.transform
        pixel = max(abs(t.a), abs(t.e), 1e-12)
        transform = fields.get("proj:transform")
        if transform is not None:
            actual_t = [t.a, t.b, t.c, t.d, t.e, t.f]
            if len(transform) < 6 or not all(_close(float(x), y, 1e-6 * max(1.0, abs(y))) for x, y in
                                             zip(transform[:6], actual_t, strict=False)):
                out.append(f"proj:transform {list(transform)[:6]} in the metadata, the file has {actual_t}")
        bbox = fields.get("proj:bbox")
        if bbox is not None:
            b = ds.bounds
            actual_b = [b.left, b.bottom, b.right, b.top]
            if len(bbox) != 4 or not all(_close(float(x), y, 0.01 * pixel) for x, y in zip(bbox, actual_b, strict=False)):
                out.append(f"proj:bbox {list(bbox)} in the metadata, the file has {actual_b}")
        for name in ("bands", "raster:bands"):
            bands = a.get(name)
            if not isinstance(bands, list):
                continue
            if len(bands) != ds.count:
                out.append(f"{name} lists {len(bands)} band(s), the file has {ds.count}")
                continue
            for i, band in enumerate(bands):
                if not isinstance(band, dict):
                    continue
                dtype = band.get("data_type", a.get("data_type"))
                if dtype is not None and dtype != ds.dtypes[i]:
                    out.append(f"{name}/{i}/data_type {dtype} in the metadata, the file has {ds.dtypes[i]}")
                if "nodata" in band or "nodata" in a:
                    nodata = band.get("nodata", a.get("nodata"))
                    if not _same_nodata(nodata, ds.nodatavals[i]):
                        out.append(f"{name}/{i}/nodata {nodata!r} in the metadata, the file has {ds.nodatavals[i]!r}")
    return out


def _check(ref: AssetRef, st: os.stat_result, cache: Cache, variant: str, hash_file: Any) -> list[str]:
    a = ref.asset
    out: list[str] = []
    size = a.get("file:size")
    if size is not None and size != st.st_size:
        out.append(f"file:size {size} in the metadata, the file has {st.st_size} bytes")
    checksum = a.get("file:checksum")
    if checksum is not None:
        if not isinstance(checksum, str) or not checksum.startswith(SHA256_MULTIHASH) or len(checksum) != 68:
            out.append(f"file:checksum {checksum!r} is not a sha2-256 multihash (1220 + 64 hex digits)")
        else:
            dkey = stat_key(ref.path, st, variant)
            known = cache.digest(dkey)
            if known is None:
                sha, etag, _ = hash_file(Path(ref.path))
                cache.put_digest(dkey, sha, etag)
            else:
                sha = known[0]
            if checksum[4:].lower() != sha:
                out.append(f"file:checksum {checksum} in the metadata, the file's sha2-256 is {SHA256_MULTIHASH}{sha}")
    media = str(a.get("type", ""))
    if media.startswith("image/tiff") or ref.path.lower().endswith((".tif", ".tiff")):
        out += _raster_problems(ref)
    return out


def check_assets(refs: list[AssetRef], jobs: int | None = None) -> list[tuple[str, str]]:
    """(object path, message) for every problem of these assets; each message names the asset, its
    file and the field. Assets found fine before with the same bytes and metadata are skipped."""
    from stac_mmtp.release.publish.scan import DIGEST_VARIANT, hash_file

    cache = Cache()
    problems: list[tuple[str, str]] = []
    todo: list[tuple[AssetRef, os.stat_result, str]] = []
    for ref in refs:
        try:
            st = os.stat(ref.path)
        except OSError:
            problems.append((ref.where, f"asset {ref.key!r}: file {ref.href!r} does not exist"))
            continue
        if not os.path.isfile(ref.path):
            problems.append((ref.where, f"asset {ref.key!r}: {ref.href!r} is not a file"))
            continue
        meta = json.dumps([ref.asset, ref.defaults], sort_keys=True, default=str)
        key = hashlib.sha256(f"{CHECK_VERSION}\0{stat_key(ref.path, st, '')}\0{meta}".encode()).hexdigest()
        todo.append((ref, st, key))
    known = cache.valid_keys(k for *_, k in todo)
    todo = [t for t in todo if t[2] not in known]
    workers = jobs or max(1, min(4, (os.cpu_count() or 2) // 2))

    def one(t: tuple[AssetRef, os.stat_result, str]) -> list[str]:
        return _check(t[0], t[1], cache, DIGEST_VARIANT, hash_file)

    with cf.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one, todo))
    fine = []
    for (ref, _st, key), found in zip(todo, results, strict=True):
        if found:
            problems += [(ref.where, f"asset {ref.key!r} ({ref.href}): {msg}") for msg in found]
        else:
            fine.append(key)
    cache.add_valid(fine)
    return problems
