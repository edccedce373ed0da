"""Acquisition plans: one reviewable JSON file per event, `catalog/acquisitions/<event-id>.json`.

Determinism: the file depends only on the inventory, the options and the API's answers. The time of
each search is recorded (`searched_at`), but a re-run whose plan differs only by those times leaves
the file untouched, so an unchanged API gives a byte-identical file and `searched_at` says when the
selection last changed.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from stac_mmtp.atomic import dumps_json, write_text
from stac_mmtp.errors import InputError

PLAN_TYPE = "stac-mmtp-acquisition-plan"
PLAN_VERSION = 1


def _without_times(plan: dict[str, Any]) -> dict[str, Any]:
    p = copy.deepcopy(plan)
    for q in p.get("queries", []):
        q.pop("searched_at", None)
    return p


def read_plan(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"not a readable acquisition plan: {exc}", path) from exc
    if not isinstance(plan, dict) or plan.get("type") != PLAN_TYPE:
        raise InputError(f"not an acquisition plan (type is not {PLAN_TYPE!r})", path)
    return plan


def read_plans(directory: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every plan of a directory, sorted by file name."""
    out = []
    for path in sorted(directory.glob("*.json")):
        plan = read_plan(path)
        if plan is not None:
            out.append((path, plan))
    return out


def acquisition_key(r: dict[str, Any]) -> tuple[str, str, str, str]:
    return (r["modality"], r["stack"], r["datetime"] or "", r["item_id"])


def merge_update(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`--update`: keep every acquisition already planned as it is, add the ones not yet there."""
    merged = copy.deepcopy(new)
    known = {(a["modality"], a["item_id"]) for a in old.get("acquisitions", [])}
    added = [a for a in new["acquisitions"] if (a["modality"], a["item_id"]) not in known]
    merged["acquisitions"] = sorted(old.get("acquisitions", []) + added, key=acquisition_key)
    if not added:  # nothing new: the queries of the selection in force stay as they were
        merged["queries"] = old.get("queries", merged["queries"])
    return merged


def write_plan(path: Path, plan: dict[str, Any], update: bool = False) -> str:
    """Write atomically; returns "written", "updated" or "unchanged" (the file was left as it was)."""
    old = read_plan(path)
    if old is not None and update:
        plan = merge_update(old, plan)
    if old is not None and _without_times(old) == _without_times(plan):
        return "unchanged"
    write_text(path, dumps_json(plan))
    return "updated" if old is not None else "written"
