"""`stac-mmtp publish`: sync a built catalog tree to S3-compatible object storage or a local mirror.

Readers must never see a broken link: an object is uploaded only once everything it links down to
(its child and item links, its asset files) is in the store, and the root catalog goes last, after
every other upload (data assets before their item, items before their collection, collections
before the root, without waiting for unrelated uploads). With `--delete`, stale objects go only
once the new root is in place and verified, and only objects a previous `stac-mmtp publish` wrote
there: each publish leaves a manifest (MANIFEST_KEY) listing its keys, and a prefix without one is
never deleted from (exit 2). Each object carries the sha256 of its content in its
metadata (`x-amz-meta-sha256`), so a re-run uploads only what changed (and an interrupted run
resumes where it stopped).

The parts: scan (the local tree and its digests), stores (file mirror, S3, the publish manifest),
order (the upload order), verify (checks after the upload), bucket (--setup-bucket). This module
holds the flow that runs them: publish() and its plan. The command is stac_mmtp/commands/publish.py.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stac_mmtp.digests import Cache
from stac_mmtp.errors import InputError
from stac_mmtp.release.publish.bucket import CORS_RULES, public_read_policy, setup_bucket
from stac_mmtp.release.publish.order import upload_in_order, upload_order
from stac_mmtp.release.publish.scan import (
    CACHE_ASSET,
    CACHE_JSON,
    DIGEST_VARIANT,
    DOWN_RELS,
    MB,
    MULTIPART_THRESHOLD,
    PART_SIZE,
    PHASES,
    SUFFIX_TYPES,
    LocalObject,
    ProgressFn,
    _describe,
    _hash_all,
    _run_parallel,
    digests_of,
    ensure_digests,
    hash_file,
    local_paths_in,
    scan_tree,
    tree_keys,
)
from stac_mmtp.release.publish.spill import more_files_than, publish_streamed, stream_files
from stac_mmtp.release.publish.stores import (
    MANIFEST_FORMAT,
    MANIFEST_KEY,
    META_KEY,
    RELEASE_MARKER,
    FileStore,
    PublishError,
    Remote,
    S3Store,
    Store,
    aws_session,
    has_credentials,
    open_store,
    parse_target,
    read_manifest,
    redact,
    write_manifest,
)
from stac_mmtp.release.publish.verify import (
    check_public_root,
    header_samples,
    verify,
    verify_listing,
    verify_responses,
)

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- plan, upload, verify
@dataclass
class PhaseStats:
    objects: int = 0
    uploaded: int = 0
    unchanged: int = 0
    bytes_uploaded: int = 0


@dataclass
class PublishReport:
    target: str
    dry_run: bool = False
    phases: dict[str, PhaseStats] = field(default_factory=lambda: {p: PhaseStats() for p in PHASES})
    uploads: list[LocalObject] = field(default_factory=list)
    deletes: list[tuple[str, int]] = field(default_factory=list)  # stale objects a previous publish wrote
    foreign: list[tuple[str, int]] = field(default_factory=list)  # objects under the prefix stac-mmtp did not write
    deleted: int = 0
    stale_unknown: bool = False  # the store does not let us list: stale objects cannot be found
    assets_changed_in_place: list[str] = field(default_factory=list)
    verified: int = 0
    verification: str = "size, sha256 metadata, ETag = MD5 of the bytes, headers (one HEAD each)"
    public_check: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def bytes_to_upload(self) -> int:
        return sum(o.size for o in self.uploads)

    @property
    def ok(self) -> bool:
        return not self.problems


def _needs_upload(obj: LocalObject, remote: Remote | None, is_s3: bool) -> bool:
    if remote is None or remote.size != obj.size or remote.sha256 != obj.sha256:
        return True
    # The sha256 metadata is what was sent; the ETag is the MD5 of what the server kept: an object
    # damaged on the way (see verify) keeps a wrong ETag under the right metadata. A changed media
    # type or cache policy is a change too (S3 cannot edit metadata in place).
    return is_s3 and (remote.etag != obj.etag or remote.content_type != obj.content_type
                      or remote.cache_control != obj.cache_control)


_LIST = object()  # plan's default listing: the store's own


def plan(objs: list[LocalObject], store: Store, jobs: int, progress: ProgressFn = None,
         check_every_object: bool = False, listing: Any = _LIST) -> tuple[list[LocalObject], dict[str, Remote] | None]:
    """Which objects must be uploaded; plus the store's listing (for stale objects), None if unlisted.

    The listing settles absent keys and other sizes. On S3, a listed ETag equal to the MD5 (or
    multipart MD5) of the local bytes settles the content; the headers, which a listing does not
    show, are sampled with one HEAD per (media type, cache policy): a sample that differs (a new
    header policy, or another tool) sends its whole class to one HEAD per object. Those HEADs, and
    with `check_every_object` or on a file mirror every same-size object's, compare the sha256
    metadata, the ETag and the headers (_needs_upload). `listing` is the part of the store's listing
    for these objects when the caller has it (publish_streamed plans a large tree in batches).
    """
    if listing is _LIST:
        listing = store.list()
    is_s3 = isinstance(store, S3Store)
    if listing is None:
        todo, changed = objs, []
        _hash_all(todo, jobs, progress)
    else:
        changed = [o for o in objs if o.key not in listing or listing[o.key].size != o.size]
        todo = [o for o in objs if o.key in listing and listing[o.key].size == o.size]
        _hash_all(todo, jobs, progress)  # what the store lacks is hashed later, while the uploads run
        if is_s3 and not check_every_object:
            same = [o for o in todo if listing[o.key].etag == o.etag]
            todo = [o for o in todo if listing[o.key].etag != o.etag]
            samples = header_samples(same)
            heads, failed = _run_parallel(lambda o: store.head(o.key), samples, jobs, "checking", progress)
            if failed:
                obj, exc = failed[0]
                raise PublishError(f"cannot read {obj.key} in {store.url}: {_describe(exc)}")
            wrong = {o.key for o, remote in heads if _needs_upload(o, remote, is_s3)}
            off = {(o.content_type, o.cache_control) for o in samples if o.key in wrong}
            changed += [o for o in samples if o.key in wrong]
            todo += [o for o in same if (o.content_type, o.cache_control) in off and o not in samples]
    heads, failed = _run_parallel(lambda o: store.head(o.key), todo, jobs, "checking", progress)
    if failed:
        obj, exc = failed[0]
        raise PublishError(f"cannot read {len(failed)} object(s) in {store.url}, e.g. {obj.key}: {_describe(exc)}")
    changed += [o for o, remote in heads if _needs_upload(o, remote, is_s3)]
    order = {o.key: i for i, o in enumerate(objs)}
    return sorted(changed, key=lambda o: order[o.key]), listing


def check_tree(build_dir: Path, schema_cache: Path | None = None, fingerprint: str | None = None) -> None:
    """Refuse a tree that does not pass `stac-mmtp validate` (InputError, nothing uploaded).

    A tree with this `fingerprint` (tree_keys: every file untouched) found valid before against the
    same schemas is not validated again; its schemas must still be in the mirror."""
    from stac_mmtp.release.asset_checks import CHECK_VERSION
    from stac_mmtp.release.validate import SchemaStore, schema_fingerprint, validate_tree

    if not (build_dir / "catalog.json").is_file():
        raise InputError("no catalog.json: not a built catalog tree", build_dir)
    store = SchemaStore(schema_cache)
    store.use_tree(build_dir.resolve())  # the tree's shipped copy of our schema comes first
    cache, key = Cache(), None
    if fingerprint:
        key = hashlib.sha256(f"{schema_fingerprint(store)}|{CHECK_VERSION}|{fingerprint}".encode()).hexdigest()
        if (schemas := cache.valid_tree(key)) is not None:
            for url in schemas:
                store.get(url)  # SchemaMissing if the mirror lost it
            return
    report = validate_tree(build_dir, store)
    if report.problems:
        shown = "\n  ".join(str(p) for p in report.problems[:20])
        raise InputError(f"refusing to publish: {len(report.problems)} validation problem(s) "
                         f"(run stac-mmtp validate):\n  {shown}", build_dir)
    if key:
        cache.add_valid_tree(key, sorted(report.schemas))


def publish(build_dir: Path, store: Store, *, dry_run: bool = False, delete: bool = False, jobs: int = 8,
            public_check: bool = True, schema_cache: Path | None = None, progress: ProgressFn = None,
            validate: bool = True, check_every_object: bool = False, into_release: bool = False) -> PublishReport:
    """Validate, plan, upload in link order (upload_in_order), verify, then delete stale objects (with `delete`).

    `validate=False` is for callers that validated the tree already (the benchmark times the sync
    alone); the command line always validates. A prefix that holds a released version (its
    `release.json`) is immutable: refused, unless `stac-mmtp release` itself is writing it
    (`into_release`, never with `delete`)."""
    if store.read(RELEASE_MARKER) is not None and not (into_release and not delete):
        raise InputError(f"{store.url} holds a released version ({RELEASE_MARKER}): released versions are immutable; "
                         "release a new version with `stac-mmtp release` instead")
    if more_files_than(build_dir, stream_files()):  # its records on disk: memory bounded at a million files
        return publish_streamed(
            build_dir, store, PublishReport(store.url, dry_run), dry_run=dry_run, delete=delete, jobs=jobs,
            public_check=public_check, progress=progress, check_every_object=check_every_object,
            validate=(lambda fingerprint: check_tree(build_dir, schema_cache, fingerprint)) if validate else None,
            plan=plan)
    # Validation runs while the tree is scanned and the store listed; nothing is written before it
    # has passed.
    t0 = time.perf_counter()
    tree = tree_keys(build_dir)
    with cf.ThreadPoolExecutor(1) as bg:
        validated = bg.submit(check_tree, build_dir, schema_cache, tree[1]) if validate else None
        try:
            objs = scan_tree(build_dir, jobs, digests=False, tree=tree)  # hashes: see plan and upload_in_order
            report = PublishReport(store.url, dry_run)
            for o in objs:
                report.phases[o.phase].objects += 1
            uploads, listing = plan(objs, store, jobs, progress, check_every_object)  # reads only
        finally:
            if validated is not None:
                validated.result()  # an invalid tree is the first error reported
    report.uploads = uploads
    keys = {o.key for o in objs}
    ours = read_manifest(store)
    if listing is None:
        report.stale_unknown = True
    else:
        others = {k: r for k, r in listing.items() if k not in keys and k != MANIFEST_KEY}
        report.deletes = sorted((k, r.size) for k, r in others.items() if ours is not None and k in ours)
        report.foreign = sorted((k, r.size) for k, r in others.items() if ours is None or k not in ours)
        if delete and ours is None and report.foreign:
            raise InputError(
                f"--delete refused: {store.url} holds {len(report.foreign)} object(s) this tree does not have "
                f"(e.g. {report.foreign[0][0]}) and no {MANIFEST_KEY} manifest of a previous stac-mmtp publish, so "
                "they were not written by stac-mmtp publish; nothing was changed. Publish to a new or empty prefix, "
                "or run without --delete.")
    if listing:
        report.assets_changed_in_place = [o.key for o in uploads if o.phase == "assets" and o.key in listing
                                          and o.cache_control == CACHE_ASSET]
    upload_keys = {o.key for o in uploads}
    for o in objs:
        if o.key not in upload_keys:
            report.phases[o.phase].unchanged += 1
    if dry_run:
        return report
    if delete and listing is None:
        raise InputError(f"--delete needs permission to list {store.url}")

    t1 = time.perf_counter()
    log.info("validated, scanned and planned in %.2f s: %d of %d object(s) to upload", t1 - t0, len(uploads), len(objs))
    # The manifest names what we are about to write before we write it: an interrupted publish still
    # owns its objects. Stale objects of ours stay listed until they are deleted.
    still_ours = (ours or set()) & set(listing or ()) - keys
    if uploads or ours is None or not keys <= ours:
        write_manifest(store, keys | still_ours)
    done, failed, skipped = upload_in_order(uploads, store, progress, jobs)
    t2 = time.perf_counter()
    log.info("uploaded %d object(s), %d bytes, in %.2f s", len(done), sum(o.size for o in done), t2 - t1)
    for o in done:
        report.phases[o.phase].uploaded += 1
        report.phases[o.phase].bytes_uploaded += o.size
    if failed:
        obj, exc = failed[0]
        report.problems.append(
            f"{len(failed)} of {len(uploads)} upload(s) failed, e.g. {obj.key}: {_describe(exc)}; "
            f"{len(skipped)} not attempted. Nothing that links to them was written"
            f"{' (the root catalog was not updated)' if any(o.phase == 'root' for o in uploads) else ''}; "
            "re-run to resume.")
        return report

    # the plan checked the unchanged objects in this same run
    if isinstance(store, S3Store) and not check_every_object:
        # every upload by the ETag the server answered, the headers it kept by one HEAD per class
        samples = header_samples(uploads)
        report.problems += verify(samples, store, jobs) + verify_responses([o for o in uploads if o not in samples], store)
        report.verification = ("ETag = MD5 of the stored bytes (listing or upload answer), headers sampled "
                               "per media type")
    else:
        report.problems += verify(uploads, store, jobs, progress)
    report.verified = len(objs)
    root = next((o for o in objs if o.phase == "root"), None)
    if public_check and isinstance(store, S3Store) and root is not None:
        url = store.public_url(root.key)
        report.public_check = url
        if problem := check_public_root(url, root):
            report.problems.append(problem)
    log.info("verified%s in %.2f s", " and read the root anonymously" if report.public_check else "",
             time.perf_counter() - t2)
    if report.problems:
        return report  # never delete while the new tree is not known good

    if delete and report.deletes:
        try:
            store.delete([k for k, _ in report.deletes])
            report.deleted = len(report.deletes)
            write_manifest(store, keys)
        except Exception as exc:  # noqa: BLE001
            report.problems.append(f"deleting stale objects: {_describe(exc)}")
    return report


__all__ = [
    "CACHE_ASSET", "CACHE_JSON", "CORS_RULES", "DIGEST_VARIANT", "DOWN_RELS", "MANIFEST_FORMAT", "MANIFEST_KEY",
    "MB", "META_KEY", "MULTIPART_THRESHOLD", "PART_SIZE", "PHASES", "RELEASE_MARKER", "SUFFIX_TYPES", "FileStore",
    "LocalObject", "PhaseStats", "ProgressFn", "PublishError", "PublishReport", "Remote", "S3Store", "Store",
    "aws_session", "check_public_root", "check_tree", "digests_of", "ensure_digests", "has_credentials",
    "hash_file", "header_samples", "local_paths_in", "open_store", "parse_target", "plan", "public_read_policy",
    "publish", "read_manifest", "redact", "scan_tree", "setup_bucket", "tree_keys", "upload_in_order",
    "upload_order", "verify", "verify_listing", "verify_responses", "write_manifest",
]
