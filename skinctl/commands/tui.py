"""`skinctl tui`: the terminal dashboard (image browser, verification queue, training metrics)."""

from __future__ import annotations

import typer

from skinctl.commands.common import state


def tui(
    ctx: typer.Context,
    screen: str = typer.Option("browser", "--screen", help="Start on: browser, queue or metrics."),
) -> None:
    """Open the terminal dashboard: browse images, verify labels, follow training metrics."""
    from skinctl.errors import UsageError

    if screen not in ("browser", "queue", "metrics"):
        raise UsageError(f"Unknown screen {screen!r}; use browser, queue or metrics.")
    from skinctl.tui.app import run_tui

    app_state = state(ctx)
    run_tui(app_state.settings, app_state.engine(), start=screen)
