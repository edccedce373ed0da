"""Offline validation of a built tree against the real STAC JSON Schemas.

Schemas come from a local cache laid out as `HOST/PATH` for `https://HOST/PATH` (the layout of
`../shared/stac-schemas`). Each schema is checked against the committed lock (URL -> sha256);
a schema missing from the cache is fetched over HTTPS only when allowed. Our own extension's
schema resolves from the tree being validated (a build ships it, stac.tree.shipped_schema_path),
else from the package's `extensions/`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stac_mmtp import EXTENSION_NAME, EXTENSION_SCHEMA_URI
from stac_mmtp.errors import InputError, SchemaMissing
from stac_mmtp.paths import extensions_dir

ENV_CACHE = "STAC_MMTP_SCHEMA_CACHE"
LOCK_PATH = Path(__file__).resolve().parents[1] / "schemas.lock.json"
if TYPE_CHECKING:
    import jsonschema
    import referencing

# jsonschema and referencing are imported where used: a publish whose tree is known valid needs
# neither, and they cost 50 ms of start-up.
log = logging.getLogger(__name__)
OUR_PREFIX = EXTENSION_SCHEMA_URI.rsplit("/", 2)[0] + "/"  # .../extensions/mmtp/


def default_cache_dir() -> Path:
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stac-mmtp" / "schemas"


@cache
def schema_lock() -> dict[str, str]:
    return json.loads(LOCK_PATH.read_text(encoding="utf-8"))["schemas"]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(url: str) -> str:
    return url.split("#", 1)[0]


class SchemaStore:
    """Resolve schema URLs to parsed schemas: own extension, then cache, then (if allowed) HTTPS."""

    def __init__(self, cache_dir: Path | None = None, allow_fetch: bool = False, lock: dict[str, str] | None = None):
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.allow_fetch = allow_fetch
        self.lock = schema_lock() if lock is None else lock
        self._loaded: dict[str, Any] = {}
        self.tree_dirs: list[Path] = []  # trees whose shipped copy of our schema comes first

    def use_tree(self, tree: Path) -> None:
        """Resolve our extension's schema from the copy `tree` ships, when it has one."""
        tree = Path(tree)
        if tree not in self.tree_dirs:
            self.tree_dirs.insert(0, tree)
            self._loaded = {u: d for u, d in self._loaded.items() if not u.startswith(OUR_PREFIX)}

    def own_schema_path(self, url: str) -> Path | None:
        """Our extension's schema `url`: the validated tree's copy, else the package's (current version only)."""
        from stac_mmtp.stac.tree import shipped_schema_path

        for tree in self.tree_dirs:
            shipped = shipped_schema_path(tree)
            if url == EXTENSION_SCHEMA_URI and shipped.is_file():
                return shipped
            rel = url[len(OUR_PREFIX):]
            older = shipped.parent.parent / rel  # another version this tree ships
            if ".." not in rel.split("/") and older.is_file():
                return older
        if url == EXTENSION_SCHEMA_URI:
            return extensions_dir() / EXTENSION_NAME / "json-schema" / "schema.json"
        return None

    def local_path(self, url: str) -> Path | None:
        u = urllib.parse.urlsplit(url)
        if url.startswith(OUR_PREFIX):
            # https://…/extensions/mmtp/v1.0.0/schema.json -> the tree's copy, or extensions/mmtp/json-schema/schema.json
            return self.own_schema_path(url)
        if u.scheme != "https" or not u.netloc or ".." in u.path.split("/"):
            return None
        return self.cache_dir / u.netloc / u.path.lstrip("/")

    def get(self, url: str) -> Any:
        url = _canonical(url)
        if url in self._loaded:
            return self._loaded[url]
        path = self.local_path(url)
        if path is not None and path.is_file():
            data = path.read_bytes()
            self._check_lock(url, data, path)
        elif url.startswith(OUR_PREFIX):
            raise SchemaMissing(f"schema {url}: neither the validated tree ships it (under extensions/{EXTENSION_NAME}/) "
                                f"nor is it this package's extension version ({EXTENSION_SCHEMA_URI})")
        elif self.allow_fetch and path is not None:
            data = self._fetch(url)
            self._check_lock(url, data, url)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".part")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        else:
            raise SchemaMissing(
                f"schema {url} is not in the schema cache {self.cache_dir} "
                f"(expected at {path}). Point --schema-cache or ${ENV_CACHE} at a mirror of the STAC schemas "
                "laid out as HOST/PATH (CI uses ../shared/stac-schemas), or pass --fetch to download it "
                "over HTTPS (checked against stac_mmtp/schemas.lock.json)."
            )
        doc = json.loads(data)
        self._loaded[url] = doc
        return doc

    def _check_lock(self, url: str, data: bytes, where: str | Path) -> None:
        if url.startswith(OUR_PREFIX):
            return  # our own schema lives in the repository, versioned by git
        expected = self.lock.get(url)
        if expected is None:
            if self.allow_fetch:
                raise SchemaMissing(f"schema {url} is not in the lock file; add its sha256 to {LOCK_PATH.name} to trust it")
            return  # a local mirror is trusted for schemas the lock does not list
        actual = _sha256(data)
        if actual != expected:
            raise SchemaMissing(f"schema {url} at {where} has sha256 {actual}, the lock expects {expected}")

    @staticmethod
    def _fetch(url: str) -> bytes:
        with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - https only, checked above
            return resp.read()

    def registry(self) -> referencing.Registry:
        import referencing
        import referencing.exceptions
        import referencing.jsonschema
        from jsonschema_specifications import REGISTRY as META_SCHEMAS

        def retrieve(uri: str) -> referencing.Resource:
            canon = _canonical(uri)
            if canon.startswith(("http://json-schema.org/", "https://json-schema.org/")):
                return META_SCHEMAS.get_or_retrieve(canon if canon.endswith("#") else canon + "#").value
            try:
                doc = self.get(canon)
            except SchemaMissing as exc:
                raise referencing.exceptions.NoSuchResource(ref=uri) from exc
            return referencing.Resource.from_contents(doc, default_specification=referencing.jsonschema.DRAFT7)

        return referencing.Registry(retrieve=retrieve)  # type: ignore[call-arg]


def _refs(node: Any) -> Iterator[str]:
    """Every $ref string in a schema document."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def core_schema_url(obj: dict[str, Any]) -> str:
    version = obj.get("stac_version", "1.1.0")
    kind = obj.get("type")
    if kind == "Feature":
        part = "item-spec/json-schema/item.json"
    elif kind == "Collection":
        part = "collection-spec/json-schema/collection.json"
    else:
        part = "catalog-spec/json-schema/catalog.json"
    return f"https://schemas.stacspec.org/v{version}/{part}"


@dataclass
class Problem:
    path: str
    message: str
    schema: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" + (f" (schema {self.schema})" if self.schema else "")


class StacValidator:
    """Validate STAC objects against the core schema of their version and each of their extensions."""

    def __init__(self, store: SchemaStore):
        self.store = store
        self._registry = store.registry()
        self._validators: dict[str, jsonschema.Draft7Validator] = {}
        self._fast: dict[str, Any] = {}  # url -> compiled jsonschema_rs validator, or None when it cannot compile
        self._preloaded: set[str] = set()
        self._documents: dict[str, Any] = {}  # every schema preloaded so far (url -> document)

    def _validator(self, url: str) -> jsonschema.Draft7Validator:
        import jsonschema

        if url not in self._validators:
            self.store.get(url)  # raise SchemaMissing with its helpful message before jsonschema wraps it
            self._preload(url)
            self._validators[url] = jsonschema.Draft7Validator({"$ref": url}, registry=self._registry)
        return self._validators[url]

    def _preload(self, url: str) -> None:
        """Put `url` and every schema it references into the registry, crawled, once.

        A registry that only *retrieves* hands each validation a fresh copy that retrieves and
        crawls the referenced schemas again: 70 % of the time of validating an item went there.
        """
        import referencing
        import referencing.jsonschema

        todo, seen = [_canonical(url)], set(self._preloaded)
        resources = []
        while todo:
            u = todo.pop()
            if u in seen or u.startswith(("http://json-schema.org/", "https://json-schema.org/")):
                continue
            seen.add(u)
            try:
                doc = self.store.get(u)
            except SchemaMissing:
                continue  # left to the retrieve hook, which reports it at validation time
            self._documents[u] = doc
            resources.append((u, referencing.Resource.from_contents(doc, default_specification=referencing.jsonschema.DRAFT7)))
            base = doc.get("$id", u) if isinstance(doc, dict) else u
            todo.extend(_canonical(urllib.parse.urljoin(base, ref)) for ref in _refs(doc) if not ref.startswith("#"))
        self._preloaded |= seen
        if resources:
            self._registry = self._registry.with_resources(resources).crawl()

    def schemas_for(self, obj: dict[str, Any]) -> list[str]:
        return [core_schema_url(obj), *obj.get("stac_extensions", [])]

    def _fast_validator(self, url: str) -> Any:
        """The schema compiled by jsonschema-rs over the same offline documents (None if it cannot be)."""
        if url not in self._fast:
            self._validator(url)  # loads and preloads: a missing schema raises SchemaMissing here
            import jsonschema_rs

            docs = self._documents
            try:
                self._fast[url] = jsonschema_rs.validator_for(
                    docs[_canonical(url)], base_uri=_canonical(url), validate_formats=False,  # as jsonschema's default
                    registry=jsonschema_rs.Registry(list(docs.items())), offline=True)
            except Exception as exc:  # noqa: BLE001 - e.g. a $ref outside the mirror: jsonschema reports it
                log.debug("jsonschema-rs cannot compile %s (%s): jsonschema validates it", url, exc)
                self._fast[url] = None
        return self._fast[url]

    def is_valid(self, obj: dict[str, Any]) -> bool:
        """Compiled check against every schema of `obj`; jsonschema only runs to explain a failure."""
        for url in self.schemas_for(obj):
            fast = self._fast_validator(url)
            if fast is None:
                return not any(True for _ in self._problems_for(obj, url, "", None))
            if not fast.is_valid(obj):
                return False
        return True

    def iter_problems(self, obj: dict[str, Any], where: str) -> Iterator[Problem]:
        if self.is_valid(obj):
            return
        for url in self.schemas_for(obj):
            yield from self._problems_for(obj, url, where, self._fast.get(url))

    def _problems_for(self, obj: dict[str, Any], url: str, where: str, fast: Any) -> Iterator[Problem]:
        if fast is not None and fast.is_valid(obj):
            return
        import jsonschema

        found = False
        validator = self._validator(url)
        for err in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
            # oneOf/anyOf failures say only "not valid under any of the given schemas": show the
            # most relevant underlying error instead (jsonschema's own heuristic).
            err = jsonschema.exceptions.best_match([err])
            loc = "/".join(str(p) for p in err.absolute_path) or "(root)"
            found = True
            yield Problem(where, f"{loc}: {_explain(err)[:300]}", url)
        if not found and fast is not None:  # the two libraries disagree: jsonschema-rs's word stands
            for err in fast.iter_errors(obj):
                loc = "/".join(str(p) for p in err.instance_path) or "(root)"
                yield Problem(where, f"{loc}: {err.message[:300]}", url)


def _explain(err: jsonschema.ValidationError) -> str:
    """The error's message; for an anyOf/oneOf that every branch fails, what the branches said
    (e.g. "'datetime' is a required property"), so the problem names the field, not only the object."""
    if err.validator in ("anyOf", "oneOf") and err.context:
        said = list(dict.fromkeys(c.message for c in err.context))
        return "none of the alternatives holds: " + "; ".join(said[:4])
    return err.message


@dataclass
class TreeReport:
    objects: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    schemas: set[str] = field(default_factory=set)
    cached: int = 0  # objects whose schema validation was reused (same bytes, same schemas)
    assets: int = 0  # local asset files checked against their metadata

    @property
    def ok(self) -> bool:
        return not self.problems


def iter_tree(root: Path) -> Iterator[tuple[Path, dict[str, Any] | None, str | None]]:
    """Walk a STAC tree from its root catalog along child/item links: (path, object or None, error).

    A file over BIG_JSON (a collection of a million item links) is never parsed whole: its object
    comes without its `links` (they are streamed to the walk)."""
    for path, obj, error, _, big in _walk(root):
        yield path, (big.head if big is not None else obj), error


# A JSON file from this size on is streamed (BigJson): its links are read in batches, never parsed whole.
# The 1,000,000-item collection.json is about 250 MB of JSON and parsed whole it was most of
# validate's 1.3 GiB; the objects of a normal tree (an item, a collection of thousands of links)
# are far below it and keep the exact whole-file path.
BIG_JSON = 8 * 1024 * 1024
LINK_BATCH = 2_000


class BigJson:
    """A JSON file too large to parse whole: its top-level object without `links` (`head`, small),
    and its links streamed from the file by ijson (yajl's C parser) in file order.

    ijson rather than a home-made scanner: it is a maintained incremental parser with a C backend
    (about the speed of json.loads per link) whose objects are json.loads's (floats with
    use_float, the last of duplicate keys)."""

    def __init__(self, path: Path):
        import ijson
        from ijson.common import ObjectBuilder

        self.path = path
        self.links_array = False  # `links` is an array (streamed); any other value stays in head
        head: dict[str, Any] = {}
        with path.open("rb") as f:
            events = ijson.parse(f, use_float=True)
            _, event, _ = next(events)
            if event != "start_map":
                raise ValueError("the top-level value is not an object")
            for _, event, value in events:
                if event == "end_map":
                    break
                key = value  # a map_key at the top level
                _, event, value = next(events)
                if key == "links" and event == "start_array":
                    self.links_array = True
                    head.pop("links", None)
                    depth = 1
                    while depth:  # skip the array: its links are streamed by links()
                        _, event, _ = next(events)
                        depth += event in ("start_map", "start_array")
                        depth -= event in ("end_map", "end_array")
                    continue
                if key == "links":
                    self.links_array = False
                builder = ObjectBuilder()
                builder.event(event, value)
                depth = event in ("start_map", "start_array")
                while depth:
                    _, event, value = next(events)
                    builder.event(event, value)
                    depth += event in ("start_map", "start_array")
                    depth -= event in ("end_map", "end_array")
                head[key] = builder.value
            for _ in events:
                raise ValueError("data after the top-level object")
        self.head = head

    def links(self) -> Iterator[Any]:
        """Every link, in file order, one at a time."""
        if not self.links_array:
            links = self.head.get("links")
            yield from links if isinstance(links, list) else []
            return
        import ijson

        with self.path.open("rb") as f:
            yield from ijson.items(f, "links.item", use_float=True)

    def link_batches(self, size: int = LINK_BATCH) -> Iterator[tuple[int, list[Any]]]:
        """(position of the first, links) for consecutive batches of `size` links; at least one batch."""
        batch: list[Any] = []
        start = 0
        for link in self.links():
            batch.append(link)
            if len(batch) == size:
                yield start, batch
                start, batch = start + size, []
        if batch or not start:
            yield start, batch

    def content_key(self, fingerprint: str) -> str:
        """digests.content_key of the file's bytes, read in blocks."""
        h = hashlib.sha256(fingerprint.encode() + b"\0")
        with self.path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()


def _down(here: str, links: Iterable[Any]) -> Iterator[str]:
    """The files a walk goes down to from the object in directory `here`: its relative child and item links."""
    for link in links:
        if isinstance(link, dict) and link.get("rel") in ("child", "item"):
            href = link.get("href", "")
            if not isinstance(href, str) or "://" in href or href.startswith("/"):
                continue  # absolute links are checked elsewhere (publish forbids them)
            yield os.path.normpath(os.path.join(here, href))


def _walk(root: Path) -> Iterator[tuple[Path, dict[str, Any] | None, str | None, bytes, BigJson | None]]:
    """iter_tree, plus each file's bytes, and for a file over BIG_JSON its BigJson (then no object and
    no bytes). Hrefs are joined lexically (os.path.normpath) below the resolved root: resolving each
    one cost a stat per path component, most of a large tree's walk. Depth first, in link order: the
    stack holds one iterator of link targets per open object, so a collection's million item links are
    read as the walk reaches them, never held."""
    root_file = root / "catalog.json" if root.is_dir() else root
    seen: set[int] = set()  # hashes, not the paths: a million paths would be ~200 MiB
    stack: list[Iterator[str]] = [iter([str(root_file.resolve())])]
    while stack:
        name = next(stack[-1], None)
        if name is None:
            stack.pop()
            continue
        if hash(name) in seen:
            continue
        seen.add(hash(name))
        path = Path(name)
        try:
            with open(name, "rb") as f:
                big = os.fstat(f.fileno()).st_size >= BIG_JSON
                data = b"" if big else f.read()
        except OSError:
            yield path, None, "linked file does not exist", b"", None
            continue
        if big:
            try:
                streamed = BigJson(path)
            except Exception as exc:  # noqa: BLE001 - ijson's JSONError, a bad UTF-8 byte, not an object
                yield path, None, f"not valid JSON ({exc})", b"", None
                continue
            yield path, None, None, b"", streamed
            stack.append(_down(os.path.dirname(name), streamed.links()))
            continue
        try:
            obj = json.loads(data.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            yield path, None, f"not valid JSON ({exc})", data, None
            continue
        yield path, obj, None, data, None
        stack.append(_down(os.path.dirname(name), obj.get("links", [])))


def schema_fingerprint(store: SchemaStore) -> str:
    """What a cached "valid" depends on besides the object: the locked schemas, our extension's,
    and where they come from (another mirror, or one missing a schema, validates afresh)."""
    ours = store.own_schema_path(EXTENSION_SCHEMA_URI)
    own = ours.read_bytes() if ours is not None and ours.is_file() else b"(missing)"
    where = f"{Path(store.cache_dir).resolve()}|{store.allow_fetch}".encode()
    return hashlib.sha256(LOCK_PATH.read_bytes() + b"\0" + own + b"\0" + where).hexdigest()


def _structure_problems(path: Path, rel: str, obj: dict[str, Any]) -> list[Problem]:
    """Links that must exist beside the object (never cached: they depend on the disk)."""
    problems = []
    here = os.path.dirname(path)
    for link in obj.get("links", []):
        href = link.get("href", "")
        if link.get("rel") in ("root", "parent", "collection") and "://" not in href and not os.path.exists(
                os.path.join(here, href)):
            problems.append(Problem(rel, f"broken {link['rel']} link {href!r}"))
    return problems


def validate_tree(root: Path, store: SchemaStore, check_assets: bool = True) -> TreeReport:
    """Validate every object reachable from the root; also check that relative links exist and, with
    `check_assets`, that each local asset's bytes agree with its metadata (asset_checks: existence,
    file:size, file:checksum, COG validity, proj:* and band fields).

    Schemas are compiled by jsonschema-rs (about 0.1 ms per Sentinel-2 item, where jsonschema took
    25 ms), so one process checks a release of thousands of items in well under a second. Objects
    whose exact bytes were found valid before against the same schemas are not validated again
    (digests.Cache).
    """
    from stac_mmtp.digests import Cache, content_key

    if root.is_dir() and not (root / "catalog.json").is_file():
        raise InputError("no catalog.json here: give a built catalog directory or a STAC JSON file", root)
    report = TreeReport()
    base = root.resolve() if root.is_dir() else root.resolve().parent
    store.use_tree(base)  # the tree's own copy of our schema, when it ships one
    fingerprint = schema_fingerprint(store)
    cache = Cache()
    validator = StacValidator(store)
    batch: list[tuple[Path, str, dict[str, Any], str]] = []
    for path, obj, error, data, big in _walk(root):
        rel = os.path.relpath(path, base)
        if big is not None:
            if batch:  # the problems keep the walk's order
                _validate_batch(batch, report, validator, cache, check_assets)
                batch = []
            if _validate_big(path, rel, big, report, validator, cache, fingerprint, check_assets):
                continue  # validated, streamed
            data = path.read_bytes()  # a schema with rules on the links array as a whole: validated whole
            obj = json.loads(data.decode("utf-8"))
        if obj is None:
            report.problems.append(Problem(rel, error or "unreadable"))
            continue
        batch.append((path, rel, obj, content_key(data, fingerprint)))
        if len(batch) >= VALIDATE_BATCH:
            _validate_batch(batch, report, validator, cache, check_assets)
            batch = []
    if batch:
        _validate_batch(batch, report, validator, cache, check_assets)
    for url in sorted(report.schemas):
        store.get(url)  # a cached result never hides a schema that is no longer available: SchemaMissing
    return report


# Objects validated together as the walk goes: a tree of a million items is never held whole, and a batch
# still gives the digest cache and the asset checker's thread pool enough work per call.
VALIDATE_BATCH = 2_000


ARRAY_RULES = ("contains", "minContains", "maxContains", "minItems", "maxItems", "uniqueItems")


def _links_rules_per_link(validator: StacValidator, head: dict[str, Any]) -> bool:
    """Whether every schema rule on `head`'s links applies to each link alone, so that validating the
    object with each batch of its links in place of all of them checks exactly the same rules.

    The STAC core schemas of catalogs and collections only give each link a schema (`items`); the
    core item schema's `contains` (a collection link) applies to Features, which are never streamed.
    An extension schema that puts a rule on the links array as a whole (ARRAY_RULES under a `links`
    key) makes the file validated whole."""
    if head.get("type") == "Feature":
        return False

    def array_rule(node: Any, under_links: bool) -> bool:
        if isinstance(node, dict):
            if under_links and any(k in node for k in ARRAY_RULES):
                return True
            return any(array_rule(v, under_links or k == "links") for k, v in node.items())
        if isinstance(node, list):
            return any(array_rule(v, under_links) for v in node)
        return False

    for url in validator.schemas_for(head):
        if _canonical(url).startswith("https://schemas.stacspec.org/"):
            continue
        validator._fast_validator(url)  # loads it (SchemaMissing as on the whole-file path)
        if array_rule(validator._documents.get(_canonical(url)), False):
            return False
    return True


def _shift(problem: Problem, start: int) -> Problem | None:
    """A problem found in a batch of links starting at position `start`, located in the whole file
    (`links/5/href` -> `links/2005/href`); None for one about the object, not a link (reported once,
    from the first batch)."""
    loc, sep, rest = problem.message.partition(": ")
    parts = loc.split("/")
    if len(parts) >= 2 and parts[0] == "links" and parts[1].isdigit() and sep:
        parts[1] = str(int(parts[1]) + start)
        return Problem(problem.path, "/".join(parts) + sep + rest, problem.schema)
    return problem if start == 0 else None


def _validate_big(path: Path, rel: str, big: BigJson, report: TreeReport, validator: StacValidator, cache: Any,
                  fingerprint: str, check_assets: bool) -> bool:
    """Validate a BigJson with its links streamed: the object is validated against each of its schemas
    once per batch of LINK_BATCH links put in place of all its links, so every link is checked by the
    same real schemas; a link's problem names its position in the file (`links/900000/href`).
    False (nothing done) when a schema has rules on the links array as a whole: then it is validated whole."""
    from stac_mmtp.release.asset_checks import check_assets as check_asset_bytes
    from stac_mmtp.release.asset_checks import local_assets

    head = big.head
    if not isinstance(head.get("links", []), list) or not _links_rules_per_link(validator, head):
        return False
    key = big.content_key(fingerprint)
    cached = key in cache.valid_keys([key])
    schema_problems: list[Problem] = []
    structure: list[Problem] = []
    for start, links in big.link_batches():
        obj = {**head, "links": links}
        if not cached:
            schema_problems += [q for p in validator.iter_problems(obj, rel) if (q := _shift(p, start)) is not None]
        if all(isinstance(lk, dict) for lk in links):
            structure += _structure_problems(path, rel, {"links": links})
    kind = head.get("type", "?")
    report.objects += 1
    report.cached += cached
    report.by_type[kind] = report.by_type.get(kind, 0) + 1
    report.schemas.update(validator.schemas_for(head))
    report.problems += schema_problems + structure
    if check_assets:
        refs = local_assets(path, rel, head)
        report.assets += len(refs)
        report.problems += [Problem(where, msg) for where, msg in check_asset_bytes(refs)]
    if not cached and not schema_problems:
        cache.add_valid([key])
    return True


def _validate_batch(found: list[tuple[Path, str, dict[str, Any], str]], report: TreeReport,
                    validator: StacValidator, cache: Any, check_assets: bool) -> None:
    from stac_mmtp.release.asset_checks import check_assets as check_asset_bytes
    from stac_mmtp.release.asset_checks import local_assets

    known = cache.valid_keys(k for *_, k in found)
    todo = [f for f in found if f[3] not in known]
    report.cached += len(found) - len(todo)
    schema_problems = [list(validator.iter_problems(o, r)) for _, r, o, _ in todo]
    by_path = {f[0]: probs for f, probs in zip(todo, schema_problems, strict=True)}
    for path, rel, obj, _ in found:
        kind = obj.get("type", "?")
        report.objects += 1
        report.by_type[kind] = report.by_type.get(kind, 0) + 1
        report.schemas.update(validator.schemas_for(obj))
        report.problems.extend(by_path.get(path, []))
        report.problems.extend(_structure_problems(path, rel, obj))
    if check_assets:
        refs = [ref for path, rel, obj, _ in found for ref in local_assets(path, rel, obj)]
        report.assets += len(refs)
        report.problems += [Problem(where, msg) for where, msg in check_asset_bytes(refs)]
    cache.add_valid(f[3] for f, probs in zip(todo, schema_problems, strict=True) if not probs)


def validate_objects(objs: Iterable[dict[str, Any]], store: SchemaStore) -> list[Problem]:
    validator = StacValidator(store)
    return [p for i, obj in enumerate(objs) for p in validator.iter_problems(obj, obj.get("id", f"#{i}"))]
