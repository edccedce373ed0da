"""Training samples straight from a release: (image, mask) pairs for deep-learning loaders.

Each raster label item of the `annotations` collection is a class mask on the grid of one imagery
item (same CRS, transform and shape), so a sample is the imagery item's bands stacked with that
mask: no resampling, no reprojection. `LabelledScenes` has `__len__`/`__getitem__`, so it plugs
into `torch.utils.data.DataLoader` (numpy arrays are converted by its default collate; clips
differ in size from event to event, so use `batch_size=1` or a cropping transform).

    from stac_mmtp.access.loader import LabelledScenes
    train = LabelledScenes("https://example.org/stac-mmtp/v1/catalog.json", split="train")
    sample = train[0]   # {"image": float32 (C, H, W), "mask": uint8 (H, W), "bands": [...], ...}

Works on a local build or a published release (rasterio reads HTTP COGs by range requests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Bands read by default per imagery collection (asset keys); any asset aligned with the mask works.
DEFAULT_BANDS = {"sentinel-2": ("blue", "green", "red", "nir"), "sentinel-1": ("vv", "vh")}


@dataclass(frozen=True)
class _Pair:
    label: Any  # pystac.Item (raster label)
    imagery: Any  # pystac.Item (its source)
    pre_event: Any = None  # pystac.Item: the latest pre-event image on the same grid (change detection)


class LabelledScenes:
    """(image, mask) samples from the raster label items of a stac-mmtp catalog.

    `split`: keep items whose `ml-aoi:split` is this (train / validate / test); `collection`: the
    imagery collection (sentinel-2, sentinel-1); `bands`: asset keys to stack (default per
    collection); `physical`: apply `raster:scale`/`raster:offset` (reflectance, sigma0) and turn
    nodata into NaN, else raw values as float32; `pre_event`: change-detection samples, only masks
    whose imagery has a pre-event image on the same grid (their `related` link with
    `mmtp:temporal_role: pre-event`), which each sample carries as `pre_image`.
    """

    def __init__(self, catalog: str | Path, split: str | None = None, collection: str = "sentinel-2",
                 bands: Sequence[str] | None = None, physical: bool = True, pre_event: bool = False):
        import pystac

        root = pystac.Catalog.from_file(str(catalog))
        annotations = root.get_child("annotations")
        if annotations is None:
            raise ValueError(f"{catalog}: no annotations collection")
        self.bands = tuple(bands or DEFAULT_BANDS.get(collection, ()))
        if not self.bands:
            raise ValueError(f"no default bands for collection {collection!r}: pass bands=...")
        self.physical = physical
        self.pairs: list[_Pair] = []
        for label in sorted(annotations.get_items(), key=lambda it: it.id):
            if label.properties.get("label:type") != "raster":
                continue
            if split is not None and label.properties.get("ml-aoi:split") != split:
                continue
            before = [lk for lk in label.get_links("related") if lk.extra_fields.get("mmtp:temporal_role") == "pre-event"]
            if pre_event and not before:
                continue
            for link in label.get_links("source"):
                imagery = link.resolve_stac_object(root=root).target
                if imagery.collection_id == collection:
                    pre = before[0].resolve_stac_object(root=root).target if pre_event else None
                    self.pairs.append(_Pair(label, imagery, pre))

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        import rasterio

        pair = self.pairs[index]
        with rasterio.open(pair.label.assets["mask"].get_absolute_href()) as m:
            mask = m.read(1)
            grid = (m.crs, m.transform, m.shape)
        props = pair.label.properties
        sample = {
            "image": self._stack(pair.imagery, grid), "mask": mask, "bands": list(self.bands),
            "label_id": pair.label.id, "imagery_id": pair.imagery.id, "event_id": props.get("mmtp:event_id"),
            "split": props.get("ml-aoi:split"), "classes": props.get("classification:classes")
            or pair.label.assets["mask"].extra_fields.get("classification:classes"),
        }
        if pair.pre_event is not None:
            sample["pre_image"] = self._stack(pair.pre_event, grid)
            sample["pre_imagery_id"] = pair.pre_event.id
        return sample

    def _stack(self, item: Any, grid: tuple[Any, Any, tuple[int, int]]) -> np.ndarray:
        """The item's bands (float32, C x H x W), each checked to lie on the mask's grid."""
        import rasterio

        layers = []
        for key in self.bands:
            asset = item.assets.get(key)
            if asset is None:
                raise KeyError(f"{item.id}: no asset {key!r}")
            with rasterio.open(asset.get_absolute_href()) as src:
                if (src.crs, src.transform, src.shape) != grid:
                    raise ValueError(f"{item.id}/{key} is not on the mask's grid (a coarser band?)")
                data = src.read(1).astype(np.float32)
                if self.physical:
                    band = (asset.extra_fields.get("bands") or [{}])[0]
                    nodata = src.nodata
                    invalid = np.isnan(data) if nodata is None or np.isnan(nodata) else data == nodata
                    data = data * band.get("raster:scale", 1.0) + band.get("raster:offset", 0.0)
                    data[invalid] = np.nan
            layers.append(data)
        return np.stack(layers)
