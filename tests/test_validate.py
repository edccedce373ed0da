"""Offline validation: real schemas from the mirror, no network, lock checked, missing schemas named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stac_mmtp.errors import SchemaMissing
from stac_mmtp.release.validate import SchemaStore, schema_lock, validate_objects

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

    from stac_mmtp.release.validate import StacValidator, validate_tree
    from stac_mmtp.stac.tree import CollectionBundle, write_tree

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
    for edit, field in ((lambda o: o["properties"].pop("datetime"), "datetime"), (lambda o: o.__setitem__("bbox", "x"), "bbox"),
                        (lambda o: o["properties"].__setitem__("proj:code", 5), "proj:code"),
                        (lambda o: o.__setitem__("links", [{"rel": 5}]), "links"),
                        (lambda o: o.__setitem__("geometry", {"type": "Point"}), "geometry"),
                        (lambda o: o.pop("stac_version"), "stac_version")):
        b = copy.deepcopy(good)
        edit(b)
        broken.append((b, field))
    for obj, field in [(good, None), *broken]:
        expected = field is None
        pure = not any(True for url in v.schemas_for(obj)
                       for _ in jsonschema.Draft7Validator({"$ref": url}, registry=v._registry).iter_errors(obj))
        assert (v.is_valid(obj), pure) == (expected, expected)
        problems = [p.message for p in v.iter_problems(obj, "x")]
        assert bool(problems) is not expected
        if field:  # the problem names the broken field, not only "invalid"
            assert any(field in m for m in problems), (field, problems)


def test_validation_reuses_results_for_unchanged_bytes(schema_store: SchemaStore, tmp_path: Path) -> None:
    """A second validation of the same tree re-checks no schema; a changed object is checked again,
    and an invalid one is never cached."""
    from stac_mmtp.release.validate import validate_tree
    from stac_mmtp.stac.tree import CollectionBundle, write_tree

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
    problems = [str(p) for p in validate_tree(tmp_path, schema_store).problems]
    assert "c/j4/j4.json: linked file does not exist" in problems, problems


# --------------------------------------------------------------------------- the bytes behind the JSON
EPSG = "EPSG:32632"
ORIGIN_X, ORIGIN_Y, RES, ROWS, COLS = 600000.0, 6650000.0, 10.0, 600, 640  # > 512: a COG must be tiled
FILE_EXT = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
RASTER = "https://stac-extensions.github.io/raster/v2.0.0/schema.json"
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


def _write_tif(path: Path, cog: bool = True, dtype: str = "uint16", nodata: float | None = 0) -> None:
    """A raster written by GDAL itself (its COG driver, or a plain striped GTiff), not by our code."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    data = (np.arange(ROWS * COLS, dtype="uint32").reshape(1, ROWS, COLS) % 1000).astype(dtype)
    profile = {"driver": "COG" if cog else "GTiff", "width": COLS, "height": ROWS, "count": 1, "dtype": dtype,
               "crs": EPSG, "transform": from_origin(ORIGIN_X, ORIGIN_Y, RES, RES), "nodata": nodata}
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)


def _raster_tree(root: Path) -> Path:
    """A one-item tree whose `red` COG is described by hand: values known outside the code under test."""
    import hashlib

    from stac_mmtp.stac.tree import CollectionBundle, write_tree

    item_dir = root / "c" / "r1"
    item_dir.mkdir(parents=True)
    _write_tif(item_dir / "red.tif")
    data = (item_dir / "red.tif").read_bytes()
    item = _item()
    item["id"] = "r1"
    item["stac_extensions"] = [PROJ, RASTER, FILE_EXT]
    item["assets"] = {"red": {
        "href": "./red.tif", "type": COG_TYPE, "roles": ["data"],
        "proj:code": EPSG, "proj:shape": [ROWS, COLS], "proj:transform": [RES, 0.0, ORIGIN_X, 0.0, -RES, ORIGIN_Y],
        "proj:bbox": [ORIGIN_X, ORIGIN_Y - ROWS * RES, ORIGIN_X + COLS * RES, ORIGIN_Y],
        "bands": [{"name": "red", "data_type": "uint16", "nodata": 0, "raster:spatial_resolution": RES}],
        "file:size": len(data), "file:checksum": "1220" + hashlib.sha256(data).hexdigest()}}
    coll = {"type": "Collection", "stac_version": "1.1.0", "id": "c", "description": "d", "license": "CC-BY-4.0",
            "extent": {"spatial": {"bbox": [[11, 60, 11, 60]]}, "temporal": {"interval": [[None, None]]}}, "links": []}
    write_tree(root, {"type": "Catalog", "stac_version": "1.1.0", "id": "rr", "description": "r", "links": []},
               [CollectionBundle(coll, [item])])
    return item_dir / "r1.json"


def _edit_asset(item_path: Path, **fields) -> None:
    doc = json.loads(item_path.read_text())
    doc["assets"]["red"].update(fields)
    item_path.write_text(json.dumps(doc))


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda p: _edit_asset(p, **{"proj:code": "EPSG:32633"}), "proj:code EPSG:32633 in the metadata, the file has EPSG:32632"),
    (lambda p: _edit_asset(p, **{"proj:shape": [COLS, ROWS]}), f"proj:shape [{COLS}, {ROWS}] in the metadata, the file has [{ROWS}, {COLS}]"),
    (lambda p: _edit_asset(p, **{"proj:transform": [RES, 0.0, ORIGIN_X + 30, 0.0, -RES, ORIGIN_Y]}), "proj:transform"),
    (lambda p: _edit_asset(p, **{"proj:bbox": [ORIGIN_X, ORIGIN_Y - 100, ORIGIN_X + 100, ORIGIN_Y]}), "proj:bbox"),
    (lambda p: _edit_asset(p, bands=[{"name": "red", "data_type": "float32", "nodata": 0, "raster:spatial_resolution": RES}]),
     "bands/0/data_type float32 in the metadata, the file has uint16"),
    (lambda p: _edit_asset(p, bands=[{"name": "red", "data_type": "uint16", "nodata": 65535, "raster:spatial_resolution": RES}]),
     "bands/0/nodata 65535 in the metadata, the file has 0.0"),
    (lambda p: _edit_asset(p, bands=[{"name": "a", "raster:bits_per_sample": 16}, {"name": "b", "raster:bits_per_sample": 16}]), "bands lists 2 band(s), the file has 1"),
    (lambda p: _edit_asset(p, **{"file:size": 5}), "file:size 5 in the metadata, the file has"),
    (lambda p: _edit_asset(p, **{"file:checksum": "1220" + "0" * 64}), "file:checksum 1220" + "0" * 64 + " in the metadata"),
    (lambda p: (p.parent / "red.tif").unlink(), "asset 'red': file './red.tif' does not exist"),
], ids=["proj:code", "proj:shape", "proj:transform", "proj:bbox", "data_type", "nodata", "band count", "file:size",
        "file:checksum", "missing"])
def test_asset_metadata_must_match_the_file(schema_store: SchemaStore, tmp_path: Path, edit, expected: str) -> None:
    """Each disagreement between an asset's JSON and its file is one problem naming the item, the
    asset and the field (the file itself is written by GDAL, the metadata by hand)."""
    from stac_mmtp.release.validate import validate_tree

    item_path = _raster_tree(tmp_path)
    good = validate_tree(tmp_path, schema_store)
    assert good.ok, good.problems
    assert good.assets == 1
    edit(item_path)
    problems = validate_tree(tmp_path, schema_store).problems
    assert len(problems) == 1, problems
    assert problems[0].path == "c/r1/r1.json"
    assert expected in problems[0].message
    assert problems[0].message.startswith("asset 'red'")


def test_garbage_cog_fails_validate_and_publish(schema_dir: Path, tmp_path: Path) -> None:
    """Valid JSON over bad bytes: a COG replaced by random bytes of the same size, and by a striped
    (non-COG) GeoTIFF with its metadata updated, both exit 1 from validate and 2 from publish, nothing
    published."""
    import hashlib
    import os

    from click.testing import CliRunner

    from stac_mmtp.commands.main import main

    tree = tmp_path / "tree"
    item_path = _raster_tree(tree)
    target = tmp_path / "mirror"
    runner = CliRunner()
    ok = runner.invoke(main, ["validate", str(tree), "--schema-cache", str(schema_dir)])
    assert ok.exit_code == 0, ok.output
    tif = item_path.parent / "red.tif"
    size = tif.stat().st_size
    tif.write_bytes(os.urandom(size))
    bad = runner.invoke(main, ["validate", str(tree), "--schema-cache", str(schema_dir)])
    assert bad.exit_code == 1
    assert "asset 'red' (./red.tif): file:checksum" in bad.output
    assert "asset 'red' (./red.tif): not a readable GeoTIFF" in bad.output

    _write_tif(tif, cog=False)  # GDAL's plain GTiff: strips, no overviews
    data = tif.read_bytes()
    _edit_asset(item_path, **{"file:size": len(data), "file:checksum": "1220" + hashlib.sha256(data).hexdigest()})
    bad = runner.invoke(main, ["validate", str(tree), "--schema-cache", str(schema_dir)])
    assert bad.exit_code == 1
    assert "asset 'red' (./red.tif): type says Cloud-Optimized GeoTIFF, the file is not one" in bad.output
    assert "not tiled" in bad.output
    env = {"STAC_MMTP_SCHEMA_CACHE": str(schema_dir)}
    pub = runner.invoke(main, ["publish", str(tree), "--to", target.as_uri()], env=env)
    assert pub.exit_code == 2, pub.output
    assert "refusing to publish" in pub.output and "Cloud-Optimized" in pub.output
    assert not target.exists() or not any(target.rglob("*"))


def test_asset_checks_reuse_the_digest_cache(schema_store: SchemaStore, tmp_path: Path) -> None:
    """An untouched asset (same path, size, mtime, inode) with unchanged metadata is not read again:
    bytes swapped under a restored mtime go unseen, as with rsync; a touched file is read again."""
    import os

    from stac_mmtp.release.validate import validate_tree

    item_path = _raster_tree(tmp_path)
    assert validate_tree(tmp_path, schema_store).ok
    tif = item_path.parent / "red.tif"
    st = tif.stat()
    with tif.open("r+b") as f:  # same inode, same size
        f.write(b"\0" * 64)
    os.utime(tif, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert validate_tree(tmp_path, schema_store).ok  # cached: not re-read
    os.utime(tif, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    problems = validate_tree(tmp_path, schema_store).problems
    assert any("file:checksum" in p.message for p in problems), problems


def test_release_validates_with_its_own_schema(schema_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build ships our extension's schema at the path of its URL; a copy of the tree validates with
    the package's extensions/ pointing nowhere, offline. Without the shipped copy it cannot."""
    import stac_mmtp.release.validate as validate_mod
    from stac_mmtp import EXTENSION_SCHEMA_URI
    from stac_mmtp.release.validate import validate_tree
    from stac_mmtp.stac.tree import CollectionBundle, write_tree

    repo_schema = Path(__file__).resolve().parents[1] / "extensions" / "mmtp" / "json-schema" / "schema.json"
    item = _item()
    item["stac_extensions"] = [PROJ, EXTENSION_SCHEMA_URI]
    item["properties"].update({"mmtp:event_id": "gjerdrum-landslide-2020", "mmtp:phenomenon": "landslide"})
    coll = {"type": "Collection", "stac_version": "1.1.0", "id": "c", "description": "d", "license": "CC-BY-4.0",
            "extent": {"spatial": {"bbox": [[11, 60, 11, 60]]}, "temporal": {"interval": [[None, None]]}}, "links": []}
    built = tmp_path / "built"
    write_tree(built, {"type": "Catalog", "stac_version": "1.1.0", "id": "own", "description": "r", "links": []},
               [CollectionBundle(coll, [item])])
    shipped = built / "extensions" / "mmtp" / EXTENSION_SCHEMA_URI.split("/")[-2] / "schema.json"
    assert shipped.read_bytes() == repo_schema.read_bytes()
    assert EXTENSION_SCHEMA_URI.endswith(shipped.relative_to(built).as_posix())

    release = Path(shutil.copytree(built, tmp_path / "elsewhere" / "release"))
    monkeypatch.setattr(validate_mod, "extensions_dir", lambda: tmp_path / "no-checkout")
    report = validate_tree(release, SchemaStore(schema_dir))
    assert report.ok, report.problems
    assert EXTENSION_SCHEMA_URI in report.schemas
    # the shipped copy is the one used: a broken copy breaks the item's validation
    shipped_copy = release / shipped.relative_to(built)
    doc = json.loads(shipped_copy.read_text())
    shipped_copy.write_text(json.dumps({**doc, "not": {}}))  # nothing validates against "not: {}"
    bad = validate_tree(release, SchemaStore(schema_dir))
    assert [p.schema for p in bad.problems] == [EXTENSION_SCHEMA_URI]
    shipped_copy.unlink()
    with pytest.raises(SchemaMissing, match="neither the validated tree ships it"):
        validate_tree(release, SchemaStore(schema_dir))


COLLECTION_V11 = "https://schemas.stacspec.org/v1.1.0/collection-spec/json-schema/collection.json"


def _huge_tree(tmp_path: Path, n: int, bad_at: tuple[int, ...]) -> Path:
    """A synthetic tree whose collection has `n` item links (each to one of ten real items) and a link
    whose href is not a string at each position of `bad_at`, then a good root and a broken parent link."""
    tree = tmp_path / "tree"
    (tree / "coll" / "items").mkdir(parents=True)
    (tree / "catalog.json").write_text(json.dumps(
        {"type": "Catalog", "stac_version": "1.1.0", "id": "synthetic-huge", "description": "Synthetic test tree",
         "links": [{"rel": "root", "href": "./catalog.json"}, {"rel": "child", "href": "./coll/collection.json"}]}))
    for k in range(10):  # every item link goes to one of ten real items: the walk reads each once
        item = _item()
        item["id"], item["collection"] = f"i{k}", "coll"
        item["links"] = [{"rel": "collection", "href": "../collection.json"}, {"rel": "root", "href": "../../catalog.json"}]
        (tree / "coll" / "items" / f"i{k}.json").write_text(json.dumps(item))
    links = [{"rel": "item", "href": f"./items/i{k % 10}.json", "type": "application/geo+json",
              "title": f"Synthetic item {k}"} for k in range(n)]
    for k in bad_at:
        links[k]["href"] = 42  # the link schema wants a string
    links += [{"rel": "root", "href": "../catalog.json"}, {"rel": "parent", "href": "../missing.json"}]
    coll = {"type": "Collection", "stac_version": "1.1.0", "id": "coll", "description": "Synthetic, not observations.",
            "license": "CC-BY-4.0", "links": links,
            "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]}}}
    (tree / "coll" / "collection.json").write_text(json.dumps(coll, indent=2))
    return tree


def _expected(bad_at: tuple[int, ...]) -> list[str]:
    return [f"coll/collection.json: links/{k}/href: 42 is not of type 'string' (schema {COLLECTION_V11})"
            for k in bad_at] + ["coll/collection.json: broken parent link '../missing.json'"]


def test_huge_collection_links_streamed_bounded_and_a_deep_bad_link_named(tmp_path: Path, schema_dir: Path) -> None:
    """A collection.json of 200,000 item links (synthetic, made here) is validated with its links streamed:
    Python's peak allocation (tracemalloc) stays far below what the parsed file alone takes, and a link
    broken at position 150,000 is reported with the file and its position."""
    import tracemalloc

    from stac_mmtp.release.validate import BIG_JSON, validate_tree

    tree = _huge_tree(tmp_path, 200_000, (150_000,))
    coll_file = tree / "coll" / "collection.json"
    assert coll_file.stat().st_size > BIG_JSON  # the streamed path is the one under test

    tracemalloc.start()
    json.loads(coll_file.read_bytes())
    parsed = tracemalloc.get_traced_memory()[1]  # what holding the parsed file takes
    tracemalloc.stop()
    tracemalloc.start()
    report = validate_tree(tree, SchemaStore(schema_dir), check_assets=False)
    streamed = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    assert [str(p) for p in report.problems] == _expected((150_000,))
    assert report.objects == 12 and report.by_type == {"Catalog": 1, "Collection": 1, "Feature": 10}
    assert parsed > 60 * 2**20, parsed  # 200,000 parsed links: tens of MiB
    assert streamed < parsed / 8, (streamed, parsed)


def test_streamed_links_report_what_the_whole_file_path_reports(tmp_path: Path, schema_dir: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Streamed (the limit lowered below a 5,000-link file) and whole, the same problems in the same
    order, with bad links in the first batch, at a batch boundary and in the last batch."""
    from stac_mmtp.release import validate as validate_mod
    from stac_mmtp.release.validate import LINK_BATCH, validate_tree

    bad_at = (3, LINK_BATCH - 1, LINK_BATCH, 4_999)
    tree = _huge_tree(tmp_path, 5_000, bad_at)
    whole = validate_tree(tree, SchemaStore(schema_dir), check_assets=False)
    monkeypatch.setattr(validate_mod, "BIG_JSON", 64 * 1024)
    assert (tree / "coll" / "collection.json").stat().st_size > 64 * 1024
    streamed = validate_tree(tree, SchemaStore(schema_dir), check_assets=False)
    assert [str(p) for p in whole.problems] == [str(p) for p in streamed.problems] == _expected(bad_at)
    assert streamed.by_type == whole.by_type == {"Catalog": 1, "Collection": 1, "Feature": 10}
