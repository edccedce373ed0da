"""STAC API providers of Sentinel-1/2 products: their endpoints, collection ids and request limits.

The names, ids and limits are the public ones of each service (docs/acquisition.md explains auth);
`--provider URL` uses any other STAC API with Earth Search's collection names unless told otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stac_mmtp.discover.redact import redact
from stac_mmtp.errors import InputError, ProductError

MODALITIES = ("s2", "s1")


@dataclass(frozen=True)
class Provider:
    name: str
    url: str
    collections: dict[str, str] = field(default_factory=dict)  # modality -> collection id
    rate_limit: float = 10.0  # requests per second, at most
    page_size: int = 100
    sign: str | None = None  # how assets are signed for reading (never stored): "planetary-computer"
    licence: str = "proprietary"


COPERNICUS_LICENCE = "other"  # STAC 1.1 value for a named non-SPDX licence; the link names the legal notice

PROVIDERS: dict[str, Provider] = {
    "earth-search": Provider(
        "earth-search", "https://earth-search.aws.element84.com/v1",
        {"s2": "sentinel-2-l2a", "s1": "sentinel-1-grd"}, rate_limit=10.0,
    ),
    "planetary-computer": Provider(
        "planetary-computer", "https://planetarycomputer.microsoft.com/api/stac/v1",
        {"s2": "sentinel-2-l2a", "s1": "sentinel-1-grd"}, rate_limit=5.0, page_size=100, sign="planetary-computer",
    ),
    "cdse": Provider(
        "cdse", "https://stac.dataspace.copernicus.eu/v1",
        {"s2": "sentinel-2-l2a", "s1": "sentinel-1-grd"}, rate_limit=4.0,  # CDSE answers 429 above ~5 requests/s
    ),
}


def parse_collections(specs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`s2=ID` / `s1=ID` options -> {modality: id}; anything else is a usage error."""
    out: dict[str, str] = {}
    for spec in specs:
        mod, sep, cid = spec.partition("=")
        mod = mod.strip().lower()
        if not sep or mod not in MODALITIES or not cid.strip():
            raise InputError(f"--collection {spec!r}: expected MODALITY=ID with MODALITY one of {', '.join(MODALITIES)}")
        out[mod] = cid.strip()
    return out


def resolve(specs: tuple[str, ...] | list[str], collections: dict[str, str] | None = None,
            rate_limit: float | None = None, page_size: int | None = None) -> list[Provider]:
    """Provider names or STAC API URLs, in order of preference (the first that answers wins)."""
    collections = collections or {}
    providers: list[Provider] = []
    for spec in specs or ["earth-search"]:
        if spec in PROVIDERS:
            base = PROVIDERS[spec]
        elif spec.startswith(("http://", "https://")):
            base = Provider(spec.rstrip("/"), spec.rstrip("/"), dict(PROVIDERS["earth-search"].collections))
        else:
            raise InputError(f"--provider {spec!r}: not a known provider ({', '.join(PROVIDERS)}) nor an http(s) URL")
        providers.append(Provider(
            base.name, base.url, {**base.collections, **collections},
            rate_limit if rate_limit is not None else base.rate_limit,
            page_size if page_size is not None else base.page_size, base.sign, base.licence,
        ))
    return providers


def sign(href: str, provider: str) -> str:
    """A readable href: Planetary Computer blobs need a short-lived SAS token (never stored)."""
    if provider != "planetary-computer" or ".blob.core.windows.net" not in href:
        return href
    try:
        import planetary_computer
    except ModuleNotFoundError:
        raise ProductError("Planetary Computer assets need the `planetary-computer` package to be signed",
                           redact(href)) from None
    return planetary_computer.sign_url(href)
