"""Write an inventory event in the layout of catalog/events (one key per line, one reference per line), so that
diffs of hand edits and of scripted edits look alike. Used by hand: `python scripts/event_format.py FILE...`
rewrites files in place."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _j(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False)


def dumps(doc: dict[str, Any]) -> str:
    props = doc["properties"]
    lines = ["{", '  "type": "Feature",', f'  "id": {_j(doc["id"])},', f'  "geometry": {_j(doc["geometry"])},',
             '  "properties": {']
    items = list(props.items())
    for i, (k, v) in enumerate(items):
        end = "," if i < len(items) - 1 else ""
        if k == "references":
            refs = ",\n".join(f"      {_j(r)}" for r in v)
            lines.append(f'    "references": [\n{refs}\n    ]{end}')
        else:
            lines.append(f"    {_j(k)}: {_j(v)}{end}")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    for name in sys.argv[1:]:
        path = Path(name)
        path.write_text(dumps(json.loads(path.read_text(encoding="utf-8"))), encoding="utf-8")
