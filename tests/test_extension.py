"""The mmtp extension: examples validate; removing a required field or a wrong enum value fails."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pystac
import pytest

from stac_mmtp import EXTENSION_SCHEMA_URI
from stac_mmtp.stac.extension import MmtpExtension
from stac_mmtp.validate import validate_objects

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


@pytest.mark.parametrize("name", ["item.json", "collection.json"])
def test_examples_valid(name: str, schema_store) -> None:
    assert validate_objects([_load(name)], schema_store) == []


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
