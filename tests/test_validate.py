"""Offline validation: real schemas from the mirror, no network, lock checked, missing schemas named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stac_mmtp.errors import SchemaMissing
from stac_mmtp.validate import SchemaStore, schema_lock, validate_objects

ITEM_V11 = "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json"
PROJ = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"


def _item(**props) -> dict:
    return {
        "type": "Feature", "stac_version": "1.1.0", "stac_extensions": [PROJ], "id": "x",
        "geometry": {"type": "Point", "coordinates": [11.0, 60.0]}, "bbox": [11.0, 60.0, 11.0, 60.0],
        "properties": {"datetime": "2021-01-03T10:44:41Z", "proj:code": "EPSG:32632", **props},
        "links": [], "assets": {},
    }


def test_lock_matches_mirror(schema_dir: Path) -> None:
    index = json.loads((schema_dir / "index.json").read_text())
    lock = schema_lock()
    assert set(index) <= set(lock)
    assert lock[ITEM_V11] and len(lock[ITEM_V11]) == 64


def test_real_schema_catches_errors(schema_store, no_network) -> None:
    assert validate_objects([_item()], schema_store) == []
    bad = _item()
    bad["properties"]["proj:code"] = 32632  # must be a string
    problems = validate_objects([bad], schema_store)
    assert problems and problems[0].schema == PROJ and "proj:code" in problems[0].message
    del bad["properties"]["datetime"]
    assert any(p.schema == ITEM_V11 for p in validate_objects([bad], schema_store))
    assert no_network == []


def test_missing_schema_says_which_and_how(tmp_path: Path, no_network) -> None:
    store = SchemaStore(tmp_path / "empty-cache")
    with pytest.raises(SchemaMissing) as info:
        validate_objects([_item()], store)
    msg = str(info.value)
    assert ITEM_V11 in msg and "--schema-cache" in msg and "STAC_MMTP_SCHEMA_CACHE" in msg
    assert no_network == []


def test_fetch_refused_offline_is_attempted_only_when_allowed(tmp_path: Path, no_network) -> None:
    store = SchemaStore(tmp_path / "cache", allow_fetch=True)
    with pytest.raises(OSError, match="network blocked"):
        store.get(ITEM_V11)
    assert no_network, "an allowed fetch must go to the network"


def test_tampered_schema_fails_the_lock(tmp_path: Path, schema_dir: Path) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(schema_dir, cache)
    target = cache / "stac-extensions.github.io/projection/v2.0.0/schema.json"
    target.write_text(target.read_text().replace('"proj:code"', '"proj:kode"'))
    with pytest.raises(SchemaMissing, match="sha256"):
        SchemaStore(cache).get(PROJ)


def test_compiled_validation_agrees_with_jsonschema(schema_store: SchemaStore, tmp_path: Path) -> None:
    """jsonschema-rs decides valid/invalid, jsonschema explains: on valid and broken objects the two
    agree, and a 420-item tree reports exactly the one broken item, with jsonschema's message."""
    import copy

    import jsonschema

    from stac_mmtp.stac.tree import CollectionBundle, write_tree
    from stac_mmtp.validate import StacValidator, validate_tree

    items = [dict(_item(), id=f"i{n:03d}") for n in range(420)]
    items[137] = dict(items[137], properties={**items[137]["properties"], "proj:code": 32632})
    coll = {"type": "Collection", "stac_version": "1.1.0", "id": "c", "description": "d", "license": "CC-BY-4.0",
            "extent": {"spatial": {"bbox": [[11, 60, 11, 60]]}, "temporal": {"interval": [[None, None]]}}, "links": []}
    write_tree(tmp_path, {"type": "Catalog", "stac_version": "1.1.0", "id": "r", "description": "r", "links": []},
               [CollectionBundle(coll, items)])
    report = validate_tree(tmp_path, schema_store)
    assert report.objects == 422
    assert report.by_type == {"Catalog": 1, "Collection": 1, "Feature": 420}
    assert [p.path for p in report.problems] == ["c/i137/i137.json"]
    assert report.problems[0].message == "properties/proj:code: 32632 is not of type 'string', 'null'"

    v = StacValidator(schema_store)
    good = _item()
    broken = []
    for edit in (lambda o: o["properties"].pop("datetime"), lambda o: o.__setitem__("bbox", "x"),
                 lambda o: o["properties"].__setitem__("proj:code", 5), lambda o: o.__setitem__("links", [{"rel": 5}]),
                 lambda o: o.__setitem__("geometry", {"type": "Point"}), lambda o: o.pop("stac_version")):
        b = copy.deepcopy(good)
        edit(b)
        broken.append(b)
    for obj, expected in [(good, True)] + [(b, False) for b in broken]:
        pure = not any(True for url in v.schemas_for(obj)
                       for _ in jsonschema.Draft7Validator({"$ref": url}, registry=v._registry).iter_errors(obj))
        assert (v.is_valid(obj), pure) == (expected, expected)
        assert bool(list(v.iter_problems(obj, "x"))) is not expected


def test_validation_reuses_results_for_unchanged_bytes(schema_store: SchemaStore, tmp_path: Path) -> None:
    """A second validation of the same tree re-checks no schema; a changed object is checked again,
    and an invalid one is never cached."""
    from stac_mmtp.stac.tree import CollectionBundle, write_tree
    from stac_mmtp.validate import validate_tree

    items = [dict(_item(), id=f"j{n}") for n in range(5)]
    coll = {"type": "Collection", "stac_version": "1.1.0", "id": "c", "description": "d", "license": "CC-BY-4.0",
            "extent": {"spatial": {"bbox": [[11, 60, 11, 60]]}, "temporal": {"interval": [[None, None]]}}, "links": []}
    write_tree(tmp_path, {"type": "Catalog", "stac_version": "1.1.0", "id": "r2", "description": "r", "links": []},
               [CollectionBundle(coll, items)])
    first = validate_tree(tmp_path, schema_store)
    assert first.ok and first.objects == 7 and first.cached == 0
    again = validate_tree(tmp_path, schema_store)
    assert again.ok and again.cached == 7
    path = tmp_path / "c" / "j3" / "j3.json"
    doc = json.loads(path.read_text())
    doc["properties"]["proj:code"] = 32632  # invalid: proj:code is a string
    path.write_text(json.dumps(doc))
    for _ in range(2):
        bad = validate_tree(tmp_path, schema_store)
        assert bad.cached == 6 and [p.path for p in bad.problems] == ["c/j3/j3.json"]
    (tmp_path / "c" / "j4" / "j4.json").unlink()  # structure is never cached
    assert any("does not exist" in p.message for p in validate_tree(tmp_path, schema_store).problems)
