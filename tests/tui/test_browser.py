from __future__ import annotations

from sqlalchemy import text
from textual.widgets import Checkbox, DataTable, Select

from tests.tui.conftest import SIZE, make_app, run_async, settle, wait_for


def table_ids(app) -> list[int]:
    table = app.screen.query_one(DataTable)
    return [int(table.get_row_at(i)[0]) for i in range(table.row_count)]


@run_async
async def test_filters_narrow_the_table(settings, engine, images):
    app = make_app(settings, engine, images.storage_dir, start="browser")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert table_ids(app) == images.images
        assert "6 images" in str(screen.query_one("#browser-count").render())
        # the side panel shows the first image with its labels and its near-duplicate
        assert "acne pending (dataset)" in str(screen.query_one("#browser-labels").render())
        assert f"image {images.images[1]} distance 3" in str(
            screen.query_one("#browser-duplicates").render()
        )
        assert screen.query_one("#browser-image").image is not None

        screen.query_one("#filter-dataset", Select).value = "faces"
        await settle(pilot)
        assert table_ids(app) == images.images[4:]
        screen.query_one("#filter-class", Select).value = "acne"
        await settle(pilot)
        assert table_ids(app) == [images.images[5]]
        assert "1 images" in str(screen.query_one("#browser-count").render())
        await pilot.press("c")  # clear filters
        await settle(pilot)
        assert table_ids(app) == images.images

        screen.query_one("#filter-flag", Select).value = "dark"
        await settle(pilot)
        assert table_ids(app) == [images.images[4]]
        screen.query_one("#filter-flag", Select).clear()
        screen.query_one(Checkbox).value = True  # only images with duplicates
        await settle(pilot)
        assert table_ids(app) == images.images[:2]
        screen.query_one(Checkbox).value = False
        app.labels.verify(images.labels[2])
        screen.query_one("#filter-verified", Select).value = "verified"
        await settle(pilot)
        assert table_ids(app) == [images.images[2]]
        screen.query_one("#filter-verified", Select).value = "unverified"
        await settle(pilot)
        assert images.images[2] not in table_ids(app) and len(table_ids(app)) == 5


@run_async
async def test_rows_are_paged_in_as_the_cursor_moves(settings, engine, tmp_path):
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO ml_training_images (image_url, image_hash, dataset_source) "
                "SELECT 'file:///nowhere/' || g || '.png', md5(g::text) || md5(g::text), 'bulk' FROM generate_series(1, 250) g"
            )
        )
    app = make_app(settings, engine, tmp_path, start="browser")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(DataTable)
        assert table.row_count == 100  # one page, not the table
        assert "cannot show the image" in str(
            app.screen.query_one("#browser-image").query_one("#halfcell").render()
        )
        table.move_cursor(row=85)
        await settle(pilot)
        assert table.row_count == 200
        table.move_cursor(row=199)
        await settle(pilot)
        assert table.row_count == 250 and app.screen.exhausted
        assert table_ids(app) == list(range(1, 251))


@run_async
async def test_a_lost_connection_notifies_and_recovers(
    settings, engine, images, database_url, server_url
):
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = make_url(database_url).database
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")  # the maintenance database
    app = make_app(settings, engine, images.storage_dir, start="browser")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        with admin.connect() as connection:
            # the server drops every other connection and refuses new ones, like an outage
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            try:
                await pilot.press("r")
                await wait_for(
                    pilot,
                    lambda: any(
                        "Lost the database connection; retrying" in n.message
                        for n in app._notifications
                    ),
                )
                assert app.screen.query_one(DataTable).row_count == 0
            finally:
                connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        # retries back off 0.5 s, 1 s, 2 s ...
        await wait_for(pilot, lambda: app.screen.query_one(DataTable).row_count > 0, timeout=20)
        await settle(pilot)
        assert table_ids(app) == images.images  # the page came back by itself
        assert any("connection is back" in n.message for n in app._notifications)
        assert "Unexpected error" not in [n.title for n in app._notifications]
    admin.dispose()


@run_async
async def test_filters_reviewers_ask_for_split_skin_type_fitzpatrick_and_a_runs_scores(
    settings, engine, images
):
    """#11.8: split, skin type, Fitzpatrick, a run's predicted class, and its mislabel score
    (the run's images, most likely mislabeled first, paged by that order)."""
    from sqlalchemy.orm import Session

    from skinctl.db.models import ImagePrediction, SubjectMetadata, TrainingRun

    ids = images.images
    with Session(engine) as session:
        session.add_all(
            [
                SubjectMetadata(image_id=ids[0], skin_type="oily", fitzpatrick_scale=2),
                SubjectMetadata(image_id=ids[2], skin_type="dry", fitzpatrick_scale=5),
                SubjectMetadata(image_id=ids[3], skin_type="oily", fitzpatrick_scale=5),
            ]
        )
        run = TrainingRun(model_name="condition-cnn", version="7", task="condition")
        session.add(run)
        session.flush()
        for image_id, given, predicted, score in (
            (ids[0], "acne", "eczema", 0.4),
            (ids[1], "eczema", "eczema", 0.1),
            (ids[2], "acne", "rosacea", 0.9),
            (ids[3], "rosacea", "rosacea", 0.2),
        ):
            session.add(
                ImagePrediction(
                    run_id=run.id,
                    image_id=image_id,
                    origin="held-out-test",
                    given_labels=[given],
                    predicted_label=predicted,
                    probabilities={predicted: 1 - score},
                    self_confidence=1 - score,
                    mislabel_score=score,
                )
            )
        session.commit()
        run_id = run.id
    app = make_app(settings, engine, images.storage_dir, start="browser")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        screen = app.screen

        async def choose(widget_id: str, value) -> None:
            screen.query_one(widget_id, Select).value = value
            await settle(pilot)

        await choose("#filter-split", "train")
        assert table_ids(app) == ids[:2]
        await pilot.press("c")
        await settle(pilot)
        await choose("#filter-skin-type", "oily")
        assert table_ids(app) == [ids[0], ids[3]]
        await choose("#filter-fitzpatrick", "5")
        assert table_ids(app) == [ids[3]]
        await pilot.press("c")
        await settle(pilot)
        await choose("#filter-run", str(run_id))
        assert table_ids(app) == [
            ids[2],
            ids[0],
            ids[3],
            ids[1],
        ]  # by mislabel score, highest first
        table = screen.query_one(DataTable)
        assert [table.get_row_at(i)[-2:] for i in range(2)] == [
            ["rosacea", "0.90"],
            ["eczema", "0.40"],
        ]
        await choose("#filter-predicted", "rosacea")
        assert table_ids(app) == [ids[2], ids[3]]


def test_pages_by_mislabel_score_continue_where_the_last_ended(engine, images):
    from sqlalchemy.orm import Session

    from skinctl.db.models import ImagePrediction, TrainingRun
    from skinctl.tui.queries import ImageFilter, image_page

    with Session(engine) as session:
        run = TrainingRun(model_name="m", version="1", task="condition")
        session.add(run)
        session.flush()
        for image_id, score in zip(images.images, (0.5, 0.5, 0.9, 0.1, 0.5, 0.3), strict=True):
            session.add(
                ImagePrediction(
                    run_id=run.id,
                    image_id=image_id,
                    origin="cv",
                    given_labels=["x"],
                    predicted_label="y",
                    probabilities={},
                    self_confidence=1 - score,
                    mislabel_score=score,
                )
            )
        session.commit()
        f = ImageFilter(run_id=run.id)
    pages, after = [], None
    while page := image_page(engine, f, after, limit=2):
        pages.append([row.id for row in page])
        after = page[-1].position
    ids = images.images
    assert pages == [[ids[2], ids[0]], [ids[1], ids[4]], [ids[5], ids[3]]]
