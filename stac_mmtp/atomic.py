"""Write files and directory trees atomically: to a temporary sibling, then rename into place."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def dumps_json(obj: Any) -> str:
    """The one JSON serialisation of the project: stable (2-space indent, UTF-8, trailing newline)."""
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publishable(path: Path | str, directory: bool = False) -> None:
    """Give a temp file/dir the mode a normal create would (mkstemp/mkdtemp make them owner-only):
    a published tree must be readable by the web server or the other users of a shared mirror."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        publishable(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> None:
    write_text(path, dumps_json(obj))


@contextlib.contextmanager
def staged_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            publishable(tmp_path)
        os.replace(tmp_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def _restore_aside(path: Path) -> None:
    """A swap killed between its two renames leaves the old tree in `.NAME.*.old/tree` and nothing at
    `path`: put it back, so the next run starts from the old tree and not from nothing."""
    if path.exists():
        return
    for old in sorted(path.parent.glob(f".{path.name}.*.old")):
        if (old / "tree").exists():
            os.replace(old / "tree", path)
            shutil.rmtree(old, ignore_errors=True)
            return


@contextlib.contextmanager
def staged_dir(path: Path) -> Iterator[Path]:
    """Yield an empty temporary directory beside `path`; on success it replaces `path` whole.

    The old tree is moved aside first and removed only once the new one is in place, so a
    crash leaves either the old or the new tree, never a mix; a failure between the two renames
    puts the old tree back.
    """
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    _restore_aside(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        publishable(tmp, directory=True)
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "tree")
        try:
            os.replace(tmp, path)
        except BaseException:
            if old is not None:
                os.replace(old / "tree", path)
                shutil.rmtree(old, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
