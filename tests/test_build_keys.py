"""Task keys hash the source code the task runs: its family's module and every shared module it imports.

Editing a shared module must re-run exactly the tasks of the families that import it. The families'
imports, read by hand from their source: sentinel1/ and sentinel2/ import sources/safe_xml.py,
flatsim/ does not; all three import raster/cog.py; only remote_s2 imports discover/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_build_incremental import inputs  # noqa: F401 - the module-scoped sample inputs

from stac_mmtp.build import build, state
from stac_mmtp.build.plan import plan
from stac_mmtp.dataset.inventory import load_inventory
from stac_mmtp.sources import BuildOptions
from stac_mmtp.sources.registry import discover, get_source


def _keys(events: Path, samples: Path) -> dict[str, tuple[str, str]]:
    """item id -> (collection, key) of every task of the sample build."""
    found, _ = discover([samples])
    tasks, _ = plan(load_inventory(events), [s.read(p) for p, s in found], BuildOptions())
    out = {}
    for t in tasks:
        source = get_source(t.product.source)
        out[t.item_id] = (source.collection_id, state.task_key(t, source))
    return out


def test_code_closure_follows_the_imports() -> None:
    s1, s2 = state.code_closure("stac_mmtp.sources.sentinel1"), state.code_closure("stac_mmtp.sources.sentinel2")
    flatsim = state.code_closure("stac_mmtp.sources.flatsim")
    for mods in (s1, s2, flatsim):
        assert {"stac_mmtp.raster.cog", "stac_mmtp.raster.geo", "stac_mmtp.raster.assets"} <= set(mods)
    assert "stac_mmtp.sources.safe_xml" in s1 and "stac_mmtp.sources.safe_xml" in s2
    assert "stac_mmtp.sources.safe_xml" not in flatsim
    assert "stac_mmtp.sources.sentinel2" not in s1 and not any(m.startswith("stac_mmtp.discover") for m in s2)
    assert "stac_mmtp.discover.providers" in state.code_closure("stac_mmtp.sources.remote_s2")


def test_editing_a_copied_shared_module_changes_exactly_its_users_keys(
        inputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    events, samples = inputs
    before = _keys(events, samples)
    assert sorted(c for c, _ in before.values()) == ["flatsim"] * 5 + ["sentinel-1"] * 6 + ["sentinel-2"] * 7
    # a copy of the package whose sources/safe_xml.py gains one comment line: the keys read its bytes
    copy = tmp_path / "stac_mmtp"
    shutil.copytree(state._PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with open(copy / "sources" / "safe_xml.py", "a") as f:
        f.write("# an edit that changes no behaviour still changes the code\n")
    monkeypatch.setattr(state, "_PACKAGE_DIR", copy)
    monkeypatch.setattr(state, "MODULE_DIGESTS", {})
    monkeypatch.setattr(state, "_CONVERTER", {})
    after = _keys(events, samples)
    changed = sorted(before[i][0] for i in before if before[i][1] != after[i][1])
    assert changed == ["sentinel-1"] * 6 + ["sentinel-2"] * 7
    # the same copy, unedited elsewhere: raster/cog.py is used by every family
    with open(copy / "raster" / "cog.py", "a") as f:
        f.write("# shared by all\n")
    monkeypatch.setattr(state, "MODULE_DIGESTS", {})
    monkeypatch.setattr(state, "_CONVERTER", {})
    assert all(_keys(events, samples)[i][1] not in (before[i][1], after[i][1]) for i in before)


def test_a_shared_module_digest_reruns_its_tasks_only(inputs, tmp_path: Path,  # noqa: F811
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    events, samples = inputs
    work = tmp_path / "work"
    first = build(events, [samples], tmp_path / "catalog", BuildOptions(jobs=2), work=work)
    assert first.ok and first.ran == 18
    by_item = {r.item_id: r.collection for r in first.results}
    state.module_digest("stac_mmtp.sources.safe_xml")
    monkeypatch.setitem(state.MODULE_DIGESTS, "stac_mmtp.sources.safe_xml", "0" * 64)
    monkeypatch.setattr(state, "_CONVERTER", {})
    planned = build(events, [samples], tmp_path / "catalog", BuildOptions(jobs=2), work=work, dry_run=True)
    assert sorted(by_item[i] for _, i, what in planned.planned if what == "run") == \
        ["sentinel-1"] * 6 + ["sentinel-2"] * 7
    assert sorted(by_item[i] for _, i, what in planned.planned if what == "reuse") == ["flatsim"] * 5
