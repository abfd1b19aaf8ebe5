"""storage check / migrate / gc against real PostgreSQL, a local folder and the GCS emulator."""

from __future__ import annotations

import hashlib
import time

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from skinctl.db.models import IngestRun, TrainingImage
from skinctl.errors import UsageError
from skinctl.storage import open_storage
from skinctl.storage.maintenance import StoreCache, check_images, collect_garbage, migrate_images
from tests.storage.conftest import store_images


def _urls(engine) -> dict[int, str]:
    with engine.connect() as connection:
        return dict(connection.execute(select(TrainingImage.id, TrainingImage.image_url)).all())


def _all_rows_readable(engine) -> None:
    """Every row points at an object that exists and hashes to image_hash."""
    stores = StoreCache()
    with engine.connect() as connection:
        rows = connection.execute(select(TrainingImage.image_url, TrainingImage.image_hash)).all()
    for url, image_hash in rows:
        store, key = stores.locate(url)
        assert hashlib.sha256(store.get(key)).hexdigest() == image_hash, url


def test_check_finds_deleted_and_corrupted_objects_on_gcs(engine, gcs, gcs_url, storage_cli):
    ids = store_images(engine, gcs, 6)
    store_images(engine, gcs, 2, dataset="other", start=100)
    urls = _urls(engine)
    deleted_key = gcs.key_for(urls[ids[1]])
    corrupt_key = gcs.key_for(urls[ids[4]])
    gcs.delete(deleted_key)
    gcs.put(corrupt_key, b"not the original bytes")

    result = storage_cli("storage", "check", "--json")
    assert result.exit_code == 3, result.stderr
    report = result.json()
    assert list(report) == ["checked", "ok", "missing", "corrupt"]
    assert list(report["missing"][0]) == ["id", "image_url", "dataset_source", "problem", "detail"]
    assert report["checked"] == 8 and report["ok"] == 6
    assert [p["id"] for p in report["missing"]] == [ids[1]]
    assert report["missing"][0]["image_url"] == f"{gcs_url}/{deleted_key}"
    assert [p["id"] for p in report["corrupt"]] == [ids[4]]
    assert "expected" in report["corrupt"][0]["detail"]

    human = storage_cli("storage", "check")
    assert human.exit_code == 3
    assert "1 missing, 1 corrupt" in human.stdout
    # per-item failures go to stderr, like every command's; the summary stays on stdout
    assert deleted_key in human.stderr and deleted_key not in human.stdout

    only_other = storage_cli("storage", "check", "--dataset", "other", "--json")
    assert only_other.exit_code == 0 and only_other.json()["checked"] == 2


def test_check_of_a_healthy_local_store_exits_zero(engine, local_store, cli):
    store_images(engine, local_store, 5)
    result = cli("storage", "check", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json() == {"checked": 5, "ok": 5, "missing": [], "corrupt": []}


def test_migrate_local_to_gcs_interrupted_then_resumed_then_back(
    engine, local_store, gcs, gcs_url, storage_cli
):
    ids = store_images(engine, local_store, 13)
    rows_seen = 0

    def interrupt_mid_second_batch(stage: str, completed: int, total: int | None) -> None:
        nonlocal rows_seen
        rows_seen = completed
        if rows_seen == 7:  # batch 1 (5 rows) committed; batch 2 copied in part, not committed
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        migrate_images(engine, gcs, batch_size=5, workers=3, report=interrupt_mid_second_batch)
    urls = _urls(engine)
    moved = [row_id for row_id in ids if urls[row_id].startswith(gcs_url + "/")]
    assert moved == ids[:5]  # exactly the committed batch, in id order
    _all_rows_readable(engine)  # nothing points at an object that is not there

    result = storage_cli("storage", "migrate", "--to", gcs_url, "--batch-size", "5", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["already_there"] == 5 and report["to_move"] == 8 and report["moved"] == 8
    # rows 6 and 7 were copied before the interruption surfaced: not uploaded twice
    assert report["uploaded"] <= 6 and report["failed"] == []
    assert all(url.startswith(gcs_url + "/") for url in _urls(engine).values())
    assert len(list(gcs.iter_keys())) == 13
    _all_rows_readable(engine)

    again = storage_cli("storage", "migrate", "--to", gcs_url, "--json").json()
    assert (again["to_move"], again["moved"], again["uploaded"]) == (0, 0, 0)  # idempotent

    # And back: the local copies are still there, so nothing needs uploading, only repointing.
    back = storage_cli("storage", "migrate", "--to", local_store.base_url, "--json").json()
    assert back["moved"] == 13 and back["uploaded"] == 0
    assert all(url.startswith(local_store.base_url + "/") for url in _urls(engine).values())
    _all_rows_readable(engine)


def test_migrate_back_from_gcs_to_an_empty_folder(engine, gcs, tmp_path, storage_cli):
    store_images(engine, gcs, 4)
    target = tmp_path / "restored"
    result = storage_cli("storage", "migrate", "--to", str(target), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["uploaded"] == 4
    local = open_storage(str(target))
    assert all(url.startswith(local.base_url + "/") for url in _urls(engine).values())
    _all_rows_readable(engine)


def test_migrate_skips_corrupt_and_missing_sources_and_exits_3(
    engine, local_store, gcs, gcs_url, storage_cli
):
    ids = store_images(engine, local_store, 4)
    urls = _urls(engine)
    local_store.delete(local_store.key_for(urls[ids[0]]))
    (local_store.root / local_store.key_for(urls[ids[2]])).write_bytes(b"bit rot")
    result = storage_cli("storage", "migrate", "--to", gcs_url, "--json")
    assert result.exit_code == 3
    report = result.json()
    assert list(report) == ["target", "to_move", "moved", "uploaded", "already_there", "failed"]
    assert list(report["failed"][0]) == ["id", "image_url", "dataset_source", "problem", "detail"]
    assert report["moved"] == 2
    assert sorted((p["id"], p["problem"]) for p in report["failed"]) == [
        (ids[0], "missing"),
        (ids[2], "corrupt"),
    ]
    after = _urls(engine)
    assert after[ids[0]] == urls[ids[0]] and after[ids[2]] == urls[ids[2]]  # left where they were
    assert not any(key.endswith(urls[ids[2]].rsplit("/", 1)[-1]) for key in gcs.iter_keys())


def test_gc_lists_and_deletes_unreferenced_objects(engine, gcs, gcs_url, storage_cli):
    store_images(engine, gcs, 3)
    gcs.put("ab/orphan-one.jpg", b"orphan 1")
    gcs.put("cd/orphan-two.jpg", b"orphan 2")

    dry = storage_cli("--storage", gcs_url, "storage", "gc", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    report = dry.json()
    assert list(report) == ["store", "scanned", "referenced", "orphans", "deleted", "dry_run"]
    assert report["orphans"] == [f"{gcs_url}/ab/orphan-one.jpg", f"{gcs_url}/cd/orphan-two.jpg"]
    assert (report["scanned"], report["referenced"], report["deleted"]) == (5, 3, 0)
    assert len(list(gcs.iter_keys())) == 5

    done = storage_cli("--storage", gcs_url, "storage", "gc")
    assert done.exit_code == 0 and "deleted 2" in done.stdout
    assert len(list(gcs.iter_keys())) == 3
    _all_rows_readable(engine)


def test_gc_waits_for_running_ingests(engine, local_store, cli):
    from sqlalchemy import func, select

    from skinctl.db.locks import ingest_lock_key

    store_images(engine, local_store, 1)
    local_store.put("ee/new-from-running-ingest.jpg", b"not yet committed")
    with Session(engine) as session:
        session.add(IngestRun(dataset_source="skin-types", status="running"))
        session.commit()
    ingest_session = engine.connect()  # plays the live ingest: it holds its dataset's lock
    lock = func.hashtext(ingest_lock_key("skin-types"))
    assert ingest_session.execute(select(func.pg_try_advisory_lock(lock))).scalar()
    ingest_backend = ingest_session.execute(select(func.pg_backend_pid())).scalar_one()
    try:
        with pytest.raises(UsageError, match="are running"):
            collect_garbage(engine, local_store, dry_run=False)
        assert local_store.exists("ee/new-from-running-ingest.jpg")
        assert collect_garbage(engine, local_store, dry_run=True).orphans == (
            local_store.url_for("ee/new-from-running-ingest.jpg"),
        )
        result = cli("--storage", local_store.base_url, "storage", "gc")
        assert result.exit_code == 2 and "are running" in result.stderr
    finally:
        # the ingest dies (kill -9): its connection goes (not back to the pool, where a
        # session-level advisory lock would live on), its row still says running
        ingest_session.invalidate()
        ingest_session.close()
    # The server ends that backend (and frees its locks) a moment after the client hangs up:
    # wait for it to be gone, as a later gc would find it.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            alive = connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                {"pid": ingest_backend},
            ).scalar_one()
        if not alive:
            break
        time.sleep(0.05)
    with engine.connect() as connection:
        assert connection.execute(select(IngestRun.status)).scalar_one() == "running"
    assert collect_garbage(engine, local_store, dry_run=False).deleted == 1


def test_check_reports_rows_with_unreadable_urls(engine, local_store):
    store_images(engine, local_store, 2)
    with engine.begin() as connection:
        connection.execute(
            update(TrainingImage).where(TrainingImage.id == 1).values(image_url="s3://x/ab/cd.jpg")
        )
    reports = []
    report = check_images(engine, report=lambda *args: reports.append(args))
    assert [p.id for p in report.missing] == [1] and report.ok == 1
    # cumulative progress of one stage, ending at the total
    assert reports[0] == ("check", 0, 2) and reports[-1] == ("check", 2, 2)
