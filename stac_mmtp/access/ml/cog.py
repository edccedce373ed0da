"""COG windows without GDAL: a cached header, then one range read per run of adjacent tiles.

The header (IFDs of the full resolution and its overviews: tile size, TileOffsets/TileByteCounts,
dtype, compression, predictor, nodata, geotransform, CRS) is parsed by tifffile from the first
bytes of the file, one range read, then kept in memory and, for remote files, in a local cache dir
(`$STAC_MMTP_CACHE/cog-headers/`, else `~/.cache/stac-mmtp/cog-headers/`) keyed by the URL and
checked against the object's version (ETag, else its size): a worker process or a later run reads
no header again, and every tile response carries the version, so a re-published object drops
its stale header (and its tiles) and is read again. Tiles are decoded by imagecodecs through
tifffile's codec tables (deflate/LZW/zstd/..., horizontal and floating-point predictors) and kept
in a per-process LRU of decoded tiles (`TILE_CACHE_BYTES`).

Only what this reads exactly as GDAL does is accepted (`header()` returns None otherwise, and the
caller falls back to GDAL): tiled, chunky, no rotation, PixelIsArea, an EPSG code, and the codecs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stac_mmtp.access.ml import remote
from stac_mmtp.errors import InputError

HEADER_BYTES = 64 * 1024  # a GDAL COG keeps every IFD and tag array before the tile data
MAX_HEADER_BYTES = 16 * 1024 * 1024
MERGE_GAP = 16 * 1024  # tiles closer than this in the file are fetched in one request
TILE_CACHE_BYTES = 256 * 1024 * 1024
STATS = {"requests": 0, "bytes": 0, "header_reads": 0, "tiles_decoded": 0, "decode_s": 0.0}

_headers: dict[str, Header | None] = {}
_tiles: OrderedDict[tuple[str, int, int], np.ndarray] = OrderedDict()
# per cached tile: its count of invalid pixels per band and, when any, its valid mask and per row the
# span of its invalid pixels (built once per decoded tile: a chip clear of nodata costs no comparison
# of its pixels); the masks' bytes count in the tile cache's budget
_valid: dict[tuple[str, int, int], tuple[tuple[int, ...], Any]] = {}
_tile_bytes = 0
_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pid = -1
_warm = False


class StaleHeader(Exception):
    """The object changed since its header was cached."""


@dataclass(frozen=True)
class Level:
    width: int
    height: int
    offsets: tuple[int, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class Header:
    href: str
    version: str
    width: int
    height: int
    tile_width: int
    tile_height: int
    samples: int
    dtype: str  # with the file's byte order, e.g. "<u2"
    compression: int
    predictor: int
    nodata: float | None
    transform: tuple[float, float, float, float, float, float]
    crs: str
    levels: tuple[Level, ...]  # [0] full resolution, then the overviews

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Header:
        doc = dict(doc)
        doc["levels"] = tuple(Level(lv["width"], lv["height"], tuple(lv["offsets"]), tuple(lv["counts"]))
                              for lv in doc["levels"])
        doc["transform"] = tuple(doc["transform"])
        return cls(**doc)


class Unsupported(Exception):
    pass


def _parse(href: str, data: bytes, version: str) -> Header:
    """The header from the file's first bytes (IndexError/ValueError/... when they are too few)."""
    import tifffile
    from tifffile import TIFF

    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        pages = [p for p in tif.pages if not (p.subfiletype & 4)]  # internal masks aside
        first = pages[0]
        if not first.is_tiled or first.planarconfig != 1 or first.imagedepth != 1:
            raise Unsupported("not tiled chunky 2-D")
        try:  # KeyError: a codec tifffile does not know, or that this imagecodecs build lacks
            if first.compression != 1:
                TIFF.DECOMPRESSORS[first.compression]  # noqa: B018
            if first.predictor != 1:
                TIFF.UNPREDICTORS[first.predictor]  # noqa: B018
        except KeyError:
            raise Unsupported(f"codec {first.compression}/{first.predictor}") from None
        tags = first.tags
        keys = first.geotiff_tags or {}
        if int(keys.get("GTRasterTypeGeoKey", 1)) != 1:
            raise Unsupported("PixelIsPoint")
        epsg = keys.get("ProjectedCSTypeGeoKey") or keys.get("GeographicTypeGeoKey")
        if epsg is None or not 1024 <= int(epsg) < 32767:
            raise Unsupported("no EPSG code")
        if 34264 in tags or 33550 not in tags or 33922 not in tags:
            raise Unsupported("no scale/tiepoint georeferencing")
        sx, sy = tags[33550].value[:2]
        i, j, _, x, y, _ = tags[33922].value[:6]
        nodata = tags[42113].value.strip() if 42113 in tags else None
        levels = []
        for p in pages:
            if p.tilewidth != first.tilewidth or p.compression != first.compression:
                raise Unsupported("overviews differ")
            offsets, counts = tuple(int(v) for v in p.dataoffsets), tuple(int(v) for v in p.databytecounts)
            n = -(-p.imagewidth // p.tilewidth) * -(-p.imagelength // p.tilelength)
            if len(offsets) != n or len(counts) != n:
                raise ValueError("truncated tile arrays")
            levels.append(Level(p.imagewidth, p.imagelength, offsets, counts))
        return Header(href=href, version=version, width=first.imagewidth, height=first.imagelength,
                      tile_width=first.tilewidth, tile_height=first.tilelength, samples=first.samplesperpixel,
                      dtype=first.dtype.newbyteorder(tif.byteorder).str, compression=int(first.compression),
                      predictor=int(first.predictor), nodata=float(nodata) if nodata else None,
                      transform=(float(sx), 0.0, float(x - i * sx), 0.0, -float(sy), float(y + j * sy)),
                      crs=f"EPSG:{int(epsg)}", levels=tuple(levels))


def _codecs_available() -> bool:
    """tifffile and imagecodecs come with the [ml] extra; without them GDAL reads every file."""
    try:
        import imagecodecs  # noqa: F401
        import tifffile  # noqa: F401
    except ImportError:
        return False
    return True


def warm(remote_release: bool = False) -> bool:
    """Import tifffile and imagecodecs and build tifffile's lazy tables (codecs, GeoTIFF keys: about
    0.1 s), and `requests` for a remote release, now, so a forked DataLoader worker inherits them
    instead of paying for them before its first chip. False without tifffile/imagecodecs."""
    if not _codecs_available():
        return False
    global _warm
    if remote_release:
        with contextlib.suppress(ImportError):
            import requests  # noqa: F401 - remote.get_range's session
    if not _warm:
        import tifffile
        from tifffile import TIFF

        TIFF.GEO_KEYS, TIFF.GEO_CODES  # noqa: B018 - tifffile.geodb, imported by the first geotiff_tags

        buf = io.BytesIO()  # a tiny tiled, compressed TIFF: parsing it builds tifffile's lazy tag and enum tables
        tifffile.imwrite(buf, np.zeros((16, 16), np.uint16), tile=(16, 16), compression="zlib", predictor=True)
        with tifffile.TiffFile(io.BytesIO(buf.getvalue())) as tif:
            page = tif.pages[0]
            page.tags, page.geotiff_tags, page.dataoffsets  # noqa: B018
            _decode(Header("warm", "", 16, 16, 16, 16, 1, "<u2", int(page.compression), int(page.predictor), None,
                           (1.0, 0.0, 0.0, 0.0, -1.0, 0.0), "EPSG:4326", ()),
                    buf.getvalue()[page.dataoffsets[0]:page.dataoffsets[0] + page.databytecounts[0]])
        _warm = True
    return True


def cache_dir() -> Path:
    return Path(os.environ.get("STAC_MMTP_CACHE", Path.home() / ".cache" / "stac-mmtp")) / "cog-headers"


def _cache_file(href: str) -> Path:
    return cache_dir() / (hashlib.sha256(href.encode()).hexdigest() + ".json")


def _fresh() -> None:
    global _pid, _pool
    if _pid != os.getpid():  # a forked worker: threads and sockets are not inherited, plain data is
        _pid, _pool = os.getpid(), None


def header(href: str) -> Header | None:
    """The header of `href` (None when this reader does not support the file: use GDAL)."""
    _fresh()
    if href in _headers:
        return _headers[href]
    if not _codecs_available():
        _headers[href] = None
        return None
    h = None
    remote_href = remote.local_path(href) is None
    if remote_href and os.environ.get("STAC_MMTP_NO_CACHE") != "1":
        try:
            h = Header.from_json(json.loads(_cache_file(href).read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            h = None
    if h is None:
        h = _read_header(href)
        if h is not None and remote_href and os.environ.get("STAC_MMTP_NO_CACHE") != "1":
            _store(h)
    _headers[href] = h
    return h


def _store(h: Header) -> None:
    path = _cache_file(h.href)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(h)))
        os.replace(tmp, path)  # atomic: two workers writing the same header race harmlessly
    except OSError:
        pass  # a read-only home: the header stays in memory only


def _read_header(href: str) -> Header | None:
    size = HEADER_BYTES
    while True:
        part = remote.get_range(href, 0, size)
        STATS["requests"] += 1
        STATS["bytes"] += len(part.data)
        STATS["header_reads"] += 1
        if part.data[:4] not in (b"II*\x00", b"MM\x00*"):
            return None  # BigTIFF or not a TIFF: GDAL reads it
        try:
            return _parse(href, part.data, part.version)
        except Unsupported:
            return None
        except Exception:  # noqa: BLE001 - tifffile raises many kinds on a truncated buffer
            if len(part.data) < size or size >= MAX_HEADER_BYTES:
                return None  # the whole file did not parse: leave it to GDAL (which names the problem)
            size *= 4


def forget(href: str) -> None:
    """Drop `href`'s header (memory and disk) and its decoded tiles."""
    global _tile_bytes
    _headers.pop(href, None)
    with contextlib.suppress(OSError):
        _cache_file(href).unlink()
    with _lock:
        for key in [k for k in _tiles if k[0] == href]:
            _tile_bytes -= _tiles.pop(key).nbytes + _extra_bytes(_valid.pop(key, ((), None)))


def clear() -> None:
    """Forget every header and tile of this process (the disk cache stays)."""
    global _tile_bytes
    _headers.clear()
    with _lock:
        _tiles.clear()
        _valid.clear()
        _tile_bytes = 0


def _decode(h: Header, raw: bytes) -> np.ndarray:
    from tifffile import TIFF

    data = TIFF.DECOMPRESSORS[h.compression](raw) if h.compression != 1 else raw
    arr = np.frombuffer(data, dtype=h.dtype)
    arr = arr[: h.tile_width * h.tile_height * h.samples].reshape(h.tile_height, h.tile_width, h.samples)
    if h.predictor != 1:  # along the width; predictor 3 reorders the byte planes of each row
        arr = TIFF.UNPREDICTORS[h.predictor](arr.copy(), axis=-2)
    return arr.astype(arr.dtype.newbyteorder("="), copy=False)


def _put(key: tuple[str, int, int], tile: np.ndarray) -> None:
    global _tile_bytes
    with _lock:
        if key in _tiles:
            return
        _tiles[key] = tile
        _tile_bytes += tile.nbytes
        while _tile_bytes > TILE_CACHE_BYTES and len(_tiles) > 1:
            old, arr = _tiles.popitem(last=False)
            _tile_bytes -= arr.nbytes + _extra_bytes(_valid.pop(old, ((), None)))


def _fetch(h: Header, level: int, wanted: list[int]) -> None:
    """Fetch and decode tiles `wanted` of `level`: one range read per run of nearby tiles."""
    import time

    lv = h.levels[level]
    empty = [i for i in wanted if lv.counts[i] == 0]  # sparse tiles: nodata (or 0), as GDAL reads them
    for i in empty:
        fill = h.nodata if h.nodata is not None else 0
        _put((h.href, level, i), np.full((h.tile_height, h.tile_width, h.samples), fill,
                                         dtype=np.dtype(h.dtype).newbyteorder("=")))
    todo = sorted((i for i in wanted if lv.counts[i] > 0), key=lambda i: lv.offsets[i])
    runs: list[list[int]] = []
    for i in todo:
        if runs and lv.offsets[i] - (lv.offsets[runs[-1][-1]] + lv.counts[runs[-1][-1]]) <= MERGE_GAP:
            runs[-1].append(i)
        else:
            runs.append([i])

    def one(run: list[int]) -> None:
        start = lv.offsets[run[0]]
        end = lv.offsets[run[-1]] + lv.counts[run[-1]]
        part = remote.get_range(h.href, start, end)
        STATS["requests"] += 1
        STATS["bytes"] += len(part.data)
        if part.version != h.version:
            raise StaleHeader(h.href)
        if len(part.data) < end - start:
            raise InputError(f"truncated: {len(part.data)} of {end - start} bytes at {start}", remote.redact(h.href))
        for i in run:
            t0 = time.perf_counter()
            tile = _decode(h, part.data[lv.offsets[i] - start: lv.offsets[i] - start + lv.counts[i]])
            STATS["decode_s"] += time.perf_counter() - t0
            STATS["tiles_decoded"] += 1
            _put((h.href, level, i), tile)

    global _pool
    if len(runs) > 1 and remote.local_path(h.href) is None:  # remote: the runs' latencies overlap
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="cog-range")
        for f in [_pool.submit(one, r) for r in runs]:
            f.result()
    else:
        for r in runs:
            one(r)


def read_window(h: Header, col: int, row: int, width: int, height: int, band: int = 1,
                level: int = 0) -> np.ndarray:
    """Pixels [row:row+height, col:col+width] of band `band` (inside the image) at `level` (a read-only
    view of the cached tile when the window lies in one tile: copy it before writing)."""
    lv = h.levels[level]
    tw, th = h.tile_width, h.tile_height
    across = -(-lv.width // tw)
    tx0, tx1, ty0, ty1 = col // tw, (col + width - 1) // tw, row // th, (row + height - 1) // th
    idx = [ty * across + tx for ty in range(ty0, ty1 + 1) for tx in range(tx0, tx1 + 1)]
    missing = [i for i in idx if (h.href, level, i) not in _tiles]
    if missing:
        _fetch(h, level, missing)
    if len(idx) == 1 and (key := (h.href, level, idx[0])) in _tiles:  # one tile: a read-only view of it
        _tiles.move_to_end(key)
        ty, tx = divmod(idx[0], across)
        view = _tiles[key][row - ty * th:row - ty * th + height, col - tx * tw:col - tx * tw + width, band - 1]
        view.flags.writeable = False
        return view
    out = np.empty((height, width), dtype=np.dtype(h.dtype).newbyteorder("="))
    for ty in range(ty0, ty1 + 1):
        for tx in range(tx0, tx1 + 1):
            key = (h.href, level, ty * across + tx)
            tile = _tiles.get(key)
            if tile is None:  # evicted by a small cache while this window was fetched
                _fetch(h, level, [key[2]])
                tile = _tiles[key]
            else:
                _tiles.move_to_end(key)
            r0, c0 = max(row, ty * th), max(col, tx * tw)
            r1, c1 = min(row + height, (ty + 1) * th), min(col + width, (tx + 1) * tw)
            out[r0 - row:r1 - row, c0 - col:c1 - col] = tile[r0 - ty * th:r1 - ty * th,
                                                             c0 - tx * tw:c1 - tx * tw, band - 1]
    return out


def _validity(h: Header, key: tuple[str, int, int], tile: np.ndarray) -> tuple[tuple[int, ...], Any]:
    """(invalid pixels per band, None or (valid mask, per band and row the first and last column of an
    invalid pixel)) of a cached tile, as `reader.read_on_grid` counts them: its nodata, else NaN for
    floating-point data. Built once per decoded tile, so a window clear of the nodata costs no
    comparison of its pixels (edges and swath borders are one span per row)."""
    got = _valid.get(key)
    if got is None:
        if h.nodata is not None and not np.isnan(h.nodata):
            valid = tile != h.nodata
        elif tile.dtype.kind == "f":
            valid = ~np.isnan(tile)
        else:
            valid = None
        counts = (0,) * tile.shape[2] if valid is None else tuple(
            int(tile.shape[0] * tile.shape[1] - np.count_nonzero(valid[..., b])) for b in range(tile.shape[2]))
        extra = None
        if any(counts):
            spans = []  # per band and row: the first and last column of an invalid pixel (tw, -1: none)
            tw = tile.shape[1]
            for b in range(tile.shape[2]):
                bad = ~valid[..., b]
                has = bad.any(axis=1)
                spans.append((np.where(has, bad.argmax(axis=1), tw), np.where(has, tw - 1 - bad[:, ::-1].argmax(axis=1), -1)))
            extra = (valid, spans)
        got = (counts, extra)
        _valid_put(key, got)
    return got


def _extra_bytes(v: tuple[tuple[int, ...], Any]) -> int:
    return 0 if v[1] is None else v[1][0].nbytes


def _valid_put(key: tuple[str, int, int], v: tuple[tuple[int, ...], Any]) -> None:
    """Keep a tile's validity, counted in the tile cache's bytes (evicted with its tile)."""
    global _tile_bytes
    with _lock:
        if key in _tiles and key not in _valid:
            _valid[key] = v
            _tile_bytes += _extra_bytes(v)


def read_into(h: Header, col: int, row: int, out: np.ndarray, band: int = 1,
              scale: float = 1.0) -> tuple[int, np.ndarray | None]:
    """Window [row:row+H, col:col+W] of band `band` (inside the image, H x W = out.shape) times `scale`,
    written into `out` (cast to its dtype), straight from the cached tiles (no intermediate copy).

    Returns (number of valid pixels, valid mask, or None when every pixel is valid); invalid pixels
    hold their stored value times `scale`. Raises StaleHeader when the object changed (`read` retries).
    """
    height, width = out.shape
    tw, th = h.tile_width, h.tile_height
    across = -(-h.width // tw)
    ty0, ty1, tx0, tx1 = row // th, (row + height - 1) // th, col // tw, (col + width - 1) // tw
    missing = [i for ty in range(ty0, ty1 + 1) for tx in range(tx0, tx1 + 1)
               if (h.href, 0, i := ty * across + tx) not in _tiles]
    if missing:
        _fetch(h, 0, missing)
    b = band - 1
    mul = scale != 1.0
    f32 = np.float32(scale)
    n_valid, valid = height * width, None
    for ty in range(ty0, ty1 + 1):
        r0, r1 = max(row, ty * th), min(row + height, (ty + 1) * th)
        for tx in range(tx0, tx1 + 1):
            key = (h.href, 0, ty * across + tx)
            tile = _tiles.get(key)
            if tile is None:  # evicted by a small cache while this window was fetched
                _fetch(h, 0, [key[2]])
                tile = _tiles[key]
            else:
                _tiles.move_to_end(key)
            c0, c1 = max(col, tx * tw), min(col + width, (tx + 1) * tw)
            src = tile[r0 - ty * th:r1 - ty * th, c0 - tx * tw:c1 - tx * tw, b]
            dst = out[r0 - row:r1 - row, c0 - col:c1 - col]
            np.copyto(dst, src, casting="unsafe")
            if mul:  # cast, then scale in place: the same float32 values as a casting multiply, in half the time
                np.multiply(dst, f32, out=dst, casting="unsafe")
            counts, extra = _validity(h, key, tile)
            if counts[b]:
                i0, i1, j0, j1 = r0 - ty * th, r1 - ty * th, c0 - tx * tw, c1 - tx * tw
                first, last = extra[1][b]
                if ((first[i0:i1] < j1) & (last[i0:i1] >= j0)).any():  # the window meets invalid pixels
                    part = extra[0][i0:i1, j0:j1, b]
                    if valid is None:
                        valid = np.ones((height, width), dtype=bool)
                    valid[r0 - row:r1 - row, c0 - col:c1 - col] = part
                    n_valid -= part.size - int(np.count_nonzero(part))
    return n_valid, valid


def read(href: str, col: int, row: int, width: int, height: int, band: int = 1) -> np.ndarray:
    """`read_window` of `href`, reading its header again once if the object changed meanwhile."""
    h = header(href)
    if h is None:
        raise Unsupported(href)
    try:
        return read_window(h, col, row, width, height, band)
    except StaleHeader:
        forget(href)
        h = header(href)
        if h is None:
            raise Unsupported(href) from None
        return read_window(h, col, row, width, height, band)
