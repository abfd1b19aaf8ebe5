"""Output helpers shared by every command: JSON on stdout, Rich tables, messages on stderr.

Progress bars and logs go to stderr, and only when stderr is a terminal.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from skinctl.progress import ReportProgress, no_progress

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


def _default(value: Any) -> Any:
    # Services return frozen dataclasses; their JSON shape is derived here, in one place.
    # Field metadata may rename a key ("json_name": a Python keyword such as "class") or leave
    # it out while None ("omit_none": a key only some answers carry).
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        document = {}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if item is None and field.metadata.get("omit_none"):
                continue
            document[field.metadata.get("json_name", field.name)] = item
        return document
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_json(document: Any) -> str:
    return json.dumps(document, default=_default, ensure_ascii=False)


def print_json(document: Any) -> None:
    """One JSON document on stdout, nothing else."""
    sys.stdout.write(to_json(document) + "\n")
    sys.stdout.flush()


def print_json_lines(rows: Iterable[Any]) -> None:
    for row in rows:
        sys.stdout.write(to_json(row) + "\n")
    sys.stdout.flush()


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    result = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        numeric = column.lower() in {"count", "rows", "images", "labels", "id", "size"}
        result.add_column(column, justify="right" if numeric else "left")
    for row in rows:
        result.add_row(*["" if cell is None else str(cell) for cell in row])
    return result


def info(message: str) -> None:
    """A status line for people, on stderr (keeps stdout clean for --json and pipes)."""
    stderr.print(message, highlight=False)


def warn(message: str) -> None:
    stderr.print(f"[yellow]warning:[/] {message}", highlight=False)


def progress_enabled() -> bool:
    return sys.stderr.isatty()


@contextmanager
def progress_bar(enabled: bool, *, byte_stages: Collection[str] = ()) -> Iterator[ReportProgress]:
    """A `ReportProgress` that draws one Rich bar per stage on stderr (rate and ETA), or a no-op.

    The one progress renderer: commands open it and hand the reporter to a service. Stages
    named in `byte_stages` count bytes and show sizes (1.2/3.4 GB, 5.6 MB/s) instead of counts."""
    if not enabled:
        yield no_progress
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    tasks: dict[str, Any] = {}
    with Progress(
        TextColumn("{task.description:>10}"),
        BarColumn(),
        *_count_and_rate_columns(),
        TimeRemainingColumn(),
        console=stderr,
    ) as bar:

        def report(stage: str, completed: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total, in_bytes=stage in byte_stages)
            bar.update(tasks[stage], completed=completed, total=total)

        yield report


def _count_and_rate_columns() -> tuple[Any, Any]:
    """`done/total` and a rate: in items, or in sizes (1.5/3.0 MB, 2.1 MB/s) for tasks that
    count bytes."""
    from rich.progress import DownloadColumn, ProgressColumn, Task, TransferSpeedColumn
    from rich.text import Text

    sizes, size_rate = DownloadColumn(), TransferSpeedColumn()

    class CountColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            if task.fields.get("in_bytes"):
                return sizes.render(task)
            done = f"{int(task.completed):,}"
            return Text(
                done if task.total is None else f"{done}/{int(task.total):,}",
                style="progress.download",
            )

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            if task.fields.get("in_bytes"):
                return size_rate.render(task)
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")

    return CountColumn(), RateColumn()


stage_progress = progress_bar  # the older name; new code uses progress_bar
