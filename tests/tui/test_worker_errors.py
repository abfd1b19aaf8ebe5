from __future__ import annotations

from tests.tui.conftest import SIZE, make_app, run_async, settle, wait_for


@run_async
async def test_a_worker_error_is_logged_under_home_and_the_notice_names_the_file(
    settings, engine, images
):
    app = make_app(settings, engine, images.storage_dir, start="queue")
    log = settings.home / "logs" / "tui.log"
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)

        def broken():
            raise RuntimeError("the disk is on fire")

        app.screen.run_db(broken, group="test")
        await wait_for(
            pilot, lambda: any(n.title == "Unexpected error" for n in app._notifications)
        )
        notice = next(n for n in app._notifications if n.title == "Unexpected error")
        assert "RuntimeError: the disk is on fire" in notice.message and str(log) in notice.message
    text = log.read_text()
    assert "database work failed" in text and "Traceback" in text and "the disk is on fire" in text
