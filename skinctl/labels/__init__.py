"""Labels: the one service every label change goes through (CLI, TUI, imports), its history,
verification, optimistic locking, import and export."""

from skinctl.labels.service import LabelFilter, LabelService, LabelView

__all__ = ["LabelFilter", "LabelService", "LabelView"]
