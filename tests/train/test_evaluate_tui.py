"""The TUI metrics screen lists a run's evaluations beside its own test."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from skinctl.db.models import ModelEvaluation
from tests.tui.conftest import SIZE, images, make_app, run_async, runs, settle, text_of  # noqa: F401 - fixtures


def _evaluation(engine, run_id: int) -> None:
    with Session(engine) as session:
        session.add(
            ModelEvaluation(
                run_id=run_id,
                datasets=["skin_conditions_copy"],
                evaluated_at=datetime(2026, 12, 1, 12, 0),
                images=25,
                exact_copies_left_out=3,
                near_copies_left_out=95,
                accuracy=0.4,
                accuracy_low=0.234,
                accuracy_high=0.593,
                f1_macro=0.345,
                f1_low=0.152,
                f1_high=0.502,
                majority_rate=0.12,
            )
        )
        session.commit()


@run_async
async def test_metrics_screen_lists_evaluations(settings, engine, images, runs):  # noqa: F811
    _evaluation(engine, 2)
    app = make_app(settings, engine, images.storage_dir, start="metrics")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.selected == 2
        shown = text_of(screen.query_one("#metrics-evaluations"))
        assert "own test split" in shown and "evaluation 1: skin_conditions_copy" in shown
        assert "3 exact, 95 near" in shown and "0.400 [0.234, 0.593]" in shown
        await pilot.press("down")  # run 1: no evaluations, no panel
        await settle(pilot)
        assert not screen.query_one("#metrics-evaluations").display
