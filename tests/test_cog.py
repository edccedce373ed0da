"""The COG writer: per-layer overview resampling, computed from full resolution, never from the source's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from stac_mmtp.raster.cog import CogProfile, array_to_cog, clip_to_cog, is_valid_cog


def _jp2(path: Path, data: np.ndarray) -> Path:
    with rasterio.open(path, "w", driver="JP2OpenJPEG", width=data.shape[1], height=data.shape[0], count=1,
                       dtype=data.dtype, crs="EPSG:32632", transform=from_origin(600000, 6700000, 20, 20),
                       QUALITY=100, REVERSIBLE="YES", RESOLUTIONS=4) as ds:
        ds.write(data, 1)
    return path


def test_class_overviews_from_jp2_are_nearest(tmp_path: Path) -> None:
    """JPEG 2000 resolution levels are wavelet-smoothed: they must not leak into class overviews."""
    rng = np.random.default_rng(0)
    classes = rng.choice(np.array([0, 4, 9], dtype=np.uint8), size=(1200, 1200))
    src = _jp2(tmp_path / "scl.jp2", classes)
    with rasterio.open(src) as ds:
        assert ds.overviews(1)  # the source does have resolution levels
    dst = clip_to_cog(src, tmp_path / "scl.tif", Window(100, 50, 1024, 1100), CogProfile(overview_resampling="nearest"))
    assert is_valid_cog(dst)[0]
    with rasterio.open(dst) as ds:
        assert ds.overviews(1) == [2, 4]
        assert np.array_equal(ds.read(1), classes[50:1150, 100:1124])
    for level in (0, 1):
        with rasterio.open(dst, OVERVIEW_LEVEL=level) as ov:
            assert set(np.unique(ov.read(1)).tolist()) <= {0, 4, 9}


def test_average_overviews_for_reflectance(tmp_path: Path) -> None:
    data = np.zeros((1024, 1024), dtype=np.uint16)
    data[:, 1::2] = 1000  # alternating columns: the 2x average is exactly 500
    dst = array_to_cog(data, tmp_path / "r.tif", "EPSG:32632", from_origin(0, 0, 10, 10), nodata=None,
                       profile=CogProfile(overview_resampling="average"))
    with rasterio.open(dst, OVERVIEW_LEVEL=0) as ov:
        assert np.all(ov.read(1) == 500)
    with rasterio.open(dst) as ds:
        assert ds.profile["blockxsize"] == 512 and ds.compression.name.lower() == "deflate"


def test_unknown_resampling_rejected() -> None:
    with pytest.raises(ValueError, match="unknown overview resampling"):
        CogProfile(overview_resampling="lanczos3").creation_options()
