"""Read a product the same way whether it is a directory or a .zip: XML/JSON members and GDAL paths."""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from stac_mmtp.errors import ProductError


@dataclass
class ProductFS:
    """Files of one product, addressed by POSIX paths relative to the product root."""

    path: Path
    _zip: zipfile.ZipFile | None = field(default=None, repr=False)
    _prefix: str = ""
    _names: list[str] = field(default_factory=list, repr=False)
    _verified: set[str] = field(default_factory=set, repr=False)

    @classmethod
    def open(cls, path: Path, root_marker: str | None = None) -> ProductFS:
        path = Path(path)
        if path.is_dir():
            names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
            return cls(path, None, "", names)
        if path.suffix.lower() == ".zip":
            try:
                zf = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise ProductError(f"not a readable zip archive ({exc})", path) from None
            names = [n for n in zf.namelist() if not n.endswith("/")]
            prefix = ""
            if root_marker:
                hits = [n for n in names if PurePosixPath(n).name == root_marker]
                if hits:
                    prefix = min(hits, key=len)[: -len(root_marker)]
            return cls(path, zf, prefix, [n[len(prefix) :] for n in names if n.startswith(prefix)])
        raise ProductError("expected a product directory or a .zip archive", path)

    @property
    def names(self) -> list[str]:
        return self._names

    def exists(self, rel: str) -> bool:
        return rel in self._names

    def find(self, suffix: str) -> list[str]:
        return [n for n in self._names if n.endswith(suffix)]

    def read_bytes(self, rel: str) -> bytes:
        try:
            if self._zip is not None:
                return self._zip.read(self._prefix + rel)
            return (self.path / rel).read_bytes()
        except (KeyError, FileNotFoundError):
            raise ProductError(f"missing file {rel}", self.path) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:  # CRC error, truncated or unreadable
            raise ProductError(f"corrupt member ({exc})", self.display(rel)) from None

    def size(self, rel: str) -> int:
        if self._zip is not None:
            return self._zip.getinfo(self._prefix + rel).file_size
        return (self.path / rel).stat().st_size

    def display(self, rel: str) -> str:
        """A path naming the member, for error messages."""
        return f"{self.path}/{rel}" if self._zip is None else f"{self.path}!/{self._prefix}{rel}"

    def verify(self, rel: str) -> None:
        """Read a zip member through once so that its CRC is checked: GDAL's /vsizip/ does not check it
        and would convert a corrupt stored member's bytes silently. A directory file needs nothing."""
        if self._zip is None or rel in self._verified:
            return
        try:
            with self._zip.open(self._prefix + rel) as f:
                while f.read(1 << 22):
                    pass
        except KeyError:
            raise ProductError(f"missing file {rel}", self.path) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise ProductError(f"corrupt member ({exc})", self.display(rel)) from None
        self._verified.add(rel)

    def gdal_path(self, rel: str, verify: bool = False) -> str:
        """The GDAL path of a member; with `verify`, a zip member's CRC is checked first (pixel reads)."""
        if verify:
            self.verify(rel)
        if self._zip is not None:
            return f"/vsizip/{self.path.resolve()}/{self._prefix}{rel}"
        return str((self.path / rel).resolve())
