from __future__ import annotations

from sqlalchemy import text
from textual.widgets import DataTable

from skinctl.tui.queries import run_detail
from tests.tui.conftest import SIZE, make_app, run_async, settle, text_of


def test_run_detail_reads_hand_written_rows(engine, runs):
    first = run_detail(engine, 1)
    assert [e["val_loss"] for e in first.epochs] == [1.3, 1.0, 0.85, 0.9]
    assert first.best_epoch == 3  # lowest val_loss
    assert [c["class"] for c in first.per_class] == ["acne", "eczema"]
    assert first.confusion == {"labels": ["acne", "eczema"], "matrix": [[28, 12], [9, 21]]}
    bare = run_detail(engine, 2)  # only the plan's columns
    assert (bare.epochs, bare.per_class, bare.confusion, bare.best_epoch) == ([], [], None, None)
    assert run_detail(engine, 99) is None


def test_run_detail_prefers_the_trainers_tables_when_they_exist(engine, runs):
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE training_epochs (id serial, run_id int, epoch int, train_loss float, val_loss float, val_accuracy float)"))
        connection.execute(text("INSERT INTO training_epochs (run_id, epoch, train_loss, val_loss, val_accuracy) VALUES (2, 1, 1.0, 1.1, 0.5), (2, 2, 0.8, 0.7, 0.6), (2, 3, 0.6, 0.75, 0.65)"))
        connection.execute(text("CREATE TABLE training_class_metrics (id serial, run_id int, class_name text, precision float, recall float, f1 float, support int)"))
        connection.execute(text("INSERT INTO training_class_metrics (run_id, class_name, precision, recall, f1, support) VALUES (2, 'milia', 0.9, 0.8, 0.85, 12)"))
    try:
        detail = run_detail(engine, 2)
        assert [e["epoch"] for e in detail.epochs] == [1.0, 2.0, 3.0]
        assert detail.best_epoch == 2
        assert detail.per_class == [{"class": "milia", "precision": 0.9, "recall": 0.8, "f1": 0.85, "support": 12}]
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE training_epochs, training_class_metrics"))


@run_async
async def test_metrics_screen_compares_two_runs(settings, engine, images, runs):
    app = make_app(settings, engine, images.storage_dir, start="metrics")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        table = screen.query_one(DataTable)
        assert [table.get_row_at(i)[:3] for i in range(table.row_count)] == [["2", "condition-cnn", "2"], ["1", "condition-cnn", "1"]]
        assert "no per-class scores" in text_of(screen.query_one("#metrics-classes"))  # run 2: plan columns only
        await pilot.press("m", "down")
        await settle(pilot)
        assert (screen.marked, screen.selected) == (2, 1)
        assert "best epoch 3" in str(screen.query_one("#metrics-title").render())
        compare = text_of(screen.query_one("#metrics-compare"))
        assert "run 2 (marked) vs run 1" in compare
        assert "-0.070" in compare and "-248" in compare  # accuracy and dataset size differences
        assert "acne" in text_of(screen.query_one("#metrics-confusion"))
        await pilot.press("u")
        assert screen.marked is None
