"""The rasteret side of bench_loader.py, run by a Python >= 3.12 with rasteret installed (its own venv;
it does not import stac_mmtp). Same COGs, same chip (4 S2 + 2 S1 bands + mask, 256 x 256 at 10 m),
random positions; `workers` > 0 splits the chips over that many processes (rasteret has no DataLoader
integration of its own in 0.4.1; each process builds its collections = parses the COG headers once).

    python bench_loader_rasteret.py BASE WORKERS CHIPS   (BASE: the catalog dir or its http URL)
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import resource
import sys
import time

import numpy as np
import pyarrow as pa
import shapely

GJ = "gjerdrum-landslide-2020"
S2 = f"{GJ}_S2B_MSIL2A_20210102T104441_N0510_R008_T32VPM_20210102T120141"
S1 = f"{GJ}_S1A_IW_GRDH_1SDV_20210105T164211_20210105T164212_036005_FED444_656C"
LABEL = f"{GJ}_maintainers-sketch-v1_{S2.split('_', 1)[1]}"
GRID = (610560.0, 6664200.0, 600, 600)  # the S2 clip: west, north, width, height (10 m)
SETS = {"s2": ("sentinel-2", S2, ["blue", "green", "red", "nir"]), "s1": ("sentinel-1", S1, ["vv", "vh"]),
        "mask": ("annotations", LABEL, ["mask"])}


def collections(base: str) -> dict:
    import rasteret
    import rasteret.fetch.cog

    if base.startswith("http:"):
        # obstore refuses plain http ("BadScheme") unless allowed; rasteret 0.4.1 exposes no public option,
        # so the loopback run sets it in rasteret's (private) client options
        rasteret.fetch.cog._OBSTORE_CLIENT_OPTIONS["allow_http"] = "true"

    root = base.rstrip("/")
    out = {}
    for key, (coll, item, bands) in SETS.items():
        assets = {b: {"href": f"{root}/{coll}/{item}/{b}.tif"} for b in bands}
        table = pa.table({"id": [item], "datetime": pa.array([dt.datetime(2021, 1, 2, tzinfo=dt.UTC)],
                                                             pa.timestamp("us", tz="UTC")),
                          "geometry": pa.array([shapely.to_wkb(shapely.box(10.98, 60.03, 11.12, 60.11))], pa.binary()),
                          "assets": [assets], "proj:epsg": [32632]})
        out[key] = (rasteret.build_from_table(table, enrich_cog=True), bands)
    return out


def load(base: str, positions: list[tuple[int, int]]) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    colls = collections(base)
    setup = time.perf_counter() - t0
    t0, n = time.perf_counter(), 0
    for col, row in positions:
        x, y = GRID[0] + 10 * col, GRID[1] - 10 * row
        box = shapely.box(x, y - 2560, x + 2560, y)
        arrays = [c.get_numpy(geometries=box, bands=b, geometry_crs=32632) for c, b in colls.values()]
        assert arrays[0].shape[-2:] == (256, 256), arrays[0].shape
        n += 1
    return setup, time.perf_counter() - t0, n


def main() -> None:
    base, workers, chips = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(0)
    positions = [(int(rng.integers(0, GRID[2] - 256 + 1)), int(rng.integers(0, GRID[3] - 256 + 1))) for _ in range(chips)]
    if workers == 0:
        setup, load_s, n = load(base, positions)
    else:
        t0 = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            parts = pool.starmap(load, [(base, positions[i::workers]) for i in range(workers)])
        # wall time of the whole run minus the slowest setup: the loading phase as the parent saw it
        setup = max(p[0] for p in parts)
        load_s, n = time.perf_counter() - t0 - setup, sum(p[2] for p in parts)
    rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(json.dumps({"setup_s": setup, "load_s": load_s, "chips": n, "peak_rss_mib": rss / 1024}))


if __name__ == "__main__":
    main()
