"""Regenerate stac_mmtp/schemas.lock.json (URL -> sha256) from a schema mirror laid out as HOST/PATH.

Usage: python scripts/update_schema_lock.py ../shared/stac-schemas
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

LOCK = Path(__file__).resolve().parents[1] / "stac_mmtp" / "schemas.lock.json"


def main(mirror: Path) -> None:
    schemas = {}
    for path in sorted(mirror.rglob("*.json")):
        rel = path.relative_to(mirror).as_posix()
        if "/" not in rel or rel == "index.json":
            continue
        schemas[f"https://{rel}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    doc = {"comment": "sha256 of each official schema this project trusts; see scripts/update_schema_lock.py", "schemas": schemas}
    LOCK.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"{len(schemas)} schemas locked in {LOCK}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
