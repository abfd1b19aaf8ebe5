"""Keeping `ml_training_images.image_url` and the stored bytes in agreement: check, migrate, gc.

A row's URL names its backend: `file:///.../ab/abcd....jpg` or `gs://bucket/prefix/ab/abcd....jpg`.
The backend base is the URL without its content key (the last two path segments).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Engine, Table, bindparam, func, select, update

from skinctl.db.models import IngestRun, TrainingImage
from skinctl.errors import SkinctlError, StorageError, UsageError
from skinctl.progress import ReportProgress, no_progress
from skinctl.storage.base import Storage, open_storage

DEFAULT_WORKERS = 8
CONTENT_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}(\.[A-Za-z0-9]+)?$")


class StoreCache:
    """Opened backends by base URL, shared by worker threads."""

    def __init__(self) -> None:
        self._stores: dict[str, Storage] = {}
        self._lock = threading.Lock()

    def add(self, storage: Storage) -> Storage:
        with self._lock:
            return self._stores.setdefault(storage.base_url, storage)

    def locate(self, url: str) -> tuple[Storage, str]:
        """The backend holding `url`, and the object's key in it."""
        parts = url.rsplit("/", 2)
        if len(parts) == 3 and CONTENT_KEY.match(f"{parts[1]}/{parts[2]}"):
            base, key = parts[0], f"{parts[1]}/{parts[2]}"
        else:
            base, _, key = url.rpartition("/")
        with self._lock:
            for store in self._stores.values():
                if url.startswith(store.base_url + "/"):
                    return store, store.key_for(url)
        store = open_storage(base)
        with self._lock:
            store = self._stores.setdefault(store.base_url, store)
        return store, store.key_for(url) if url.startswith(store.base_url + "/") else key


@dataclass(frozen=True)
class Problem:
    id: int
    image_url: str
    dataset_source: str
    problem: str  # missing | corrupt | copy-failed
    detail: str


@dataclass(frozen=True)
class CheckReport:
    """`skinctl storage check`; its `--json` has these fields, in this order."""

    checked: int
    ok: int
    missing: tuple[Problem, ...]
    corrupt: tuple[Problem, ...]

    @property
    def problems(self) -> list[Problem]:
        return sorted(self.missing + self.corrupt, key=lambda p: p.id)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _image_rows(engine: Engine, dataset: str | None) -> list[tuple[int, str, str | None, str]]:
    query = select(
        TrainingImage.id,
        TrainingImage.image_url,
        TrainingImage.image_hash,
        TrainingImage.dataset_source,
    ).order_by(TrainingImage.id)
    if dataset:
        query = query.where(TrainingImage.dataset_source == dataset)
    with engine.connect() as connection:
        return [
            (id_, url, image_hash, source)
            for id_, url, image_hash, source in connection.execute(query)
        ]


def _read_verified(
    stores: StoreCache, row_id: int, url: str, image_hash: str | None, dataset: str
) -> tuple[bytes | None, Problem | None]:
    try:
        store, key = stores.locate(url)
        data = store.get(key)
    except StorageError as error:
        return None, Problem(row_id, url, dataset, "missing", error.message)
    except (SkinctlError, ValueError, OSError) as error:
        return None, Problem(row_id, url, dataset, "missing", f"cannot read: {error}")
    if image_hash and _sha256(data) != image_hash:
        return None, Problem(
            row_id,
            url,
            dataset,
            "corrupt",
            f"bytes hash to {_sha256(data)[:16]}..., expected {image_hash[:16]}...",
        )
    return data, None


def check_images(
    engine: Engine,
    *,
    dataset: str | None = None,
    workers: int = DEFAULT_WORKERS,
    report: ReportProgress = no_progress,
    stores: StoreCache | None = None,
) -> CheckReport:
    """Every row's image exists and its bytes hash to image_hash. Reports stage "check"
    (rows checked of all rows)."""
    stores = stores or StoreCache()
    rows = _image_rows(engine, dataset)
    missing: list[Problem] = []
    corrupt: list[Problem] = []
    report("check", 0, len(rows))

    def check(row: tuple[int, str, str | None, str]) -> Problem | None:
        row_id, url, image_hash, source = row
        return _read_verified(stores, row_id, url, image_hash, source)[1]

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for checked, problem in enumerate(pool.map(check, rows), start=1):
            if problem is not None:
                (corrupt if problem.problem == "corrupt" else missing).append(problem)
            report("check", checked, len(rows))
    return CheckReport(
        checked=len(rows),
        ok=len(rows) - len(missing) - len(corrupt),
        missing=tuple(missing),
        corrupt=tuple(corrupt),
    )


@dataclass(frozen=True)
class MigrateReport:
    """`skinctl storage migrate`; its `--json` has these fields, in this order."""

    target: str
    to_move: int  # rows not yet in the target when the run started
    moved: int  # rows whose image_url now points at the target
    uploaded: int  # objects actually written (the rest were already there)
    already_there: int  # rows that pointed at the target before this run
    failed: tuple[Problem, ...]


def migrate_images(
    engine: Engine,
    target: Storage,
    *,
    batch_size: int = 500,
    workers: int = DEFAULT_WORKERS,
    report: ReportProgress = no_progress,
    stores: StoreCache | None = None,
) -> MigrateReport:
    """Copy every row's image into `target`, verify the copy, then point the rows at it.

    Per batch: copy + read back + hash in a thread pool, then one transaction rewrites the URLs
    of the rows whose copies verified (and only if the URL did not change meanwhile). An
    interrupted run leaves every row pointing at an object that exists; the next run skips rows
    already in the target and finds the copies of the interrupted batch already stored.
    Reports stage "copy" (rows handled of the rows not yet in the target)."""
    if batch_size < 1:
        raise UsageError("--batch-size must be at least 1.")
    stores = stores or StoreCache()
    target = stores.add(target)
    prefix = target.base_url + "/"
    failed: list[Problem] = []
    moved = uploaded_count = 0
    in_target = TrainingImage.image_url.startswith(prefix, autoescape=True)
    with engine.connect() as connection:
        already_there = connection.scalar(select(func.count()).where(in_target)) or 0
        to_move = connection.scalar(select(func.count()).where(~in_target)) or 0

    def copy(
        row: tuple[int, str, str | None, str],
    ) -> tuple[int, str, str | None, Problem | None, bool]:
        row_id, url, image_hash, source = row
        data, problem = _read_verified(stores, row_id, url, image_hash, source)
        if data is None:  # then there is a problem
            return row_id, url, None, problem, False
        try:
            _source_store, key = stores.locate(url)
            if not CONTENT_KEY.match(key) and image_hash:
                key = f"{image_hash[:2]}/{image_hash}" + _suffix(url)
            uploaded = target.put(key, data)
            if _sha256(target.get(key)) != _sha256(data):
                raise StorageError(
                    f"the copy at {target.url_for(key)} does not read back identical"
                )
        except SkinctlError as error:
            return (
                row_id,
                url,
                None,
                Problem(row_id, url, source, "copy-failed", error.message),
                False,
            )
        return row_id, url, target.url_for(key), None, uploaded

    last_id = 0
    handled = 0
    report("copy", 0, to_move)
    # A Core UPDATE on the table (not the ORM entity): executed with a list of parameter
    # sets, it is one executemany, and rows whose URL changed meanwhile are left alone.
    table = cast(Table, TrainingImage.__table__)
    statement = (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .where(table.c.image_url == bindparam("old_url"))
        .values(image_url=bindparam("new_url"))
    )
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while True:
            query = (
                select(
                    TrainingImage.id,
                    TrainingImage.image_url,
                    TrainingImage.image_hash,
                    TrainingImage.dataset_source,
                )
                .where(~in_target, TrainingImage.id > last_id)
                .order_by(TrainingImage.id)
                .limit(batch_size)
            )
            with engine.connect() as connection:
                batch = [tuple(row) for row in connection.execute(query)]
            if not batch:
                break
            last_id = batch[-1][0]
            verified: list[dict] = []
            for row_id, old_url, new_url, problem, uploaded in pool.map(copy, batch):
                if problem is not None:
                    failed.append(problem)
                else:
                    verified.append({"row_id": row_id, "old_url": old_url, "new_url": new_url})
                    uploaded_count += int(uploaded)
                handled += 1
                report("copy", handled, to_move)
            if verified:
                with engine.begin() as connection:  # one transaction per batch
                    connection.execute(statement, verified)
                moved += len(verified)
    return MigrateReport(
        target=target.base_url,
        to_move=to_move,
        moved=moved,
        uploaded=uploaded_count,
        already_there=already_there,
        failed=tuple(failed),
    )


def _suffix(url: str) -> str:
    name = url.rsplit("/", 1)[-1]
    return "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""


@dataclass(frozen=True)
class GcReport:
    """`skinctl storage gc`; its `--json` has these fields, in this order."""

    store: str
    scanned: int
    referenced: int
    orphans: tuple[str, ...]  # URLs of the objects no row references (deleted unless dry_run)
    deleted: int
    dry_run: bool


def running_ingests(engine: Engine) -> list[int]:
    """Ingest runs that are really running: marked so, with their dataset's lock held (a run
    killed with -9 stays marked running until the next ingest of its dataset)."""
    from skinctl.db.locks import ingest_is_live

    with engine.connect() as connection:
        marked = connection.execute(
            select(IngestRun.id, IngestRun.dataset_source).where(IngestRun.status == "running")
        ).all()
        return [run_id for run_id, dataset in marked if ingest_is_live(connection, dataset)]


def collect_garbage(
    engine: Engine,
    storage: Storage,
    *,
    dry_run: bool = True,
    force: bool = False,
) -> GcReport:
    """Objects in `storage` that no ml_training_images row points at; deleted unless dry_run.

    Refuses (unless `force`) while an ingest runs: its objects are stored before its rows are
    committed, so they would look unreferenced."""
    if not dry_run and not force:
        running = running_ingests(engine)
        if running:
            raise UsageError(
                f"Ingest run(s) {', '.join(map(str, running))} are running; their new objects "
                "would look unreferenced.",
                hint="Wait for them to finish, then run this again.",
            )
    prefix = storage.base_url + "/"
    with engine.connect() as connection:
        urls: Iterable[str] = connection.scalars(
            select(TrainingImage.image_url).where(
                TrainingImage.image_url.startswith(prefix, autoescape=True)
            )
        )
        referenced = {url[len(prefix) :] for url in urls}
    scanned = deleted = 0
    orphans: list[str] = []
    for key in storage.iter_keys():
        scanned += 1
        if key not in referenced:
            orphans.append(key)
    orphans.sort()
    if not dry_run:
        for key in orphans:
            storage.delete(key)
            deleted += 1
    return GcReport(
        store=storage.base_url,
        scanned=scanned,
        referenced=len(referenced),
        orphans=tuple(storage.url_for(key) for key in orphans),
        deleted=deleted,
        dry_run=dry_run,
    )
