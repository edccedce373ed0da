"""A throwaway STAC API server as the big catalogs run it: stac-fastapi-pgstac on PostgreSQL + PostGIS.

Used by tests (tests/test_pgstac.py) and benchmarks (benchmarks/bench_search.py); standard library only,
no stac_mmtp import:

    with pgstac_api(collections, items) as api:   # items: dicts or an ndjson file; both may be empty
        Client.open(api.url).search(...)          # api.dsn: load more with pypgstac / load-pgstac

What it does: `initdb` a cluster in a temporary directory, start `postgres` on a free port of
127.0.0.1 (as the `postgres` user when run as root: PostgreSQL refuses to run as root), `pypgstac
migrate`, `pypgstac load` the collections and items, start `uvicorn stac_fastapi.pgstac.app:app` on
another free port, and on exit stop both and delete the directory. PostgreSQL and PostGIS come from
Debian (`postgresql`, `postgresql-15-postgis-3`); stac-fastapi-pgstac and pypgstac from a venv of
their own (`benchmarks/setup_pgstac.sh`): they pin a stac-fastapi newer than our `serve` accepts.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DEFAULT_VENV = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stac-mmtp" / "venv-pgstac"


class PgstacUnavailable(RuntimeError):
    """PostgreSQL, PostGIS or the pgstac venv is missing (the message says which and how to install it)."""


@dataclass
class PgstacServer:
    url: str  # the STAC API root, http://127.0.0.1:PORT
    dsn: str  # postgresql://postgres@127.0.0.1:PORT/postgis
    postgres_pid: int
    api_pid: int
    load_s: float  # pypgstac migrate + load, seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin() -> Path:
    """The newest Debian PostgreSQL with PostGIS 3 installed."""
    for bindir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True):
        ver = bindir.parent.name
        if (bindir / "postgres").exists() and list(Path(f"/usr/share/postgresql/{ver}/extension").glob("postgis.control")):
            return bindir
    raise PgstacUnavailable("no PostgreSQL with PostGIS 3 under /usr/lib/postgresql: "
                            "apt-get install -y postgresql postgresql-15-postgis-3")


def _venv_bin(venv: Path) -> Path:
    b = venv / "bin"
    if not (b / "pypgstac").exists() or not (b / "uvicorn").exists():
        raise PgstacUnavailable(f"no stac-fastapi-pgstac venv at {venv}: bash benchmarks/setup_pgstac.sh {venv}")
    return b


def _as_user() -> dict:
    """Popen arguments that drop root to the `postgres` user (postgres refuses to run as root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


def wait_http(url: str, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f} s")


def _write_ndjson(path: Path, objs: Iterable[dict]) -> None:
    with path.open("w") as f:
        for o in objs:
            f.write(json.dumps(o, separators=(",", ":")) + "\n")


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()  # postgres: SIGTERM = "smart" shutdown; uvicorn: graceful
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def pgstac_api(collections: list[dict], items: Iterable[dict] | Path, *, venv: Path = DEFAULT_VENV,
               log: Path | None = None) -> Iterator[PgstacServer]:
    """A running stac-fastapi-pgstac over `collections` and `items` (dicts or an ndjson file); torn down on exit."""
    bindir, vbin = pg_bin(), _venv_bin(venv)
    tmp = Path(tempfile.mkdtemp(prefix="pgstac-"))
    pg = api = None
    logf = open(log or os.devnull, "ab")  # noqa: SIM115 (kept open for the servers' lifetime)
    try:
        data = tmp / "data"
        data.mkdir()
        if os.geteuid() == 0:
            shutil.chown(tmp, "postgres", "postgres")
            shutil.chown(data, "postgres", "postgres")
        subprocess.run([bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                        "--no-sync"], check=True, stdout=logf, stderr=logf, **_as_user())
        port = free_port()
        # fsync off etc.: a throwaway cluster, durability is not wanted
        pg = subprocess.Popen([bindir / "postgres", "-D", data, "-p", str(port), "-k", tmp,
                               "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                               "-c", "full_page_writes=off", "-c", "shared_buffers=128MB"],
                              stdout=logf, stderr=logf, **_as_user())
        end = time.monotonic() + 60
        while subprocess.run([bindir / "pg_isready", "-h", "127.0.0.1", "-p", str(port)],
                             capture_output=True).returncode != 0:
            if pg.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"postgres did not start (exit {pg.poll()}); log: {log}")
            time.sleep(0.2)
        subprocess.run([bindir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "postgis"],
                       check=True, stdout=logf, stderr=logf)
        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgis"
        t = time.perf_counter()
        subprocess.run([vbin / "pypgstac", "migrate", "--dsn", dsn], check=True, stdout=logf, stderr=logf)
        coll_file, items_file = tmp / "collections.ndjson", tmp / "items.ndjson"
        _write_ndjson(coll_file, collections)
        if isinstance(items, Path):
            items_file = items
        else:
            _write_ndjson(items_file, items)
        for table, f in (("collections", coll_file), ("items", items_file)):
            if f.stat().st_size:  # an empty database is fine: the caller loads it itself (`dsn`)
                subprocess.run([vbin / "pypgstac", "load", table, str(f), "--dsn", dsn, "--method", "insert"],
                               check=True, stdout=logf, stderr=logf)
        load_s = time.perf_counter() - t
        aport = free_port()
        env = {**os.environ, "PGUSER": "postgres", "PGPASSWORD": "unused", "PGHOST": "127.0.0.1",
               "PGPORT": str(port), "PGDATABASE": "postgis", "DB_MIN_CONN_SIZE": "1", "DB_MAX_CONN_SIZE": "4"}
        api = subprocess.Popen([vbin / "uvicorn", "--factory", "stac_fastapi.pgstac.app:create_app", "--host", "127.0.0.1",
                                "--port", str(aport), "--log-level", "warning"], env=env, cwd=tmp,
                               stdout=logf, stderr=logf)
        url = f"http://127.0.0.1:{aport}"
        wait_http(url + "/", api, "stac-fastapi-pgstac")
        yield PgstacServer(url, dsn, pg.pid, api.pid, load_s)
    finally:
        _stop(api)
        _stop(pg)
        logf.close()
        shutil.rmtree(tmp, ignore_errors=True)
