from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from skinctl.db.models import ConditionLabel, LabelHistory
from skinctl.labels import LabelService
from tests.tui.conftest import SIZE, make_app, run_async, settle


def labels_of(engine, image_id):
    with Session(engine) as session:
        return {
            lb.condition_type: (lb.source, lb.status)
            for lb in session.scalars(select(ConditionLabel).where(ConditionLabel.image_id == image_id))
        }


def history_actions(engine, image_id):
    with Session(engine) as session:
        return [
            (h.action, h.changed_by)
            for h in session.scalars(select(LabelHistory).where(LabelHistory.image_id == image_id).order_by(LabelHistory.id))
        ]


@run_async
async def test_class_key_then_enter_saves_the_class_and_undo_restores_it(settings, engine, images):
    app = make_app(settings, engine, images.storage_dir, start="queue")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        queue = app.screen
        # conflicts first: images 1 and 2 (near-duplicates with different labels)
        assert queue.item.label.id == images.labels[0]
        assert "0 / 6 verified" in str(queue.query_one("#queue-progress").render())
        classes = queue.item.classes
        assert classes == ["acne", "eczema", "milia", "rosacea"]
        await pilot.press(str(classes.index("eczema") + 1))
        assert queue.chosen == "eczema"
        await pilot.press("enter")
        await settle(pilot)
        assert labels_of(engine, images.images[0]) == {"acne": ("dataset", "rejected"), "eczema": ("human", "verified")}
        assert history_actions(engine, images.images[0]) == [("create", "tester"), ("supersede", "tester")]
        # advanced to the next unverified image
        assert queue.item.label.id == images.labels[1]
        assert "1 / 7 verified" in str(queue.query_one("#queue-progress").render())  # counted locally
        await pilot.pause(2.2)  # and recounted exactly once the user pauses
        await settle(pilot)
        assert "1 / 7 verified" in str(queue.query_one("#queue-progress").render())

        await pilot.press("ctrl+z")
        await settle(pilot)
        assert labels_of(engine, images.images[0]) == {"acne": ("dataset", "pending"), "eczema": ("human", "rejected")}
        assert [a for a, _ in history_actions(engine, images.images[0])][-2:] == ["undo", "undo"]
        assert queue.item.label.id == images.labels[0]  # back on the undone image


@run_async
async def test_enter_verifies_and_skips_to_the_next_unverified(settings, engine, images):
    LabelService(engine, "someone").verify(images.labels[2])  # decided before the TUI opened
    app = make_app(settings, engine, images.storage_dir, start="queue", queue_order="id")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        queue = app.screen
        assert queue.ids == [images.labels[i] for i in (0, 1, 3, 4, 5)]
        await pilot.press("space")
        await settle(pilot)
        await pilot.press("x")
        await settle(pilot)
        with Session(engine) as session:
            assert session.get(ConditionLabel, images.labels[0]).status == "verified"
            assert session.get(ConditionLabel, images.labels[1]).status == "rejected"
        assert queue.item.label.id == images.labels[3]
        # someone else decides the next one while we look at this one: Enter skips it
        LabelService(engine, "someone").verify(images.labels[4])
        await pilot.press("enter")
        await settle(pilot)
        assert queue.item.label.id == images.labels[5]
        # arrows move without changing anything
        await pilot.press("left")
        await settle(pilot)
        assert queue.item.label.id == images.labels[4]
        assert LabelService(engine, "x").get(images.labels[4]).verified_by == "someone"
        await pilot.pause(2.2)
        await settle(pilot)
        assert "4 / 6 verified" in str(queue.query_one("#queue-progress").render())


@run_async
async def test_a_concurrent_change_shows_the_conflict_notice(settings, engine, images):
    app = make_app(settings, engine, images.storage_dir, start="queue", queue_order="id")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        queue = app.screen
        shown = queue.item.label
        assert shown.version == 1
        LabelService(engine, "bob").reject(shown.id, version=1, reason="wrong")
        await pilot.press("enter")
        await settle(pilot)
        notices = [n for n in app._notifications if n.title == "Conflict"]
        assert notices and f"Label {shown.id} was changed by bob since you saw version 1" in notices[-1].message
        # nothing overwritten; the screen now shows bob's version
        assert LabelService(engine, "x").get(shown.id).status == "rejected"
        assert queue.item.label.id == shown.id and queue.item.label.version == 2
        assert history_actions(engine, shown.image_id) == [("reject", "bob")]


@run_async
async def test_severity_key_and_keys_remapped_in_skinctl_toml(settings, engine, images, tmp_path, monkeypatch):
    from skinctl.config import load_settings

    toml = tmp_path / "skinctl.toml"
    toml.write_text('[keys]\nqueue_verify = "v"\nqueue_severity = "e"\n')
    monkeypatch.setenv("SKINCTL_CONFIG", str(toml))
    monkeypatch.setenv("SKINCTL_USER", "tester")
    settings = load_settings({"database_url": settings.database_url, "home": settings.home}).settings
    assert settings.keys == {"queue_verify": "v", "queue_severity": "e"}
    app = make_app(settings, engine, images.storage_dir, start="queue", queue_order="id")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        queue = app.screen
        await pilot.press("e")
        await settle(pilot)
        await pilot.press(*"mild", "enter")
        await settle(pilot)
        assert LabelService(engine, "x").get(images.labels[0]).severity_level == "mild"
        await pilot.press("enter")  # no longer bound to verify
        await settle(pilot)
        assert LabelService(engine, "x").get(images.labels[0]).status == "pending"
        await pilot.press("v")
        await settle(pilot)
        assert LabelService(engine, "x").get(images.labels[0]).status == "verified"
        assert queue.item.label.id == images.labels[1]


@run_async
async def test_help_lists_the_current_screens_keys_with_ids(settings, engine, images):
    app = make_app(settings, engine, images.storage_dir, start="queue")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        from skinctl.tui.screens.help import HelpScreen

        assert isinstance(app.screen, HelpScreen)
        ids = {row[2] for row in app.screen.rows}
        assert {"queue_verify", "queue_reject", "queue_undo", "queue_class_1", "app_help"} <= ids
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


@run_async
async def test_arrows_are_safe_to_hold_down(settings, engine, images):
    """Moving faster than items load: only the last request is shown, nothing changes."""
    app = make_app(settings, engine, images.storage_dir, start="queue", queue_order="id")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        queue = app.screen
        await pilot.press("right", "right", "right", "left", "right", "right")
        await settle(pilot)
        assert queue.item.label.id == images.labels[4] and queue.position == 4
        await pilot.press("right", "right", "right")  # past the end stays on the last
        await settle(pilot)
        assert queue.item.label.id == images.labels[5]
        assert LabelService(engine, "x").history(image_id=images.images[4]) == []
