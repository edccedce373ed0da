"""Product families: `base` (what every family shares, the Source protocol), `registry` (which
families exist, as "module:SOURCE" strings), one subpackage per family. This module re-exports the
names callers use, without importing any family."""

from __future__ import annotations

# Re-exported for existing callers. The registry names the families by strings and imports them on
# first use, so importing this package never imports a family (which would import this package back).
from stac_mmtp.sources.base import BuildOptions, ProductMeta, Source, Task
from stac_mmtp.sources.registry import SOURCE_MODULES, all_sources, detect, discover, get_source, read_product

__all__ = ["SOURCE_MODULES", "BuildOptions", "ProductMeta", "Source", "Task", "all_sources", "detect", "discover",
           "get_source", "read_product"]
