"""`skinctl tui`: the terminal dashboard (image browser, verification queue, training metrics)."""

from __future__ import annotations

import typer

from skinctl.commands.common import state
from skinctl.tui import StartScreen  # a plain enum: the package imports Textual only in its modules


def tui(
    ctx: typer.Context,
    screen: StartScreen = typer.Option(
        StartScreen.browser, "--screen", help="The screen to start on."
    ),
) -> None:
    """Open the terminal dashboard: browse images, verify labels, follow training metrics."""
    from skinctl.tui.app import run_tui

    app_state = state(ctx)
    run_tui(app_state.settings, app_state.engine(), start=screen)
