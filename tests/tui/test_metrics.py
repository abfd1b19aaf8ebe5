from __future__ import annotations

from sqlalchemy.orm import Session
from textual.widgets import DataTable

from skinctl.db.models import (
    TrainingClassMetric,
    TrainingEpoch,
    TrainingGroupMetric,
    TrainingRun,
)
from skinctl.tui.queries import run_detail
from tests.tui.conftest import SIZE, make_app, run_async, screen_lines, settle, text_of, wait_for


def test_run_detail_reads_hand_written_rows(engine, runs):
    first = run_detail(engine, 1)
    assert [e["val_loss"] for e in first.epochs] == [1.3, 1.0, 0.85, 0.9]
    assert first.best_epoch == 3  # lowest val_loss
    assert [c["class"] for c in first.per_class] == ["acne", "eczema"]
    assert first.confusion == {"labels": ["acne", "eczema"], "matrix": [[28, 12], [9, 21]]}
    bare = run_detail(engine, 2)  # only the plan's columns
    assert (bare.epochs, bare.per_class, bare.confusion, bare.best_epoch) == ([], [], None, None)
    assert run_detail(engine, 99) is None


def _record_trainer_results(engine, run_id: int) -> None:
    """What `skinctl train` records for a run, written through the real models."""
    with Session(engine) as session:
        run = session.get_one(TrainingRun, run_id)
        run.task, run.status, run.best_epoch, run.majority_rate = "condition", "finished", 2, 0.41
        run.metrics = {
            "test": {"accuracy_ci95": [0.70, 0.85], "f1_macro_ci95": [0.66, 0.83]},
            "warning": None,
        }
        run.confusion_matrix = {
            "classes": ["acne", "milia"],
            "matrix": [[10, 2], [3, 9]],
            "rows": "true class",
        }
        session.add_all(
            [
                TrainingEpoch(
                    run_id=run_id, epoch=1, train_loss=1.0, val_loss=1.1, val_accuracy=0.5
                ),
                TrainingEpoch(
                    run_id=run_id, epoch=2, train_loss=0.8, val_loss=0.7, val_accuracy=0.6
                ),
                TrainingEpoch(
                    run_id=run_id, epoch=3, train_loss=0.6, val_loss=0.75, val_accuracy=0.65
                ),
                TrainingClassMetric(
                    run_id=run_id,
                    class_name="milia",
                    precision=0.9,
                    recall=0.8,
                    f1=0.85,
                    support=12,
                ),
                TrainingGroupMetric(
                    run_id=run_id,
                    group_by="fitzpatrick",
                    group_value="3",
                    support=20,
                    accuracy=0.75,
                    accuracy_low=0.53,
                    accuracy_high=0.89,
                    f1_macro=0.7,
                    majority_rate=0.4,
                ),
            ]
        )
        session.commit()


def test_run_detail_reads_the_trainers_tables(engine, runs):
    _record_trainer_results(engine, 2)
    detail = run_detail(engine, 2)
    assert [e["epoch"] for e in detail.epochs] == [1, 2, 3]
    assert detail.epochs[1] == {"epoch": 2, "train_loss": 0.8, "val_loss": 0.7, "val_accuracy": 0.6}
    assert detail.best_epoch == 2
    assert detail.per_class == [
        {"class": "milia", "precision": 0.9, "recall": 0.8, "f1": 0.85, "support": 12}
    ]
    assert [(g.group_by, g.group_value, g.accuracy_ci95) for g in detail.run.per_group] == [
        ("fitzpatrick", "3", [0.53, 0.89])
    ]
    assert detail.confusion == {"labels": ["acne", "milia"], "matrix": [[10, 2], [3, 9]]}
    run = detail.run
    assert (run.status, run.task, run.majority_rate, run.accuracy_ci95, run.f1_ci95) == (
        "finished",
        "condition",
        0.41,
        [0.70, 0.85],  # as skinctl.train.records reads them
        [0.66, 0.83],
    )
    assert run_detail(engine, 1).epochs[0] == {
        "epoch": 1,
        "loss": 1.2,
        "val_loss": 1.3,
    }  # run 1 still reads its JSON


@run_async
async def test_metrics_screen_compares_two_runs(settings, engine, images, runs):
    app = make_app(settings, engine, images.storage_dir, start="metrics")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        table = screen.query_one(DataTable)
        assert [table.get_row_at(i)[:3] for i in range(table.row_count)] == [
            ["2", "condition-cnn", "2"],
            ["1", "condition-cnn", "1"],
        ]
        assert "no per-class scores" in text_of(
            screen.query_one("#metrics-classes")
        )  # run 2: plan columns only
        assert "no per-epoch data for this run" in text_of(screen.query_one("#metrics-plot"))
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


@run_async
async def test_metrics_screen_shows_the_trainers_intervals_groups_and_status(
    settings, engine, images, runs
):
    _record_trainer_results(engine, 2)
    app = make_app(settings, engine, images.storage_dir, start="metrics")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.selected == 2
        title = str(screen.query_one("#metrics-title").render())
        assert "status finished" in title and "accuracy 0.780 [0.700, 0.850]" in title
        assert "majority 0.410" in title and "F1 0.755 [0.660, 0.830]" in title
        groups = text_of(screen.query_one("#metrics-groups"))
        assert "fitzpatrick 3" in groups and "0.750 [0.530, 0.890]" in groups
        assert "milia" in text_of(screen.query_one("#metrics-confusion"))
        await pilot.press("down")  # run 1: hand-written, no groups, no intervals
        await settle(pilot)
        assert not screen.query_one("#metrics-groups").display
        assert "accuracy 0.710 · F1 0.695" in str(screen.query_one("#metrics-title").render())


@run_async
async def test_metrics_screen_follows_a_running_training(
    settings, engine, images, runs, monkeypatch
):
    """#11.7: epochs appear as the trainer records them and the status changes when the run
    ends, without pressing r; a run that starts meanwhile appears."""
    monkeypatch.setattr("skinctl.tui.screens.metrics.POLL_SECONDS", 0.1)
    with Session(engine) as session:
        run = TrainingRun(
            model_name="condition-cnn", version="3", task="condition", status="running"
        )
        session.add(run)
        session.commit()
        run_id = run.id
    app = make_app(settings, engine, images.storage_dir, start="metrics")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.selected == run_id
        assert "status running" in str(screen.query_one("#metrics-title").render())
        with Session(engine) as session:
            session.add_all(
                [
                    TrainingEpoch(run_id=run_id, epoch=n, train_loss=1.0 / n, val_loss=1.1 / n)
                    for n in (1, 2)
                ]
            )
            session.commit()
        await wait_for(pilot, lambda: len(screen.details[run_id].epochs) == 2)
        with Session(engine) as session:
            session.add(TrainingEpoch(run_id=run_id, epoch=3, train_loss=0.3, val_loss=0.4))
            session.get_one(TrainingRun, run_id).status = "finished"
            session.add(
                TrainingRun(
                    model_name="skin-type-cnn", version="1", task="skin_type", status="running"
                )
            )
            session.commit()
        await wait_for(
            pilot, lambda: "status finished" in str(screen.query_one("#metrics-title").render())
        )
        assert len(screen.details[run_id].epochs) == 3
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 4)
        assert screen.selected == run_id  # the cursor stays on the run being read
        assert [table.get_row_at(i)[3] for i in range(table.row_count)] == [
            "running",
            "finished",
            "finished",
            "finished",
        ]


@run_async
async def test_metrics_text_keeps_its_separators(settings, engine, images, runs):
    """#11.6: "condition-cnn1 run 1" ran together in the title."""
    app = make_app(settings, engine, images.storage_dir, start="metrics")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("down")
        await settle(pilot)
        shown = "\n".join(screen_lines(app))
        assert "condition-cnn 1 · run 1 · best epoch 3" in shown
