"""`stac-mmtp publish`: parse the options, run release.publish.publish (or --setup-bucket), print the
report, choose the exit code (0 published, 1 an upload or check failed, 2 bad input)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from stac_mmtp.commands.common import json_option
from stac_mmtp.errors import EXIT_FAILED, InputError, MmtpError
from stac_mmtp.release.publish import (
    CORS_RULES,
    PublishReport,
    S3Store,
    open_store,
    public_read_policy,
    publish,
    setup_bucket,
)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _quiet_sdk_logs() -> None:
    # botocore's debug log prints request headers (the access key id in Authorization): never show it.
    for name in ("botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)


@click.command("publish", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("build_dir", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option("--to", "target", required=True, metavar="URL", help="s3://bucket[/prefix] or file:///path (a local mirror).")
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL_S3", metavar="URL",
              help="S3-compatible endpoint (MinIO, SeaweedFS, OVH, Scaleway...) [env AWS_ENDPOINT_URL_S3].")
@click.option("--dry-run", is_flag=True, help="List what would be uploaded and deleted, with byte counts; change nothing.")
@click.option("--delete", is_flag=True,
              help="Remove objects a previous stac-mmtp publish wrote under the prefix that the tree no longer has "
                   "(after the new root); refused on a prefix without its publish manifest.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=8, show_default=True, help="Parallel transfers.")
@click.option("--retries", type=click.IntRange(1, 20), default=8, show_default=True,
              help="Attempts per request (exponential backoff on throttling and connection errors).")
@click.option("--public-url", metavar="URL", help="Base URL readers use (CDN, website endpoint) for the anonymous check.")
@click.option("--no-public-check", is_flag=True, help="Skip the anonymous HTTP read of the root (private buckets).")
@click.option("--check-every-object", is_flag=True,
              help="One HEAD per object, before and after uploading (sha256 metadata, ETag, media type, cache "
                   "policy) instead of the listing's ETags and one HEAD per media type: for prefixes other tools "
                   "also write.")
@click.option("--setup-bucket", "setup", is_flag=True,
              help="Create the bucket if needed; set anonymous read-only policy and CORS for STAC Browser and COG range reads.")
@json_option
@click.option("--schema-cache", type=click.Path(path_type=Path), envvar="STAC_MMTP_SCHEMA_CACHE",
              help="Schema mirror for the validation that precedes publishing [env STAC_MMTP_SCHEMA_CACHE].")
def publish_command(build_dir: Path | None, target: str, endpoint_url: str | None, dry_run: bool, delete: bool,
                    jobs: int, retries: int, public_url: str | None, no_public_check: bool, check_every_object: bool,
                    setup: bool, schema_cache: Path | None) -> None:
    """Publish the built tree BUILD_DIR to object storage, incrementally and in a safe order.

    \b
    Order: an object goes once what it links down to is stored (assets before their item, items
    before their collection...), the root catalog last; with --delete, stale objects are removed
    only after the new root is in place and every object verified.
    Unchanged objects are skipped: same size and ETag (the MD5 of the stored bytes) in the bucket
    listing, and the headers of one object per media type as expected (else HEADs for that type);
    --check-every-object HEADs each object (sha256 in x-amz-meta-sha256, ETag, headers).
    Exit codes: 0 published (or nothing to upload), 1 an upload or check failed (re-run to
    resume), 2 bad input (invalid tree, local paths in the JSON, bad --to): nothing written.
    """
    from stac_mmtp import console

    _quiet_sdk_logs()

    def fail(exc: BaseException | str, code: int = EXIT_FAILED) -> None:
        console.error(console_escape(str(exc)))
        sys.exit(getattr(exc, "exit_code", code))

    try:
        store = open_store(target, endpoint_url, jobs, retries, dry_run, public_url)
    except MmtpError as exc:
        fail(exc)
    try:
        if setup:
            if not isinstance(store, S3Store):
                fail(InputError("--setup-bucket needs an s3:// target"))
            if dry_run:
                console.out.print(json.dumps({"Policy": public_read_policy(store.bucket, store.prefix), **CORS_RULES},
                                             indent=2))
            else:
                for line in setup_bucket(store):
                    console.err.print(line, highlight=False)
            if build_dir is None:
                return
        if build_dir is None:
            fail(InputError("BUILD_DIR is required (only --setup-bucket runs without it)"))
        with console.progress_bar() as progress:
            report = publish(build_dir, store, dry_run=dry_run, delete=delete, jobs=jobs,
                             public_check=not no_public_check, schema_cache=schema_cache, progress=progress,
                             check_every_object=check_every_object)
    except MmtpError as exc:
        fail(exc)
    except Exception as exc:  # noqa: BLE001 - botocore errors: name them, no traceback
        fail(f"{type(exc).__name__}: {exc}")
    finally:
        store.close()
    _print_report(report, delete)
    sys.exit(EXIT_FAILED if report.problems else 0)


def console_escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _print_report(report: PublishReport, delete: bool) -> None:
    from stac_mmtp import console

    if report.dry_run:
        rows: list[list[object]] = [["upload", o.key, o.size] for o in report.uploads]
        rows += [["delete" if delete else "stale (kept without --delete)", k, size] for k, size in report.deletes]
        rows += [["not published by stac-mmtp (kept)", k, size] for k, size in report.foreign]
        console.table(f"dry run: {report.target}", ["action", "key", "bytes"], rows, key="plan")
    console.table(
        f"{'would publish' if report.dry_run else 'published'} to {report.target}",
        ["phase", "objects", "unchanged", "to upload" if report.dry_run else "uploaded", "bytes"],
        [[p, s.objects, s.unchanged, sum(1 for o in report.uploads if o.phase == p) if report.dry_run else s.uploaded,
          sum(o.size for o in report.uploads if o.phase == p) if report.dry_run else s.bytes_uploaded]
         for p, s in report.phases.items()],
        key="phases",
    )
    console.record("target", report.target)
    console.record("dry_run", report.dry_run)
    console.record("uploads", len(report.uploads))
    console.record("bytes_to_upload", report.bytes_to_upload)
    console.record("deletes", len(report.deletes))
    console.record("deleted", report.deleted)
    console.record("verified", report.verified)
    console.record("problems", list(report.problems))
    stale = sum(size for _, size in report.deletes)
    lines = []
    if not report.uploads:
        lines.append("nothing to upload: the store already holds this tree")
    else:
        lines.append(f"{'would upload' if report.dry_run else 'uploaded'} {len(report.uploads)} object(s), "
                     f"{_size(report.bytes_to_upload)} ({report.bytes_to_upload} bytes)")
    if report.deletes:
        verb = "would delete" if report.dry_run and delete else "deleted" if report.deleted else "stale, kept (no --delete)"
        lines.append(f"{verb}: {len(report.deletes)} object(s), {stale} bytes")
    if report.foreign:
        lines.append(f"kept: {len(report.foreign)} object(s) under the prefix that stac-mmtp publish did not write")
    if report.stale_unknown:
        lines.append("the store does not allow listing: stale objects are unknown")
    if report.assets_changed_in_place:
        lines.append(f"warning: {len(report.assets_changed_in_place)} asset(s) changed in place (e.g. "
                     f"{report.assets_changed_in_place[0]}); HTTP caches may serve the old bytes for up to a year")
    if report.verified:
        lines.append(f"verified {report.verified} object(s): {report.verification}")
    if report.public_check and not report.problems:
        lines.append(f"root catalog readable anonymously at {report.public_check}")
    for p in report.problems:
        console.error(console_escape(p))
    if not console.quiet() and not console.json_mode():
        for line in lines:
            console.err.print(line, highlight=False)
