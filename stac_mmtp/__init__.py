"""stac-mmtp: a multi-phenomena, multi-modal, multi-temporal natural-hazard dataset as COGs + STAC 1.1."""

__version__ = "0.1.0"

STAC_VERSION = "1.1.0"
EXTENSION_NAME = "mmtp"
EXTENSION_VERSION = "v1.0.0"
EXTENSION_SCHEMA_URI = f"https://stac-mmtp.github.io/stac-mmtp/extensions/{EXTENSION_NAME}/{EXTENSION_VERSION}/schema.json"
EXTENSION_PREFIX = "mmtp:"
