"""`stac-mmtp search`: quick queries straight on a release's stac-geoparquet files, no server."""

from __future__ import annotations

import json

import click

from stac_mmtp import console
from stac_mmtp.errors import MmtpError


def _floats(value: str | None) -> list[float] | None:
    if not value:
        return None
    try:
        parts = [float(v) for v in value.split(",")]
    except ValueError as exc:
        raise click.BadParameter(f"{value!r}: expected minx,miny,maxx,maxy") from exc
    if len(parts) != 4:
        raise click.BadParameter(f"{value!r}: expected 4 numbers minx,miny,maxx,maxy")
    return parts


@click.command("search", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source")
@click.option("--bbox", help="minx,miny,maxx,maxy in degrees.")
@click.option("--datetime", "dt", help="RFC 3339 instant or interval (start/end, '..' for open).")
@click.option("-c", "--collection", "collections", multiple=True, help="Collection id (repeatable).")
@click.option("--id", "ids", multiple=True, help="Item id (repeatable).")
@click.option("--filter", "cql2", help="CQL2 filter, text (\"mmtp:phenomenon\" = 'flood') or JSON.")
@click.option("--limit", type=int, help="At most this many items.")
@click.option("--json", "as_json", is_flag=True, help="Print a GeoJSON FeatureCollection instead of a table.")
def search_command(source: str, bbox: str | None, dt: str | None, collections: tuple[str, ...], ids: tuple[str, ...],
                   cql2: str | None, limit: int | None, as_json: bool) -> None:
    """Search SOURCE (a built catalog directory or a published root URL) with no server.

    \b
    Example: items of landslide events, first image after the event:
      stac-mmtp search build/catalog \\
        --filter "\\"mmtp:phenomenon\\" = 'landslide' AND \\"mmtp:temporal_role\\" = 'first-post-event'"
    """
    from stac_mmtp.access.search import search_items

    try:
        items = search_items(source, bbox=_floats(bbox), datetime=dt, collections=list(collections) or None,
                             ids=list(ids) or None, cql2=cql2, limit=limit)
    except MmtpError as exc:
        console.error(str(exc))
        raise SystemExit(exc.exit_code) from exc
    except Exception as exc:  # DuckDB/CQL2 errors: a bad query, not a crash
        console.error(f"query failed: {exc}")
        raise SystemExit(2) from exc
    if as_json:
        click.echo(json.dumps({"type": "FeatureCollection", "features": items}, indent=2))
        return
    console.table(f"{len(items)} item(s)", ["collection", "id", "datetime", "phenomenon", "role"], [
        [it.get("collection"), it["id"], it["properties"].get("datetime") or it["properties"].get("start_datetime"),
         it["properties"].get("mmtp:phenomenon"), it["properties"].get("mmtp:temporal_role", "")] for it in items])
