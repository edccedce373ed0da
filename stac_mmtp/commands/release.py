"""`stac-mmtp release` and `stac-mmtp verify`: immutable, citable versions of the dataset."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape

from stac_mmtp import console
from stac_mmtp.commands.common import json_option
from stac_mmtp.errors import EXIT_FAILED, MmtpError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(exc: BaseException | str, code: int = EXIT_FAILED) -> None:
    console.error(escape(str(exc)))
    sys.exit(getattr(exc, "exit_code", code))


@click.command("release", context_settings=CONTEXT)
@click.argument("version")
@click.argument("build_dir", required=False, type=click.Path(path_type=Path, file_okay=False),
                default=Path("build/catalog"))
@click.option("--to", "to", required=True, help="Dataset root: s3://bucket[/prefix] or file:///path (versions go "
              "under it as vX.Y.Z/).")
@click.option("--endpoint-url", help="S3 endpoint (S3-compatible stores).")
@click.option("--dry-run", is_flag=True, help="Show what the release would hold and change; write nothing.")
@click.option("--doi", help="DOI of this version (e.g. Zenodo's version DOI): sci:doi and a cite-as link.")
@click.option("--citation", help="Citation text of this version (sci:citation, Croissant citeAs).")
@click.option("--experimental/--stable", default=None,
              help="Version extension's `experimental` [default: experimental for 0.x versions].")
@click.option("--changelog-file", type=click.Path(path_type=Path, dir_okay=False), default=Path("CHANGELOG-dataset.md"),
              show_default=True, help="Local dataset changelog the new section is added to.")
@click.option("--no-changelog-file", is_flag=True, help="Do not touch a local dataset changelog.")
@click.option("--schema-cache", type=click.Path(path_type=Path), envvar="STAC_MMTP_SCHEMA_CACHE",
              help="Schema mirror [env STAC_MMTP_SCHEMA_CACHE].")
@click.option("--fetch", "fetch_schemas", is_flag=True,
              help="Download schemas missing from the cache over HTTPS (checked against the lock file).")
@click.option("--allow-synthetic", is_flag=True,
              help="Release a build of synthetic sample products (a demonstration; it says so everywhere).")
@click.option("-j", "--jobs", type=click.IntRange(1, 256), default=8, show_default=True, help="Parallel transfers.")
@json_option
def release_command(version: str, build_dir: Path, to: str, endpoint_url: str | None, dry_run: bool, doi: str | None,
                    citation: str | None, experimental: bool | None, changelog_file: Path, no_changelog_file: bool,
                    schema_cache: Path | None, fetch_schemas: bool, allow_synthetic: bool, jobs: int) -> None:
    """Publish BUILD_DIR [default: build/catalog] as the immutable version VERSION (MAJOR.MINOR.PATCH)
    under --to: `TO/vVERSION/`, with version links, a computed dataset changelog, a checksums
    manifest, Croissant metadata and a datasheet; `TO/catalog.json` lists the versions and
    `TO/latest/catalog.json` points to the newest.

    A version that exists is never overwritten (exit 2); the previous version only gains a
    successor-version link. Exit codes: 0 released, 1 an upload failed (re-run), 2 bad input.
    """
    from stac_mmtp.release.versions import release

    try:
        with console.progress_bar() as progress:
            report = release(version, build_dir, to, endpoint_url=endpoint_url, dry_run=dry_run, experimental=experimental,
                             doi=doi, citation=citation, schema_cache=schema_cache, jobs=jobs, progress=progress,
                             allow_synthetic=allow_synthetic, fetch_schemas=fetch_schemas,
                             changelog_file=None if (no_changelog_file or dry_run) else changelog_file)
    except MmtpError as exc:
        _fail(exc)
    except Exception as exc:  # noqa: BLE001 - botocore errors: name them, no traceback
        _fail(f"{type(exc).__name__}: {exc}")
    rows = [[kind, v["added"], v["removed"], v["changed"]] for kind, v in sorted(report.diff.get("summary", {}).items())]
    console.table(f"{'would release' if dry_run else 'released'} {report.version} to {report.target}"
                  + (f" (after {report.previous})" if report.previous else " (first version)"),
                  ["kind", "added", "removed", "changed"], rows if console.json_mode() else rows or [["(no change)", 0, 0, 0]],
                  key="changes")
    for k, v in {"version": report.version, "target": report.target, "previous": report.previous, "dry_run": dry_run,
                 "objects": report.objects, "bytes": report.bytes, "uploaded": report.uploaded}.items():
        console.record(k, v)
    for p in report.problems:
        console.error(escape(p))
    if not console.quiet() and report.ok and not console.json_mode():
        console.err.print(f"{report.objects} object(s), {report.bytes} bytes"
                          + ("" if dry_run else f", {report.uploaded} uploaded"), highlight=False)
    sys.exit(EXIT_FAILED if report.problems else 0)


@click.command("verify", context_settings=CONTEXT)
@click.argument("url")
@click.option("--endpoint-url", help="S3 endpoint (S3-compatible stores).")
@click.option("-j", "--jobs", type=click.IntRange(1, 256), default=8, show_default=True, help="Parallel reads.")
@json_option
def verify_command(url: str, endpoint_url: str | None, jobs: int) -> None:
    """Check a published version (URL = s3://.../vX.Y.Z, https://.../vX.Y.Z or file://) anonymously
    against its checksums manifest and every asset against its item's file:checksum.

    Exit codes: 0 every object matches, 1 a mismatch or a missing object, 2 not a release."""
    from stac_mmtp.release.versions import verify_release

    try:
        with console.progress_bar() as progress:
            report = verify_release(url, endpoint_url, jobs, progress)
    except MmtpError as exc:
        _fail(exc)
    except Exception as exc:  # noqa: BLE001
        _fail(f"{type(exc).__name__}: {exc}")
    if console.json_mode():
        for k, v in {"url": report.url, "objects": report.objects, "assets": report.assets,
                     "problems": len(report.problems)}.items():
            console.record(k, v)
    else:
        console.table(f"verified {report.url}", ["objects", "assets checked", "problems"],
                      [[report.objects, report.assets, len(report.problems)]])
    for p in report.problems[:200]:
        console.error(escape(p))
    sys.exit(EXIT_FAILED if report.problems else 0)
