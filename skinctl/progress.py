"""The one progress callback every long service reports through. Services never draw:
`skinctl.console.progress_bar` turns a report into a Rich bar on stderr (only on a terminal).

`completed` is always cumulative: the count done so far in that stage, never a delta. `total`
is None while unknown (a listing still running, a download without Content-Length).
"""

from __future__ import annotations

from typing import Protocol


class ReportProgress(Protocol):
    def __call__(self, stage: str, completed: int, total: int | None) -> None: ...


def no_progress(stage: str, completed: int, total: int | None) -> None:
    """The default reporter: report nothing."""
