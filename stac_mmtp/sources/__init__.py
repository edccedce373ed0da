"""Product families. Each family module exposes one `Source` (as `SOURCE`,
listed in `registry.SOURCE_MODULES`) with the same small shape (`base.Source`):

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

# Re-exported for existing callers. The registry names the families by strings and imports them on
# first use, so importing this package never imports a family (which would import this package back).
from stac_mmtp.sources.base import BuildOptions, ProductMeta, Source, Task
from stac_mmtp.sources.registry import SOURCE_MODULES, all_sources, detect, discover, get_source, read_product

__all__ = ["SOURCE_MODULES", "BuildOptions", "ProductMeta", "Source", "Task", "all_sources", "detect", "discover",
           "get_source", "read_product"]
