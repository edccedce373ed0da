"""The build on a real dask.distributed cluster of 127.0.0.1 processes: a `dask scheduler` and two
`dask worker` processes (one thread each) started here; the catalog must be byte-identical to the one
the local process pool builds from the same inputs, also when a worker is killed mid-build."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_build_incremental import _files, inputs  # noqa: F401 - the module-scoped sample inputs
from unavailable import unavailable

from stac_mmtp.build import build
from stac_mmtp.sources import BuildOptions

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, tmp: Path) -> None:
        dask_cli = Path(sys.executable).with_name("dask")
        if not dask_cli.is_file():
            unavailable(f"the dask command line (package distributed) is not installed beside {sys.executable}")
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        # the workers import this checkout's package, as the test process does
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
        self.log = tmp / "cluster.log"
        out = open(self.log, "w")  # noqa: SIM115 (closed in stop)
        self._out = out
        self.scheduler = subprocess.Popen(
            [str(dask_cli), "scheduler", "--host", "127.0.0.1", "--port", self.address.rsplit(":", 1)[1],
             "--no-dashboard"], cwd=tmp, env=env, stdout=out, stderr=out)
        self.workers = [subprocess.Popen(
            [str(dask_cli), "worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
             "--host", "127.0.0.1", "--resources", "MEMORY=4e9", "--memory-limit", "0",
             "--local-directory", str(tmp / f"w{i}")], cwd=tmp, env=env, stdout=out, stderr=out) for i in range(2)]
        from distributed import Client

        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(self.address, timeout="5s") as c:
                    c.wait_for_workers(2, timeout=60)
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError("the dask scheduler did not start:\n" + self.log.read_text()[-2000:]) from None
                time.sleep(0.5)

    def stop(self) -> None:
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                p.terminate()
        for p in [*self.workers, self.scheduler]:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        self._out.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    try:
        import distributed  # noqa: F401
    except ModuleNotFoundError:
        unavailable("the `distributed` package is not installed")
    c = Cluster(tmp_path)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def local_build(inputs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:  # noqa: F811
    events, samples = inputs
    out = tmp_path_factory.mktemp("local") / "catalog"
    report = build(events, [samples], out, BuildOptions(jobs=2))
    assert report.ok and len(report.results) == 18
    return _files(out)


def test_cluster_build_is_the_local_build(inputs, local_build, cluster: Cluster, tmp_path: Path,  # noqa: F811
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    events, samples = inputs
    # set after the workers started: only the executor can bring it to them
    monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "17")
    seen: list[tuple[str, int, int]] = []
    report = build(events, [samples], tmp_path / "catalog", executor="dask", scheduler=cluster.address,
                   progress=lambda phase, done, total: seen.append((phase, done, total)))
    assert report.ok and len(report.results) == 18 and report.ran == 18
    assert [s for s in seen if s[0] == "convert"][-1] == ("convert", 18, 18)  # the same progress as locally
    pids = {str(w.pid) for w in cluster.workers}
    per_worker = report.per_worker()
    assert {w.rsplit(":", 1)[1] for w in per_worker} <= pids and sum(n for n, _ in per_worker.values()) == 18
    assert _files(tmp_path / "catalog") == local_build
    from distributed import Client

    with Client(cluster.address, timeout="10s") as c:
        seen_env = c.run(lambda: os.environ.get("GDAL_HTTP_TIMEOUT"))
    assert sorted(seen_env.values()) == ["17", "17"]  # the build's GDAL settings, on both workers


def test_a_worker_killed_mid_build(inputs, local_build, cluster: Cluster, tmp_path: Path) -> None:  # noqa: F811
    events, samples = inputs
    victim = cluster.workers[0]

    def progress(phase: str, done: int, total: int) -> None:
        if phase == "convert" and done == 3 and victim.poll() is None:
            victim.send_signal(signal.SIGKILL)  # it holds its next task: the scheduler must run it elsewhere

    report = build(events, [samples], tmp_path / "catalog", executor="dask", scheduler=cluster.address,
                   progress=progress, work=tmp_path / "work")
    assert victim.poll() == -signal.SIGKILL
    survivor = f"{cluster.workers[1].pid}"
    assert any(w.endswith(":" + survivor) for w in report.per_worker())
    assert report.ok and report.ran == 18, [r.message for r in report.results if not r.ok]
    assert _files(tmp_path / "catalog") == local_build


def test_gdal_threads_are_each_workers_share_of_the_cores() -> None:
    """N workers on one machine get cores // N GDAL threads each (not a thread per core each, which made
    two workers on 2 cores no faster than one); a user's STAC_MMTP_GDAL_THREADS wins."""
    try:
        import distributed
    except ModuleNotFoundError:
        unavailable("distributed is not installed (pip install 'stac-mmtp[dask]')")
    from stac_mmtp.build.dask_executor import GdalSettings, gdal_settings, host_threads
    from stac_mmtp.build.executor import threads_per_worker
    from stac_mmtp.raster.cog import THREADS_ENV

    cores = os.cpu_count() or 1
    assert threads_per_worker(1) == str(cores) and threads_per_worker(2) == str(max(1, cores // 2))
    assert threads_per_worker(4 * cores) == "1"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            distributed.Client(c) as client:
        info = client.scheduler_info()["workers"]
        assert host_threads(info) == {"127.0.0.1": 2}
        client.register_plugin(GdalSettings(gdal_settings(), host_threads(info)), name=GdalSettings.name)
        seen = client.run(lambda: os.environ.get(THREADS_ENV))
        assert sorted(seen.values()) == [str(max(1, cores // 2))] * 2
        client.register_plugin(GdalSettings({THREADS_ENV: "3"}, host_threads(info)), name=GdalSettings.name)
        assert set(client.run(lambda: os.environ.get(THREADS_ENV)).values()) == {"3"}


def test_workers_get_back_glibcs_thresholds_for_gdal() -> None:
    """dask's nanny starts each worker with MALLOC_TRIM_THRESHOLD_=65536, which fixes glibc's mmap
    threshold at 128 KiB: every buffer of GDAL's compression threads was a fresh mmap (a 2-thread COG write
    2x slower in a worker than in the build's process). After the build's worker plugin, a 1 MiB malloc
    comes from the heap again (mallinfo2's count of mmapped blocks does not grow)."""
    try:
        import distributed
    except ModuleNotFoundError:
        unavailable("distributed is not installed (pip install 'stac-mmtp[dask]')")
    from stac_mmtp.build.dask_executor import GdalSettings

    def mmapped_by_two_mallocs() -> tuple[str | None, int]:
        import ctypes

        class Mallinfo2(ctypes.Structure):
            _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                       "fsmblks", "uordblks", "fordblks", "keepcost")]

        libc = ctypes.CDLL(None)
        libc.mallinfo2.restype = Mallinfo2
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]
        libc.free.argtypes = [ctypes.c_void_p]
        grew = 0
        for _ in range(2):  # glibc's dynamic threshold rises past 1 MiB once a 1 MiB mmapped block is freed
            before = libc.mallinfo2().hblks
            p = libc.malloc(1 << 20)
            grew += libc.mallinfo2().hblks - before
            libc.free(p)
        return os.environ.get("MALLOC_TRIM_THRESHOLD_"), grew

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            distributed.Client(c) as client:
        assert client.submit(mmapped_by_two_mallocs, pure=False).result() == ("65536", 2)
        client.register_plugin(GdalSettings({}, {}), name=GdalSettings.name)
        assert client.submit(mmapped_by_two_mallocs, pure=False).result() == ("65536", 0)


@pytest.mark.parametrize(("env", "changed"), [({}, False), ({"MALLOC_TRIM_THRESHOLD_": "65536"}, True),
                                              ({"MALLOC_TRIM_THRESHOLD_": "65536", "MALLOC_MMAP_THRESHOLD_": "131072"},
                                               False)])
def test_malloc_thresholds_are_left_to_a_user_who_chose_both(env: dict[str, str], changed: bool) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", "from stac_mmtp.build.executor import malloc_for_gdal; "
                          "print(malloc_for_gdal())"], env={**clean, **env, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(changed)
