"""Training-ready access (stac_mmtp.access.ml): the parquet index, chips checked against direct rasterio
reads, mask alignment, DataLoader determinism, local vs HTTP vs S3, TorchGeo, the example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window
from unavailable import unavailable

from stac_mmtp.raster.geo import reproject

REPO = Path(__file__).resolve().parents[1]
GJ = "gjerdrum-landslide-2020"
VENETO = "veneto-flash-flood-2018"
S2_PRE = f"{GJ}_S2A_MSIL2A_20201225T104441_N0510_R008_T32VPM_20201225T120141"
S2_POST = f"{GJ}_S2B_MSIL2A_20210102T104441_N0510_R008_T32VPM_20210102T120141"
S1_PRE = f"{GJ}_S1A_IW_GRDH_1SDV_20201224T164211_20201224T164212_035830_E9AEE3_9FC2"
S1_POST = f"{GJ}_S1A_IW_GRDH_1SDV_20210105T164211_20210105T164212_036005_FED444_656C"

try:
    import torch
except ModuleNotFoundError:  # the [ml] extra: CI installs it; locally it may be missing
    torch = None


@pytest.fixture(autouse=True)
def _needs_torch() -> None:
    if torch is None:
        unavailable("torch is not installed (pip install 'stac-mmtp[ml]')")


@pytest.fixture(scope="session")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample release, built once per session with the documented commands."""
    root = tmp_path_factory.mktemp("ml-release")
    env = {**os.environ, "STAC_MMTP_SCHEMA_CACHE": os.environ.get("STAC_MMTP_SCHEMA_CACHE", "")}
    for args in (["sample", str(root / "products")],
                 ["build", "--products", str(root / "products"), "--out", str(root / "catalog")]):
        subprocess.run([sys.executable, "-m", "stac_mmtp", "-q", *args], cwd=REPO, env=env, check=True,
                       capture_output=True)
    return root / "catalog"


def _items(release: Path, collection: str) -> dict[str, dict]:
    """Item JSON documents read straight from the tree (the expectations' source, not the index)."""
    return {p.parent.name: json.loads(p.read_text()) for p in (release / collection).glob("*/*.json")
            if p.stem == p.parent.name}


def _dn(path: Path, window: Window) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1, window=window)


# ---------------------------------------------------------------- no torch in the core
def test_core_does_not_import_torch() -> None:
    code = ("import pkgutil, importlib, sys, stac_mmtp\n"
            "mods = [m.name for m in pkgutil.walk_packages(stac_mmtp.__path__, 'stac_mmtp.')"
            " if m.name not in ('stac_mmtp.access.ml.torchgeo', 'stac_mmtp.__main__')]\n"
            "[importlib.import_module(m) for m in mods]\n"
            "assert 'stac_mmtp.access.ml.chips' in mods and 'stac_mmtp.access.loader' in mods\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'torchgeo', 'torchvision')))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- index
def test_index_from_parquet_and_filters(release: Path) -> None:
    from stac_mmtp.access.ml import Index

    s2, s1, ann = _items(release, "sentinel-2"), _items(release, "sentinel-1"), _items(release, "annotations")
    index = Index(release)
    by_coll = {c: {e.id for e in index if e.collection == c} for c in ("sentinel-2", "sentinel-1", "annotations")}
    assert by_coll == {"sentinel-2": set(s2), "sentinel-1": set(s1), "annotations": set(ann)}
    post = {i for i, it in {**s2, **s1}.items() if it["properties"]["mmtp:temporal_role"] == "first-post-event"}
    assert {e.id for e in index.filter(temporal_role="first-post-event", modality=["sentinel-2", "sentinel-1"])} == post
    assert {e.id for e in index.filter(event=GJ, modality="sentinel-2")} == {i for i in s2 if i.startswith(GJ)}
    veneto = {i: it for i, it in s1.items() if i.startswith(VENETO)}
    kind = {it["properties"]["mmtp:phenomenon"] for it in veneto.values()}
    assert kind == {"flash-flood"} and {e.id for e in index.filter(phenomenon=kind.pop(), modality="sentinel-1")} == set(veneto)
    assert {e.id for e in index.filter(split="train", modality="sentinel-2")} == \
        {i for i, it in s2.items() if it["properties"]["ml-aoi:split"] == "train"}
    assert {e.id for e in index.filter(modality="sentinel-2", datetime="2020-12-20T00:00:00Z/2021-01-31T00:00:00Z")} \
        == {S2_PRE, S2_POST}
    assert {e.id for e in index.filter(modality="sentinel-1", bbox=[11.0, 60.0, 11.1, 60.1])} == {S1_PRE, S1_POST}
    assert len(index.filter(split="no-such-split")) == 0
    # hrefs resolved against the parquet's own location
    assert Path(index[S2_POST].href("red")) == (release / "sentinel-2" / S2_POST / "red.tif").resolve()


# ---------------------------------------------------------------- chips
@pytest.fixture(scope="session")
def chips(release: Path):
    from stac_mmtp.access.ml import ChipDataset

    return ChipDataset(release, split=None, sampler="grid", size=256, stride=172)


def test_chip_values_equal_direct_reads(chips, release: Path) -> None:
    """Every modality and time step of a chip equals rasterio's read of the same window of the COG."""
    s_index = [s.event_id for s in chips.scenes].index(GJ)
    scene = chips.scenes[s_index]
    # the grid is the S2 tile clip (the S1 clip is larger): EPSG:32632, 10 m, origin (610560, 6664200)
    assert scene.grid.crs == "EPSG:32632" and scene.grid.transform[:6] == (10.0, 0.0, 610560.0, 0.0, -10.0, 6664200.0)
    assert (scene.grid.width, scene.grid.height) == (600, 600)
    col, row = 172, 344
    s = chips.chip(s_index, col, row)
    assert s["image"]["sentinel-2"].shape == (2, 4, 256, 256) and s["image"]["sentinel-2"].dtype == np.float32
    assert s["image"]["sentinel-1"].shape == (2, 2, 256, 256) and s["mask"].shape == (256, 256)
    assert s["mask"].dtype == np.uint8
    np.testing.assert_array_equal(s["bounds"], [610560 + 1720, 6664200 - 3440 - 2560, 610560 + 1720 + 2560, 6664200 - 3440])
    for t, item in enumerate((S2_PRE, S2_POST)):
        for c, band in enumerate(("blue", "green", "red", "nir")):
            dn = _dn(release / "sentinel-2" / item / f"{band}.tif", Window(col, row, 256, 256)).astype(np.float64)
            got = s["image"]["sentinel-2"][t, c]
            valid = dn != 0
            assert valid.mean() > 0.5
            np.testing.assert_allclose(got[valid], dn[valid] * 0.0001 - 0.1, rtol=0, atol=1e-6)
            assert np.isnan(got[~valid]).all()
    # S1 clips start at x=609520, y=6665310: the same window is 104 columns right and 111 rows down
    for t, item in enumerate((S1_PRE, S1_POST)):
        for c, band in enumerate(("vv", "vh")):
            sigma0 = _dn(release / "sentinel-1" / item / f"{band}.tif", Window(col + 104, row + 111, 256, 256))
            np.testing.assert_array_equal(s["image"]["sentinel-1"][t, c], sigma0)
    label = next(i for i, it in _items(release, "annotations").items() if it["properties"].get("label:type") == "raster"
                 and any(lk["rel"] == "source" and S2_POST in lk["href"] for lk in it["links"]))
    np.testing.assert_array_equal(s["mask"], _dn(release / "annotations" / label / "mask.tif", Window(col, row, 256, 256)))
    assert s["label"]["id"] == label and s["label"]["review_status"] == "draft"


def test_timestamps_roles_ids(chips, release: Path) -> None:
    s = chips.chip([sc.event_id for sc in chips.scenes].index(GJ), 0, 0)
    items = {**_items(release, "sentinel-2"), **_items(release, "sentinel-1")}

    def unix(item: str) -> int:
        return int(datetime.fromisoformat(items[item]["properties"]["datetime"].replace("Z", "+00:00")).timestamp())

    assert s["item_ids"] == {"sentinel-2": [S2_PRE, S2_POST], "sentinel-1": [S1_PRE, S1_POST]}
    assert s["temporal_roles"] == {m: ["pre-event", "first-post-event"] for m in ("sentinel-2", "sentinel-1")}
    assert list(s["timestamps"]["sentinel-2"]) == [unix(S2_PRE), unix(S2_POST)]
    assert list(s["timestamps"]["sentinel-2"]) == [1608893081, 1609584281]  # 2020-12-25T10:44:41Z, 2021-01-02T10:44:41Z
    assert [items[i]["properties"]["mmtp:temporal_role"] for i in (S1_PRE, S1_POST)] == ["pre-event", "first-post-event"]


def test_reprojected_to_coarser_grid(release: Path) -> None:
    """At 20 m every band is averaged 2x2 (reflectance and sigma0; within 1e-6), the mask takes one of
    its four source pixels (nearest)."""
    from stac_mmtp.access.ml import ChipDataset

    ds = ChipDataset(release, split=None, event=GJ, sampler="grid", size=128, resolution=20.0)
    assert ds.scenes[0].grid.transform == (20.0, 0.0, 610560.0, 0.0, -20.0, 6664200.0)
    s = ds.chip(0, 10, 20)
    dn = _dn(release / "sentinel-2" / S2_POST / "red.tif", Window(20, 40, 256, 256)).astype(np.float64)
    refl = np.where(dn == 0, np.nan, dn * 0.0001 - 0.1).reshape(128, 2, 128, 2)
    ok = ~np.isnan(refl).any(axis=(1, 3))
    np.testing.assert_allclose(s["image"]["sentinel-2"][1, 2][ok], np.nanmean(refl, axis=(1, 3))[ok], atol=1e-6)
    vv = _dn(release / "sentinel-1" / S1_POST / "vv.tif", Window(20 + 104, 40 + 111, 256, 256)).astype(np.float64)
    np.testing.assert_allclose(s["image"]["sentinel-1"][1, 0], vv.reshape(128, 2, 128, 2).mean(axis=(1, 3)),
                               rtol=1e-5, atol=1e-7)
    label = s["label"]["id"]
    m = _dn(release / "annotations" / label / "mask.tif", Window(20, 40, 256, 256)).reshape(128, 2, 128, 2)
    blocks = m.transpose(0, 2, 1, 3).reshape(128, 128, 4)
    assert (blocks == s["mask"][..., None]).any(axis=2).all()


def test_mask_aligns_with_independently_rasterised_outline(chips, release: Path) -> None:
    """The repository's outline, rasterised here with rasterio.features on the chip grid, lands on the
    chip's landslide pixels (class 3) exactly, wherever the mask is not ignore."""
    from rasterio.features import rasterize
    from rasterio.transform import from_origin
    from shapely.geometry import mapping, shape

    doc = json.loads((REPO / "catalog/annotations" / GJ / "maintainers-sketch-v1.geojson").read_text())
    outline = reproject(shape(doc["features"][0]["geometry"]), 4326, 32632)
    s_index = [s.event_id for s in chips.scenes].index(GJ)
    hits = 0
    for sc, col, row in chips._grid_chips:
        if sc != s_index:
            continue
        s = chips.chip(sc, col, row)
        west, _, _, north = s["bounds"]
        ours = rasterize([(mapping(outline), 1)], out_shape=(256, 256), transform=from_origin(west, north, 10, 10),
                         fill=0, dtype="uint8")
        examined = s["mask"] != 255
        np.testing.assert_array_equal((s["mask"] == 3)[examined], (ours == 1)[examined])
        hits += int((ours == 1).sum())
    assert hits > 1000  # the ~0.1 km2 outline crossed several chips (overlapping by stride 172)


def test_raw_dn_and_db(release: Path) -> None:
    from stac_mmtp.access.ml import ChipDataset

    raw = ChipDataset(release, split=None, event=GJ, sampler="grid", physical=False)
    db = ChipDataset(release, split=None, event=GJ, sampler="grid", sigma0="db")
    a, b = raw[0], db[0]
    np.testing.assert_array_equal(a["image"]["sentinel-2"][1, 0],
                                  _dn(release / "sentinel-2" / S2_POST / "blue.tif", Window(0, 0, 256, 256)))
    vv = _dn(release / "sentinel-1" / S1_POST / "vv.tif", Window(104, 111, 256, 256)).astype(np.float64)
    np.testing.assert_allclose(b["image"]["sentinel-1"][1, 0], 10 * np.log10(np.maximum(vv, 1e-6)), atol=1e-4)


def test_series_pads_to_fixed_length(release: Path) -> None:
    from stac_mmtp.access.ml import ChipDataset

    s2 = sorted(i for i in _items(release, "sentinel-2") if i.startswith(GJ))
    ds = ChipDataset(release, modalities=("sentinel-2",), split=None, event=GJ, time="series", series_length=4,
                     label=False, sampler="grid")
    s = ds[0]
    assert s["image"]["sentinel-2"].shape == (4, 4, 256, 256)
    assert s["item_ids"]["sentinel-2"] == [""] * (4 - len(s2)) + s2  # ids sort by date within one tile
    assert s["timestamps"]["sentinel-2"][0] == -1 and np.isnan(s["image"]["sentinel-2"][0]).all()
    assert s["temporal_roles"]["sentinel-2"][-1] == "first-post-event" and "mask" not in s


def test_random_sampler_skips_mostly_nodata(release: Path) -> None:
    """min_valid=1.0: of 10 draws each chip keeps the most valid one; with min_valid=0 the first draw."""
    from stac_mmtp.access.ml import ChipDataset

    strict = ChipDataset(release, split=None, length=6, seed=3, min_valid=1.0)
    loose = ChipDataset(release, split=None, length=6, seed=3, min_valid=0.0)
    fs, fl = [strict[i]["valid_fraction"] for i in range(6)], [loose[i]["valid_fraction"] for i in range(6)]
    assert all(a >= b for a, b in zip(fs, fl, strict=True)) and min(fs) > 0.9


# ---------------------------------------------------------------- DataLoader
def test_dataset_pickles_without_handles(release: Path) -> None:
    """After reads, the dataset still pickles to plain data (headers, tiles, files and sessions live per
    process, not on it)."""
    import pickle

    from stac_mmtp.access.ml import ChipDataset, cog, remote

    ds = ChipDataset(release, split=None, length=2, seed=1)
    first = ds[0]
    assert cog._headers and cog._tiles and remote._files  # this process holds headers, tiles, open files...
    blob = pickle.dumps(ds)
    assert b"rasterio" not in blob and b"BufferedReader" not in blob and len(blob) < 200_000  # ...not the pickle
    again = pickle.loads(blob)[0]
    np.testing.assert_array_equal(again["image"]["sentinel-2"], first["image"]["sentinel-2"])


def _batches(ds, seed: int) -> list:
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed))
    out = []
    for epoch in range(2):
        ds.set_epoch(epoch)
        out.append([(b["image"]["sentinel-2"].clone(), b["image"]["sentinel-1"].clone(), b["mask"].clone(),
                     list(b["event_id"])) for b in loader])
    return out


def test_dataloader_workers_deterministic(release: Path) -> None:
    from stac_mmtp.access.ml import ChipDataset

    ds = ChipDataset(release, split=None, size=128, length=16, seed=7)
    first, second = _batches(ds, 0), _batches(ds, 0)
    assert [len(e) for e in first] == [2, 2]
    b = first[0][0]
    assert b[0].shape == (8, 2, 4, 128, 128) and b[0].dtype == torch.float32 and b[2].dtype == torch.uint8
    for e1, e2 in zip(first, second, strict=True):
        for x, y in zip(e1, e2, strict=True):
            assert all(torch.equal(p, q) for p, q in zip(x[:3], y[:3], strict=True)) and x[3] == y[3]
    assert not torch.equal(first[0][0][0], first[1][0][0])  # the epoch changes the positions


# ---------------------------------------------------------------- remote
def test_same_samples_over_http(release: Path) -> None:
    from stac_mmtp.access.ml import ChipDataset, close_all
    from stac_mmtp.access.preview import serve

    local = ChipDataset(release, split=None, length=4, seed=11)
    with serve({"/v1/": release}) as base:
        remote = ChipDataset(f"{base}v1/catalog.json", split=None, length=4, seed=11)
        assert remote.scenes[0].items["sentinel-2"][0].href("red").startswith(base)
        for i in range(4):
            a, b = local[i], remote[i]
            for m in ("sentinel-2", "sentinel-1"):
                np.testing.assert_array_equal(a["image"][m], b["image"][m])
            np.testing.assert_array_equal(a["mask"], b["mask"])
        close_all()


def test_same_samples_from_s3(release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The release published with our publish command to moto's S3 server: read as s3://bucket/prefix
    (endpoint option, signed with credentials; then AWS_ENDPOINT_URL, anonymous) and through the
    server's HTTP URL, the samples equal the local build's, and FLATSIM (reprojected by GDAL, /vsis3/)
    too."""
    from helpers import published_to_s3

    from stac_mmtp.access.ml import ChipDataset, Index, close_all, torchgeo_dataset

    monkeypatch.setenv("STAC_MMTP_CACHE", str(tmp_path))
    kw = {"split": None, "length": 3, "seed": 5}
    fs = {"modalities": ("flatsim",), "bands": {"flatsim": ("displacement",)}, "time": "series", "label": False,
          "split": None, "size": 64, "resolution": 90.0, "sampler": "grid"}
    local, local_fs = ChipDataset(release, **kw), ChipDataset(release, **fs)

    def same(ds: ChipDataset, ref: ChipDataset, n: int, keys: tuple[str, ...]) -> None:
        for i in range(n):
            a, b = ref[i], ds[i]
            for m in keys:
                np.testing.assert_array_equal(a["image"][m], b["image"][m])
            if "mask" in a:
                np.testing.assert_array_equal(a["mask"], b["mask"])

    close_all()
    with published_to_s3(release, cors=False) as url:
        endpoint, _, key = url.partition("/release-no-cors/")
        s3_url = f"s3://release-no-cors/{key}"
        assert s3_url == "s3://release-no-cors/v1/catalog.json"
        signed = ChipDataset(s3_url, endpoint_url=endpoint, **kw)
        assert signed.scenes[0].items["sentinel-2"][0].href("red").startswith("s3://release-no-cors/v1/sentinel-2/")
        same(signed, local, 3, ("sentinel-2", "sentinel-1"))
        same(ChipDataset(s3_url, endpoint_url=endpoint, **fs), local_fs, 1, ("flatsim",))
        assert len(Index("s3://release-no-cors/v1", endpoint_url=endpoint)) == len(Index(release))
        same(ChipDataset(url, **kw), local, 3, ("sentinel-2", "sentinel-1"))  # the bucket's HTTP URL
        if torch is not None:
            tg = torchgeo_dataset(s3_url, modality="sentinel-2", endpoint_url=endpoint, event=GJ)
            ref = torchgeo_dataset(release, modality="sentinel-2", event=GJ)
            x0, y1 = ref.bounds[0].start, ref.bounds[1].stop
            q = (slice(x0, x0 + 1280, 10.0), slice(y1 - 1280, y1, 10.0), slice(ref.bounds[2].start, ref.bounds[2].stop))
            torch.testing.assert_close(tg[q]["image"], ref[q]["image"], rtol=0, atol=0, equal_nan=True)
        close_all()
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # anonymous: the bucket's public-read policy
            monkeypatch.delenv(k)
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        from stac_mmtp.access.ml import remote

        remote.configure_s3(None)
        same(ChipDataset(s3_url, **kw), local, 3, ("sentinel-2", "sentinel-1"))
    close_all()


def test_cog_reader_equals_rasterio_for_every_cog_of_the_build(release: Path) -> None:
    """Every COG the build writes (S2 bands, SCL, visual RGB, S1 sigma0 float32 with the floating-point
    predictor, masks, FLATSIM multi-band series, overviews): header fields and windows equal rasterio's."""
    from stac_mmtp.access.ml import cog

    files = sorted(release.rglob("*.tif"))
    kinds = {(p.parts[len(release.parts)], p.name) for p in files}
    assert {("sentinel-2", "red.tif"), ("sentinel-2", "visual.tif"), ("sentinel-1", "vv.tif"),
            ("annotations", "mask.tif"), ("flatsim", "displacement.tif")} <= kinds
    rng = np.random.default_rng(3)
    cog.clear()
    for path in files:
        h = cog.header(str(path))
        assert h is not None, path  # every COG of the build is read without GDAL
        with rasterio.open(path) as src:
            assert (h.crs, h.transform, h.width, h.height) == (src.crs.to_string(), tuple(src.transform)[:6],
                                                               src.width, src.height), path
            assert h.nodata == src.nodata or (np.isnan(h.nodata) and np.isnan(src.nodata)), path
            for b in sorted({1, src.count}):
                w, hh = int(rng.integers(1, min(300, src.width) + 1)), int(rng.integers(1, min(300, src.height) + 1))
                c, r = int(rng.integers(0, src.width - w + 1)), int(rng.integers(0, src.height - hh + 1))
                ref = src.read(b, window=Window(c, r, w, hh))
                got = cog.read(str(path), c, r, w, hh, b)
                assert got.dtype == ref.dtype and np.array_equal(got, ref, equal_nan=True), (path, b, c, r, w, hh)
    cog.clear()


def test_remote_chip_costs_range_reads_of_its_tiles(release: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Over HTTP a COG costs one header range read, ever (then cached on disk): no HEAD, no whole-file
    GET; a chip costs at most one range read per file for tiles not read yet, re-reading it costs
    none, and a new process with the disk cache reads no header."""
    from stac_mmtp.access import preview
    from stac_mmtp.access.ml import ChipDataset, close_all, cog

    monkeypatch.setenv("STAC_MMTP_CACHE", str(tmp_path))
    log: list[tuple[str, str, str | None]] = []
    send_head = preview._Handler.send_head

    def recording(self):  # noqa: ANN001, ANN202 - the stdlib handler's signature
        log.append((self.command, self.path, self.headers.get("Range")))
        return send_head(self)

    monkeypatch.setattr(preview._Handler, "send_head", recording)
    close_all()
    with preview.serve({"/v1/": release}) as base:
        ds = ChipDataset(f"{base}v1/catalog.json", split=None, event=GJ, time=("first-post-event",),
                         sampler="grid", stride=172)
        log.clear()
        ds[0]
        cogs = {p for _, p, _ in log}
        assert len(cogs) == 7  # 4 S2 bands, 2 S1 bands, the mask
        assert all(m == "GET" for m, _, _ in log)
        for c in cogs:
            gets = [r for _, p, r in log if p == c]
            assert gets[0] == f"bytes=0-{cog.HEADER_BYTES - 1}" and len(gets) == 2, gets  # the header, then the tile
        log.clear()
        ds[0]
        assert log == []
        for i in range(1, len(ds)):
            ds[i]
        assert all(m == "GET" and r for m, _, r in log)
        tiles = 4 * 4 + 2 * 4 + 4  # 600 x 600 S2 and mask, 820 x 818 S1: 2 x 2 tiles of 512 each
        assert len(log) <= tiles - 7
        assert len(list((tmp_path / "cog-headers").glob("*.json"))) == 7
        cog.clear()  # as a new worker process: the headers come from the disk cache
        log.clear()
        ds[0]
        assert len(log) == 7 and not any(r.startswith("bytes=0-") for _, _, r in log)
    close_all()


def test_changed_remote_cog_is_read_again(release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cached header whose object changed (another size) is dropped at the first tile read and read
    again: the values are the new file's."""
    import shutil

    from stac_mmtp.access import preview
    from stac_mmtp.access.ml import cog

    monkeypatch.setenv("STAC_MMTP_CACHE", str(tmp_path / "cache"))
    served = tmp_path / "served"
    served.mkdir()
    red, vv = release / "sentinel-2" / S2_POST / "red.tif", release / "sentinel-1" / S1_POST / "vv.tif"
    shutil.copy(red, served / "a.tif")
    cog.clear()
    with preview.serve({"/d/": served}) as base:
        np.testing.assert_array_equal(cog.read(f"{base}d/a.tif", 0, 0, 50, 50), _dn(red, Window(0, 0, 50, 50)))
        shutil.copy(vv, served / "a.tif")
        cog.clear()  # memory only: the disk cache still holds red.tif's header
        got = cog.read(f"{base}d/a.tif", 100, 100, 50, 50)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, _dn(vv, Window(100, 100, 50, 50)))
    cog.clear()


# ---------------------------------------------------------------- TorchGeo
def test_torchgeo_sampler_same_pixels_as_ours(release: Path) -> None:
    try:
        import torchgeo  # noqa: F401
    except ModuleNotFoundError:
        unavailable("torchgeo is not installed (pip install 'stac-mmtp[ml]')")
    from torchgeo.datasets import GeoDataset
    from torchgeo.samplers import GridGeoSampler, RandomGeoSampler

    from stac_mmtp.access.ml import ChipDataset, torchgeo_dataset

    image = torchgeo_dataset(release, modality="sentinel-2", event=GJ, temporal_role="first-post-event")
    mask = torchgeo_dataset(release, modality="annotations", event=GJ, source_modality="sentinel-2")
    assert isinstance(image, GeoDataset) and image.crs.to_epsg() == 32632 and image.res == (10.0, 10.0)
    both = image & mask
    ours = ChipDataset(release, split=None, event=GJ, sampler="grid")
    queries = list(RandomGeoSampler(both, size=256, length=4)) + list(GridGeoSampler(both, size=256, stride=256))[:2]
    assert len(queries) == 6
    for q in queries:
        s = both[q]
        assert s["image"].shape == (4, 256, 256) and s["mask"].shape == (256, 256)
        mine = ours.chip_at(GJ, (q[0].start, q[1].start, q[0].stop, q[1].stop))
        np.testing.assert_array_equal(mine["bounds"], [q[0].start, q[1].start, q[0].stop, q[1].stop])
        np.testing.assert_array_equal(s["image"].numpy(), mine["image"]["sentinel-2"][1])  # post-event S2
        np.testing.assert_array_equal(s["mask"].numpy(), mine["mask"].astype(np.int64))
    # the whole release (docs/training.md): both events' images meet their masks in space and time,
    # Veneto (a period event, zone 33) reprojected into the index CRS
    everywhere = (torchgeo_dataset(release, modality="sentinel-2", temporal_role="first-post-event")
                  & torchgeo_dataset(release, modality="annotations", source_modality="sentinel-2"))
    s2 = _items(release, "sentinel-2")
    first_post = {i.split("_", 1)[1] for i, it in s2.items() if it["properties"]["mmtp:temporal_role"] == "first-post-event"}
    masked = sorted({it["properties"]["mmtp:event_id"] for i, it in _items(release, "annotations").items()
                     if it["properties"]["label:type"] == "raster" and any(i.endswith(p) for p in first_post)})
    assert GJ in masked and VENETO in masked
    assert sorted(set(everywhere.index["item_1"].str.split("_").str[0])) == masked


# ---------------------------------------------------------------- example
def test_example_trains_one_epoch(release: Path) -> None:
    out = subprocess.run([sys.executable, str(REPO / "examples" / "train_segmentation.py"), str(release),
                          "--chips", "8", "--size", "64", "--workers", "0"], cwd=REPO, capture_output=True,
                         text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert "epoch 1: 2 batches" in out.stdout and "loss" in out.stdout


# ---------------------------------------------------------------- the documented five lines
def test_docs_snippet_gives_a_batch(release: Path) -> None:
    """The first Python block of docs/training.md (also in the README), run on the sample release."""
    text = (REPO / "docs" / "training.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    readme = (REPO / "README.md").read_text()
    assert all(line in readme for line in code.splitlines() if line.startswith(("ds = ", "batch = ")))
    code = code.replace('"build/catalog"', repr(str(release)))
    scope: dict = {}
    exec(compile(code, "docs/training.md", "exec"), scope)  # noqa: S102 (our own documentation)
    batch = scope["batch"]
    assert batch["image"]["sentinel-2"].shape == (16, 2, 4, 256, 256)
    assert batch["image"]["sentinel-1"].shape == (16, 2, 2, 256, 256)
    assert batch["mask"].shape == (16, 256, 256) and batch["mask"].dtype == torch.uint8
    assert set(batch["event_id"]) <= {GJ, VENETO, "veneto-flood-pordenone-2018"}  # events with S1, S2 and masks


def test_flatsim_displacement_series(release: Path) -> None:
    """time="series" on FLATSIM: the displacement time series as [T, 1, H, W], one step per date of
    `flatsim:dates`, reprojected from lat/lon to the event's UTM grid; each step equals GDAL's
    bilinear `rasterio.warp.reproject` of that band onto the chip grid (within 1e-4 mm)."""
    from rasterio.transform import from_origin
    from rasterio.warp import Resampling
    from rasterio.warp import reproject as warp

    from stac_mmtp.access.ml import ChipDataset

    ts = next(it for i, it in _items(release, "flatsim").items() if "_TS-PKG_" in i)
    ds = ChipDataset(release, modalities=("flatsim",), bands={"flatsim": ("displacement",)}, time="series",
                     label=False, split=None, size=64, resolution=90.0, sampler="grid")
    assert [s.event_id for s in ds.scenes] == [ts["properties"]["mmtp:event_id"]]
    s = ds[0]
    dates = ts["properties"]["flatsim:dates"]
    assert s["image"]["flatsim"].shape == (len(dates), 1, 64, 64) == (9, 1, 64, 64)
    assert [datetime.fromtimestamp(int(t), tz=UTC).date().isoformat() for t in s["timestamps"]["flatsim"]] == dates
    assert s["crs"] == "EPSG:32632"  # La Clapiere, 7.1 E: UTM zone 32
    west, _, _, north = s["bounds"]
    with rasterio.open(release / "flatsim" / ts["id"] / "displacement.tif") as src:
        for k in (0, 4, 8):
            ref = np.full((64, 64), np.nan, np.float32)
            warp(rasterio.band(src, k + 1), ref, dst_transform=from_origin(west, north, 90, 90), dst_crs="EPSG:32632",
                 resampling=Resampling.bilinear, src_nodata=src.nodata, dst_nodata=np.nan)
            got = s["image"]["flatsim"][k, 0]
            both = ~np.isnan(ref) & ~np.isnan(got)
            assert both.mean() > 0.9
            np.testing.assert_allclose(got[both], ref[both], atol=1e-4)


def test_untiled_geotiff_falls_back_to_gdal(tmp_path: Path) -> None:
    """A file the tile reader does not handle (striped, not tiled) is read by GDAL, same values."""
    from rasterio.transform import from_origin

    from stac_mmtp.access.ml import Grid, cog, read_on_grid

    path = tmp_path / "striped.tif"
    data = np.arange(40 * 30, dtype=np.uint16).reshape(30, 40)
    with rasterio.open(path, "w", driver="GTiff", width=40, height=30, count=1, dtype="uint16", crs="EPSG:32632",
                       transform=from_origin(600000, 5000000, 10, 10), compress="deflate", nodata=0) as dst:
        dst.write(data, 1)
    assert cog.header(str(path)) is None
    out, valid = read_on_grid(str(path), Grid("EPSG:32632", (10.0, 0.0, 600050.0, 0.0, -10.0, 4999950.0), 20, 10))
    np.testing.assert_array_equal(out, data[5:15, 5:25])
    assert valid.sum() == 200


# ---------------------------------------------------------------- the fast chip path
@pytest.mark.parametrize("kw", [{}, {"physical": False}, {"sigma0": "db"}, {"fill": -1.0, "size": 300},
                                {"physical": False, "dtype": "stored"}],
                         ids=["physical", "raw-dn", "db", "fill", "stored"])
def test_chips_cut_from_tiles_equal_gdal_reads(release: Path, kw: dict) -> None:
    """Chips cut straight from the cached tiles equal the same chips with every read through GDAL
    (`reader.FAST_READS = False`): values, NaN/fill positions, masks, valid fractions, on a grid that
    reaches every edge of every scene, including chips over nodata."""
    from stac_mmtp.access.ml import ChipDataset, cog, reader

    fast = ChipDataset(release, split=None, sampler="grid", stride=86, time=("first-post-event",), **kw)
    plans = [fast._plan(e, k, 0, False) for e in fast.scenes[0].items["sentinel-2"] for k in fast.bands["sentinel-2"]]
    assert all(p is not None for p in plans)  # the tile reader cuts them
    if kw.get("dtype") == "stored":  # a plain copy of the uint16 tiles: no cast, no scaling
        assert all(p[0].dtype == "<u2" and p[5:] == (1.0, 0.0, False) for p in plans)
    reader.FAST_READS = False
    try:
        slow = ChipDataset(release, split=None, sampler="grid", stride=86, time=("first-post-event",), **kw)
        ref = [slow[i] for i in range(len(slow))]
    finally:
        reader.FAST_READS = True
    cog.clear()
    fractions = []
    for i, b in enumerate(ref):
        a = fast[i]
        for m in ("sentinel-2", "sentinel-1"):
            assert a["image"][m].dtype == ({"sentinel-2": np.uint16, "sentinel-1": np.float32}[m]
                                           if kw.get("dtype") == "stored" else np.float32)
            assert np.array_equal(a["image"][m], b["image"][m], equal_nan=True), (i, m)
        assert a["mask"].dtype == np.uint8 and np.array_equal(a["mask"], b["mask"]), i
        assert a["valid_fraction"] == b["valid_fraction"], i
        fractions.append(a["valid_fraction"])
    assert min(fractions) < 0.99 and max(fractions) == 1.0  # chips over nodata, and chips without any


def test_read_into_counts_nodata_as_rasterio(release: Path) -> None:
    """`cog.read_into` over windows across tile corners and nodata: the values (scaled), the valid
    count and mask equal rasterio's read and its nodata comparison; the per-tile masks count in the
    tile cache's bytes and leave with their tiles."""
    from stac_mmtp.access.ml import cog

    cog.clear()
    for path, scale in ((release / "sentinel-2" / S2_POST / "red.tif", 1e-4),
                        (release / "sentinel-1" / S1_POST / "vv.tif", 1.0)):
        h = cog.header(str(path))
        with rasterio.open(path) as src:
            for col, row, w, hh in ((0, 0, 256, 256), (400, 400, 200, 180), (300, 100, 256, 256),
                                    (src.width - 100, src.height - 90, 100, 90)):
                ref = src.read(1, window=Window(col, row, w, hh))
                ok = ~np.isnan(ref) if np.isnan(src.nodata) else ref != src.nodata
                out = np.empty((hh, w), np.float32)
                n, valid = cog.read_into(h, col, row, out, 1, scale)
                assert n == int(ok.sum()), (path.name, col, row)
                assert valid is None if ok.all() else np.array_equal(valid, ok), (path.name, col, row)
                np.testing.assert_array_equal(out[ok], ref[ok].astype(np.float32) * np.float32(scale))
                if (col, row) == (300, 100):
                    ref_corner, ok_corner = ref, ok
    assert any(v[1] is not None for v in cog._valid.values())  # these files have nodata in some tiles
    assert cog._tile_bytes == sum(t.nbytes for t in cog._tiles.values()) + sum(
        v[1][0].nbytes for v in cog._valid.values() if v[1] is not None)
    old = cog.TILE_CACHE_BYTES
    cog.TILE_CACHE_BYTES = 1  # smaller than a tile: each fetched tile evicts the previous one, mask included
    cog.clear()
    try:
        out = np.empty((256, 256), np.float32)
        n, _ = cog.read_into(h, 300, 100, out)  # vv.tif, across two of its tiles
        assert n == int(ok_corner.sum()) and len(cog._tiles) == 1 and set(cog._valid) <= set(cog._tiles)
        np.testing.assert_array_equal(out[ok_corner], ref_corner[ok_corner])
    finally:
        cog.TILE_CACHE_BYTES = old
        cog.clear()


def test_samples_do_not_share_mutable_fields(release: Path) -> None:
    """The per-scene fields built once (timestamps, roles, ids, label provenance) are copies in each
    sample: changing one sample leaves the next intact."""
    from stac_mmtp.access.ml import ChipDataset

    ds = ChipDataset(release, split=None, length=2, seed=5)
    first = ds[0]
    want = (first["timestamps"]["sentinel-2"].copy(), list(first["temporal_roles"]["sentinel-2"]), first["label"]["id"])
    first["timestamps"]["sentinel-2"][:] = 0
    first["temporal_roles"]["sentinel-2"].append("x")
    first["label"]["id"] = "changed"
    again = ds[0]
    np.testing.assert_array_equal(again["timestamps"]["sentinel-2"], want[0])
    assert again["temporal_roles"]["sentinel-2"] == want[1] and again["label"]["id"] == want[2]


def _new_codec_modules(ds, queue) -> None:  # noqa: ANN001 - run in a forked child
    before = set(sys.modules)
    ds[0]
    queue.put(sorted(m for m in set(sys.modules) - before if m.split(".")[0] in ("tifffile", "imagecodecs")))


def test_forked_worker_inherits_warm_codecs(release: Path) -> None:
    """The constructor imports tifffile, imagecodecs and tifffile's GeoTIFF key tables: a forked worker's
    first chip (cut by the tile reader) imports none of them again."""
    import multiprocessing

    from stac_mmtp.access.ml import ChipDataset, cog

    cog.clear()
    ds = ChipDataset(release, split=None, length=1, seed=2)
    assert "tifffile.geodb" in sys.modules and "imagecodecs" in sys.modules
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_new_codec_modules, args=(ds, queue))
    child.start()
    new = queue.get(timeout=120)
    child.join(30)
    assert child.exitcode == 0 and new == [], new


# ---------------------------------------------------------------- stored dtype + to_physical
def _same_after_to_physical(phys: dict, stored: dict, atol: float = 0.0) -> None:
    from stac_mmtp.access.ml import to_physical

    conv = to_physical(stored)
    assert set(conv) == set(phys) and "conversion" not in conv
    for m, want in phys["image"].items():
        got = conv["image"][m]
        assert got.dtype == want.dtype and got.shape == want.shape
        if isinstance(want, np.ndarray):
            assert np.array_equal(got, want, equal_nan=True), m
        else:
            torch.testing.assert_close(got, want, rtol=0, atol=atol, equal_nan=True)
    for k in ("mask", "bounds", "timestamps"):
        if k in phys:
            np.testing.assert_array_equal(np.asarray(conv[k] if k != "timestamps" else conv[k]["sentinel-2"]),
                                          np.asarray(phys[k] if k != "timestamps" else phys[k]["sentinel-2"]))


@pytest.mark.parametrize("kw", [{}, {"sigma0": "db"}, {"resolution": 20.0, "size": 128},
                                {"modalities": ("sentinel-2",), "time": "series", "series_length": 4,
                                 "label": False, "event": GJ}],
                         ids=["linear", "db", "20m-averaged", "series-padded"])
def test_stored_dtype_then_to_physical_equals_physical(release: Path, kw: dict) -> None:
    """Every chip of a grid reaching every edge of every scene (chips over nodata included): the
    stored-dtype sample converted by `to_physical` (numpy) equals the `physical=True` sample bitwise,
    NaN positions included; at 20 m (S2 averaged) the stored dtype is float32, the interpolated DN."""
    from stac_mmtp.access.ml import ChipDataset

    base = {"split": None, "sampler": "grid", "stride": 86, "time": ("first-post-event",), **kw}
    phys = ChipDataset(release, **base)
    stored = ChipDataset(release, physical=False, dtype="stored", **base)
    want = {"sentinel-2": np.float32 if kw.get("resolution") else np.uint16, "sentinel-1": np.float32}
    assert stored.dtypes == {m: np.dtype(want[m]) for m in stored.modalities}
    fractions = []
    for i in range(len(phys)):
        a, b = phys[i], stored[i]
        for m in stored.modalities:
            assert b["image"][m].dtype == want[m] and b["image"][m].shape == a["image"][m].shape
            t, c = a["image"][m].shape[:2]
            assert b["conversion"][m].shape == (t, c, 4) and b["conversion"][m].dtype == np.float64
        _same_after_to_physical(a, b)
        fractions.append(b["valid_fraction"])
        assert b["valid_fraction"] == a["valid_fraction"]
    assert min(fractions) < 0.99  # chips over nodata


def test_stored_values_equal_direct_reads(chips, release: Path) -> None:
    """The stored sample holds the COGs' own values (uint16 DN, nodata 0 left as 0; float32 sigma0,
    NaN nodata) at chosen pixels, and the conversion arrays the items' raster:scale/offset and the
    files' nodata."""
    from stac_mmtp.access.ml import CONVERSION_FIELDS, ChipDataset

    assert CONVERSION_FIELDS == ("scale", "offset", "nodata", "db")
    ds = ChipDataset(release, split=None, sampler="grid", size=256, stride=172, physical=False, dtype="stored")
    s_index = [s.event_id for s in ds.scenes].index(GJ)
    col, row = 0, 344  # S2's nodata (0) fills columns 0-11 of these synthetic tiles
    s = ds.chip(s_index, col, row)
    assert s["image"]["sentinel-2"].shape == (2, 4, 256, 256) and s["image"]["sentinel-2"].dtype == np.uint16
    assert s["image"]["sentinel-1"].shape == (2, 2, 256, 256) and s["image"]["sentinel-1"].dtype == np.float32
    pixels = [(0, 0), (17, 203), (128, 128), (255, 255), (90, 3), (40, 11), (40, 12)]
    s2 = _items(release, "sentinel-2")
    for t, item in enumerate((S2_PRE, S2_POST)):
        for c, band in enumerate(("blue", "green", "red", "nir")):
            with rasterio.open(release / "sentinel-2" / item / f"{band}.tif") as src:
                assert src.dtypes[0] == "uint16" and src.nodata == 0
                for y, x in pixels:
                    want = src.read(1, window=Window(col + x, row + y, 1, 1))[0, 0]
                    assert s["image"]["sentinel-2"][t, c, y, x] == want, (item, band, y, x)
            meta = s2[item]["assets"][band]["bands"][0]
            scale, offset, nodata, db = s["conversion"]["sentinel-2"][t, c]
            assert scale == np.float32(meta["raster:scale"]) == np.float32(1e-4)
            assert offset == np.float32(meta["raster:offset"]) == np.float32(-0.1)
            assert nodata == 0 and db == 0
    dn = _dn(release / "sentinel-2" / S2_POST / "blue.tif", Window(col, row, 256, 256))
    assert (dn[:, :12] == 0).all() and (dn[:, 12:] != 0).all()  # S2's nodata, left as 0 in the stored sample
    np.testing.assert_array_equal(s["image"]["sentinel-2"][1, 0], dn)
    for t, item in enumerate((S1_PRE, S1_POST)):
        for c, band in enumerate(("vv", "vh")):
            with rasterio.open(release / "sentinel-1" / item / f"{band}.tif") as src:
                assert src.dtypes[0] == "float32" and np.isnan(src.nodata)
                for y, x in pixels:
                    want = src.read(1, window=Window(col + 104 + x, row + 111 + y, 1, 1))[0, 0]
                    assert s["image"]["sentinel-1"][t, c, y, x] == want, (item, band, y, x)
    c1 = s["conversion"]["sentinel-1"]
    assert c1.shape == (2, 2, 4) and np.isnan(c1[..., 2]).all()  # NaN nodata
    np.testing.assert_array_equal(c1[..., [0, 1, 3]], np.broadcast_to([1.0, 0.0, 0.0], (2, 2, 3)))


def test_stored_dtype_through_dataloader_workers(release: Path) -> None:
    """DataLoader(num_workers=2, batch_size=8), default collate: uint16 S2 and float32 S1 batches with
    [8, T, C] conversion tensors; `to_physical` on the (CPU) torch batch equals the physical batch
    bitwise, linear and dB; the torch kernels used on another device (run here on the CPU) equal it
    bitwise in linear units and within 1e-5 dB (torch's float32 log10 against numpy's)."""
    from stac_mmtp.access.ml import ChipDataset, chips

    for sigma0, atol in (("linear", 0.0), ("db", 1e-5)):
        base = {"split": None, "size": 128, "length": 16, "seed": 7, "sigma0": sigma0}
        phys, stored = ChipDataset(release, **base), ChipDataset(release, physical=False, dtype="stored", **base)
        loaders = [torch.utils.data.DataLoader(ds, batch_size=8, num_workers=w) for ds, w in ((phys, 0), (stored, 2))]
        n = 0
        for a, b in zip(*loaders, strict=True):
            assert b["image"]["sentinel-2"].dtype == torch.uint16 and b["image"]["sentinel-2"].shape == (8, 2, 4, 128, 128)
            assert b["image"]["sentinel-1"].dtype == torch.float32 and b["mask"].dtype == torch.uint8
            c2 = b["conversion"]["sentinel-2"]
            assert c2.shape == (8, 2, 4, 4) and c2.dtype == torch.float64
            assert bool((b["conversion"]["sentinel-1"][..., 3] == 1).all()) == (sigma0 == "db")
            _same_after_to_physical(a, b)
            for m, want in a["image"].items():
                got = chips._physical_torch(b["image"][m], b["conversion"][m], float("nan"))
                torch.testing.assert_close(got, want, rtol=0, atol=atol if m == "sentinel-1" else 0.0, equal_nan=True)
            n += 1
        assert n == 2


def test_stored_dtype_refuses_incoherent_arguments(release: Path) -> None:
    from stac_mmtp.access.ml import ChipDataset, to_physical
    from stac_mmtp.errors import InputError

    for kw, words in (({"dtype": "stored"}, "pass physical=False"),
                      ({"dtype": "stored", "physical": False, "fill": -1.0}, "to_physical(batch, fill=...)"),
                      ({"dtype": "uint16", "physical": False}, "dtype must be 'float32' or 'stored'")):
        with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
            ChipDataset(release, split=None, **kw)
    sample = ChipDataset(release, split=None, length=1)[0]
    with pytest.raises(InputError, match="no 'conversion' in the batch"):
        to_physical(sample)


def test_docs_stored_dtype_snippet(release: Path) -> None:
    """The stored-dtype block of docs/training.md, run on the sample release (on the CPU here)."""
    text = (REPO / "docs" / "training.md").read_text()
    code = next(c for b in text.split("```python\n")[1:] if 'dtype="stored"' in (c := b.split("```", 1)[0]))
    scope: dict = {}
    exec(compile(code.replace('"build/catalog"', repr(str(release))), "docs/training.md", "exec"), scope)  # noqa: S102
    stored, batch = scope["stored"], scope["batch"]
    assert stored["image"]["sentinel-2"].dtype == torch.uint16 and stored["image"]["sentinel-1"].dtype == torch.float32
    assert batch["image"]["sentinel-2"].dtype == torch.float32 and batch["image"]["sentinel-2"].shape == (16, 2, 4, 256, 256)
    s1 = batch["image"]["sentinel-1"]
    assert s1.shape == (16, 2, 2, 256, 256)
    want = 10 * torch.log10(stored["image"]["sentinel-1"].clamp_min(1e-6))  # dB of the stored linear sigma0
    torch.testing.assert_close(s1, want, rtol=0, atol=1e-5, equal_nan=True)
    assert "conversion" not in batch and batch["mask"].shape == (16, 256, 256)
