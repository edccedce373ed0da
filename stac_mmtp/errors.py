"""Exceptions with the file and the problem they name, and the exit codes the CLI maps them to."""

from __future__ import annotations

from pathlib import Path

# Exit codes scripts can rely on (documented in the README).
EXIT_OK = 0
EXIT_FAILED = 1  # some work failed (a product, a validation error, an upload)
EXIT_BAD_INPUT = 2  # invalid input or usage: nothing was written


class MmtpError(Exception):
    """Base class: every error carries the path it is about, when there is one."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, path: str | Path | None = None, field: str | None = None):
        self.path = str(path) if path is not None else None
        self.field = field
        self.message = message
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = self.path or ""
        if self.field:
            where = f"{where} [{self.field}]" if where else f"[{self.field}]"
        return f"{where}: {self.message}" if where else self.message


class InputError(MmtpError):
    """Bad user input (inventory, annotation, product): exit status 2, nothing written."""

    exit_code = EXIT_BAD_INPUT


class InputErrors(InputError):
    """Every problem found in a set of inputs, each naming its file: `what` says which set ("the inventory")."""

    what = "the input"

    def __init__(self, errors: list[InputError]):
        self.errors = errors
        super().__init__(f"{len(errors)} problem(s) in {self.what}:\n" + "\n".join(f"  {e}" for e in errors))

    def __str__(self) -> str:
        return self.message


class ProductError(MmtpError):
    """A source product that cannot be read or converted; the build goes on with the others."""


class UnsupportedProduct(ProductError):
    """A product family or type we recognise but do not support (e.g. Sentinel-1 SLC)."""


class OutputError(MmtpError):
    """An output that cannot be written (read-only directory, full disk): exit status 1."""


class SchemaMissing(MmtpError):
    """A JSON Schema that is neither in the cache nor allowed to be fetched."""

    exit_code = EXIT_BAD_INPUT
