"""kill -9 of the driver in the middle of an `--engine ray` ingest (inside a batch's
transaction, as in tests/ingest/test_resume.py), run it again on Ray: the result equals one
uninterrupted local run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from sqlalchemy import text

from tests.conftest import truncate_all
from tests.ingest.test_resume import BATCH, ROOT, make_dataset, snapshot, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_killed_ray_driver_resumes_to_the_local_result(cli, engine, tmp_path, ray_cluster):
    dataset = tmp_path / "set"
    make_dataset(dataset)
    storage_a = tmp_path / "store-a"

    def args(storage, *engine_args: str) -> list[str]:
        return [
            "ingest", "images", str(dataset), "--dataset", "resume", "--batch-size", str(BATCH),
            "--storage", str(storage), "--json", *engine_args,
        ]  # fmt: skip

    on_ray = ("--engine", "ray", "--address", ray_cluster)
    blocker = engine.connect()
    blocker.execute(text("LOCK TABLE ingest_rejections IN ACCESS EXCLUSIVE MODE"))
    process = subprocess.Popen(
        [sys.executable, "-m", "skinctl", *args(storage_a, *on_ray)],
        env={**os.environ, **cli.env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def blocked() -> bool:
            assert process.poll() is None, "the driver ended before it blocked"
            with engine.connect() as connection:
                return bool(
                    connection.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                        )
                    ).scalar_one()
                )

        wait_for(blocked, timeout=120)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        blocker.rollback()
        blocker.close()

    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM image_sources")).scalar_one() == (
            6 * BATCH
        )

    def lock_released() -> bool:
        with engine.connect() as connection:
            got = connection.execute(
                text("SELECT pg_try_advisory_lock(hashtext('skinctl-ingest:resume'))")
            ).scalar()
            if got:
                connection.execute(
                    text("SELECT pg_advisory_unlock(hashtext('skinctl-ingest:resume'))")
                )
            return bool(got)

    wait_for(lock_released)
    resumed = cli(*args(storage_a, *on_ray))
    assert resumed.exit_code == 3, resumed.stderr  # the bad file
    assert resumed.json()["already_ingested"] == 6 * BATCH
    resumed_state = snapshot(engine, storage_a)
    assert (
        cli("--storage", str(storage_a), "storage", "gc", "--dry-run", "--json").json()["orphans"]
        == []
    )

    truncate_all(engine)
    storage_b = tmp_path / "store-b"
    uninterrupted = cli(*args(storage_b, "--workers", "2"))
    assert uninterrupted.exit_code == 3
    assert snapshot(engine, storage_b) == resumed_state
