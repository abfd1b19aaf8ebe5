"""Labels: the one service every label change goes through (CLI, TUI, imports, the model
server), its history, verification, optimistic locking (`service`); the read side: queries,
queue, statistics, export rows (`read`); the types both speak (`views`, plain Python); import
and export files (`transfer`).

The names below load on first use (PEP 562), so a command module can import the enums in
`skinctl.labels.views` for its options without paying for SQLAlchemy at `skinctl --help`."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_WHERE = {
    "LabelReader": "skinctl.labels.read",
    "LabelService": "skinctl.labels.service",
    **{
        name: "skinctl.labels.views"
        for name in (
            "PENDING",
            "ExportFormat",
            "HistoryEntry",
            "LabelFilter",
            "LabelSource",
            "LabelStatus",
            "LabelTask",
            "LabelView",
            "OperationResult",
            "QueueKey",
            "QueueOrder",
        )
    },
}
__all__ = [
    "PENDING",
    "ExportFormat",
    "HistoryEntry",
    "LabelFilter",
    "LabelReader",
    "LabelService",
    "LabelSource",
    "LabelStatus",
    "LabelTask",
    "LabelView",
    "OperationResult",
    "QueueKey",
    "QueueOrder",
]

if TYPE_CHECKING:
    from skinctl.labels.read import LabelReader
    from skinctl.labels.service import LabelService
    from skinctl.labels.views import (
        PENDING,
        ExportFormat,
        HistoryEntry,
        LabelFilter,
        LabelSource,
        LabelStatus,
        LabelTask,
        LabelView,
        OperationResult,
        QueueKey,
        QueueOrder,
    )


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'skinctl.labels' has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
