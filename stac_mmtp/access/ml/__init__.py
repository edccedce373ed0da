"""Training-ready access to a release: the parquet index, fixed-size chips, a TorchGeo dataset.

Importing this package does not import torch; only `torchgeo_dataset` needs the `[ml]` extra.
"""

from __future__ import annotations

from typing import Any

from stac_mmtp.access.ml.chips import CONVERSION_FIELDS, DEFAULT_BANDS, ChipDataset, Scene, to_physical
from stac_mmtp.access.ml.index import Entry, Index
from stac_mmtp.access.ml.reader import GDAL_OPTIONS, Grid, close_all, read_on_grid

__all__ = ["CONVERSION_FIELDS", "DEFAULT_BANDS", "GDAL_OPTIONS", "ChipDataset", "Entry", "Grid", "Index", "Scene", "close_all",
           "read_on_grid", "to_physical", "torchgeo_dataset"]


def torchgeo_dataset(release: Any, modality: str = "sentinel-2", **kwargs: Any) -> Any:
    """A `torchgeo.datasets.GeoDataset` over the release's index (needs `pip install stac-mmtp[ml]`)."""
    from stac_mmtp.access.ml.torchgeo import StacMmtpGeoDataset

    return StacMmtpGeoDataset(release, modality=modality, **kwargs)
