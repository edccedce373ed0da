"""Chip loader throughput: stac_mmtp.access.ml.ChipDataset vs TorchGeo (RasterDataset + RandomGeoSampler)
vs rasteret, on the same COGs of the sample release, local disk and HTTP on 127.0.0.1.

A chip: 256 x 256, 4 Sentinel-2 bands (blue, green, red, nir) + 2 Sentinel-1 bands (vv, vh) + the
mask, first-post-event images of the Gjerdrum event, random positions. Each measurement runs in a
fresh subprocess (peak RSS = that process + its DataLoader workers, from getrusage); the HTTP server
runs in its own process (stac_mmtp.access.preview's range-capable server).

    PYTHONPATH=$PWD python benchmarks/bench_loader.py --chips 480 --repeat 3 --workdir /tmp/bench-loader \
        --rasteret-python /tmp/rasteret-venv/bin/python

Tools: ours (float32 physical values), ours-stored (`dtype="stored"`: uint16 S2 + float32 S1 batches, a
different output from TorchGeo's float32), ours-stored-physical (the same, then `to_physical` on each
batch in the main process, on the CPU: float32 physical values again), ours-cold, ours-gdal, torchgeo,
rasteret, dataloader-only and dataloader-only-stored (copies of one cached float32 / stored sample, no
reading: the DataLoader's own ceiling). The ours-stored runs also check, untimed, that the first 96
chips through `to_physical` equal ours' (bitwise, NaN included).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GJ = "gjerdrum-landslide-2020"
S2 = f"{GJ}_S2B_MSIL2A_20210102T104441_N0510_R008_T32VPM_20210102T120141"
S1 = f"{GJ}_S1A_IW_GRDH_1SDV_20210105T164211_20210105T164212_036005_FED444_656C"
LABEL = f"{GJ}_maintainers-sketch-v1_{S2.split('_', 1)[1]}"
BATCH = 8
# TorchGeo's own "rasterio best practices" (torchgeo/main.py, from pangeo-data/cog-best-practices)
TORCHGEO_GDAL = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "AWS_NO_SIGN_REQUEST": "YES",
                 "GDAL_MAX_RAW_BLOCK_CACHE_SIZE": "200000000", "GDAL_SWATH_SIZE": "200000000",
                 "VSI_CURL_CACHE_SIZE": "200000000"}


def peak_rss_mib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + kids) / 1024


# ------------------------------------------------------------------ children
def _kids_cpu() -> float:
    """CPU seconds of this process's reaped children (the DataLoader workers, joined at the epoch's end):
    with the main process's own, the loop's CPU time (the machine is shared: wall time alone misleads)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


CHECKED = 96  # chips of ours-stored compared with ours after the timed loop


def _dataset(base: str, chips: int, stored: bool = False):  # noqa: ANN202
    from stac_mmtp.access.ml import ChipDataset

    kw = {"physical": False, "dtype": "stored"} if stored else {}
    return ChipDataset(base, modalities=("sentinel-2", "sentinel-1"), time=("first-post-event",), event=GJ,
                       split=None, size=256, length=chips, seed=0, min_valid=0.0, **kw)


def same_as_ours(base: str) -> int:
    """The first CHECKED chips of ours-stored, collated and converted by `to_physical`, against ours: the
    number of chips equal bitwise (NaN positions included); raises on the first difference."""
    import torch

    from stac_mmtp.access.ml import to_physical

    pairs = [torch.utils.data.DataLoader(torch.utils.data.Subset(_dataset(base, CHECKED, s), range(CHECKED)),
                                         batch_size=BATCH) for s in (False, True)]
    n = 0
    for a, b in zip(*pairs, strict=True):
        c = to_physical(b)
        for m, want in a["image"].items():
            assert c["image"][m].dtype == want.dtype and torch.equal(torch.isnan(c["image"][m]), torch.isnan(want))
            assert torch.equal(torch.nan_to_num(c["image"][m]), torch.nan_to_num(want)), m
        assert torch.equal(a["mask"], b["mask"])
        n += a["mask"].shape[0]
    return n


def run_ours(base: str, workers: int, chips: int, cold: bool = False, gdal: bool = False,
             stored: bool = False, convert: bool = False) -> dict:
    import tempfile

    import torch

    from stac_mmtp.access.ml import cog, reader, to_physical

    # an empty header cache: the run pays for every COG header once (a first epoch on a new machine)
    os.environ["STAC_MMTP_CACHE"] = tempfile.mkdtemp(prefix="bench-loader-cache-")
    reader.FAST_READS = not gdal
    if cold:  # 1 MiB tile and block caches: every chip decodes its tiles again (files bigger than the cache)
        reader.GDAL_OPTIONS["GDAL_CACHEMAX"] = 1024 * 1024
        cog.TILE_CACHE_BYTES = 1024 * 1024

    t0 = time.perf_counter()
    ds = _dataset(base, chips, stored)
    setup = time.perf_counter() - t0
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, num_workers=workers, shuffle=True)
    t0, c0, k0, n, checksum, convert_s = time.perf_counter(), time.process_time(), _kids_cpu(), 0, 0.0, 0.0
    for b in loader:
        n += b["mask"].shape[0]
        checksum += float(b["mask"].float().mean())
        if convert:  # where a training loop would do it (on the GPU if there is one; here the CPU)
            t1 = time.perf_counter()
            b = to_physical(b)
            convert_s += time.perf_counter() - t1
    out = {"setup_s": setup, "load_s": time.perf_counter() - t0, "chips": n,
           "main_cpu_s": time.process_time() - c0, "workers_cpu_s": _kids_cpu() - k0}
    if convert:
        out["to_physical_ms_per_batch"] = convert_s / -(-n // BATCH) * 1000
    if workers == 0:  # the reader's counters (in the workers' processes otherwise)
        out.update({f"{k}_per_chip": v / n for k, v in cog.STATS.items()})
    if stored:  # untimed, after the run's peak RSS: the output compared with ours'
        out["peak_rss_mib"] = peak_rss_mib()
        out["same_as_ours_chips"] = same_as_ours(base)
    return out


def run_dataloader_only(base: str, workers: int, chips: int, stored: bool = False) -> dict:
    """The DataLoader's own cost: samples of ours (same keys, shapes, dtypes) copied from one cached
    chip, no reading, same DataLoader options: the ceiling of any dataset returning such samples."""
    import torch

    t0 = time.perf_counter()
    one = _dataset(base, 1, stored)[0]

    def copy(v):  # noqa: ANN001, ANN202
        return {k: copy(x) for k, x in v.items()} if isinstance(v, dict) else v.copy() if hasattr(v, "copy") else v

    class Copies(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return chips

        def __getitem__(self, i: int) -> dict:
            return copy(one)

    setup = time.perf_counter() - t0
    loader = torch.utils.data.DataLoader(Copies(), batch_size=BATCH, num_workers=workers, shuffle=True)
    t0, c0, k0, n = time.perf_counter(), time.process_time(), _kids_cpu(), 0
    for b in loader:
        n += b["mask"].shape[0]
    return {"setup_s": setup, "load_s": time.perf_counter() - t0, "chips": n, "main_cpu_s": time.process_time() - c0,
            "workers_cpu_s": _kids_cpu() - k0}


def run_torchgeo(base: str, workers: int, chips: int) -> dict:
    os.environ.update(TORCHGEO_GDAL)
    import torch
    from torchgeo.datasets import RasterDataset, stack_samples
    from torchgeo.samplers import RandomGeoSampler

    class S2Bands(RasterDataset):
        filename_glob, filename_regex = "blue.tif", r"^(?P<band>blue|green|red|nir)\.tif$"
        separate_files, all_bands, is_image = True, ("blue", "green", "red", "nir"), True

    class S1Bands(RasterDataset):
        filename_glob, filename_regex = "vv.tif", r"^(?P<band>vv|vh)\.tif$"
        separate_files, all_bands, is_image = True, ("vv", "vh"), True

    class Mask(RasterDataset):
        filename_glob, is_image = "mask.tif", False

    def path(coll: str, item: str, name: str) -> str:
        return f"/vsicurl/{base}{coll}/{item}/{name}" if base.startswith("http") else f"{base}/{coll}/{item}/{name}"

    t0 = time.perf_counter()
    ds = (S2Bands(path("sentinel-2", S2, "blue.tif")) & S1Bands(path("sentinel-1", S1, "vv.tif"))
          & Mask(path("annotations", LABEL, "mask.tif")))
    sampler = RandomGeoSampler(ds, size=256, length=chips, generator=torch.Generator().manual_seed(0))
    setup = time.perf_counter() - t0
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, sampler=sampler, num_workers=workers,
                                         collate_fn=stack_samples)
    t0, c0, k0, n = time.perf_counter(), time.process_time(), _kids_cpu(), 0
    for b in loader:
        assert b["image"].shape[1:] == (6, 256, 256), b["image"].shape
        n += b["mask"].shape[0]
    return {"setup_s": setup, "load_s": time.perf_counter() - t0, "chips": n, "main_cpu_s": time.process_time() - c0,
            "workers_cpu_s": _kids_cpu() - k0}


def child(tool: str, base: str, workers: int, chips: int) -> None:
    import torch

    # one intra-op thread in the main process (DataLoader workers already use one): with two on this
    # shared 2-core machine, the collate's torch.stack of 8 chips took 14.5 ms instead of 1.2 ms
    torch.set_num_threads(int(os.environ.get("BENCH_TORCH_THREADS", "1")))
    runs = {"torchgeo": run_torchgeo, "ours": run_ours, "ours-cold": lambda *a: run_ours(*a, cold=True),
            "ours-gdal": lambda *a: run_ours(*a, gdal=True), "dataloader-only": run_dataloader_only,
            "ours-stored": lambda *a: run_ours(*a, stored=True),
            "ours-stored-physical": lambda *a: run_ours(*a, stored=True, convert=True),
            "dataloader-only-stored": lambda *a: run_dataloader_only(*a, stored=True)}
    out = runs[tool](base, workers, chips)
    out.setdefault("peak_rss_mib", peak_rss_mib())
    out["cpu_s"] = out["main_cpu_s"] + out["workers_cpu_s"]
    print(json.dumps(out))


# ------------------------------------------------------------------ parent
def _serve(root: str, port_queue: multiprocessing.Queue) -> None:
    from stac_mmtp.access.preview import make_server

    server = make_server({"/v1/": Path(root)})
    port_queue.put(server.server_address[1])
    server.serve_forever()


def ensure_release(workdir: Path) -> Path:
    cat = workdir / "catalog"
    if not (cat / "catalog.json").exists():
        for args in (["sample", str(workdir / "products")],
                     ["build", "--products", str(workdir / "products"), "--out", str(cat)]):
            subprocess.run([sys.executable, "-m", "stac_mmtp", "-q", *args], cwd=REPO, check=True)
    return cat


def measure(cmd: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench-loader"))
    ap.add_argument("--chips", type=int, default=96)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--tools", nargs="+", default=["ours", "ours-cold", "torchgeo", "rasteret"])
    ap.add_argument("--repeat", type=int, default=1, help="rounds per (source, workers), tools interleaved")
    ap.add_argument("--modes", nargs="+", default=["local", "http"])
    ap.add_argument("--rasteret-python", help="a Python >= 3.12 with rasteret installed (its own venv)")
    ap.add_argument("--report", type=Path, metavar="LOG", help="print the tables of a saved run's output, run nothing")
    ap.add_argument("--child", nargs=4, metavar=("TOOL", "BASE", "WORKERS", "CHIPS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        tool, base, workers, chips = args.child
        child(tool, base, int(workers), int(chips))
        return
    if args.report:  # the JSON lines a run printed, one per measurement
        rows = [json.loads(line) for line in args.report.read_text().splitlines() if line.startswith("{")]
        report(rows, list(dict.fromkeys(r["tool"] for r in rows)))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    cat = ensure_release(args.workdir)
    queue: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(str(cat), queue), daemon=True)
    server.start()
    bases = {"local": str(cat), "http": f"http://127.0.0.1:{queue.get(timeout=30)}/v1/"}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rows = []
    tools = [t for t in args.tools if t != "rasteret" or args.rasteret_python]
    try:
        for mode in args.modes:
            for workers in args.workers:
                for rnd in range(args.repeat):
                    # the tools take turns, in an order rotated each round: a load change on this shared
                    # machine hits every tool alike, and ratios are taken within one round
                    for tool in tools[rnd % len(tools):] + tools[:rnd % len(tools)]:
                        if tool == "rasteret":
                            cmd = [args.rasteret_python, str(HERE / "bench_loader_rasteret.py"), bases[mode],
                                   str(workers), str(args.chips)]
                        else:
                            cmd = [sys.executable, str(HERE / "bench_loader.py"), "--child", tool, bases[mode],
                                   str(workers), str(args.chips)]
                        r = measure(cmd, env)
                        r.update(tool=tool, mode=mode, workers=workers, round=rnd)
                        if "load_s" in r:
                            r["chips_per_s"] = r["chips"] / r["load_s"]
                        rows.append(r)
                        print(json.dumps(r), flush=True)
    finally:
        server.terminate()
    report(rows, tools)


def report(rows: list[dict], tools: list[str]) -> None:
    """Medians over the rounds; "vs TorchGeo" is the median of the per-round ratios."""
    from statistics import median

    print("\n| source | workers | tool | chips/s (median) | vs TorchGeo (median, min-max of rounds) | setup s "
          "| vs TorchGeo, setup included | CPU ms per chip (loop, all processes) | peak RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    cells = sorted({(r["mode"], r["workers"]) for r in rows}, key=lambda c: (c[0] != "local", c[1]))
    for mode, workers in cells:
        for tool in tools:
            mine = [r for r in rows if (r["mode"], r["workers"], r["tool"]) == (mode, workers, tool)]
            ok = [r for r in mine if "chips_per_s" in r]
            if not ok:
                print(f"| {mode} | {workers} | {tool} | failed: {mine[0].get('error') if mine else '?'} | | | | | |")
                continue
            ratios, whole = [], []  # whole: chips / (setup + load), the dataset's construction included
            for r in ok:
                ref = next((x for x in rows if x["tool"] == "torchgeo" and x["mode"] == mode and x["workers"] == workers
                            and x["round"] == r["round"] and "chips_per_s" in x), None)
                if ref:
                    ratios.append(r["chips_per_s"] / ref["chips_per_s"])
                    whole.append((ref["setup_s"] + ref["load_s"]) / (r["setup_s"] + r["load_s"]))
            ratio = (f"{median(ratios):.1f}x ({min(ratios):.1f}-{max(ratios):.1f})" if ratios else "-")
            ratio_whole = f"{median(whole):.1f}x" if whole else "-"
            cpu = [r["cpu_s"] / r["chips"] * 1000 for r in ok if "cpu_s" in r]
            print(f"| {mode} | {workers} | {tool} | {median(r['chips_per_s'] for r in ok):.1f} | {ratio} | "
                  f"{median(r['setup_s'] for r in ok):.2f} | {ratio_whole} | {f'{median(cpu):.2f}' if cpu else '-'} | "
                  f"{max(r['peak_rss_mib'] for r in ok):.0f} |")
    for r in rows:
        if "same_as_ours_chips" in r or "to_physical_ms_per_batch" in r:
            print(f"{r['mode']} w{r['workers']} {r['tool']} round {r['round']}: first {r.get('same_as_ours_chips', 0)}"
                  " chips after to_physical equal ours bitwise"
                  + (f"; to_physical {r['to_physical_ms_per_batch']:.2f} ms per batch of {BATCH} (main process, CPU)"
                     if "to_physical_ms_per_batch" in r else ""))
    for r in rows:
        if r["tool"].startswith("ours") and "requests_per_chip" in r:
            print(f"{r['mode']} w{r['workers']} {r['tool']} round {r['round']}: "
                  f"{r['requests_per_chip']:.3f} requests, {r['bytes_per_chip'] / 1024:.1f} KiB, "
                  f"{r['tiles_decoded_per_chip']:.2f} tiles decoded in {r['decode_s_per_chip'] * 1000:.2f} ms per chip")


if __name__ == "__main__":
    main()
