"""`ChipDataset`: fixed-size multi-modal, multi-temporal chips with masks, for torch's DataLoader.

One *scene* per event: for each requested modality, the acquisitions picked by `time` (one per
temporal role, or the whole series), the event's raster label, and one chip grid: the event's UTM
CRS at `resolution`, over the intersection of the picked items' footprints, snapped to multiples of
the resolution. Every modality is read onto that grid (window reads where it shares the lattice,
on-the-fly reprojection otherwise), so `image[m]` is float32 [T, C, size, size] for every modality,
or, with `dtype="stored"`, each modality in the stored dtype of its COGs (uint16 DN for Sentinel-2),
with what `to_physical` needs to convert a batch later (on the training device, after the DataLoader).

Plain numpy and Python values only (no torch import): the default collate stacks them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stac_mmtp.access.ml import cog, reader, remote
from stac_mmtp.access.ml.index import LABELS, Entry, Index
from stac_mmtp.access.ml.reader import Grid, read_on_grid, resampling_for
from stac_mmtp.dataset.annotations import CLASSES, IGNORE
from stac_mmtp.errors import InputError
from stac_mmtp.raster.geo import utm_epsg

log = logging.getLogger(__name__)

DEFAULT_BANDS: dict[str, tuple[str, ...]] = {"sentinel-2": ("blue", "green", "red", "nir"), "sentinel-1": ("vv", "vh")}
ROLES = ("pre-event", "first-post-event", "first-usable-post-event", "post-event", "co-event")
SIGMA0_DB_FLOOR = 1e-6  # linear sigma0 clipped here before 10*log10 (0 after noise removal -> -60 dB)
# the last axis of a stored-dtype sample's `conversion[modality]` ([T, C, 4] float64): one array per
# modality, not four, because each array of a batch costs the main process about 0.25 ms to receive
# from a DataLoader worker (its own shared-memory segment), whatever its size
CONVERSION_FIELDS = ("scale", "offset", "nodata", "db")


@dataclass(frozen=True)
class Scene:
    """One event's picked items and chip grid (plain data: pickled to DataLoader workers)."""

    event_id: str
    grid: Grid
    items: dict[str, tuple[Entry, ...]]  # modality -> T entries, in time order
    roles: dict[str, tuple[str, ...]]  # modality -> the role asked for each time step
    label: Entry | None


def _band_meta(entry: Entry, key: str) -> dict[str, Any]:
    """The `bands` entry of asset `key` that `entry` reads (its raster:scale, offset, data_type, nodata)."""
    bands = entry.assets[key].get("bands") or [{}]
    return bands[min(entry.band, len(bands)) - 1]


def _on_lattice(entry: Entry, key: str, grid: Grid) -> bool:
    """Whether the asset's `proj:` metadata puts it on the grid's CRS and pixel lattice (read as a window
    of the file, exact stored values); False when the metadata is missing."""
    asset = entry.assets[key]
    code = asset.get("proj:code") or entry.properties.get("proj:code")
    t = asset.get("proj:transform") or entry.properties.get("proj:transform")
    return bool(t) and not (t[1] or t[3]) and reader.grid_offset(code, t, grid) is not None


def _proj_bbox(entry: Entry, key: str, crs: str) -> tuple[float, float, float, float] | None:
    from rasterio.warp import transform_bounds

    asset = entry.assets.get(key, {})
    bbox = asset.get("proj:bbox") or entry.properties.get("proj:bbox")
    code = asset.get("proj:code") or entry.properties.get("proj:code")
    if not bbox and asset.get("proj:transform") and asset.get("proj:shape"):
        a, _, c, _, e, f = asset["proj:transform"][:6]
        h, w = asset["proj:shape"]
        bbox = [c, f + e * h, c + a * w, f]
    if not bbox or not code:
        return tuple(transform_bounds("EPSG:4326", crs, *entry.bbox))
    return tuple(bbox) if code == crs else tuple(transform_bounds(code, crs, *bbox))


def _utm_crs(entry: Entry) -> str:
    code = entry.properties.get("proj:code") or ""
    if code.startswith(("EPSG:326", "EPSG:327")):
        return code
    w, s, e, n = entry.bbox
    return f"EPSG:{utm_epsg((w + e) / 2, (s + n) / 2)}"


def _pick(entries: list[Entry], role: str) -> Entry | None:
    same = [e for e in entries if e.temporal_role == role]
    if not same:
        return None
    return same[-1] if role == "pre-event" else same[0]  # the latest before, the earliest after


def _label_for(labels: list[Entry], items: dict[str, tuple[Entry, ...]], modalities: Sequence[str]) -> Entry | None:
    """The raster label on the grid of the latest picked acquisition of the first modality it can
    match; else any raster label of the event (reprojected onto the chip grid anyway)."""
    for m in modalities:
        for entry in reversed(items.get(m, ())):
            for lab in labels:
                if any(lk.get("rel") == "source" and lk.get("href", "").rstrip("/").endswith(f"/{entry.id}.json")
                       for lk in lab.links):
                    return lab
    return labels[0] if labels else None


class ChipDataset:
    """Fixed-size chips of a release: `sample["image"][modality]` float32 [T, C, size, size].

    `release`: a build directory, a catalog.json path or URL, or an `Index`. `modalities`: imagery
    collections stacked on one grid; `bands`: asset keys per modality (default blue/green/red/nir
    and vv/vh); `size`: chip side in pixels at `resolution` metres; `sampler`: "random" (`length`
    chips per epoch, positions drawn from `seed`, the epoch (`set_epoch`) and the index) or "grid"
    (every `stride`-spaced chip of every scene, the last row/column flush with the edge); `time`:
    temporal roles (one acquisition each: the latest pre-event, the earliest of the others) or
    "series" (every acquisition; `series_length` pads with NaN/-1 or keeps the last N, for fixed T);
    `split`, `phenomenon`, `event`: index filters; `label`: add the raster mask (255 = ignore) on the
    chip grid and keep only events with one; `physical`: reflectance / sigma0 from `raster:scale` and
    `raster:offset` with nodata as `fill` (NaN), else the stored values (raw DN) as float32;
    `dtype`: "float32", or "stored" (with `physical=False`): each modality in its COGs' stored dtype,
    nodata left as stored, and `sample["conversion"]` for `to_physical` (see `dtypes`);
    `sigma0`: "linear" or "db" (with "stored": what `to_physical` gives); `min_valid`: the random sampler redraws (up to `max_tries`) a chip
    whose fraction of valid pixels is below it; `endpoint_url`: the S3 endpoint of an `s3://bucket/prefix`
    release (else AWS_ENDPOINT_URL; anonymous unless AWS credentials are found).
    """

    def __init__(self, release: str | Path | Index, modalities: Sequence[str] = ("sentinel-2", "sentinel-1"),
                 bands: Mapping[str, Sequence[str]] | None = None, size: int = 256, sampler: str = "random",
                 stride: int | None = None, time: Sequence[str] | str = ("pre-event", "first-post-event"),
                 split: str | Sequence[str] | None = "train", label: bool = True, seed: int = 0,
                 length: int | None = None, resolution: float = 10.0, physical: bool = True,
                 sigma0: str = "linear", fill: float = float("nan"), min_valid: float = 0.5, max_tries: int = 10,
                 series_length: int | None = None, phenomenon: str | Sequence[str] | None = None,
                 event: str | Sequence[str] | None = None, endpoint_url: str | None = None,
                 dtype: str = "float32"):
        if sampler not in ("random", "grid"):
            raise InputError(f"sampler must be 'random' or 'grid', not {sampler!r}", "ChipDataset")
        if sigma0 not in ("linear", "db"):
            raise InputError(f"sigma0 must be 'linear' or 'db', not {sigma0!r}", "ChipDataset")
        if time != "series" and (isinstance(time, str) or not set(time) <= set(ROLES)):
            raise InputError(f"time must be 'series' or a sequence of {', '.join(ROLES)}", "ChipDataset")
        if dtype not in ("float32", "stored"):
            raise InputError(f"dtype must be 'float32' or 'stored', not {dtype!r}", "ChipDataset")
        if dtype == "stored" and physical:
            raise InputError("dtype='stored' gives the stored values: pass physical=False as well "
                             "(to_physical(batch) converts them)", "ChipDataset")
        if dtype == "stored" and not math.isnan(float(fill)):
            raise InputError("fill applies to physical values: with dtype='stored' pass it to "
                             "to_physical(batch, fill=...)", "ChipDataset")
        self.modalities = tuple(modalities)
        self.bands = {m: tuple((bands or {}).get(m) or DEFAULT_BANDS.get(m, ())) for m in self.modalities}
        for m, b in self.bands.items():
            if not b:
                raise InputError(f"no default bands for modality {m!r}: pass bands={{{m!r}: (...)}}", "ChipDataset")
        self.size, self.sampler, self.stride = int(size), sampler, int(stride or size)
        self.time, self.label, self.seed, self.resolution = time, label, seed, float(resolution)
        self.physical, self.sigma0, self.fill = physical, sigma0, float(fill)
        self.stored = dtype == "stored"
        self.min_valid, self.max_tries, self.series_length = min_valid, max_tries, series_length
        self.classes = {v: k for k, v in CLASSES.items()} | {IGNORE: "ignore"}
        self.epoch = 0
        self._plans: dict[tuple[int, str, str, bool], tuple | None] = {}  # per process: see _fast_band
        self._scene_cache: dict[int, dict[str, Any]] = {}
        self._nodata: dict[tuple[str, int], float] = {}  # per process: (href, band) -> the file's nodata
        index = release if isinstance(release, Index) else Index(release, collections=[*self.modalities, LABELS],
                                                                 endpoint_url=endpoint_url)
        self.endpoint_url = endpoint_url or index.endpoint_url
        index = index.filter(split=split, phenomenon=phenomenon, event=event)
        self.scenes = self._scenes(index)
        if not self.scenes:
            raise InputError(f"no event has {'+'.join(self.modalities)} at {time!r}"
                             f"{' with a raster label' if label else ''} for these filters"
                             f" (split={split!r}) on a grid of at least {size} px", str(index.release))
        # the image dtype of each modality, fixed here so that every sample of a modality collates
        self.dtypes = {m: self._stored_dtype(m) if self.stored else np.dtype(np.float32) for m in self.modalities}
        if reader.FAST_READS:  # imports and codec tables now, once, not in every forked worker's first chip
            cog.warm(remote_release=bool(index.release) and remote.local_path(str(index.release)) is None)
        self._grid_chips = [(s, c, r) for s, scene in enumerate(self.scenes) for c, r in self._positions(scene.grid)]
        self.length = len(self._grid_chips) if length is None else int(length)

    # ------------------------------------------------------------------ scenes
    def _scenes(self, index: Index) -> list[Scene]:
        by_event: dict[str, dict[str, list[Entry]]] = {}
        for e in index:
            if e.event_id:
                by_event.setdefault(e.event_id, {}).setdefault(e.collection, []).append(e)
        scenes = []
        for event_id in sorted(by_event):
            colls = by_event[event_id]
            items: dict[str, tuple[Entry, ...]] = {}
            roles: dict[str, tuple[str, ...]] = {}
            for m in self.modalities:
                entries = sorted((e for e in colls.get(m, []) if all(k in e.assets for k in self.bands[m])),
                                 key=lambda e: e.datetime)  # items without the bands (FLATSIM DAUX) left out
                if self.time == "series":
                    # a multi-band time-series asset (FLATSIM displacement) gives one step per date
                    entries = sorted((s for e in entries for s in e.series(self.bands[m][0])),
                                     key=lambda e: e.datetime)
                    picked = entries[-self.series_length:] if self.series_length else entries
                    items[m] = tuple(picked)
                    roles[m] = tuple(e.temporal_role or "" for e in picked)
                else:
                    picked = [_pick(entries, r) for r in self.time]
                    if any(p is None for p in picked):
                        break
                    items[m], roles[m] = tuple(picked), tuple(self.time)
                if not items[m]:
                    break
            else:
                labels = [e for e in colls.get(LABELS, []) if e.properties.get("label:type") == "raster"
                          and "mask" in e.assets]
                lab = _label_for(labels, items, self.modalities) if self.label else None
                if self.label and lab is None:
                    log.info("%s: no raster label, skipped", event_id)
                    continue
                grid = self._grid(items, lab)
                if grid.width < self.size or grid.height < self.size:
                    log.info("%s: common grid %dx%d smaller than the chip, skipped", event_id, grid.width, grid.height)
                    continue
                scenes.append(Scene(event_id, grid, items, roles, lab))
                continue
            log.info("%s: missing %s for %r, skipped", event_id, m, self.time)
        return scenes

    def _grid(self, items: dict[str, tuple[Entry, ...]], label: Entry | None) -> Grid:
        first = items[self.modalities[0]][-1]
        crs = _utm_crs(first)
        boxes = [_proj_bbox(e, self.bands[m][0], crs) for m in self.modalities for e in items[m]]
        if label is not None:
            boxes.append(_proj_bbox(label, "mask", crs))
        bounds = (max(b[0] for b in boxes), max(b[1] for b in boxes), min(b[2] for b in boxes),
                  min(b[3] for b in boxes))
        return Grid.from_bounds(crs, bounds, self.resolution)

    def _stored_dtype(self, m: str) -> np.dtype:
        """The stored dtype of modality `m` (numpy's promotion over its bands' `data_type`, else the
        file's), or float32 holding the interpolated stored values when some band of some scene is
        reprojected by bilinear or average resampling (not on the grid's lattice)."""
        found, exact = set(), True
        for scene in self.scenes:
            for entry in scene.items[m]:
                for key in self.bands[m]:
                    name = _band_meta(entry, key).get("data_type") or entry.assets[key].get("data_type")
                    try:
                        found.add(np.dtype(name) if name else self._file_dtype(entry, key))
                    except TypeError:
                        raise InputError(f"{key}: data_type {name!r} has no numpy dtype", entry.id) from None
                    exact = exact and (_on_lattice(entry, key, scene.grid) or resampling_for(
                        entry.assets[key], self.resolution) == "nearest")
        dt = np.result_type(*found)
        return dt if exact else np.result_type(np.float32, dt)

    @staticmethod
    def _file_dtype(entry: Entry, key: str) -> np.dtype:
        h = cog.header(entry.href(key)) if reader.FAST_READS else None
        if h is not None:
            return np.dtype(h.dtype).newbyteorder("=")
        return np.dtype(reader.open_dataset(entry.href(key)).dtypes[entry.band - 1])

    def _file_nodata(self, entry: Entry, key: str) -> float:
        """The nodata of the file the reader compares pixels with (the tile reader's header, else
        GDAL's); NaN when the file has none."""
        href = entry.href(key)
        got = self._nodata.get((href, entry.band))
        if got is None:
            h = cog.header(href) if reader.FAST_READS else None
            nd = h.nodata if h is not None else reader.open_dataset(href).nodata
            got = self._nodata[(href, entry.band)] = math.nan if nd is None else float(nd)
        return got

    def _positions(self, grid: Grid) -> list[tuple[int, int]]:
        def starts(n: int) -> list[int]:
            out = list(range(0, n - self.size + 1, self.stride))
            if out[-1] != n - self.size:
                out.append(n - self.size)
            return out

        return [(c, r) for r in starts(grid.height) for c in starts(grid.width)]

    # ------------------------------------------------------------------ sampling
    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """New random positions for each epoch (call before iterating; workers get a copy)."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        if self.sampler == "grid":
            s, col, row = self._grid_chips[index]
            return self.chip(s, col, row)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        s = index % len(self.scenes)
        grid = self.scenes[s].grid
        best: dict[str, Any] | None = None
        for _ in range(max(1, self.max_tries)):
            col = int(rng.integers(0, grid.width - self.size + 1))
            row = int(rng.integers(0, grid.height - self.size + 1))
            sample = self.chip(s, col, row)
            if sample["valid_fraction"] >= self.min_valid:
                return sample
            if best is None or sample["valid_fraction"] > best["valid_fraction"]:
                best = sample
        return best  # type: ignore[return-value]

    def chip_at(self, event_id: str, bounds: Sequence[float]) -> dict[str, Any]:
        """The chip of `event_id`'s scene whose upper-left corner is at (bounds[0], bounds[3])."""
        for s, scene in enumerate(self.scenes):
            if scene.event_id == event_id:
                a, _, c, _, e, f = scene.grid.transform
                return self.chip(s, round((bounds[0] - c) / a), round((bounds[3] - f) / e))
        raise KeyError(event_id)

    # ------------------------------------------------------------------ reading
    def chip(self, scene_index: int, col: int, row: int) -> dict[str, Any]:
        """The chip of scene `scene_index` at pixel (col, row) of its grid."""
        if self.endpoint_url:  # a spawned DataLoader worker starts without the parent's setting
            remote.configure_s3(self.endpoint_url)
        scene = self.scenes[scene_index]
        fixed = self._fixed(scene_index)
        grid = scene.grid.window(col, row, self.size, self.size)
        images, valid_sum, total = {}, 0, 0
        for m in self.modalities:
            steps = scene.items[m]
            pad = max(0, (self.series_length or 0) - len(steps))  # a short series, padded in front
            # one array per modality, each band decoded straight into its slice (no stack, no concatenate)
            image = np.empty((pad + len(steps), len(self.bands[m]), self.size, self.size), dtype=self.dtypes[m])
            image[:pad] = _pad_value(image.dtype) if self.stored else self.fill
            for t, entry in enumerate(steps, start=pad):
                for c, key in enumerate(self.bands[m]):
                    n = self._fast_band(entry, key, scene_index, col, row, image[t, c])
                    valid_sum += self._band(entry, key, grid, image[t, c]) if n is None else n
                    total += self.size * self.size
            images[m] = image
        stamps, roles, ids, bounds = fixed["stamps"], fixed["roles"], fixed["ids"], grid.bounds
        sample: dict[str, Any] = {
            "image": images, "timestamps": {m: v.copy() for m, v in stamps.items()},
            "temporal_roles": {m: list(v) for m, v in roles.items()}, "item_ids": {m: list(v) for m, v in ids.items()},
            "event_id": scene.event_id, "crs": grid.crs, "bounds": np.array(bounds, dtype=np.float64),
            "valid_fraction": valid_sum / total if total else 0.0,
        }
        if self.stored:
            sample["conversion"] = {m: c.copy() for m, c in fixed["conversion"].items()}
        if scene.label is not None:
            sample["mask"] = self._mask(scene.label, grid, scene_index, col, row)
            sample["label"] = dict(fixed["label"])
        return sample

    def _fixed(self, scene_index: int) -> dict[str, Any]:
        """What every chip of a scene shares (timestamps, roles, ids, label provenance), built once."""
        got = self._scene_cache.get(scene_index)
        if got is None:
            scene = self.scenes[scene_index]
            got = {"stamps": {}, "roles": {}, "ids": {}}
            for m in self.modalities:
                steps = scene.items[m]
                pad = max(0, (self.series_length or 0) - len(steps))
                ts = np.array([int(e.datetime.timestamp()) for e in steps], dtype=np.int64)
                got["stamps"][m] = np.concatenate([np.full(pad, -1, np.int64), ts])
                got["roles"][m] = [""] * pad + list(scene.roles[m])
                got["ids"][m] = [""] * pad + [e.id for e in steps]
            if scene.label is not None:
                got["label"] = self._provenance(scene.label)
            if self.stored:
                got["conversion"] = {m: self._conversion(scene, m) for m in self.modalities}
            self._scene_cache[scene_index] = got
        return got

    def _conversion(self, scene: Scene, m: str) -> np.ndarray:
        """Per time step and band of modality `m`, [T, C, 4] float64 (a fixed shape: the default collate
        stacks it), the CONVERSION_FIELDS: `scale` and `offset` (float32 values, as the physical path
        applies them), `nodata` (the stored value of invalid pixels, NaN when it is NaN or the file has
        none: then NaN pixels are the invalid ones) and `db` (1: 10 log10 after scaling, Sentinel-1
        with sigma0="db")."""
        steps, n = scene.items[m], len(self.bands[m])
        pad = max(0, (self.series_length or 0) - len(steps))
        out = np.zeros((pad + len(steps), n, len(CONVERSION_FIELDS)), np.float64)
        out[..., 0], out[..., 2] = 1.0, _pad_value(self.dtypes[m])
        for t, entry in enumerate(steps, start=pad):
            for c, key in enumerate(self.bands[m]):
                band = _band_meta(entry, key)
                out[t, c] = (np.float32(band.get("raster:scale", 1.0)), np.float32(band.get("raster:offset", 0.0)),
                             self._file_nodata(entry, key), entry.collection == "sentinel-1" and self.sigma0 == "db")
        return out

    def __getstate__(self) -> dict[str, Any]:
        # the per-process read plans hold cached headers: a worker builds its own from its caches
        return {**self.__dict__, "_plans": {}, "_scene_cache": {}, "_nodata": {}}

    def _plan(self, entry: Entry, key: str, scene_index: int, mask: bool) -> tuple | None:
        """How band `key` of `entry` maps onto scene `scene_index`'s grid when the tile reader can cut
        it as a window of the file (same CRS and pixel lattice): (header, column and row of the grid's
        origin in the file, band, scale, offset, dB); None: the general path (`_band`)."""
        href = entry.href(key)
        h = cog.header(href)
        at = reader.lattice_offset(h, self.scenes[scene_index].grid, entry.band)
        if at is None:
            return None
        if self.stored and not mask:
            _check_cast(np.dtype(h.dtype), self.dtypes[entry.collection], key, href)
        scale, offset, db = 1.0, 0.0, False
        if self.physical and not mask:
            asset = entry.assets[key]
            bands = asset.get("bands") or [{}]
            band = bands[min(entry.band, len(bands)) - 1]
            scale, offset = band.get("raster:scale", 1.0), band.get("raster:offset", 0.0)
            db = entry.collection == "sentinel-1" and self.sigma0 == "db"
        return (h, href, at[0], at[1], entry.band, scale, offset, db)

    def _fast_band(self, entry: Entry, key: str, scene_index: int, col: int, row: int,
                   out: np.ndarray, mask: bool = False) -> int | None:
        """`_band` by the tile reader straight into `out` (the chip inside the file, on its lattice):
        the same values, with no intermediate array and no nodata test for tiles without nodata.
        `mask`: the label (no scaling, invalid pixels IGNORE). Returns the count of valid pixels, or None
        when the general path must read it."""
        if not reader.FAST_READS:  # switched off after the plans were made: every read through GDAL
            return None
        pk = (scene_index, entry.id, key, mask)
        plan = self._plans.get(pk, False)
        if plan is False or (plan is not None and cog.header(plan[1]) is not plan[0]):
            plan = self._plans[pk] = self._plan(entry, key, scene_index, mask)  # first use, or header read again
        if plan is None:
            return None
        h, _, c0, r0, band, scale, offset, db = plan
        c, r = c0 + col, r0 + row
        if c < 0 or r < 0 or c + self.size > h.width or r + self.size > h.height:
            return None  # partly outside the file: the general path fills the rest as nodata
        try:
            n_valid, valid = cog.read_into(h, c, r, out, band, scale)
        except cog.StaleHeader:
            cog.forget(h.href)
            return None
        if offset:
            out += np.float32(offset)
        if db:
            np.log10(np.maximum(out, SIGMA0_DB_FLOOR, out=out), out=out)
            out *= np.float32(10.0)
        if valid is not None and (self.physical or mask):
            out[~valid] = IGNORE if mask else self.fill
        return n_valid

    def _band(self, entry: Entry, key: str, grid: Grid, out: np.ndarray) -> int:
        """Band `key` of `entry` on `grid`, written into `out` (float32); returns its count of valid pixels."""
        asset = entry.assets.get(key)
        if asset is None:
            raise InputError(f"no asset {key!r} (has {', '.join(sorted(entry.assets))})", entry.id)
        data, valid = read_on_grid(entry.href(key), grid, entry.band, resampling_for(asset, grid.res))
        n_valid = int(np.count_nonzero(valid))
        if self.stored:  # the stored values, invalid pixels (outside the file too) as the file's nodata
            _check_cast(data.dtype, out.dtype, key, entry.href(key))
            np.copyto(out, data)
            if n_valid < valid.size:
                nd = self._file_nodata(entry, key)
                out[~valid] = _pad_value(out.dtype) if math.isnan(nd) else nd
            return n_valid
        if not self.physical:
            np.copyto(out, data, casting="unsafe")
            return n_valid
        bands = asset.get("bands") or [{}]
        band = bands[min(entry.band, len(bands)) - 1]
        scale, offset = band.get("raster:scale", 1.0), band.get("raster:offset", 0.0)
        if scale == 1.0:
            np.copyto(out, data, casting="unsafe")
        else:
            np.multiply(data, np.float32(scale), out=out, casting="unsafe")
        if offset:
            out += np.float32(offset)
        if entry.collection == "sentinel-1" and self.sigma0 == "db":
            np.log10(np.maximum(out, SIGMA0_DB_FLOOR, out=out), out=out)
            out *= np.float32(10.0)
        if n_valid < valid.size:
            out[~valid] = self.fill
        return n_valid

    def _mask(self, label: Entry, grid: Grid, scene_index: int = -1, col: int = 0, row: int = 0) -> np.ndarray:
        if scene_index >= 0:
            out = np.empty((self.size, self.size), dtype=np.uint8)
            if self._fast_band(label, "mask", scene_index, col, row, out, mask=True) is not None:
                return out
        data, valid = read_on_grid(label.href("mask"), grid, 1, "nearest")
        data = data.astype(np.uint8)
        data[~valid] = IGNORE  # outside the mask file, or its own nodata (ignore)
        return data

    @staticmethod
    def _provenance(label: Entry) -> dict[str, Any]:
        p = label.properties
        counts = [c for o in p.get("label:overviews", []) for c in o.get("counts", [])]
        return {"id": label.id, "classes": ",".join(c["name"] for c in counts) or "",
                "annotator": str(p.get("mmtp:annotator", "")), "expertise": str(p.get("mmtp:annotator_expertise", "")),
                "method": str(p.get("mmtp:annotation_method", "")), "review_status": str(p.get("mmtp:review_status", "")),
                "confidence": float(p.get("mmtp:confidence") or math.nan)}


def _pad_value(dtype: np.dtype) -> float:
    """What a stored-dtype sample holds where there is no stored value (a padded time step, or pixels
    outside a file without nodata): NaN in a float dtype, else 0."""
    return math.nan if np.dtype(dtype).kind in "fc" else 0.0


def _check_cast(src: np.dtype, dst: np.dtype, key: str, href: str) -> None:
    if not np.can_cast(src, dst, "safe"):  # the metadata promised another dtype or an exact read
        raise InputError(f"{key}: read as {src}, which the modality's stored dtype {dst} cannot hold "
                         "(use dtype='float32')", remote.redact(href))


def to_physical(batch: Mapping[str, Any], fill: float = float("nan")) -> dict[str, Any]:
    """A stored-dtype sample or collated batch (`ChipDataset(..., physical=False, dtype="stored")`)
    as `physical=True` gives it: each `image[m]` float32, times `raster:scale` plus `raster:offset`,
    10 log10 where the dataset asked for sigma0 in dB, invalid pixels set to `fill`.

    numpy arrays or torch tensors, on whatever device the images are (the conversion arrays follow
    them there). The same float32 operations in the same order as the physical path: equal values,
    bitwise for numpy; with torch, dB may differ in the last bit of log10. Returns a new dict with
    the other keys of `batch` (without `conversion`)."""
    conv = batch.get("conversion")
    if conv is None:
        raise InputError("no 'conversion' in the batch: it comes from ChipDataset(..., physical=False, "
                         "dtype='stored')", "to_physical")
    out = {k: v for k, v in batch.items() if k != "conversion"}
    out["image"] = {m: _physical(x, conv[m], float(fill)) for m, x in batch["image"].items()}
    return out


def _physical(x: Any, p: Any, fill: float) -> Any:
    if type(x).__module__.split(".")[0] == "torch":
        if x.device.type == "cpu":  # numpy's kernels: the physical path's own, and faster than torch's uint16 casts
            import torch

            return torch.from_numpy(_physical_np(x.numpy(), p.numpy() if hasattr(p, "numpy") else p, fill))
        return _physical_torch(x, p, fill)
    return _physical_np(np.asarray(x), p, fill)


def _physical_np(x: np.ndarray, p: Any, fill: float) -> np.ndarray:
    p = np.asarray(p)[..., None, None, :]
    scale, offset, nodata, db = p[..., 0].astype(np.float32), p[..., 1].astype(np.float32), p[..., 2], p[..., 3] != 0
    y = x.astype(np.float32)  # always a copy: the stored batch stays as it was
    if (scale != 1).any():  # a pass skipped where the physical path skips it (x 1 and + 0 change nothing)
        y *= scale
    if offset.any():
        y += offset
    if db.all():
        np.log10(np.maximum(y, SIGMA0_DB_FLOOR, out=y), out=y)
        y *= np.float32(10.0)
    elif db.any():
        lg = np.log10(np.maximum(y, SIGMA0_DB_FLOOR))
        lg *= np.float32(10.0)
        y = np.where(db, lg, y)
    none = np.isnan(nodata)
    if none.all():  # NaN nodata or none: NaN pixels are the invalid ones (none in integers)
        if x.dtype.kind != "f" or math.isnan(fill):
            return y  # integers have no NaN; NaN stays NaN through x scale + offset and log10
        invalid = np.isnan(x)
    else:
        value = np.where(none, 0, nodata).astype(x.dtype)
        invalid = x == value
        if none.any():
            invalid = np.where(none, np.isnan(x) if x.dtype.kind == "f" else False, invalid)
    if invalid.any():
        np.copyto(y, np.float32(fill), where=invalid)
    return y


def _physical_torch(x: Any, p: Any, fill: float) -> Any:
    """`_physical_np` in torch ops on the images' device (a GPU): the same float32 operations."""
    import torch

    p = torch.as_tensor(p).to(x.device)[..., None, None, :]
    scale, offset, nodata, db = p[..., 0].to(torch.float32), p[..., 1].to(torch.float32), p[..., 2], p[..., 3] != 0
    y = x.to(torch.float32, copy=True)
    y.mul_(scale)
    y.add_(offset)
    if bool(db.any()):
        lg = torch.log10(torch.clamp_min(y, SIGMA0_DB_FLOOR)).mul_(10.0)
        y = torch.where(db, lg, y)
    none = torch.isnan(nodata)
    value = torch.where(none, torch.zeros_like(nodata), nodata).to(x.dtype)
    invalid = torch.where(none, torch.isnan(x), x == value) if x.is_floating_point() else (x == value) & ~none
    return y.masked_fill_(invalid, fill)
