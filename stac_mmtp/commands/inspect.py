"""`stac-mmtp inspect PRODUCT`: the STAC item a product's metadata alone yields."""

from __future__ import annotations

import json
from pathlib import Path

import click

from stac_mmtp.commands.common import CONTEXT, fail
from stac_mmtp.errors import MmtpError


@click.command("inspect", context_settings=CONTEXT)
@click.argument("product", type=click.Path(path_type=Path, exists=True))
def inspect_command(product: Path) -> None:
    """Print the STAC item that PRODUCT's metadata alone yields (no pixel work), as JSON."""
    from stac_mmtp.sources import read_product

    try:
        meta = read_product(product)
    except MmtpError as exc:
        fail(exc)
    click.echo(json.dumps(meta.item, indent=2, ensure_ascii=False))
