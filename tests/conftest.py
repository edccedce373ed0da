"""Shared fixtures: the third-party data beside the checkout (read in place; when absent a test skips
locally and fails under CI, see unavailable.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from unavailable import unavailable

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STAC_MMTP_SHARED", REPO.parent / "shared"))
FIXTURES = SHARED / "fixtures" / "real"
SCHEMAS = SHARED / "stac-schemas"


@pytest.fixture(autouse=True, scope="session")
def _own_digest_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Digest/validation cache of this test session only (never the user's ~/.cache/stac-mmtp)."""
    os.environ["STAC_MMTP_CACHE"] = str(tmp_path_factory.mktemp("stac-mmtp-cache"))


@pytest.fixture(scope="session")
def real_fixtures() -> Path:
    if not FIXTURES.is_dir():
        unavailable(f"real fixtures not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture(scope="session")
def schema_dir() -> Path:
    if not (SCHEMAS / "index.json").is_file():
        unavailable(f"STAC schema mirror not found at {SCHEMAS}")
    return SCHEMAS


@pytest.fixture(scope="session")
def schema_store(schema_dir: Path):
    from stac_mmtp.release.validate import SchemaStore

    return SchemaStore(schema_dir)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Replace socket connection; the list records every attempt (the test asserts it stays empty)."""
    import socket

    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError(f"network blocked in tests (attempted {address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))  # type: ignore[arg-type]
    return attempts
