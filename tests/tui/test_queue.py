from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from skinctl.db.models import ConditionLabel, LabelHistory
from skinctl.labels import LabelService, QueueKey
from tests.labels.factory import add_images, add_label
from tests.tui.conftest import SIZE, make_app, run_async, screen_lines, settle, wait_for


def labels_of(engine, image_id):
    with Session(engine) as session:
        return sorted(
            (lb.condition_type, lb.source, lb.status)
            for lb in session.scalars(
                select(ConditionLabel).where(ConditionLabel.image_id == image_id)
            )
        )


def history_of(engine, image_id):
    with Session(engine) as session:
        return [
            (h.action, h.changed_by, h.operation_id)
            for h in session.scalars(
                select(LabelHistory)
                .where(LabelHistory.image_id == image_id)
                .order_by(LabelHistory.id)
            )
        ]


def progress_text(queue) -> str:
    return str(queue.query_one("#queue-progress").render())


@run_async
async def test_class_key_then_enter_saves_the_class_and_undo_restores_it(
    settings, engine, images, monkeypatch
):
    monkeypatch.setattr("skinctl.tui.screens.queue.PROGRESS_RECOUNT_SECONDS", 0.1)
    app = make_app(settings, engine, images.storage_dir, start="queue")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        queue = app.screen
        # conflicts first: images 1 and 2 (near-duplicates with different labels)
        assert queue.item.key == QueueKey(images.images[0], "condition")
        assert "0 / 6 labels verified" in progress_text(queue)
        classes = queue.item.classes
        assert classes == ["acne", "eczema", "milia", "rosacea"]  # commonest first, then by name
        await pilot.press(str(classes.index("eczema") + 1))
        assert queue.chosen == "eczema"
        await pilot.press("enter")
        await settle(pilot)
        assert labels_of(engine, images.images[0]) == [
            ("acne", "dataset", "rejected"),
            ("eczema", "human", "verified"),
        ]
        assert [(a, who) for a, who, _ in history_of(engine, images.images[0])] == [
            ("create", "tester"),
            ("supersede", "tester"),
        ]
        # advanced to the next unverified image
        assert queue.item.key.image_id == images.images[1]
        assert "1 / 7 labels verified" in progress_text(queue)  # counted locally
        await wait_for(
            pilot, lambda: queue.recounts == 1
        )  # and recounted exactly once the user pauses
        assert "1 / 7 labels verified" in progress_text(queue)

        await pilot.press("ctrl+z")
        await settle(pilot)
        assert labels_of(engine, images.images[0]) == [
            ("acne", "dataset", "pending"),
            ("eczema", "human", "rejected"),
        ]
        assert [a for a, _, _ in history_of(engine, images.images[0])][-2:] == ["undo", "undo"]
        assert queue.item.key.image_id == images.images[0]  # back on the undone image


@run_async
async def test_one_image_is_one_item_and_one_decision_settles_all_its_labels(
    settings, engine, images
):
    """#11.4: an image with labels from two files (acne, rosacea) and an exact copy (acne again)
    is one queue item with two candidates; Enter decides them in one operation, the next item is
    another image, and one undo reverts the whole decision."""
    image = images.images[0]
    add_label(engine, image, "rosacea")
    copy = add_label(engine, image, "acne")
    with Session(engine) as session:  # an exact copy's label comes from its own source row
        session.get(ConditionLabel, copy).metadata_ = {"copy": 2}
        session.commit()
    app = make_app(settings, engine, images.storage_dir, start="queue")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        queue = app.screen
        assert [k.image_id for k in queue.keys] == [
            images.images[0],
            images.images[1],
            *images.images[2:],
        ]
        item = queue.item
        assert item.key.image_id == image
        assert [(c.condition, len(c.labels)) for c in item.candidates] == [
            ("acne", 2),
            ("rosacea", 1),
        ]
        assert queue.chosen == "acne"  # what most of its labels say
        await pilot.press("enter")
        await settle(pilot)
        assert labels_of(engine, image) == [
            ("acne", "dataset", "verified"),
            ("acne", "dataset", "verified"),
            ("rosacea", "dataset", "rejected"),
        ]
        assert len({op for _, _, op in history_of(engine, image)}) == 1  # one operation
        assert queue.item.key.image_id != image  # the next item is another image
        await pilot.press("ctrl+z")
        await settle(pilot)
        assert {status for _, _, status in labels_of(engine, image)} == {"pending"}
        assert queue.item.key.image_id == image


@run_async
async def test_more_than_nine_classes_number_keys_and_the_class_picker(
    settings, engine, images, tmp_path
):
    """#11.5: 1..9 go to the commonest classes; `/` opens a type-to-filter picker for all."""
    many = [f"class{n:02d}" for n in range(12)]
    add_images(engine, tmp_path / "store", [("big", name, None) for name in many], seed_offset=6)
    add_images(
        engine, tmp_path / "store", [("big", "class11", None)] * 3, seed_offset=18
    )  # the commonest
    app = make_app(settings, engine, images.storage_dir, start="queue", queue_order="id")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        queue = app.screen
        classes = queue.item.classes
        assert len(classes) == 16 and classes[:2] == ["class11", "acne"]  # 4 and 3 labels
        shown = "\n".join(screen_lines(app))
        assert "9 " in shown and "/: 7 more classes" in shown
        await pilot.press("slash")
        await settle(pilot)
        from skinctl.tui.screens.queue import ClassPicker

        assert isinstance(app.screen, ClassPicker)
        assert app.screen.matches("") == sorted(classes)  # every class, on screen
        await pilot.press(*"ss07")
        assert app.screen.matches("ss07") == ["class07"]
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is queue and queue.chosen == "class07"
        await pilot.press("enter")
        await settle(pilot)
        assert labels_of(engine, images.images[0]) == [
            ("acne", "dataset", "rejected"),
            ("class07", "human", "verified"),
        ]
        await pilot.press("slash")
        await settle(pilot)
        await pilot.press("escape")
        assert app.screen is queue and queue.chosen == queue.item.default_choice


@run_async
async def test_queue_text_keeps_its_separators(settings, engine, images):
    """#11.6: no words run together where styled pieces meet ("image 1derm", "1acne")."""
    app = make_app(settings, engine, images.storage_dir, start="queue")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        shown = "\n".join(screen_lines(app))
        assert f"image {images.images[0]} · derm · train · train/acne/img_0000.png" in shown
        assert "1 acne* · 2 eczema · 3 milia · 4 rosacea" in shown
        assert "acne pending · dataset" in shown


@run_async
async def test_enter_verifies_and_skips_to_the_next_unverified(
    settings, engine, images, monkeypatch
):
    monkeypatch.setattr("skinctl.tui.screens.queue.PROGRESS_RECOUNT_SECONDS", 0.1)
    LabelService(engine, "someone").verify(images.labels[2])  # decided before the TUI opened
    app = make_app(settings, engine, images.storage_dir, start="queue", queue_order="id")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        queue = app.screen
        assert [k.image_id for k in queue.keys] == [images.images[i] for i in (0, 1, 3, 4, 5)]
        await pilot.press("space")
        await settle(pilot)
        await pilot.press("x")
        await settle(pilot)
        with Session(engine) as session:
            assert session.get(ConditionLabel, images.labels[0]).status == "verified"
            assert session.get(ConditionLabel, images.labels[1]).status == "rejected"
        assert queue.item.key.image_id == images.images[3]
        # someone else decides the next one while we look at this one: Enter skips it
        LabelService(engine, "someone").verify(images.labels[4])
        await pilot.press("enter")
        await settle(pilot)
        assert queue.item.key.image_id == images.images[5]
        # arrows move without changing anything
        await pilot.press("left")
        await settle(pilot)
        assert queue.item.key.image_id == images.images[4]
        assert LabelService(engine, "x").get(images.labels[4]).verified_by == "someone"
        await wait_for(pilot, lambda: queue.recounts >= 1)
        await wait_for(pilot, lambda: "4 / 6 labels verified" in progress_text(queue))


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
        assert (
            notices
            and f"Label {shown.id} was changed by bob since you saw version 1"
            in notices[-1].message
        )
        # nothing overwritten; the screen now shows bob's decision
        assert LabelService(engine, "x").get(shown.id).status == "rejected"
        assert queue.item.key.image_id == shown.image_id and queue.item.candidates == []
        assert [(a, who) for a, who, _ in history_of(engine, shown.image_id)] == [("reject", "bob")]


@run_async
async def test_severity_key_and_keys_remapped_in_skinctl_toml(
    settings, engine, images, tmp_path, monkeypatch
):
    from skinctl.config import load_settings

    toml = tmp_path / "skinctl.toml"
    toml.write_text('[keys]\nqueue_verify = "v"\nqueue_severity = "e"\n')
    monkeypatch.setenv("SKINCTL_CONFIG", str(toml))
    monkeypatch.setenv("SKINCTL_USER", "tester")
    settings = load_settings(
        {"database_url": settings.database_url, "home": settings.home}
    ).settings
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
        assert queue.item.key.image_id == images.images[1]


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
        assert {
            "queue_verify",
            "queue_reject",
            "queue_undo",
            "queue_class_1",
            "queue_pick_class",
            "app_help",
        } <= ids
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
        assert queue.item.key.image_id == images.images[4] and queue.position == 4
        await pilot.press("right", "right", "right")  # past the end stays on the last
        await settle(pilot)
        assert queue.item.key.image_id == images.images[5]
        assert LabelService(engine, "x").history(image_id=images.images[4]) == []
