"""Terminal output shared by the commands: verbosity, progress bars, summary tables."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from rich.console import Console
from rich.logging import RichHandler

# rich.progress and rich.table (~7 ms) are imported where used: --help, --version and -q runs never draw them.

out = Console(soft_wrap=True)  # results (tables, JSON) on stdout
err = Console(stderr=True, soft_wrap=True)  # progress, logs and errors on stderr

_state = {"verbosity": 0}


def setup(verbose: int, quiet: bool) -> None:
    _state["verbosity"] = -1 if quiet else verbose
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(console=err, show_path=False)], force=True)


def quiet() -> bool:
    return _state["verbosity"] < 0


def table(title: str, columns: list[str], rows: list[list[object]]) -> None:
    if quiet():
        return
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*(str(v) for v in r))
    out.print(t)


@contextlib.contextmanager
def progress_bar() -> Iterator[object]:
    """A callback (phase, done, total) that drives one rich task per phase; silent with -q."""
    if quiet():
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
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)


def warn(message: str) -> None:
    """A warning on stderr, shown unless --quiet."""
    if not quiet():
        err.print(f"[yellow]warning:[/yellow] {message}", highlight=False)
