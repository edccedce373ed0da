"""What every product family shares. Each family module exposes one `Source` (as `SOURCE`) with the same small shape:

- `detect(path)`: is this a product of my family (directory or .zip)? Cheap, no parsing.
- `read(path)`: parse metadata only -> `ProductMeta` (id, lon/lat footprint, times, and the
  metadata-only STAC item that `stac-mmtp inspect` prints). Raise `ProductError` naming the file.
- `convert(task, item_dir)`: the unit of work, a pure function of (event, product): write the
  clipped COGs/thumbnail into `item_dir` and return the item dict (asset hrefs `./name.tif`).
- `collection(items)`: the collection dict (no links or extent: the tree writer adds those).

A product holding the sample marker (`synthetic.MARKER`, written by `stac-mmtp sample`) is read with
`ProductMeta.synthetic` set, and every item made from it is marked (`synthetic.mark_item`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from stac_mmtp.dataset.inventory import Event


@dataclass(frozen=True)
class ProductMeta:
    path: Path
    source: str
    id: str
    geometry: dict[str, Any]  # footprint, GeoJSON lon/lat
    start: datetime
    end: datetime
    item: dict[str, Any] = field(compare=False, repr=False)
    synthetic: bool = False  # a `stac-mmtp sample` product (it holds the marker file), not an observation


@dataclass(frozen=True)
class BuildOptions:
    days_before: int = 60
    days_after: int = 90
    buffer_m: float = 1000.0
    jobs: int = 0  # 0 = all cores


@dataclass(frozen=True)
class Task:
    event: Event
    product: ProductMeta
    temporal_role: str
    days_from_event: float
    options: BuildOptions

    @property
    def item_id(self) -> str:
        return f"{self.event.id}_{self.product.id}"


class Source(Protocol):
    name: str
    collection_id: str

    def detect(self, path: Path) -> bool: ...

    def read(self, path: Path) -> ProductMeta: ...

    def convert(self, task: Task, item_dir: Path) -> dict[str, Any]: ...

    def collection(self, items: Any) -> dict[str, Any]: ...  # a list of items or a stac.tree.ItemStats
