"""Terminal output shared by the commands: verbosity, progress bars, summary tables."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.logging import RichHandler

# rich.progress and rich.table (~7 ms) are imported where used: --help, --version and -q runs never draw them.

out = Console(soft_wrap=True)  # results (tables, JSON) on stdout
err = Console(stderr=True, soft_wrap=True)  # progress, logs and errors on stderr

_state: dict[str, Any] = {"verbosity": 0, "json": None}


def setup(verbose: int, quiet: bool) -> None:
    _state["verbosity"] = -1 if quiet else verbose
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(console=err, show_path=False)], force=True)


def quiet() -> bool:
    return _state["verbosity"] < 0


# Columns that hold identifiers: shortened in the middle (their start and end tell them apart), never folded.
ID_COLUMNS = frozenset({"id", "item", "event", "annotation", "candidate", "duplicates", "product", "key", "file",
                        "trigger", "triggered"})
ELLIPSIS = "…"


def middle_ellipsis(text: str, width: int) -> str:
    """`text` cut to `width` characters by replacing its middle with an ellipsis."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    head = width // 2
    tail = width - 1 - head
    return text[:head] + ELLIPSIS + (text[-tail:] if tail else "")


def json_mode() -> bool:
    """True while a command runs with --json: tables are collected into one document, not drawn."""
    return _state["json"] is not None


def start_json() -> None:
    _state["json"] = {}


def json_document() -> dict[str, Any] | None:
    return _state["json"]


def record(key: str, value: object) -> None:
    """Put `value` under `key` of the --json document (no-op without --json)."""
    doc = _state["json"]
    if doc is not None:
        doc[key] = value


def emit_json() -> None:
    """Write the --json document, alone, on stdout; then leave --json mode."""
    import json
    import sys

    doc, _state["json"] = _state["json"], None
    if doc is not None:
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()


def table(title: str, columns: list[str], rows: list[list[object]], key: str | None = None,
          fields: list[str] | None = None) -> None:
    """Draw a table on stdout, or with --json add its rows under `key` as objects keyed by `fields`
    (default: the column names)."""
    doc = _state["json"]
    if doc is not None:
        names = fields or columns
        doc.setdefault(key or "rows", []).extend(dict(zip(names, r, strict=True)) for r in rows)
        return
    if quiet():
        return
    from rich.table import Table

    cells = [[str(v) for v in r] for r in rows]
    ids = [i for i, c in enumerate(columns) if c in ID_COLUMNS]
    if ids and cells:
        # what the other columns need at least (their longest word), plus borders and padding
        def widest(i: int, words: bool) -> int:
            vals = [columns[i], *(r[i] for r in cells)]
            return max(len(w) for v in vals for w in (v.split() if words else [v]) or [""])

        others = sum(widest(i, True) for i in range(len(columns)) if i not in ids)
        room = max(12, (out.width - others - 3 * len(columns) - 1) // len(ids))
        for r in cells:
            for i in ids:
                r[i] = middle_ellipsis(r[i], room)
    t = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        # ids keep one line; other text wraps at word boundaries, never inside a word
        t.add_column(c, no_wrap=i in ids, overflow="ellipsis")
    for r in cells:
        t.add_row(*r)
    out.print(t)


@contextlib.contextmanager
def progress_bar() -> Iterator[object]:
    """A callback (phase, done, total) that drives one rich task per phase, on stderr.

    None (no bar) with -q or when stderr is not a terminal: a log file or a pipe gets no redraw codes.
    """
    if quiet() or not Console(stderr=True).is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=False,
    )
    tasks: dict[str, int] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total)
        bar.update(tasks[phase], completed=done, total=total)

    with bar:
        yield update


def error(message: str) -> None:
    doc = _state["json"]
    if doc is not None:  # errors also go into the --json document, as plain text
        from rich.errors import MarkupError
        from rich.text import Text

        try:
            plain = Text.from_markup(message).plain
        except MarkupError:
            plain = message
        doc.setdefault("errors", []).append(plain)
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)


def warn(message: str) -> None:
    """A warning on stderr, shown unless --quiet."""
    if not quiet():
        err.print(f"[yellow]warning:[/yellow] {message}", highlight=False)
