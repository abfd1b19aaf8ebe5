"""Issue 13: the browser's estimated-tone filter and the metrics screen's fairness panel."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session
from textual.widgets import DataTable, Select

from skinctl.db.models import TrainingGroupMetric, TrainingImage, TrainingRun
from tests.tui.conftest import SIZE, make_app, run_async, settle, text_of


def table_ids(app) -> list[int]:
    table = app.screen.query_one(DataTable)
    return [int(table.get_row_at(i)[0]) for i in range(table.row_count)]


@run_async
async def test_browser_filters_by_estimated_tone(settings, engine, images):
    ids = images.images
    tones = {ids[0]: ("dark", -41.0), ids[3]: ("dark", -35.5), ids[4]: ("light", 47.0)}
    with engine.begin() as connection:
        for image_id, (tone, ita) in tones.items():
            connection.execute(
                update(TrainingImage)
                .where(TrainingImage.id == image_id)
                .values(skin_tone=tone, skin_tone_ita=ita, skin_tone_method="test")
            )
    app = make_app(settings, engine, images.storage_dir, start="browser")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        select = app.screen.query_one("#filter-tone", Select)
        # the choices are the tones present, lightest first
        assert [value for _label, value in select._options if value != Select.NULL] == [
            "light",
            "dark",
        ]
        select.value = "dark"
        await settle(pilot)
        assert table_ids(app) == [ids[0], ids[3]]
        meta = text_of(app.screen.query_one("#browser-meta"))
        assert "dark (ITA -41°, estimated)" in meta


@run_async
async def test_metrics_screen_shows_the_fairness_panel(settings, engine, images, runs):
    with Session(engine) as session, session.begin():
        for value, support, accuracy in [
            ("light", 60, 0.9),
            ("brown", 50, 0.86),
            ("dark", 40, 0.5),
        ]:
            session.add(
                TrainingGroupMetric(
                    run_id=2, group_by="tone", group_value=value, support=support, accuracy=accuracy
                )
            )
        session.get_one(TrainingRun, 2)
    app = make_app(settings, engine, images.storage_dir, start="metrics")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.screen.selected == 2
        panel = app.screen.query_one("#metrics-fairness")
        assert panel.display
        text = text_of(panel)
        assert "worst group vs rest" in text and "dark" in text and "FLAG" in text
        await pilot.press("down")  # run 1: no groups, no panel
        await settle(pilot)
        assert not app.screen.query_one("#metrics-fairness").display
