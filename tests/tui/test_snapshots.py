"""Snapshots of the three screens with fixed data and terminal size (pytest-textual-snapshot).
Update after an intended change with `python -m pytest tests/tui/test_snapshots.py --snapshot-update`
and review the SVGs."""

from __future__ import annotations

from tests.tui.conftest import SIZE, make_app, settle, text_of, wait_for


async def _settled(pilot) -> None:
    await settle(pilot)


def test_queue_screen(snap_compare, settings, engine, images):
    app = make_app(settings, engine, images.storage_dir, start="queue")

    async def choose_a_class(pilot) -> None:
        await settle(pilot)
        await pilot.press("2")  # eczema highlighted, not yet saved

    assert snap_compare(app, terminal_size=SIZE, run_before=choose_a_class)


def test_browser_screen(snap_compare, settings, engine, images):
    app = make_app(settings, engine, images.storage_dir, start="browser")

    async def second_row(pilot) -> None:
        await settle(pilot)
        await pilot.press("down")
        meta = app.screen.query_one("#browser-meta")
        await wait_for(
            pilot, lambda: "image 2" in text_of(meta)
        )  # the side panel follows the cursor
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=second_row)


def test_metrics_screen(snap_compare, settings, engine, images, runs):
    app = make_app(settings, engine, images.storage_dir, start="metrics")

    async def compare_runs(pilot) -> None:
        await settle(pilot)
        await pilot.press("m", "down")
        await settle(pilot)
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=compare_runs)
