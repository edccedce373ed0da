"""Citable, immutable releases: `stac-mmtp release VERSION` and `stac-mmtp verify URL/vX.Y.Z`.

A release is a built tree published under `URL/vX.Y.Z/`, never overwritten or deleted afterwards.
Its root catalog and collections carry the STAC Version extension (v1.2.0): `version`, `deprecated`,
`experimental`, and the links `predecessor-version`, `latest-version` (-> `URL/latest/catalog.json`,
a stable pointer) and `version-history` (-> `URL/CHANGELOG-dataset.md`). Releasing the next version
adds one `successor-version` link to the previous version's root and collections: the one change an
old version ever gets. Each version holds:

- `checksums.json` (and `SHA256SUMS` for `sha256sum -c`): sha256 and size of every object, as released;
- `release.json`: the version, its predecessor, and a content digest per item (the dataset changelog of
  the next version is computed from it, by id and digest);
- `CHANGELOG.md` / `changes.json`: what changed since the predecessor (events, acquisitions, annotations);
- `croissant.json` (MLCommons Croissant) and `DATASHEET.md`, generated from the build.

`verify` reads a version anonymously and checks every object against `checksums.json` and every asset
against its item's `file:checksum`. A root or collection that differs only by the `successor-version`
links added later is accepted: those links are stripped and the JSON re-serialised (our serialisation
is deterministic) before its digest is compared, so the manifest itself never changes.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import os
import posixpath
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stac_mmtp.atomic import dumps_json, publishable, write_json, write_text
from stac_mmtp.errors import InputError, MmtpError

VERSION_EXT = "https://stac-extensions.github.io/version/v1.2.0/schema.json"
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
MANIFEST = "checksums.json"
SUMS = "SHA256SUMS"
RELEASE = "release.json"  # also publish.RELEASE_MARKER: publish refuses a prefix holding one
HISTORY = "CHANGELOG-dataset.md"
VERSION_LINKS = ("predecessor-version", "successor-version", "latest-version", "version-history")
# Collections whose items are the acquisitions of the dataset (the others: events, annotations)
KINDS = {"events": "events", "annotations": "annotations"}
Progress = Callable[[str, int, int], None] | None


class ReleaseError(MmtpError):
    """A release or verification that could not complete: exit status 1."""


def parse_version(text: str) -> tuple[int, int, int]:
    m = SEMVER.match(text.removeprefix("v"))
    if not m:
        raise InputError(f"version {text!r} is not MAJOR.MINOR.PATCH (e.g. 1.0.0)")
    return int(m[1]), int(m[2]), int(m[3])


def vdir(version: tuple[int, int, int]) -> str:
    return "v{}.{}.{}".format(*version)


# --------------------------------------------------------------------------- reading and writing objects
class Objects:
    """Bytes in and out of the dataset's root (an S3 prefix or a local directory), by relative key."""

    def __init__(self, to: str, endpoint_url: str | None = None, anonymous: bool = False):
        from stac_mmtp.release.publish import parse_target, redact

        self.to = to.rstrip("/")
        self.scheme, self.bucket, self.prefix = parse_target(self.to)
        self.endpoint_url = endpoint_url
        self.display = redact(self.to)
        self.client = None
        if self.scheme == "s3":
            from botocore import UNSIGNED
            from botocore.config import Config

            from stac_mmtp.release.publish import aws_session, has_credentials

            session = aws_session()
            unsigned = anonymous or not has_credentials(session)
            config = Config(retries={"max_attempts": 8, "mode": "standard"}, connect_timeout=10, read_timeout=120,
                            s3={"addressing_style": "path"} if endpoint_url else {},
                            signature_version=UNSIGNED if unsigned else None)
            self.client = session.client("s3", endpoint_url=endpoint_url, config=config)
        self.prefix = self.prefix.strip("/") if self.scheme == "s3" else self.prefix

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def url(self, rel: str = "") -> str:
        return f"{self.to}/{rel}" if rel else self.to

    def get(self, rel: str) -> bytes | None:
        if self.client is None:
            p = Path(self.prefix) / rel
            return p.read_bytes() if p.is_file() else None
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key(rel))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise ReleaseError(f"cannot read {self.url(rel)}: {exc}") from None

    def exists(self, rel: str) -> bool:
        if self.client is None:
            return (Path(self.prefix) / rel).exists()
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(rel))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise ReleaseError(f"cannot read {self.url(rel)}: {exc}") from None

    def put(self, rel: str, data: bytes, content_type: str) -> None:
        from stac_mmtp.release.publish import CACHE_JSON, META_KEY

        if self.client is None:
            p = Path(self.prefix) / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=p.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            publishable(tmp)
            os.replace(tmp, p)
            return
        import base64

        self.client.put_object(Bucket=self.bucket, Key=self.key(rel), Body=data, ContentType=content_type,
                               CacheControl=CACHE_JSON, Metadata={META_KEY: hashlib.sha256(data).hexdigest()},
                               ContentMD5=base64.b64encode(hashlib.md5(data).digest()).decode())  # noqa: S324


def versions_in(objects: Objects) -> list[tuple[int, int, int]]:
    """Released versions, from the top-level versions catalog (`URL/catalog.json`)."""
    data = objects.get("catalog.json")
    if data is None:
        return []
    try:
        cat = json.loads(data)
    except ValueError:
        raise ReleaseError(f"{objects.url('catalog.json')}: not JSON; is this a stac-mmtp release root?") from None
    found = set()
    for link in cat.get("links", []):
        m = re.match(r"^(?:\./)?v(\d+)\.(\d+)\.(\d+)/catalog\.json$", str(link.get("href", "")))
        if link.get("rel") == "child" and m:
            found.add((int(m[1]), int(m[2]), int(m[3])))
    return sorted(found)


# --------------------------------------------------------------------------- digests and the changelog
STRUCTURAL_RELS = ("self", "root", "parent", "collection")


def item_digest(item: dict[str, Any]) -> str:
    """The content of an item for the changelog: everything but its structural links (where it sits in
    the tree); the links that say something (source, via, acquisitions, pre-event pairs) count."""
    body = {k: v for k, v in item.items() if k != "links"}
    body["links"] = [lk for lk in item.get("links", []) if lk.get("rel") not in STRUCTURAL_RELS]
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def tree_items(tree: Path) -> tuple[dict[str, dict[str, str]], int]:
    """collection id -> item id -> content digest for every item of a built tree, and how many items are
    synthetic samples (`mmtp:synthetic: true`): one read of each JSON file. Staging changes only the
    root and the collections, so the build's items are the release's."""
    out: dict[str, dict[str, str]] = {}
    synthetic = 0
    for path in sorted(tree.rglob("*.json")):
        if any(part.startswith(".") for part in path.relative_to(tree).parts):
            continue
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        if isinstance(obj, dict) and obj.get("type") == "Feature" and "stac_version" in obj:
            out.setdefault(obj.get("collection") or "", {})[obj["id"]] = item_digest(obj)
            synthetic += bool((obj.get("properties") or {}).get("mmtp:synthetic"))
    return out, synthetic


def kind_of(collection: str) -> str:
    return KINDS.get(collection, "acquisitions")


def changes(old: dict[str, dict[str, str]], new: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Added / removed / changed ids per collection and per kind (events, acquisitions, annotations)."""
    per_coll: dict[str, dict[str, list[str]]] = {}
    for coll in sorted(set(old) | set(new)):
        a, b = old.get(coll, {}), new.get(coll, {})
        entry = {"added": sorted(set(b) - set(a)), "removed": sorted(set(a) - set(b)),
                 "changed": sorted(i for i in set(a) & set(b) if a[i] != b[i])}
        if any(entry.values()):
            per_coll[coll] = entry
    per_kind: dict[str, dict[str, int]] = {}
    for coll, entry in per_coll.items():
        k = per_kind.setdefault(kind_of(coll), {"added": 0, "removed": 0, "changed": 0})
        for what, ids in entry.items():
            k[what] += len(ids)
    return {"collections": per_coll, "summary": per_kind}


def changelog_markdown(version: str, previous: str | None, released: str, diff: dict[str, Any]) -> str:
    lines = [f"## {version} ({released[:10]})", ""]
    if previous is None:
        lines.append("First release.")
    else:
        lines.append(f"Changes since {previous}, computed from the items' ids and content digests.")
    lines.append("")
    if diff["summary"]:
        lines += ["| kind | added | removed | changed |", "| --- | --- | --- | --- |"]
        lines += [f"| {k} | {v['added']} | {v['removed']} | {v['changed']} |" for k, v in sorted(diff["summary"].items())]
        lines.append("")
        for coll, entry in diff["collections"].items():
            for what in ("added", "removed", "changed"):
                if entry[what]:
                    lines.append(f"- {coll}, {what} ({len(entry[what])}): " + ", ".join(f"`{i}`" for i in entry[what]))
    else:
        lines.append("No item changed.")
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- the staged version tree
def _rel_up(path_in_version: str) -> str:
    """The relative prefix from a file at `path_in_version` up to the dataset root (above vX.Y.Z/)."""
    depth = path_in_version.count("/")
    return "../" * (depth + 1)


def _set_links(obj: dict[str, Any], links: list[dict[str, Any]]) -> None:
    rels = {lk["rel"] for lk in links}
    obj["links"] = [lk for lk in obj.get("links", []) if lk.get("rel") not in rels] + links


def version_fields(obj: dict[str, Any], version: str, experimental: bool) -> None:
    exts = obj.setdefault("stac_extensions", [])
    if VERSION_EXT not in exts:
        exts.append(VERSION_EXT)
    obj["version"] = version
    obj["deprecated"] = False
    obj["experimental"] = experimental


def stage_version(build_dir: Path, stage: Path, version: str, previous: str | None, previous_keys: set[str],
                  experimental: bool, doi: str | None, citation: str | None) -> list[str]:
    """Copy `build_dir` into `stage` (hard links for data files: nothing in the build is modified) and
    give the root and the collections their version fields and links. Returns their keys."""
    shutil.copytree(build_dir, stage, copy_function=_link_or_copy, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".*"))
    versioned: list[str] = []
    for path in sorted(stage.rglob("*.json")):
        rel = path.relative_to(stage).as_posix()
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        if not isinstance(obj, dict) or obj.get("type") not in ("Catalog", "Collection") or "stac_version" not in obj:
            continue
        up = _rel_up(rel)
        version_fields(obj, version, experimental)
        links = []
        if previous and rel in previous_keys:
            links.append({"rel": "predecessor-version", "href": f"{up}{previous}/{rel}", "type": "application/json",
                          "title": f"Version {previous.removeprefix('v')}"})
        links.append({"rel": "latest-version", "href": f"{up}latest/catalog.json", "type": "application/json",
                      "title": "The latest version of the dataset"})
        links.append({"rel": "version-history", "href": f"{up}{HISTORY}", "type": "text/markdown",
                      "title": "Dataset changelog: what each version added, removed and changed"})
        if rel == "catalog.json":
            if doi:
                # The scientific extension's schema covers Items and Collections, not Catalogs: the root
                # carries its fields without declaring it (STAC allows extra fields), plus a cite-as link.
                obj["sci:doi"] = doi
                if citation:
                    obj["sci:citation"] = citation
                links.append({"rel": "cite-as", "href": f"https://doi.org/{doi}", "type": "text/html",
                              "title": f"DOI of version {version}"})
            for href, media, title in (
                ("./CHANGELOG.md", "text/markdown", f"What changed in {version}"),
                ("./DATASHEET.md", "text/markdown", "Datasheet: composition, collection, annotation, licences, biases"),
                ("./croissant.json", "application/ld+json", "Croissant (MLCommons) metadata"),
                (f"./{MANIFEST}", "application/json", "sha256 and size of every object of this version"),
            ):
                links.append({"rel": "describedby" if "croissant" in href or "DATASHEET" in href else "related",
                              "href": href, "type": media, "title": title})
        _set_links(obj, links)
        write_json(path, obj)
        versioned.append(rel)
    return versioned


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def write_manifest(stage: Path, version: str) -> dict[str, dict[str, Any]]:
    objects: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in stage.rglob("*") if p.is_file()):
        rel = path.relative_to(stage).as_posix()
        if rel in (MANIFEST, SUMS) or any(part.startswith(".") for part in rel.split("/")):
            continue
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        objects[rel] = {"sha256": h.hexdigest(), "size": path.stat().st_size}
    write_json(stage / MANIFEST, {"version": version, "algorithm": "sha256", "objects": objects})
    write_text(stage / SUMS, "".join(f"{v['sha256']}  {k}\n" for k, v in objects.items()))
    return objects


def versions_catalog(versions: list[tuple[int, int, int]], title: str) -> dict[str, Any]:
    latest = vdir(versions[-1])
    return {
        "type": "Catalog", "stac_version": "1.1.0", "stac_extensions": [VERSION_EXT], "id": "stac-mmtp-versions",
        "title": f"{title}: every released version",
        "description": "The released versions of the stac-mmtp dataset. Each version lives under its own prefix "
                       "and never changes once released (except one successor-version link). Cite a version, "
                       "not this page.",
        "version": latest.removeprefix("v"),
        "links": [
            {"rel": "self", "href": "./catalog.json", "type": "application/json"},
            {"rel": "root", "href": "./catalog.json", "type": "application/json"},
            {"rel": "latest-version", "href": f"./{latest}/catalog.json", "type": "application/json",
             "title": f"Version {latest.removeprefix('v')} (latest)"},
            {"rel": "version-history", "href": f"./{HISTORY}", "type": "text/markdown", "title": "Dataset changelog"},
            *[{"rel": "child", "href": f"./{vdir(v)}/catalog.json", "type": "application/json",
               "title": f"Version {vdir(v).removeprefix('v')}"} for v in reversed(versions)],
        ],
    }


def latest_catalog(latest: str, title: str) -> dict[str, Any]:
    return {
        "type": "Catalog", "stac_version": "1.1.0", "id": "stac-mmtp-latest",
        "title": f"{title}: the latest version ({latest.removeprefix('v')})",
        "description": f"A stable pointer to the newest release, now {latest.removeprefix('v')}. Follow the link; "
                       "cite the version it points to.",
        "links": [
            {"rel": "self", "href": "./catalog.json", "type": "application/json"},
            {"rel": "root", "href": "../catalog.json", "type": "application/json"},
            {"rel": "latest-version", "href": f"../{latest}/catalog.json", "type": "application/json"},
            {"rel": "child", "href": f"../{latest}/catalog.json", "type": "application/json",
             "title": f"Version {latest.removeprefix('v')}"},
        ],
    }


# --------------------------------------------------------------------------- release
def release_files(stage: Path, version: str, citation: str | None) -> None:
    """What a version holds beside the build: Croissant metadata and the datasheet, both generated."""
    from stac_mmtp.release.croissant import croissant
    from stac_mmtp.release.datasheet import datasheet

    write_json(stage / "croissant.json", croissant(stage, version=version, cite_as=citation))
    write_text(stage / "DATASHEET.md", datasheet(stage, version))


@dataclass
class ReleaseReport:
    version: str
    target: str
    previous: str | None = None
    dry_run: bool = False
    objects: int = 0
    bytes: int = 0
    uploaded: int = 0
    diff: dict[str, Any] = field(default_factory=dict)
    changelog: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def release(version: str, build_dir: Path, to: str, *, endpoint_url: str | None = None, dry_run: bool = False,
            experimental: bool | None = None, doi: str | None = None, citation: str | None = None,
            schema_cache: Path | None = None, jobs: int = 8, progress: Progress = None, allow_synthetic: bool = False,
            fetch_schemas: bool = False,
            changelog_file: Path | None = None, extra_files: Callable[[Path, str, str | None], None] | None = None) -> ReleaseReport:
    """Publish `build_dir` as the immutable version `version` under `to`. InputError when the version
    exists, is not newer than every released one, or the build is not valid (nothing written)."""
    from stac_mmtp.release.publish import check_tree, open_store, publish

    parsed = parse_version(version)
    version = "{}.{}.{}".format(*parsed)
    vname = vdir(parsed)
    build_dir = Path(build_dir)
    if not (build_dir / "catalog.json").is_file():
        raise InputError("no catalog.json: not a built catalog tree", build_dir)
    objects = Objects(to, endpoint_url)
    report = ReleaseReport(version, objects.url(vname), dry_run=dry_run)
    released = versions_in(objects)
    # a version is released once its root catalog is stored (publish writes it last): an interrupted
    # release of the same version resumes, a complete one is never touched again
    if parsed in released or objects.exists(f"{vname}/catalog.json"):
        raise InputError(f"version {version} exists at {objects.display}/{vname}: a released version is immutable "
                         "(release a new version instead)")
    if released and parsed < released[-1]:
        raise InputError(f"version {version} is older than the latest release {vdir(released[-1])[1:]}: "
                         "versions only go forward")
    previous = vdir(released[-1]) if released else None
    report.previous = previous
    old_items: dict[str, dict[str, str]] = {}
    old_keys: set[str] = set()
    if previous:
        rel_doc = objects.get(f"{previous}/{RELEASE}")
        man_doc = objects.get(f"{previous}/{MANIFEST}")
        if rel_doc is None or man_doc is None:
            raise ReleaseError(f"{objects.display}/{previous} has no {RELEASE} / {MANIFEST}: not a stac-mmtp release")
        old_items = json.loads(rel_doc)["items"]
        old_keys = set(json.loads(man_doc)["objects"])
    new_items, n = tree_items(build_dir)
    if n and not allow_synthetic:
        raise InputError(f"the build holds {n} synthetic sample item(s) (mmtp:synthetic): a release of the dataset holds "
                         "real data only (--allow-synthetic for a demonstration release, which says it is synthetic)",
                         build_dir)
    if fetch_schemas:  # fill the schema cache (HTTPS, checked against the lock): the checks below run offline
        from stac_mmtp.release.validate import SchemaStore, validate_tree

        validate_tree(build_dir, SchemaStore(schema_cache, allow_fetch=True))
    check_tree(build_dir, schema_cache)
    released_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    exp = parsed[0] == 0 if experimental is None else experimental
    with tempfile.TemporaryDirectory(prefix=".release-", dir=build_dir.parent) as tmp:
        stage = Path(tmp) / vname
        versioned = stage_version(build_dir, stage, version, previous, old_keys, exp, doi, citation)
        report.diff = changes(old_items, new_items)
        report.changelog = changelog_markdown(version, previous and previous[1:], released_at, report.diff)
        write_text(stage / "CHANGELOG.md", "# stac-mmtp dataset changelog\n\n" + report.changelog)
        write_json(stage / "changes.json", {"version": version, "previous": previous and previous[1:],
                                            "released": released_at, **report.diff})
        write_json(stage / RELEASE, {"version": version, "previous": previous and previous[1:], "released": released_at,
                                     "doi": doi, "versioned": versioned, "items": new_items})
        (extra_files or release_files)(stage, version, citation)
        if fetch_schemas:  # the Version extension's schema, added by the staging
            validate_tree(stage, SchemaStore(schema_cache, allow_fetch=True))
        manifest = write_manifest(stage, version)
        report.objects = len(manifest) + 2
        report.bytes = sum(v["size"] for v in manifest.values())
        if dry_run:
            return report
        store = open_store(objects.url(vname), endpoint_url, jobs)
        try:
            pub = publish(stage, store, jobs=jobs, schema_cache=schema_cache, progress=progress, public_check=False,
                          into_release=True)
        finally:
            store.close()
        report.uploaded = sum(p.uploaded for p in pub.phases.values())
        if not pub.ok:
            report.problems += pub.problems
            return report
    # the one change allowed to the previous version: its successor
    if previous:
        for rel in json.loads(objects.get(f"{previous}/{RELEASE}") or b"{}").get("versioned", []):
            data = objects.get(f"{previous}/{rel}")
            if data is None:
                continue
            obj = json.loads(data)
            up = _rel_up(rel)
            _set_links(obj, [{"rel": "successor-version", "href": f"{up}{vname}/{rel}", "type": "application/json",
                              "title": f"Version {version}"}])
            objects.put(f"{previous}/{rel}", dumps_json(obj).encode(), "application/json")
    title = json.loads((build_dir / "catalog.json").read_text(encoding="utf-8")).get("title", "stac-mmtp")
    all_versions = sorted({*released, parsed})
    history = objects.get(HISTORY)
    head = "# stac-mmtp dataset changelog\n\nEvery released version, newest first (computed by `stac-mmtp release`).\n\n"
    body = history.decode("utf-8").removeprefix(head) if history else ""
    objects.put(HISTORY, (head + report.changelog + ("\n" + body if body else "")).encode(), "text/markdown")
    objects.put("latest/catalog.json", dumps_json(latest_catalog(vname, title)).encode(), "application/json")
    objects.put("catalog.json", dumps_json(versions_catalog(all_versions, title)).encode(), "application/json")
    if changelog_file is not None:
        text = changelog_file.read_text(encoding="utf-8") if changelog_file.exists() else head
        if not text.startswith("# "):
            text = head + text
        first, _, rest = text.partition("\n## ")
        write_text(changelog_file, first.rstrip() + "\n\n" + report.changelog + ("\n## " + rest if rest else ""))
    return report


# --------------------------------------------------------------------------- verify
def _fetch_http(url: str, retries: int = 5) -> bytes | None:
    delay = 0.5
    for attempt in range(retries):
        try:
            with urllib.request.urlopen(url, timeout=60) as r:  # noqa: S310 - https:// or http:// only
                return r.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            if exc.code not in (429, 500, 502, 503, 504) or attempt == retries - 1:
                raise ReleaseError(f"{url}: HTTP {exc.code}") from None
            wait = exc.headers.get("Retry-After")
            time.sleep(float(wait) if wait and wait.isdigit() else delay)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            if attempt == retries - 1:
                raise ReleaseError(f"{url}: {exc}") from None
            time.sleep(delay)
        delay *= 2
    return None


def _strip_successor(data: bytes) -> bytes | None:
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not any(lk.get("rel") == "successor-version" for lk in obj.get("links", [])):
        return None
    obj["links"] = [lk for lk in obj["links"] if lk.get("rel") != "successor-version"]
    return dumps_json(obj).encode()


@dataclass
class VerifyReport:
    url: str
    objects: int = 0
    assets: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_release(url: str, endpoint_url: str | None = None, jobs: int = 8, progress: Progress = None) -> VerifyReport:
    """Check a published version anonymously against its checksums manifest and its items' file:checksum."""
    from stac_mmtp.release.publish import redact

    url = url.rstrip("/")
    url = url.removesuffix("/catalog.json")
    if url.startswith("s3://") or url.startswith("file://"):
        objects = Objects(url, endpoint_url, anonymous=True)
        get: Callable[[str], bytes | None] = objects.get
        shown = objects.display
    elif url.startswith(("https://", "http://")):
        def get(rel: str) -> bytes | None:
            return _fetch_http(f"{url}/{urllib.parse.quote(rel)}")
        shown = redact(url)
    else:
        raise InputError(f"expected an s3://, https:// or file:// version root, not {redact(url)!r}")
    report = VerifyReport(shown)
    raw = get(MANIFEST)
    if raw is None:
        raise InputError(f"{shown}/{MANIFEST}: not found; is this a released version (URL/vX.Y.Z)?")
    try:
        expected = json.loads(raw)["objects"]
    except (ValueError, KeyError):
        raise InputError(f"{shown}/{MANIFEST}: not a checksums manifest") from None
    actual: dict[str, str] = {}
    items: dict[str, bytes] = {}

    def check(rel: str) -> str | None:
        data = get(rel)
        if data is None:
            return f"{shown}/{rel}: missing"
        want = expected[rel]
        sha = hashlib.sha256(data).hexdigest()
        actual[rel] = sha  # also checked against the items' file:checksum below
        if rel.endswith(".json") and b'"Feature"' in data:
            items[rel] = data
        if sha != want["sha256"] or len(data) != want["size"]:
            stripped = _strip_successor(data)
            if stripped is None or hashlib.sha256(stripped).hexdigest() != want["sha256"]:
                return (f"{shown}/{rel}: sha256 {sha[:12]}... size {len(data)} differ from the manifest "
                        f"({want['sha256'][:12]}... size {want['size']})")
        return None

    keys = sorted(expected)
    with cf.ThreadPoolExecutor(max(1, jobs)) as pool:
        for i, problem in enumerate(pool.map(check, keys)):
            report.objects += 1
            if problem:
                report.problems.append(problem)
            if progress:
                progress("verify", i + 1, len(keys))
    for rel, data in sorted(items.items()):
        obj = json.loads(data)
        if obj.get("type") != "Feature":
            continue
        here = posixpath.dirname(rel)
        for key, asset in (obj.get("assets") or {}).items():
            checksum, href = asset.get("file:checksum"), asset.get("href", "")
            if not checksum or "://" in href:
                continue
            target = posixpath.normpath(posixpath.join(here, href))
            report.assets += 1
            if target not in actual:
                if target not in expected:
                    report.problems.append(f"{shown}/{rel} [assets.{key}]: {href} is not part of the release")
                continue
            if checksum != "1220" + actual[target]:
                report.problems.append(f"{shown}/{rel} [assets.{key}.file:checksum]: {checksum[:16]}... but the "
                                       f"object's sha2-256 is 1220{actual[target][:12]}...")
    return report
