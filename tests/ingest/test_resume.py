"""kill -9 in the middle of an ingest, run it again: the result equals one uninterrupted run.

To kill at a known point the test holds an exclusive lock on `ingest_rejections`; the dataset has
one bad file after six full batches, so the run commits six batches and then blocks inside the
seventh batch's transaction (images and sources inserted, the rejection waiting). SIGKILL then
lands mid-batch, with objects of that batch already stored.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from skinctl.db.models import IngestRun
from tests.conftest import truncate_all
from tests.ingest.helpers import draw, encode, write

ROOT = Path(__file__).resolve().parents[2]
BATCH = 5


def make_dataset(root: Path) -> None:
    for number in range(30):
        write(root / "acne" / f"a_{number:03d}.jpg", encode(draw("spots", number)))
    write(root / "acne" / "m_bad.jpg", b"not a picture")
    for number in range(30):
        write(root / "rosacea" / f"n_{number:03d}.jpg", encode(draw("rings", number)))
    # an exact copy and its own label, in the part after the crash
    write(root / "rosacea" / "z_copy.jpg", (root / "acne" / "a_001.jpg").read_bytes())


def snapshot(engine, storage: Path) -> dict:
    """Everything an ingest writes, without ids and times (which differ between runs)."""
    queries = {
        "images": "SELECT image_hash, local_path, dataset_source, width, height, format, byte_size, phash, "
        "phash_method, quality_flags, split, group_key, substring(image_url from '[0-9a-f]{2}/[0-9a-f]{64}\\.\\w+$') "
        "FROM ml_training_images",
        "sources": "SELECT i.image_hash, s.dataset_source, s.local_path, s.split FROM image_sources s "
        "JOIN ml_training_images i ON i.id = s.image_id",
        "labels": "SELECT i.image_hash, s.local_path, l.condition_type, l.task, l.severity_level, l.metadata::text, "
        "l.verified, l.source, l.status FROM skin_condition_labels l JOIN ml_training_images i ON i.id = l.image_id "
        "JOIN image_sources s ON s.id = l.image_source_id",
        "duplicates": "SELECT a.image_hash, b.image_hash, d.distance, d.method FROM image_duplicates d "
        "JOIN ml_training_images a ON a.id = d.image_id_a JOIN ml_training_images b ON b.id = d.image_id_b",
        "rejected": "SELECT DISTINCT local_path, reason FROM ingest_rejections",
    }
    with engine.connect() as connection:
        state = {
            name: sorted(map(tuple, connection.execute(text(sql)))) for name, sql in queries.items()
        }
    state["stored"] = sorted(
        p.relative_to(storage).as_posix() for p in storage.rglob("*") if p.is_file()
    )
    return state


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_killed_run_resumes_to_the_same_result(cli, engine, database_url, home, tmp_path):
    dataset = tmp_path / "set"
    make_dataset(dataset)
    storage_a = tmp_path / "store-a"
    args = [
        "ingest",
        "images",
        str(dataset),
        "--dataset",
        "resume",
        "--batch-size",
        str(BATCH),
        "--workers",
        "2",
        "--storage",
        str(storage_a),
        "--json",
    ]
    env = {**os.environ, **cli.env, "PYTHONPATH": str(ROOT)}

    blocker = engine.connect()
    blocker.execute(text("LOCK TABLE ingest_rejections IN ACCESS EXCLUSIVE MODE"))
    process = subprocess.Popen(
        [sys.executable, "-m", "skinctl", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:

        def blocked() -> bool:
            assert process.poll() is None, process.communicate()
            with engine.connect() as connection:
                return (
                    connection.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                        )
                    ).scalar_one()
                    > 0
                )

        wait_for(blocked)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        blocker.rollback()
        blocker.close()

    with engine.connect() as connection:
        committed = connection.execute(text("SELECT count(*) FROM image_sources")).scalar_one()
    assert committed == 6 * BATCH  # six whole batches, nothing of the seventh
    stored = len(list(storage_a.rglob("*.jpg")))
    assert stored > committed  # the seventh batch's objects were stored before its commit
    orphans = cli("--storage", str(storage_a), "storage", "gc", "--dry-run", "--json").json()
    assert len(orphans["orphans"]) == stored - committed and orphans["deleted"] == 0

    def lock_released() -> bool:  # the killed server session lets go of the dataset lock
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
    resumed = cli(*args)
    assert resumed.exit_code == 3, resumed.stderr  # the bad file
    summary = resumed.json()
    assert summary["already_ingested"] == 6 * BATCH
    assert summary["ingested"] + summary["exact_duplicates"] == 62 - 1 - 6 * BATCH
    with Session(engine) as session:
        statuses = session.execute(select(IngestRun.status).order_by(IngestRun.id)).scalars().all()
    assert statuses == ["interrupted", "finished"]
    resumed_state = snapshot(engine, storage_a)
    assert (
        cli("--storage", str(storage_a), "storage", "gc", "--dry-run", "--json").json()["orphans"]
        == []
    )

    truncate_all(engine)
    storage_b = tmp_path / "store-b"
    uninterrupted = cli(
        "ingest",
        "images",
        str(dataset),
        "--dataset",
        "resume",
        "--batch-size",
        str(BATCH),
        "--workers",
        "2",
        "--storage",
        str(storage_b),
        "--json",
    )
    assert uninterrupted.exit_code == 3
    assert snapshot(engine, storage_b) == resumed_state
    assert len(resumed_state["images"]) == 60 and len(resumed_state["sources"]) == 61
