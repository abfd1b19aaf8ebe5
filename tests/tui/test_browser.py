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
        assert f"image {images.images[1]} distance 3" in str(screen.query_one("#browser-duplicates").render())
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
        assert "cannot show the image" in str(app.screen.query_one("#browser-image").query_one("#halfcell").render())
        table.move_cursor(row=85)
        await settle(pilot)
        assert table.row_count == 200
        table.move_cursor(row=199)
        await settle(pilot)
        assert table.row_count == 250 and app.screen.exhausted
        assert table_ids(app) == list(range(1, 251))


@run_async
async def test_a_lost_connection_notifies_and_recovers(settings, engine, images, database_url, server_url):
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
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )
            try:
                await pilot.press("r")
                await wait_for(
                    pilot, lambda: any("Lost the database connection; retrying" in n.message for n in app._notifications)
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
