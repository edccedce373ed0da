"""The publish of a large tree through an on-disk scan: the same plan, order, manifest and checks as
publish(), with the per-file records in SQLite (a temporary directory) instead of memory.

Held in memory one record per file, publish grew linearly (412 MiB at 100,000 items, about 4 GiB
projected at a million). Here the scan writes each file's record (key, size, kind, digests, the keys
it links down to, the media type an item declares for it) to SQLite, and every later step reads it
back in key order, BATCH records at a time: the plan (publish.plan on each batch, with the part of the
store's listing for those keys), the manifest (its keys streamed from and to the store's JSON), the
diff against the previous publish (stale and foreign objects by a join), the uploads and their
verification. The upload order is kept by phases: every asset before any item, every item before
any collection, the collections together (upload_in_order orders them among themselves), the root
last; a phase whose objects link to others of the same phase goes in one batch. So an object still
goes only once everything it links down to is in the store, but unrelated uploads of the next phase
wait for the end of the previous one (the cost of a bounded plan).
"""

from __future__ import annotations

import codecs
import itertools
import json
import mimetypes
import os
import posixpath
import sqlite3
import tempfile
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stac_mmtp.digests import Cache, stat_key
from stac_mmtp.errors import InputError
from stac_mmtp.release.publish.scan import (
    CACHE_ASSET,
    CACHE_JSON,
    DIGEST_VARIANT,
    DOWN_RELS,
    PHASES,
    SUFFIX_TYPES,
    LocalObject,
    ProgressFn,
    digests_of,
    iter_files,
    local_paths_in,
)
from stac_mmtp.release.publish.stores import MANIFEST_FORMAT, MANIFEST_KEY, Remote
from stac_mmtp.stac import GEOJSON_MEDIA_TYPE, JSON_MEDIA_TYPE

BIG_JSON = 8 * 1024 * 1024  # as validate.BIG_JSON: a JSON file read streamed, never parsed whole

if TYPE_CHECKING:
    from stac_mmtp.release.publish.stores import Store

# Trees with more files than this publish through the spill (STAC_MMTP_PUBLISH_STREAM_FILES overrides it).
STREAM_FILES = 50_000
BATCH = 5_000  # records read back, planned, uploaded and verified together


def stream_files() -> int:
    return int(os.environ.get("STAC_MMTP_PUBLISH_STREAM_FILES", STREAM_FILES))


def more_files_than(build_dir: Path, limit: int) -> bool:
    """Whether the tree has more than `limit` publishable names (a walk that stops there)."""
    n = 0
    for _, dirs, names in os.walk(build_dir):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        n += sum(1 for name in names if not name.startswith("."))
        if n > limit:
            return True
    return False


class Spill:
    """The scan's records in SQLite, in a temporary directory removed when the last user is gone."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="stac-mmtp-publish-")
        self.db = sqlite3.connect(Path(self._tmp.name) / "scan.sqlite", isolation_level=None, check_same_thread=False)
        self._close = weakref.finalize(self, _cleanup, self.db, self._tmp)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE", "cache_size=-32768"):
            self.db.execute(f"PRAGMA {pragma}")  # a scratch database: rebuilt by any new run
        self.db.executescript("""
            CREATE TABLE files (key TEXT PRIMARY KEY, path TEXT, size INT, stat_key TEXT, is_json INT,
                                kind TEXT, phase TEXT, sha TEXT DEFAULT '', etag TEXT DEFAULT '', upload INT DEFAULT 0);
            CREATE TABLE links (src TEXT, dst TEXT);
            CREATE TABLE declared (key TEXT PRIMARY KEY, media TEXT);
            CREATE TABLE remote (key TEXT PRIMARY KEY, size INT, etag TEXT);
            CREATE TABLE ours (key TEXT PRIMARY KEY);
        """)

    def close(self) -> None:
        self._close()

    # ----------------------------------------------------------------- scan
    def walk(self, build_dir: Path) -> str:
        """Every publishable file (tree_keys's selection) with its digests.Cache key; the tree's
        fingerprint (digests.tree_fingerprint of those keys, hashed as a stream)."""
        import hashlib

        cut = len(str(build_dir)) + 1
        rows: list[tuple[Any, ...]] = []
        self.db.execute("BEGIN")
        for path, name, st in iter_files(str(build_dir)):
            rows.append((path[cut:].replace(os.sep, "/"), path, st.st_size, stat_key(path, st, DIGEST_VARIANT),
                         os.path.splitext(name)[1].lower() in (".json", ".geojson")))
            if len(rows) >= BATCH:
                self.db.executemany("INSERT INTO files (key, path, size, stat_key, is_json) VALUES (?, ?, ?, ?, ?)", rows)
                rows = []
        self.db.executemany("INSERT INTO files (key, path, size, stat_key, is_json) VALUES (?, ?, ?, ?, ?)", rows)
        self.db.execute("COMMIT")
        h = hashlib.sha256()
        for i, (key,) in enumerate(self.db.execute("SELECT stat_key FROM files ORDER BY stat_key")):
            h.update((b"\n" if i else b"") + key.encode())
        return h.hexdigest()

    def scan(self, build_dir: Path) -> None:
        """scan_tree's reading of the JSON files, one batch at a time: digests, kind, local-path problems,
        the keys each links down to and the media types items declare for their assets."""
        cache = Cache()
        dirs = sorted({str(build_dir), str(build_dir.resolve())})
        problems: list[str] = []
        listed: dict[str, frozenset[str] | None] = {}

        def maybe_in_tree(q: str) -> bool:
            """A cheap superset of "q is a file of the tree" (a file in its directory's listing), so that
            the hrefs of files that are not there (a million items' assets) are never stored; the join
            with `files` keeps exactly the files of the tree."""
            if q == ".." or q.startswith("../") or any(part.startswith(".") for part in q.split("/")):
                return False
            d, name = posixpath.split(q)
            if d not in listed:
                if len(listed) > 4096:
                    listed.clear()
                try:
                    with os.scandir(os.path.join(build_dir, d)) as it:
                        listed[d] = frozenset(e.name for e in it if e.is_file())
                except OSError:
                    listed[d] = None
            names = listed[d]
            return names is not None and name in names

        todo = self.db.execute("SELECT key, path, stat_key FROM files WHERE is_json ORDER BY key")
        while chunk := todo.fetchmany(BATCH):
            known = cache.digests(k for _, _, k in chunk)
            new_digests, kinds, links, declared = [], [], [], []
            for rel, path, skey in chunk:
                digest = known.get(skey)
                if os.path.getsize(path) >= BIG_JSON:  # a collection of a million item links: streamed
                    obj, obj_links, found, computed = _big_json(Path(path), build_dir, dirs)
                else:
                    data = Path(path).read_bytes()
                    computed = digests_of([data], len(data)) if digest is None else digest
                    text = data.decode("utf-8", errors="replace")
                    try:
                        obj = json.loads(text)
                    except ValueError:
                        obj = None
                    obj_links = obj.get("links", []) if isinstance(obj, dict) else []
                    found = local_paths_in(text, obj, build_dir, dirs) if len(problems) < 50 else []
                if digest is None:
                    digest = computed
                    new_digests.append((skey, *digest))
                kind = obj.get("type") if isinstance(obj, dict) and "stac_version" in obj else None
                kinds.append((kind, *digest, rel))
                if len(problems) < 50:
                    problems += [f"{rel}: holds {what}" for what in found]
                if kind is None:
                    continue
                here = posixpath.dirname(rel)
                down: list[Any] = []
                for asset in (obj.get("assets") or {}).values():
                    if isinstance(asset, dict):
                        down.append(href := asset.get("href", ""))
                        media = asset.get("type")
                        if isinstance(media, str) and media and isinstance(href, str) and "://" not in href and \
                                maybe_in_tree(q := posixpath.normpath(posixpath.join(here, href))):
                            declared.append((q, media))
                hrefs = itertools.chain((lk.get("href", "") for lk in obj_links
                                         if isinstance(lk, dict) and lk.get("rel") in DOWN_RELS), down)
                for h in hrefs:  # a generator: a million item links are never a list
                    if isinstance(h, str) and h and "://" not in h and \
                            maybe_in_tree(q := posixpath.normpath(posixpath.join(here, h))):
                        links.append((rel, q))
                        if len(links) >= BATCH:
                            self.db.executemany("INSERT INTO links VALUES (?, ?)", links)
                            links = []
            cache.put_digests(new_digests)
            self.db.execute("BEGIN")
            self.db.executemany("UPDATE files SET kind = ?, sha = ?, etag = ? WHERE key = ?", kinds)
            self.db.executemany("INSERT INTO links VALUES (?, ?)", links)
            # the last declaration wins, as in scan_tree; only files of the tree are looked up
            self.db.executemany("INSERT OR REPLACE INTO declared VALUES (?, ?)", declared)
            self.db.execute("COMMIT")
        if problems:
            raise InputError("refusing to publish local paths:\n  " + "\n  ".join(problems[:50]), build_dir)
        self.db.execute("CREATE INDEX links_src ON links (src)")
        self.db.execute("""UPDATE files SET phase = CASE WHEN key = 'catalog.json' THEN 'root'
                           WHEN kind = 'Feature' THEN 'items' WHEN kind IN ('Collection', 'Catalog') THEN 'collections'
                           ELSE 'assets' END""")
        self.db.execute("CREATE INDEX files_phase ON files (phase, upload, key)")
        # digests the cache knows for files not read here (assets)
        rows = self.db.execute("SELECT key, stat_key FROM files WHERE NOT is_json ORDER BY key")
        while chunk := rows.fetchmany(BATCH):
            known = cache.digests(k for _, k in chunk)
            if known:
                self.db.executemany("UPDATE files SET sha = ?, etag = ? WHERE key = ?",
                                    [(*known[k], key) for key, k in chunk if k in known])

    def count(self, where: str = "1", args: tuple[Any, ...] = ()) -> int:
        return self.db.execute(f"SELECT count(*) FROM files WHERE {where}", args).fetchone()[0]  # noqa: S608

    def phase_counts(self, where: str = "1") -> dict[str, int]:
        return dict(self.db.execute(f"SELECT phase, count(*) FROM files WHERE {where} GROUP BY phase"))  # noqa: S608

    # ----------------------------------------------------------------- records back as LocalObjects
    _COLUMNS = "f.key, f.path, f.size, f.phase, f.sha, f.etag, f.stat_key, d.media"

    def objects(self, where: str = "1", args: tuple[Any, ...] = ()) -> Iterator[list[LocalObject]]:
        """The records as LocalObjects (what scan_tree returns for them), in key order, BATCH at a time;
        `needs` only names keys of the same batch: the upload order within a batch is all it is used for
        (earlier phases are in the store by then), and a collection's million item keys are not held."""
        cur = self.db.execute(f"SELECT {self._COLUMNS} FROM files f LEFT JOIN declared d ON d.key = f.key "  # noqa: S608
                              f"WHERE {where} ORDER BY f.key", args)
        while chunk := cur.fetchmany(BATCH):
            yield self._materialize(chunk)

    def _materialize(self, rows: list[tuple[Any, ...]]) -> list[LocalObject]:
        keys = {r[0] for r in rows}
        needs: dict[str, set[str]] = {}
        lo, hi = rows[0][0], rows[-1][0]
        for src, dst in self.db.execute("SELECT l.src, l.dst FROM links l JOIN files f ON f.key = l.dst "
                                        "WHERE l.src BETWEEN ? AND ?", (lo, hi)):
            if src in keys and dst != src and dst in keys:
                needs.setdefault(src, set()).add(dst)
        out = []
        for key, path, size, phase, sha, etag, skey, declared in rows:
            if phase == "items":
                media = GEOJSON_MEDIA_TYPE
            elif phase in ("collections", "root"):
                media = JSON_MEDIA_TYPE
            else:
                name = posixpath.basename(key)
                media = declared or SUFFIX_TYPES.get(posixpath.splitext(name)[1].lower()) or (
                    mimetypes.guess_type(name)[0] or "application/octet-stream")
            is_json = media.startswith(("application/json", "application/geo+json")) or phase != "assets"
            out.append(LocalObject(key, Path(path), size, phase, media, CACHE_JSON if is_json else CACHE_ASSET,
                                   tuple(sorted(needs.get(key, ()))), sha or "", etag or "", skey))
        return out

    def save_digests(self, objs: list[LocalObject]) -> None:
        self.db.executemany("UPDATE files SET sha = ?, etag = ? WHERE key = ?",
                            [(o.sha256, o.etag, o.key) for o in objs if o.sha256])

    def mark_uploads(self, objs: list[LocalObject]) -> None:
        self.db.executemany("UPDATE files SET upload = 1 WHERE key = ?", [(o.key,) for o in objs])

    # ----------------------------------------------------------------- the store's side
    def load_listing(self, store: Store) -> bool:
        """The store's listing into the `remote` table; False when the store does not let us list.
        Streamed where the store can (FileStore and S3Store.iter_list)."""
        rows = store.iter_list() if hasattr(store, "iter_list") else None
        if rows is None:
            listing = store.list()
            if listing is None:
                return False
            rows = iter(listing.items())
        batch: list[tuple[str, int, str | None]] = []
        self.db.execute("BEGIN")
        for key, r in rows:
            batch.append((key, r.size, r.etag))
            if len(batch) >= BATCH:
                self.db.executemany("INSERT OR REPLACE INTO remote VALUES (?, ?, ?)", batch)
                batch = []
        self.db.executemany("INSERT OR REPLACE INTO remote VALUES (?, ?, ?)", batch)
        self.db.execute("COMMIT")
        return True

    def listing_for(self, objs: list[LocalObject]) -> dict[str, Remote]:
        keys = {o.key for o in objs}
        lo, hi = objs[0].key, objs[-1].key
        return {k: Remote(size, etag=etag) for k, size, etag in
                self.db.execute("SELECT key, size, etag FROM remote WHERE key BETWEEN ? AND ?", (lo, hi)) if k in keys}

    def load_manifest(self, store: Store) -> bool:
        """The keys of the last publish's manifest into `ours` (read_manifest's rules, the keys streamed);
        False when there is no manifest of ours."""
        import io

        import ijson

        data = store.read(MANIFEST_KEY)
        if data is None:
            return False
        fmt, keys_list, depth = None, False, 0
        try:
            events = ijson.parse(io.BytesIO(data))
            rows: list[tuple[str]] = []
            self.db.execute("BEGIN")
            for prefix, event, value in events:
                if depth == 0 and event != "start_map":
                    self.db.execute("ROLLBACK")
                    return False
                depth += event in ("start_map", "start_array")
                depth -= event in ("end_map", "end_array")
                if prefix == "format" and depth == 1 and event != "map_key":
                    fmt = value
                elif prefix == "keys" and event == "start_array" and depth == 2:
                    keys_list = True
                elif prefix == "keys.item" and event == "string":
                    rows.append((value,))
                    if len(rows) >= BATCH:
                        self.db.executemany("INSERT OR IGNORE INTO ours VALUES (?)", rows)
                        rows = []
            self.db.executemany("INSERT OR IGNORE INTO ours VALUES (?)", rows)
        except (ijson.JSONError, ValueError):
            self.db.execute("ROLLBACK")
            return False
        if fmt != MANIFEST_FORMAT or not keys_list:
            self.db.execute("ROLLBACK")
            return False
        self.db.execute("COMMIT")
        return True

    def stale(self) -> list[tuple[str, int, bool]]:
        """Listed objects that are not files of the tree (nor the manifest): (key, size, in our manifest)."""
        return list(self.db.execute(
            "SELECT r.key, r.size, o.key IS NOT NULL FROM remote r LEFT JOIN files f ON f.key = r.key "
            "LEFT JOIN ours o ON o.key = r.key WHERE f.key IS NULL AND r.key != ? ORDER BY r.key", (MANIFEST_KEY,)))

    def manifest_bytes(self, with_still_ours: bool) -> bytearray:
        """write_manifest's bytes (json.dumps(indent=1) of the sorted keys), the keys read in order: the
        tree's files, and with `with_still_ours` the stale objects of ours that are still there."""
        from stac_mmtp import __version__

        doc = {"format": MANIFEST_FORMAT, "generator": f"stac-mmtp {__version__}",
               "description": "Objects written here by `stac-mmtp publish`: the only ones its --delete may remove.",
               "keys": []}
        head = json.dumps(doc, indent=1)
        assert head.endswith('"keys": []\n}')
        q = "SELECT key FROM files"
        if with_still_ours:
            q += " UNION SELECT o.key FROM ours o JOIN remote r ON r.key = o.key"
        out = bytearray(head[:-len("[]\n}")].encode())  # one buffer: a million keys are ~170 MB of JSON
        n = 0
        for n, (key,) in enumerate(self.db.execute(q + " ORDER BY 1"), 1):
            out += (b"[\n  " if n == 1 else b",\n  ") + json.dumps(key).encode()
        out += b"\n ]\n}" if n else b"[]\n}"
        return out


def _big_json(path: Path, build_dir: Path, dirs: list[str]) -> tuple[Any, Any, list[str], tuple[str, str]]:
    """What scan reads of a JSON file too large to parse whole (validate.BigJson): its object without
    links, an iterator of its links (streamed from the file), local_paths_in's findings (the text
    searched block by block, the hrefs link by link) and its digests; (None, [], ...) if not JSON."""
    from stac_mmtp.release.validate import BigJson

    needles = ["file://", *dirs]
    found: list[str] = []
    seen: set[str] = set()
    keep = max(len(n) for n in needles)
    tail = ""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    size = path.stat().st_size

    def blocks() -> Iterator[bytes]:
        nonlocal tail
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                text = tail + decoder.decode(block)
                seen.update(n for n in needles if n in text)
                tail = text[-keep:]
                yield block

    digest = digests_of(blocks(), size)
    if "file://" in seen:
        found.append("a file:// URL")
    found += [f"the build directory {d}" for d in dirs if d in seen]
    try:
        big = BigJson(path)
    except Exception:  # noqa: BLE001 - not JSON, or not an object: published as a plain file (as scan_tree)
        return None, [], found, digest
    head = big.head

    def absolute(h: Any) -> bool:
        return isinstance(h, str) and (h.startswith("/") or h[1:3] == ":\\")

    for lk in big.links():
        if isinstance(lk, dict) and absolute(h := lk.get("href", "")) and len(found) < 50:
            found.append(f"absolute path href {h!r}")
    found += [f"absolute path href {a.get('href')!r}" for a in (head.get("assets") or {}).values()
              if isinstance(a, dict) and absolute(a.get("href", ""))]
    return head, big.links(), found, digest


def _cleanup(db: sqlite3.Connection, tmp: tempfile.TemporaryDirectory) -> None:
    db.close()
    tmp.cleanup()


class SpilledUploads(Sequence[LocalObject]):
    """The report's uploads, read from the spill (which lives as long as this)."""

    def __init__(self, spill: Spill):
        self._spill = spill
        self._n = spill.count("upload")

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[LocalObject]:
        for batch in self._spill.objects("f.upload"):
            yield from batch

    def __getitem__(self, i: Any) -> Any:
        items = list(self)
        return items[i]

    def __eq__(self, other: object) -> bool:
        return list(self) == other if isinstance(other, list) else NotImplemented

    __hash__ = None  # type: ignore[assignment]


def publish_streamed(build_dir: Path, store: Store, report: Any, *, dry_run: bool, delete: bool,
                     jobs: int, public_check: bool, progress: ProgressFn, check_every_object: bool,
                     validate: Callable[[str], Any] | None, plan: Callable[..., Any]) -> Any:
    """publish()'s flow on a Spill (see the module docstring), filling `report` (a PublishReport);
    `validate(fingerprint)` runs while the tree is scanned and the store listed; `plan` is publish.plan
    (passed in: this module sits below the package's flow)."""
    import concurrent.futures as cf

    from stac_mmtp.release.publish.order import upload_in_order
    from stac_mmtp.release.publish.scan import _describe
    from stac_mmtp.release.publish.stores import S3Store
    from stac_mmtp.release.publish.verify import check_public_root, header_samples, verify, verify_responses

    build_dir = build_dir.resolve()
    sp = Spill()
    fingerprint = sp.walk(build_dir)
    with cf.ThreadPoolExecutor(1) as bg:
        validated = bg.submit(validate, fingerprint) if validate else None
        try:
            sp.scan(build_dir)
            for phase, n in sp.phase_counts().items():
                report.phases[phase].objects = n
            listed = sp.load_listing(store)
            for objs in sp.objects():
                uploads, _ = plan(objs, store, jobs, progress, check_every_object,
                                  listing=sp.listing_for(objs) if listed else None)
                sp.db.execute("BEGIN")
                sp.save_digests(objs)
                sp.mark_uploads(uploads)
                sp.db.execute("COMMIT")
        finally:
            if validated is not None:
                validated.result()  # an invalid tree is the first error reported
    report.uploads = SpilledUploads(sp)  # type: ignore[assignment]
    ours = sp.load_manifest(store)
    if not listed:
        report.stale_unknown = True
    else:
        stale = sp.stale()
        report.deletes = [(k, size) for k, size, mine in stale if ours and mine]
        report.foreign = [(k, size) for k, size, mine in stale if not (ours and mine)]
        if delete and not ours and report.foreign:
            raise InputError(
                f"--delete refused: {store.url} holds {len(report.foreign)} object(s) this tree does not have "
                f"(e.g. {report.foreign[0][0]}) and no {MANIFEST_KEY} manifest of a previous stac-mmtp publish, so "
                "they were not written by stac-mmtp publish; nothing was changed. Publish to a new or empty prefix, "
                "or run without --delete.")
        if sp.db.execute("SELECT 1 FROM remote LIMIT 1").fetchone():
            report.assets_changed_in_place = [o.key for batch in sp.objects(
                "f.upload AND f.phase = 'assets' AND f.key IN (SELECT key FROM remote)")
                for o in batch if o.cache_control == CACHE_ASSET]
    uploaded = sp.phase_counts("upload")
    for phase, n in report.phases.items():
        n.unchanged = n.objects - uploaded.get(phase, 0)
    if dry_run:
        return report
    if delete and not listed:
        raise InputError(f"--delete needs permission to list {store.url}")

    n_uploads = len(report.uploads)
    not_ours = sp.count("key NOT IN (SELECT key FROM ours)")
    if n_uploads or not ours or not_ours:
        store.write(MANIFEST_KEY, sp.manifest_bytes(with_still_ours=listed and ours), JSON_MEDIA_TYPE)
    is_s3 = isinstance(store, S3Store)
    done_n = 0
    checks: list[str] = []
    sampled: set[tuple[str, str]] = set()
    for phase in PHASES:
        where, args = "f.upload AND f.phase = ?", (phase,)
        same_phase = sp.db.execute(
            "SELECT 1 FROM links l JOIN files a ON a.key = l.src JOIN files b ON b.key = l.dst "
            "WHERE a.phase = ? AND b.phase = ? AND a.upload AND b.upload AND l.src != l.dst LIMIT 1",
            (phase, phase)).fetchone()
        batches: Iterator[list[LocalObject]] = sp.objects(where, args)
        if same_phase or phase in ("collections", "root"):
            batches = iter([[o for b in batches for o in b]])  # ordered among themselves in one batch
        for batch in batches:
            if not batch:
                continue
            done, failed, skipped = upload_in_order(batch, store, _offset(progress, done_n, n_uploads), jobs)
            for o in done:
                report.phases[o.phase].uploaded += 1
                report.phases[o.phase].bytes_uploaded += o.size
            done_n += len(done)
            if failed:
                obj, exc = failed[0]
                report.problems.append(
                    f"{len(failed)} of {n_uploads} upload(s) failed, e.g. {obj.key}: {_describe(exc)}; "
                    f"{n_uploads - done_n - len(failed)} not attempted. Nothing that links to them was written"
                    f"{' (the root catalog was not updated)' if sp.count('upload AND phase = ?', ('root',)) else ''}; "
                    "re-run to resume.")
                return report
            if is_s3 and not check_every_object:
                # one HEAD per (media type, cache policy) over the whole publish, as publish() samples
                samples = [o for o in header_samples(batch) if (o.content_type, o.cache_control) not in sampled]
                sampled.update((o.content_type, o.cache_control) for o in samples)
                checks += verify(samples, store, jobs) + verify_responses([o for o in batch if o not in samples], store)
                for o in batch:
                    store.stored.pop(store.key(o.key), None)  # type: ignore[attr-defined]
            else:
                checks += verify(batch, store, jobs, progress)
    if is_s3 and not check_every_object:
        report.verification = "ETag = MD5 of the stored bytes (listing or upload answer), headers sampled per media type"
    report.problems += checks
    report.verified = sp.count()
    root = next((o for b in sp.objects("f.phase = 'root'") for o in b), None)
    if public_check and is_s3 and root is not None:
        url = store.public_url(root.key)  # type: ignore[attr-defined]
        report.public_check = url
        if problem := check_public_root(url, root):
            report.problems.append(problem)
    if report.problems:
        return report
    if delete and report.deletes:
        try:
            store.delete([k for k, _ in report.deletes])
            report.deleted = len(report.deletes)
            store.write(MANIFEST_KEY, sp.manifest_bytes(with_still_ours=False), JSON_MEDIA_TYPE)
        except Exception as exc:  # noqa: BLE001
            report.problems.append(f"deleting stale objects: {_describe(exc)}")
    return report


def _offset(progress: ProgressFn, base: int, total: int) -> ProgressFn:
    if progress is None:
        return None
    return lambda label, n, _: progress(label, base + n, total)
