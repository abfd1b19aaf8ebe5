"""The terminal dashboard (Textual): image browser, verification queue, training metrics.

Only this package imports Textual. It calls the label service and read-only queries; all
database work runs in thread workers (see `skinctl.tui.worker`)."""

from enum import StrEnum


class StartScreen(StrEnum):
    """The screen `skinctl tui --screen` opens on (the app's modes)."""

    browser = "browser"
    queue = "queue"
    metrics = "metrics"
