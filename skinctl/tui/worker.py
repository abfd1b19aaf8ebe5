"""Database work off the UI thread, with the failure handling every screen needs.

`DatabaseWork.run_db(job, done)` runs `job()` in a Textual thread worker and hands its result
to `done` on the UI thread. Conflicts and other SkinctlErrors become notifications; a lost
connection becomes a warning and, for reads, a retry with back-off (the engine's pool
pre-ping replaces dead connections), so the app recovers instead of crashing.

Worker errors are written, with their traceback, to `<home>/logs/tui.log` (the screen is no
place for a traceback), and the error notice names that file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError, OperationalError
from textual.worker import get_current_worker

from skinctl.errors import Conflict, DatabaseUnavailable, SkinctlError

if TYPE_CHECKING:
    from textual.app import App
    from textual.widget import Widget
    from textual.worker import Worker

    from skinctl.tui.app import SkinctlApp

RETRY_SECONDS = (0.5, 1, 2, 5, 10)
log = logging.getLogger("skinctl.tui")


def open_log(home: Path) -> tuple[Path, logging.Handler]:
    """Send the `skinctl.tui` logger to `<home>/logs/tui.log`; the caller closes the handler."""
    path = home / "logs" / "tui.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # the terminal belongs to Textual
    return path, handler


def close_log(handler: logging.Handler) -> None:
    log.removeHandler(handler)
    handler.close()


def _where(app: App[Any]) -> str:
    path = getattr(app, "log_path", None)
    return f" Details: {path}" if path else ""


def is_connection_error(error: BaseException) -> bool:
    if isinstance(error, DatabaseUnavailable | OperationalError):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


class DatabaseWork:
    """Mixin for screens (anything with `.app`, `.run_worker`, `.set_timer`)."""

    if TYPE_CHECKING:  # what the screen this is mixed into provides, typed for skinctl's app

        @property
        def app(self) -> SkinctlApp: ...

        run_worker = Widget.run_worker
        set_timer = Widget.set_timer

    def run_db(
        self,
        job: Callable[[], Any],
        done: Callable[[Any], None] | None = None,
        *,
        group: str = "db",
        exclusive: bool = True,
        retry: bool = True,
        on_error: Callable[[BaseException], None] | None = None,
        _attempt: int = 0,
    ) -> Worker[None]:
        app = self.app

        def work() -> None:
            try:
                result = job()
            except Conflict as error:
                app.call_from_thread(
                    app.notify,
                    f"{error.message} {error.hint or ''}".strip(),
                    title="Conflict",
                    severity="error",
                    timeout=8,
                )
                if on_error:
                    app.call_from_thread(on_error, error)
                return
            except SkinctlError as error:
                if is_connection_error(error):
                    log.warning("database connection lost: %s", error.message)
                    app.call_from_thread(
                        self._connection_lost,
                        job,
                        done,
                        group,
                        exclusive,
                        retry,
                        on_error,
                        _attempt,
                    )
                    return
                log.error("%s", error.message, exc_info=error)
                app.call_from_thread(
                    app.notify,
                    error.message + _where(app),
                    title="skinctl",
                    severity="error",
                    timeout=8,
                )
                if on_error:
                    app.call_from_thread(on_error, error)
                return
            except (OperationalError, DBAPIError) as error:
                if is_connection_error(error):
                    log.warning("database connection lost: %s", error)
                    app.call_from_thread(
                        self._connection_lost,
                        job,
                        done,
                        group,
                        exclusive,
                        retry,
                        on_error,
                        _attempt,
                    )
                    return
                self._unexpected(error, on_error)
                return
            except Exception as error:  # noqa: BLE001 - a bug must not take the whole app down
                self._unexpected(error, on_error)
                return
            if _attempt:
                app.call_from_thread(
                    app.notify, "Database connection is back.", title="Database", timeout=4
                )
            if get_current_worker().is_cancelled:
                return  # a newer request of the same group replaced this one: drop its result
            if done is not None:
                app.call_from_thread(done, result)

        return self.run_worker(
            work, thread=True, group=group, exclusive=exclusive, exit_on_error=False
        )

    def _unexpected(
        self, error: BaseException, on_error: Callable[[BaseException], None] | None
    ) -> None:
        log.error("database work failed", exc_info=error)
        app = self.app
        app.call_from_thread(
            app.notify,
            f"{type(error).__name__}: {error}.{_where(app)}",
            title="Unexpected error",
            severity="error",
            timeout=10,
        )
        if on_error:
            app.call_from_thread(on_error, error)

    def _connection_lost(
        self,
        job: Callable[[], Any],
        done: Callable[[Any], None] | None,
        group: str,
        exclusive: bool,
        retry: bool,
        on_error: Callable[[BaseException], None] | None,
        attempt: int,
    ) -> None:
        app = self.app
        if not retry:
            app.notify(
                "Lost the database connection: that change was NOT saved. Try again.",
                title="Database",
                severity="error",
                timeout=8,
            )
            if on_error:
                on_error(ConnectionError("database connection lost"))
            return
        delay = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
        if attempt == 0:
            app.notify(
                f"Lost the database connection; retrying (every {delay:g}s and longer)…",
                title="Database",
                severity="warning",
                timeout=6,
            )
        self.set_timer(
            delay,
            lambda: self.run_db(
                job,
                done,
                group=group,
                exclusive=exclusive,
                retry=retry,
                on_error=on_error,
                _attempt=attempt + 1,
            ),
        )
