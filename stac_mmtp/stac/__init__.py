"""STAC building blocks: extension URLs, our extension class, tree writing."""

from stac_mmtp import EXTENSION_SCHEMA_URI

# The current versions we write (older producers' versions are read, never written).
EO = "https://stac-extensions.github.io/eo/v2.0.0/schema.json"
RASTER = "https://stac-extensions.github.io/raster/v2.0.0/schema.json"
PROJ = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
SAR = "https://stac-extensions.github.io/sar/v1.3.0/schema.json"
SAT = "https://stac-extensions.github.io/sat/v1.2.0/schema.json"
VIEW = "https://stac-extensions.github.io/view/v1.1.0/schema.json"
FILE = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
PROCESSING = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
SCIENTIFIC = "https://stac-extensions.github.io/scientific/v1.0.0/schema.json"
CLASSIFICATION = "https://stac-extensions.github.io/classification/v2.0.0/schema.json"
LABEL = "https://stac-extensions.github.io/label/v1.0.1/schema.json"
ML_AOI = "https://stac-extensions.github.io/ml-aoi/v0.2.0/schema.json"
INSAR = "https://stac-extensions.github.io/insar/v1.0.0/schema.json"
PRODUCT = "https://stac-extensions.github.io/product/v1.0.0/schema.json"
MMTP = EXTENSION_SCHEMA_URI

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
PNG_MEDIA_TYPE = "image/png"
GEOJSON_MEDIA_TYPE = "application/geo+json"
JSON_MEDIA_TYPE = "application/json"
