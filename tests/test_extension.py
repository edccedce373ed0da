"""The mmtp extension: examples validate; removing a required field or a wrong enum value fails."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pystac
import pytest
from unavailable import unavailable

from stac_mmtp import EXTENSION_SCHEMA_URI
from stac_mmtp.release.validate import validate_objects
from stac_mmtp.stac.extension import MmtpExtension

EXT = Path(__file__).resolve().parents[1] / "extensions" / "mmtp"


def _load(name: str) -> dict:
    return json.loads((EXT / "examples" / name).read_text())


def _mmtp_problems(obj: dict, store) -> list[str]:
    return [str(p) for p in validate_objects([obj], store) if p.schema == EXTENSION_SCHEMA_URI]


def _names(problems: list[str], field: str) -> bool:
    """Some problem was found, and one names the broken field (not merely "invalid")."""
    return bool(problems) and any(field in p for p in problems)


def test_schema_id_is_the_identifier() -> None:
    schema = json.loads((EXT / "json-schema" / "schema.json").read_text())
    assert schema["$id"] == EXTENSION_SCHEMA_URI
    assert EXTENSION_SCHEMA_URI in (EXT / "README.md").read_text()


@pytest.mark.parametrize("name", ["item.json", "collection.json", "synthetic-item.json"])
def test_examples_valid(name: str, schema_store) -> None:
    assert validate_objects([_load(name)], schema_store) == []


# the roles an acquisition plan gives (issue 15, docs/acquisition.md): each is a value an item may carry
PLAN_ROLES = ("pre-event", "co-event", "first-post-event", "first-usable-post-event", "post-event")


@pytest.mark.parametrize("role", PLAN_ROLES)
def test_every_plan_role_is_an_item_temporal_role(role: str, schema_store) -> None:
    item = _load("item.json")
    item["properties"]["mmtp:temporal_role"] = role
    assert _mmtp_problems(item, schema_store) == []
    assert f"`{role}`" in (EXT / "README.md").read_text()


def test_plan_roles_and_item_roles_agree() -> None:
    from stac_mmtp.discover.selection import ROLE_ORDER
    from stac_mmtp.sources.remote_s2 import item_role

    schema = json.loads((EXT / "json-schema" / "schema.json").read_text())
    assert set(schema["definitions"]["temporal_role"]["enum"]) == set(PLAN_ROLES) == set(ROLE_ORDER)
    # a plan entry with several roles becomes one item role: the first post-event image says so first
    assert item_role(["first-post-event", "first-usable-post-event"]) == "first-post-event"
    assert item_role(["first-usable-post-event"]) == "first-usable-post-event"
    assert item_role(["first-post-event", "post-event"]) == "first-post-event"


@pytest.mark.parametrize("field", ["mmtp:event_id", "mmtp:phenomenon"])
def test_item_required_fields(field: str, schema_store) -> None:
    item = _load("item.json")
    del item["properties"][field]
    problems = _mmtp_problems(item, schema_store)
    assert _names(problems, field), problems


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mmtp:phenomenon", "meteor"),
        ("mmtp:temporal_role", "after"),
        ("mmtp:state", "sleepy"),
        ("mmtp:event_id", "Not URL safe"),
        ("mmtp:artefacts", ["aliens"]),
        ("mmtp:confidence", 1.5),
        ("mmtp:unknown_field", 1),
    ],
)
def test_item_bad_values(field: str, value: object, schema_store) -> None:
    item = _load("item.json")
    item["properties"][field] = value
    problems = _mmtp_problems(item, schema_store)
    assert _names(problems, field), problems


def test_annotation_requires_provenance(schema_store) -> None:
    item = _load("item.json")
    item["properties"].update({"mmtp:annotation_method": "manual", "mmtp:annotator_expertise": "expert",
                               "mmtp:confidence": 0.9, "mmtp:review_status": "reviewed"})
    assert _mmtp_problems(item, schema_store) == []
    for field in ("mmtp:annotator_expertise", "mmtp:confidence", "mmtp:review_status"):
        bad = copy.deepcopy(item)
        del bad["properties"][field]
        problems = _mmtp_problems(bad, schema_store)
        assert _names(problems, field), problems


def test_range_needs_both_ends(schema_store) -> None:
    item = _load("item.json")
    item["properties"]["mmtp:event_start_datetime"] = "2020-01-01T00:00:00Z"
    problems = _mmtp_problems(item, schema_store)
    assert _names(problems, "mmtp:event_end_datetime"), problems


def test_collection_requires_phenomenon_summary(schema_store) -> None:
    coll = _load("collection.json")
    del coll["summaries"]["mmtp:phenomenon"]
    problems = _mmtp_problems(coll, schema_store)
    assert _names(problems, "mmtp:phenomenon"), problems
    coll = _load("collection.json")
    coll["summaries"]["mmtp:phenomenon"] = ["tornado"]
    problems = _mmtp_problems(coll, schema_store)
    assert _names(problems, "tornado"), problems


def test_pystac_extension_class(schema_store) -> None:
    item = pystac.Item.from_dict(_load("item.json"))
    ext = MmtpExtension.ext(item)
    assert ext.event_id == "gjerdrum-landslide-2020"
    assert ext.temporal_role == "first-post-event"
    assert ext.days_from_event == pytest.approx(4.32)
    ext.apply(review_status=None, temporal_role="post-event")
    assert item.properties["mmtp:temporal_role"] == "post-event"
    bare = pystac.Item("x", None, None, item.datetime, {})
    with pytest.raises(pystac.ExtensionNotImplemented):
        MmtpExtension.ext(bare)
    MmtpExtension.ext(bare, add_if_missing=True).apply(event_id="x", phenomenon="flood")
    assert EXTENSION_SCHEMA_URI in bare.stac_extensions
    assert validate_objects([bare.to_dict(include_self_link=False)], schema_store) == []


def test_synthetic_marker(schema_store) -> None:
    """mmtp:synthetic is a boolean on items, collections and catalogs; a synthetic product's metadata-only
    item (stac-mmtp inspect, no event yet) may carry it without an event, any other item may not."""
    item = _load("synthetic-item.json")
    assert item["properties"]["mmtp:synthetic"] is True and _mmtp_problems(item, schema_store) == []
    for bad in ("yes", 1, None):
        wrong = copy.deepcopy(item)
        wrong["properties"]["mmtp:synthetic"] = bad
        assert _mmtp_problems(wrong, schema_store), bad
    bare = copy.deepcopy(item)
    for key in [k for k in bare["properties"] if k.startswith("mmtp:") and k != "mmtp:synthetic"]:
        del bare["properties"][key]
    assert _mmtp_problems(bare, schema_store) == []  # the inspect item of a sample product
    bare["properties"]["mmtp:synthetic"] = False
    assert _mmtp_problems(bare, schema_store)  # not synthetic: the event fields are required again
    coll = _load("collection.json")
    coll["mmtp:synthetic"] = True
    assert _mmtp_problems(coll, schema_store) == []
    coll["mmtp:synthetic"] = "true"
    assert _mmtp_problems(coll, schema_store)
    catalog = {"type": "Catalog", "stac_version": "1.1.0", "stac_extensions": [EXTENSION_SCHEMA_URI], "id": "c",
               "description": "Synthetic sample build", "links": [], "mmtp:synthetic": True}
    assert validate_objects([catalog], schema_store) == []
    catalog["mmtp:synthetic"] = "yes"
    assert _mmtp_problems(catalog, schema_store)
    ext = MmtpExtension.ext(pystac.Item.from_dict(item))
    assert ext.synthetic is True


def _pages_script() -> str:
    """The site-layout step of .github/workflows/pages.yml, as the workflow runs it."""
    import textwrap

    text = (EXT.parents[1] / ".github" / "workflows" / "pages.yml").read_text()
    return textwrap.dedent(text.split("python3 - <<'PY'\n", 1)[1].split("\n          PY\n", 1)[0])


def test_pages_site_serves_the_schema_at_its_id(tmp_path: Path) -> None:
    """The Pages workflow puts the committed schema at the path its $id names under the Pages base URL
    https://stac-mmtp.github.io/stac-mmtp/ (repository stac-mmtp/stac-mmtp), and refuses another base."""
    import os
    import subprocess
    import sys

    repo = EXT.parents[1]
    if subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True).returncode:
        unavailable("not a git checkout")
    committed = subprocess.run(["git", "-C", str(repo), "show", "HEAD:extensions/mmtp/json-schema/schema.json"],
                               capture_output=True, text=True, check=True).stdout
    env = {**os.environ, "BASE_URL": "https://stac-mmtp.github.io/stac-mmtp", "SITE": str(tmp_path / "site"),
           "GITHUB_OUTPUT": str(tmp_path / "out")}
    subprocess.run([sys.executable, "-c", _pages_script()], cwd=repo, env=env, check=True, capture_output=True)
    served = tmp_path / "site" / "extensions" / "mmtp" / "v1.0.0" / "schema.json"
    assert served.read_text() == committed
    assert json.loads(committed)["$id"] == "https://stac-mmtp.github.io/stac-mmtp/extensions/mmtp/v1.0.0/schema.json"
    env.update(BASE_URL="https://someone.github.io/fork", SITE=str(tmp_path / "other"))
    bad = subprocess.run([sys.executable, "-c", _pages_script()], cwd=repo, env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and "is not served by this repository's Pages site" in bad.stderr
