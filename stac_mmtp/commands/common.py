"""What every command module shares: click's context settings and `fail`, the one way out on an error.

Kept apart from commands/main.py (which re-exports both) so that a command module importing them does
not import the group that lists it: that would be an import cycle.
"""

from __future__ import annotations

import sys

from rich.markup import escape

from stac_mmtp import console
from stac_mmtp.errors import EXIT_FAILED, MmtpError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def fail(exc: MmtpError | str, code: int | None = None) -> None:
    """Print one error line and exit with `code`, else the error's own exit code (1 by default)."""
    console.error(escape(str(exc)))
    sys.exit(code if code is not None else getattr(exc, "exit_code", EXIT_FAILED))
