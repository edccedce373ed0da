"""What a product family implements and registers (see the package docstring): the family modules import
this module, never the package, so that the package can list them without an import cycle."""

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

    def collection(self, items: list[dict[str, Any]]) -> dict[str, Any]: ...


_REGISTRY: dict[str, Source] = {}


def register(source: Source) -> Source:
    _REGISTRY[source.name] = source
    return source
