"""`stac-mmtp validate`: every STAC object of a built tree, offline."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from stac_mmtp import console
from stac_mmtp.commands.common import CONTEXT, fail, json_option
from stac_mmtp.errors import EXIT_FAILED, MmtpError


@click.command("validate", context_settings=CONTEXT)
@click.argument("directory", type=click.Path(path_type=Path, exists=True))
@click.option("--schema-cache", type=click.Path(path_type=Path), envvar="STAC_MMTP_SCHEMA_CACHE",
              help="Schema mirror laid out as HOST/PATH [env STAC_MMTP_SCHEMA_CACHE; default ~/.cache/stac-mmtp/schemas].")
@click.option("--fetch/--no-fetch", default=False, show_default=True,
              help="Download schemas missing from the cache over HTTPS (checked against the lock file).")
@json_option
def validate_command(directory: Path, schema_cache: Path | None, fetch: bool) -> None:
    """Validate every STAC object of a built tree against the STAC 1.1 core schema and each of
    its extensions' schemas, offline; also check links, and each local asset's bytes against its
    metadata (file:size, file:checksum, COG validity, proj:* and band fields)."""
    from stac_mmtp.release.validate import SchemaStore, validate_tree

    store = SchemaStore(schema_cache, allow_fetch=fetch)
    try:
        report = validate_tree(directory, store)
    except MmtpError as exc:
        fail(exc)
    console.record("directory", str(directory))
    console.record("objects", report.objects)
    console.record("cached", report.cached)
    console.record("by_type", dict(sorted(report.by_type.items())))
    console.record("schemas", len(report.schemas))
    console.record("assets", report.assets)
    console.record("problems", len(report.problems))
    if not console.json_mode():
        console.table(
            f"validated {report.objects} objects in {directory}" + (f" ({report.cached} unchanged since a previous validation)" if report.cached else ""),
            ["type", "count"],
            [[k, v] for k, v in sorted(report.by_type.items())] + [["schemas used", len(report.schemas)],
                                                                   ["asset files checked", report.assets]],
        )
    for p in report.problems[:200]:
        console.error(escape(str(p)))
    if report.problems:
        fail(f"{len(report.problems)} problem(s) found", EXIT_FAILED)
    if not console.quiet() and not console.json_mode():
        console.err.print("all objects valid", style="green")
