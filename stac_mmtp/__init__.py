"""stac-mmtp: a multi-phenomena, multi-modal, multi-temporal natural-hazard dataset as COGs + STAC 1.1."""

__version__ = "0.1.0"

STAC_VERSION = "1.1.0"
EXTENSION_NAME = "mmtp"
EXTENSION_VERSION = "v1.0.0"
# The schema's path below the project's GitHub Pages site (.github/workflows/pages.yml serves it there),
# and below the root of every build, which ships a copy (stac.tree.shipped_schema_path).
EXTENSION_SITE = "https://stac-mmtp.github.io/stac-mmtp/"
EXTENSION_SCHEMA_PATH = f"extensions/{EXTENSION_NAME}/{EXTENSION_VERSION}/schema.json"
EXTENSION_SCHEMA_URI = EXTENSION_SITE + EXTENSION_SCHEMA_PATH
EXTENSION_PREFIX = "mmtp:"
