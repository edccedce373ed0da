"""A TorchGeo `GeoDataset` over the release index (TorchGeo 0.8 API: GeoDataFrame index with an
interval index of datetimes, queries as (x, y, t) slices with the resolution as step).

Reads go through the same per-process handles and grid reader as `ChipDataset`, so a TorchGeo
sampler and our own sampler return the same pixels at the same bounds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
import torch
from geopandas import GeoDataFrame
from pyproj import CRS
from torchgeo.datasets import GeoDataset

from stac_mmtp.access.ml import remote
from stac_mmtp.access.ml.chips import DEFAULT_BANDS, _proj_bbox, _utm_crs
from stac_mmtp.access.ml.index import LABELS, Entry, Index
from stac_mmtp.access.ml.reader import Grid, read_on_grid, resampling_for
from stac_mmtp.dataset.annotations import IGNORE
from stac_mmtp.errors import InputError


def _interval(entry: Entry) -> tuple[pd.Timestamp, pd.Timestamp]:
    """An imagery item's instant; a label's span from its datetime to its source image's, so that
    `image & mask` intersects in time. The source is `mmtp:days_from_event` from the event (its
    datetime; for a period, its end when after it, its start when before), a figure rounded to
    1e-3 day: the span is padded by a day on each side."""
    t = pd.Timestamp(entry.datetime).tz_convert(None)
    p = entry.properties
    days = p.get("mmtp:days_from_event")
    edge = "mmtp:event_end_datetime" if (days or 0) >= 0 else "mmtp:event_start_datetime"
    event = p.get("mmtp:event_datetime") or p.get(edge) or p.get("mmtp:event_start_datetime")
    if entry.collection == LABELS and days is not None and event:
        src = pd.Timestamp(event).tz_convert(None) + timedelta(days=float(days))
        return min(t, src) - timedelta(days=1), max(t, src) + timedelta(days=1)
    return t, t


def _on(label: Entry, modality: str) -> bool:
    """Whether a label item's mask lies on the grid of an item of `modality` (its `source` link)."""
    return any(lk.get("rel") == "source" and f"/{modality}/" in lk.get("href", "") for lk in label.links)


class StacMmtpGeoDataset(GeoDataset):
    """Items of one modality (or `annotations`: the raster masks) as a TorchGeo GeoDataset.

    `crs`: the CRS of the index and of the returned pixels (default: the UTM zone of the first
    item); `res`: metres per pixel; `bands`: asset keys stacked as channels; filters as in `Index`.
    Where items overlap, the first valid pixel (in time order) wins, like `rasterio.merge`.
    """

    def __init__(self, release: str | Path | Index, modality: str = "sentinel-2", bands: Sequence[str] | None = None,
                 crs: str | CRS | None = None, res: float = 10.0, split: str | Sequence[str] | None = None,
                 event: str | Sequence[str] | None = None, temporal_role: str | Sequence[str] | None = None,
                 physical: bool = True, transforms: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 source_modality: str | None = None, endpoint_url: str | None = None):
        index = release if isinstance(release, Index) else Index(release, collections=[modality],
                                                                 endpoint_url=endpoint_url)
        self.endpoint_url = endpoint_url or index.endpoint_url
        entries = [e for e in index.filter(modality=modality, split=split, event=event, temporal_role=temporal_role)
                   if modality != LABELS or (e.properties.get("label:type") == "raster" and "mask" in e.assets
                                             and (source_modality is None or _on(e, source_modality)))]
        if not entries:
            raise InputError(f"no {modality} item matches these filters", str(index.release))
        self.is_image = modality != LABELS
        self.bands = tuple(bands or (DEFAULT_BANDS.get(modality, ()) if self.is_image else ("mask",)))
        if not self.bands:
            raise InputError(f"no default bands for {modality!r}: pass bands=(...)", str(index.release))
        self.modality, self.physical, self.transforms = modality, physical, transforms
        self.paths = str(index.release)
        crs_str = CRS.from_user_input(crs).to_string() if crs is not None else _utm_crs(entries[-1])
        self.entries = entries
        geoms = [shapely.box(*_proj_bbox(e, self.bands[0], crs_str)) for e in entries]
        times = pd.IntervalIndex.from_tuples([_interval(e) for e in entries], closed="both", name="datetime")
        self.index = GeoDataFrame({"item": [e.id for e in entries], "position": range(len(entries))},
                                  index=times, geometry=geoms, crs=crs_str)
        self._crs_str = crs_str
        self._res = (float(res), float(res))

    def __getitem__(self, query: Any) -> dict[str, Any]:
        if self.endpoint_url:
            remote.configure_s3(self.endpoint_url)
        x, y, t = self._disambiguate_slice(query)
        rows = self.index.iloc[self.index.index.overlaps(pd.Interval(t.start, t.stop, closed="both"))]
        rows = rows.cx[x.start:x.stop, y.start:y.stop]
        if rows.empty:
            raise IndexError(f"query {query} not found in the index (bounds {self.bounds})")
        crs = self.index.crs.to_string()
        width, height = round((x.stop - x.start) / x.step), round((y.stop - y.start) / y.step)
        grid = Grid(crs, (x.step, 0.0, x.start, 0.0, -y.step, y.stop), width, height)
        out = np.full((len(self.bands), height, width), np.nan if self.is_image else IGNORE,
                      dtype=np.float32 if self.is_image else np.uint8)
        filled = np.zeros((len(self.bands), height, width), dtype=bool)
        for pos in rows.sort_index()["position"]:
            entry = self.entries[int(pos)]
            for b, key in enumerate(self.bands):
                asset = entry.assets[key]
                data, valid = read_on_grid(entry.href(key), grid, 1,
                                           resampling_for(asset, grid.res) if self.is_image else "nearest")
                if self.is_image and self.physical:
                    band = (asset.get("bands") or [{}])[0]
                    data = data.astype(np.float32) * np.float32(band.get("raster:scale", 1.0)) \
                        + np.float32(band.get("raster:offset", 0.0))
                take = valid & ~filled[b]
                out[b][take] = data[take]
                filled[b] |= take
        sample: dict[str, Any] = {"crs": self.crs, "bounds": query}
        if self.is_image:
            sample["image"] = torch.from_numpy(out)
        else:
            sample["mask"] = torch.from_numpy(out[0].astype(np.int64))
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample
