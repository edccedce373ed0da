"""What every command module shares: click's context settings and `fail`, the one way out on an error.

Kept apart from commands/main.py (which re-exports both) so that a command module importing them does
not import the group that lists it: that would be an import cycle.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.markup import escape

from stac_mmtp import console
from stac_mmtp.errors import EXIT_FAILED, MmtpError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def fail(exc: MmtpError | str, code: int | None = None) -> None:
    """Print one error line and exit with `code`, else the error's own exit code (1 by default)."""
    console.error(escape(str(exc)))
    sys.exit(code if code is not None else getattr(exc, "exit_code", EXIT_FAILED))


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--json`: the command's tables become one JSON document on stdout (stable keys), nothing else there.

    The document is written when the command ends, also when it exits non-zero after its work
    (failed products, validation problems: they are under "errors"); a usage error writes none.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, as_json: bool = False, **kwargs: Any) -> Any:
        if not as_json:
            return func(*args, **kwargs)
        console.start_json()
        try:
            return func(*args, **kwargs)
        finally:
            console.emit_json()

    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON document on stdout instead of tables.")(wrapper)
