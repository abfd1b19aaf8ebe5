"""The Textual app: three screens (as modes, so each keeps its place), help, key remapping."""

from __future__ import annotations

import logging
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.binding import Binding

from skinctl.labels import LabelFilter, LabelService, LabelStatus

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from skinctl.config import Settings
    from skinctl.storage import Storage
    from skinctl.tui.screens.browser import BrowserScreen
    from skinctl.tui.screens.metrics import MetricsScreen
    from skinctl.tui.screens.queue import QueueScreen


def _browser() -> BrowserScreen:
    from skinctl.tui.screens.browser import BrowserScreen

    return BrowserScreen()


def _queue() -> QueueScreen:
    from skinctl.tui.screens.queue import QueueScreen

    return QueueScreen()


def _metrics() -> MetricsScreen:
    from skinctl.tui.screens.metrics import MetricsScreen

    return MetricsScreen()


def _read_first_page(engine: Engine) -> Future[list[Any]]:
    from skinctl.tui.queries import ImageFilter, image_page

    future: Future[list[Any]] = Future()

    def read() -> None:
        try:
            future.set_result(image_page(engine, ImageFilter()))
        except BaseException as error:  # noqa: BLE001 - handed to the screen, which reads again
            future.set_exception(error)

    threading.Thread(target=read, name="skinctl-first-page", daemon=True).start()
    return future


class SkinctlApp(App):
    """`skinctl tui`. Every binding has an id; `keys` in skinctl.toml remaps it."""

    CSS_PATH = "skinctl.tcss"
    TITLE = "skinctl"
    # Modes are built on first switch and then keep their state (cursor, filters, queue place);
    # each screen module is imported then too (plotext for metrics costs startup time).
    MODES = {"browser": _browser, "queue": _queue, "metrics": _metrics}
    BINDINGS = [
        Binding("f2", "switch_mode('browser')", "Images", id="app_browser"),
        Binding("f3", "switch_mode('queue')", "Queue", id="app_queue"),
        Binding("f4", "switch_mode('metrics')", "Metrics", id="app_metrics"),
        Binding("question_mark", "help", "Keys", id="app_help"),
        Binding("ctrl+q", "quit", "Quit", id="app_quit", priority=True),
    ]

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        start: str = "browser",
        queue_filter: LabelFilter | None = None,
        queue_order: str = "suspect",
        storage: Storage | None = None,
        image_renderer: str = "auto",
    ) -> None:
        super().__init__()
        self.settings = settings
        self.engine = engine
        self.labels = LabelService(engine, settings.user)
        self.storage = storage
        self.start = start
        self.queue_filter = queue_filter or LabelFilter(status=LabelStatus.pending)
        self.queue_order = queue_order
        self.image_renderer = image_renderer
        self.sub_title = f"{settings.user}"
        self.log_path: Path | None = None
        self._log_handler: logging.Handler | None = None
        # The browser's first page is read while Textual builds the screen, so the first frame
        # can already show rows (a worker started by the mounted screen answers a frame later).
        self._first_page: Future[list[Any]] | None = (
            _read_first_page(engine) if start == "browser" else None
        )

    def take_first_page(self) -> Future[list[Any]] | None:
        """The early read of the unfiltered first browser page, once (later reloads query)."""
        future, self._first_page = self._first_page, None
        return future

    def on_mount(self) -> None:
        from skinctl.tui.worker import open_log

        try:
            self.log_path, self._log_handler = open_log(self.settings.home)
        except OSError as error:  # an unwritable home must not keep anyone from reviewing
            self.notify(
                f"Cannot write the TUI log under {self.settings.home}: {error}", severity="warning"
            )
        if self.settings.keys:
            self.set_keymap(dict(self.settings.keys))
        self.switch_mode(self.start)

    def on_unmount(self) -> None:
        if self._log_handler is not None:
            from skinctl.tui.worker import close_log

            close_log(self._log_handler)
            self._log_handler = None

    def action_help(self) -> None:
        from skinctl.tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        self.push_screen(HelpScreen(self.screen))

    def read_image(self, url: str) -> bytes:
        """Image bytes for a preview (called from workers)."""
        from skinctl.tui.queries import read_image_bytes

        return read_image_bytes(url, self.storage)


def run_tui(
    settings: Settings,
    engine: Engine,
    *,
    start: str = "browser",
    dataset: str | None = None,
    condition: str | None = None,
    order: str = "suspect",
    **kwargs: Any,
) -> None:
    from skinctl.storage import open_storage

    renderer = "auto"
    if sys.stdout.isatty():
        # textual-image asks the terminal what it can draw; that only works before Textual
        # takes the terminal over, so import it now.
        import textual_image.widget  # noqa: F401
    else:
        renderer = "halfcell"
    app = SkinctlApp(
        settings,
        engine,
        start=start,
        queue_filter=LabelFilter(dataset=dataset, condition=condition, status=LabelStatus.pending),
        queue_order=order,
        storage=open_storage(settings.storage),
        image_renderer=renderer,
        **kwargs,
    )
    app.run()
