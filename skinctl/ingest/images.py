"""`skinctl ingest images`: validate, hash, store and load an image dataset into PostgreSQL.

The shape of a run:
1. the dataset reader lists every image with its labels (stable order, sorted by path);
2. paths this dataset already has in `image_sources` are not read again (resume, idempotency);
   their labels and metadata are still applied, so a rerun with a new label file adds them;
3. a process pool reads each file and runs `imageproc.analyse_bytes` (the ONE decode path),
   then stores the bytes content-addressed (`<sha[:2]>/<sha>.<ext>`) BEFORE the parent commits
   the rows: a crash leaves at most objects that the rerun references again (a re-put of the
   same content is a no-op), never a row pointing at nothing;
4. the parent writes rows in one transaction per batch (multi-row INSERT ... ON CONFLICT), so a
   kill -9 loses at most the batch in flight and never leaves half of one;
5. near duplicates are linked after the rows are committed (`skinctl.dedup`).

One `ingest_runs` row per run holds the options, running counts and status. A per-dataset
advisory lock keeps two runs of one dataset apart and tells a stale `running` row (killed run)
from a live one.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import stat
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skinctl.datasets.metadata import attach_subject_metadata, read_subject_table
from skinctl.datasets.readers import DatasetScan, ImageEntry, scan_dataset
from skinctl.errors import InputRejected, SkinctlError, UsageError
from skinctl.ingest.imageproc import (
    DEFAULT_MAX_PIXELS,
    PHASH_METHOD,
    ImageFacts,
    ImageRejected,
    analyse_bytes,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from skinctl.config import Settings

MAX_FILE_BYTES = 512 * 1024 * 1024  # larger files are refused before being read into memory
DEFAULT_BATCH_SIZE = 500
DEFAULT_NEAR_DUPLICATE_DISTANCE = 8
POOL_CHUNKSIZE = 8
# Column widths of the plan's tables: longer values are cut rather than failing a batch.
LOCAL_PATH_MAX = 255
CONDITION_MAX = 100
SEVERITY_MAX = 50
SPLIT_MAX = 16
GROUP_MAX = 255


@dataclass(frozen=True)
class IngestOptions:
    dataset: str
    storage_url: str
    layout: str = "auto"
    labels: Path | None = None
    metadata: Path | None = None
    filename_pattern: str | None = None
    class_level: int | None = None
    workers: int = 1
    batch_size: int = DEFAULT_BATCH_SIZE
    near_duplicate_distance: int = DEFAULT_NEAR_DUPLICATE_DISTANCE
    link_near_duplicates: bool = True  # False: left to `skinctl dedup scan`
    dry_run: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    started_by: str | None = None

    def validate(self) -> None:
        if not self.dataset.strip() or len(self.dataset) > 100:
            raise UsageError("--dataset must be a name of 1 to 100 characters.")
        if self.workers < 1:
            raise UsageError("--workers must be at least 1.")
        if self.batch_size < 1:
            raise UsageError("--batch-size must be at least 1.")
        if not 0 <= self.near_duplicate_distance <= 15:
            raise UsageError("--near-duplicate-distance must be between 0 and 15 bits.")

    def as_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


@dataclass
class Rejection:
    local_path: str
    reason: str
    detail: str


@dataclass
class Outcome:
    """What a worker found for one file."""

    index: int
    facts: ImageFacts | None = None
    image_url: str | None = None
    stored_new: bool = False
    reason: str | None = None
    detail: str | None = None


@dataclass
class IngestSummary:
    dataset: str
    source: str
    layout: str
    dry_run: bool
    run_id: int | None = None
    status: str = "running"
    notes: list[str] = field(default_factory=list)
    scanned: int = 0
    ingested: int = 0
    exact_duplicates: int = 0
    already_ingested: int = 0
    near_duplicates: int = 0
    near_duplicate_method: str | None = None
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    labels: int = 0
    unlabeled: int = 0
    metadata_rows: int = 0
    metadata_problems: list[str] = field(default_factory=list)
    metadata_unmatched_rows: int = 0
    skipped_non_image_files: int = 0
    stored_objects: int = 0
    seconds: float = 0.0
    images_per_second: float = 0.0
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def has_rejections(self) -> bool:
        return self.rejected > 0 or bool(self.metadata_problems)

    @property
    def nothing_new(self) -> bool:
        return self.ingested == 0 and self.exact_duplicates == 0 and self.labels == 0 and self.metadata_rows == 0

    def counts(self) -> dict[str, Any]:
        """What the ingest_runs row records."""
        data = self.as_json()
        for key in ("dataset", "source", "layout", "dry_run", "run_id", "status", "notes", "metadata_problems"):
            data.pop(key)
        data["metadata_problems"] = len(self.metadata_problems)
        return data

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("rejections")
        data["nothing_new"] = self.nothing_new
        return data


# --- where the images are ------------------------------------------------------------------


def resolve_source(arg: str, settings: Settings) -> tuple[Path, str | None]:
    """Map the PATH argument to (folder, layout or None for the reader's choice).

    A path that exists is used as is; a catalog slug (`skin-types`) means the newest completed
    fetch of that dataset, read with the catalog's layout."""
    from skinctl.datasets.catalog import looks_like_slug, resolve_fetched
    from skinctl.errors import NotFound

    path = Path(arg).expanduser()
    if path.exists():
        return path, None
    if looks_like_slug(arg):
        try:
            return resolve_fetched(arg, settings)
        except NotFound:
            raise InputRejected(
                f"{arg!r} is neither a folder nor a dataset in the catalog.",
                hint="Give the folder that holds the images; `skinctl fetch list` shows the catalog.",
            ) from None
    raise InputRejected(f"{arg} does not exist.", hint="Give the folder that holds the images.")


# --- the per-file work (runs in worker processes) -------------------------------------------

_worker_storage = None
_worker_max_pixels = DEFAULT_MAX_PIXELS


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM when the parent dies (kill -9), instead of lingering."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _init_worker(storage_url: str | None, max_pixels: int, in_pool: bool = False) -> None:
    global _worker_storage, _worker_max_pixels
    if in_pool:
        import signal

        _die_with_parent()
        # Ctrl-C is the parent's to handle (it records the run as interrupted and stops the pool)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if storage_url is not None:
        from skinctl.storage import open_storage

        _worker_storage = open_storage(storage_url)
    else:
        _worker_storage = None
    _worker_max_pixels = max_pixels


def read_file(path: Path) -> bytes:
    """The file's bytes; ImageRejected for what cannot be read (loops, permissions, devices)."""
    try:
        info = os.stat(path)  # follows symlinks: a loop raises ELOOP here
        if not stat.S_ISREG(info.st_mode):
            raise ImageRejected("not_a_file", "not a regular file (a device, socket or pipe)")
        if info.st_size > MAX_FILE_BYTES:
            raise ImageRejected(
                "too_large", f"{info.st_size:,} bytes is over the limit of {MAX_FILE_BYTES:,}"
            )
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ImageRejected("symlink_loop", "symbolic link loop (the link points back at itself)") from None
        if error.errno in (errno.EACCES, errno.EPERM):
            raise ImageRejected("unreadable", "permission denied") from None
        if error.errno == errno.ENOENT:
            raise ImageRejected("missing_file", "file vanished or is a dangling symbolic link") from None
        raise ImageRejected("unreadable", f"cannot read the file: {error.strerror or error}") from None


def process_file(task: tuple[int, str]) -> Outcome:
    """Read, validate, hash and (unless a dry run) store one file."""
    index, path = task
    try:
        data = read_file(Path(path))
        facts = analyse_bytes(data, _worker_max_pixels)
    except ImageRejected as rejected:
        return Outcome(index, reason=rejected.reason, detail=rejected.detail)
    except Exception as error:  # a decoder tripping on a malformed file: reject it, go on
        return Outcome(index, reason="corrupt", detail=f"the decoder failed: {type(error).__name__}: {error}")
    outcome = Outcome(index, facts=facts)
    if _worker_storage is not None:
        from skinctl.storage import content_key

        key = content_key(facts.sha256, facts.ext)
        outcome.stored_new = _worker_storage.put(key, data)
        outcome.image_url = _worker_storage.url_for(key)
    return outcome


def _outcomes(tasks: list[tuple[int, str]], options: IngestOptions) -> Iterator[Outcome]:
    """Outcomes in task order, computed by `options.workers` processes."""
    storage_url = None if options.dry_run else options.storage_url
    if options.workers == 1 or len(tasks) < 2:
        _init_worker(storage_url, options.max_pixels)
        for task in tasks:
            yield process_file(task)
        return
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # fork: the workers need no re-import and touch nothing of the parent's database connections
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    # an executor, not multiprocessing.Pool: a worker that dies (a decoder crash) breaks the
    # executor with an error instead of leaving the run waiting forever for its results
    executor = ProcessPoolExecutor(
        options.workers, mp_context=context, initializer=_init_worker,
        initargs=(storage_url, options.max_pixels, True),
    )
    try:
        yield from executor.map(process_file, tasks, chunksize=POOL_CHUNKSIZE)
    except BrokenProcessPool:
        raise SkinctlError(
            "A worker process died while reading images (a crash in an image decoder or out of memory).",
            hint="Committed batches are kept: run the same command again to resume, with fewer --workers if memory is short.",
        ) from None
    finally:
        # on Ctrl-C or an error, drop the queued work instead of finishing it
        executor.shutdown(wait=False, cancel_futures=True)


# --- rows -----------------------------------------------------------------------------------


@dataclass
class Pending:
    """An entry waiting for its batch: read now (outcome), or already known (source_id)."""

    entry: ImageEntry
    outcome: Outcome | None = None
    source_id: int | None = None
    image_id: int | None = None


def _cut(value: str | None, limit: int) -> str | None:
    return None if value is None else value[:limit]


def _label_rows(dataset: str, entry: ImageEntry, image_id: int, source_id: int) -> list[dict[str, Any]]:
    return [
        {
            "image_id": image_id,
            "image_source_id": source_id,
            "condition_type": _cut(label.condition_type, CONDITION_MAX),
            "severity_level": _cut(label.severity_level, SEVERITY_MAX),
            "metadata": {"dataset": dataset, "path": entry.local_path, **label.origin},
            "verified": False,
            "task": label.task,
            "source": "dataset",
            "status": "pending",
        }
        for label in entry.labels
    ]


def _subject_row(entry: ImageEntry, image_id: int) -> dict[str, Any] | None:
    subject = dict(entry.subject or {})
    if entry.skin_type and not subject.get("skin_type"):
        subject["skin_type"] = entry.skin_type
    if entry.subject_id and not subject.get("subject_id"):
        subject["subject_id"] = entry.subject_id
    if not subject:
        return None
    row = {
        "image_id": image_id,
        "gender": subject.get("gender"),
        "age_range": subject.get("age_range"),
        "ethnicity": subject.get("ethnicity"),
        "skin_type": subject.get("skin_type"),
        "fitzpatrick_scale": subject.get("fitzpatrick_scale"),
        "subject_id": _cut(subject.get("subject_id"), 100),
        "additional_info": subject.get("additional_info"),
    }
    return row


class BatchWriter:
    """Writes one batch of pending entries in one transaction."""

    def __init__(self, options: IngestOptions, run_id: int, summary: IngestSummary) -> None:
        self.options = options
        self.run_id = run_id
        self.summary = summary

    def write(self, connection: Connection, batch: list[Pending], rejections: list[Rejection]) -> None:
        """Multi-row INSERT ... ON CONFLICT DO NOTHING through psycopg2's execute_values, inside
        the caller's transaction (SQLAlchemy's per-row parameter handling cost more than the
        database did)."""
        from psycopg2.extras import Json, execute_values

        dataset = self.options.dataset
        cursor = connection.connection.cursor()

        def insert(sql: str, rows: list[tuple]) -> int:
            """Run one multi-row INSERT ... RETURNING id; how many rows were inserted."""
            return len(execute_values(cursor, sql, rows, page_size=max(1, len(rows)), fetch=True))

        read = [p for p in batch if p.outcome is not None and p.outcome.facts is not None]
        if read:
            image_rows: dict[str, tuple] = {}
            for pending in read:
                facts = pending.outcome.facts
                if facts.sha256 in image_rows:
                    continue  # the first path of these bytes owns the image row
                entry = pending.entry
                image_rows[facts.sha256] = (
                    pending.outcome.image_url,
                    entry.local_path if len(entry.local_path) <= LOCAL_PATH_MAX else None,
                    facts.sha256,
                    dataset,
                    facts.width,
                    facts.height,
                    facts.format,
                    facts.byte_size,
                    facts.phash,
                    PHASH_METHOD,
                    facts.quality_flags,
                    _cut(entry.split, SPLIT_MAX),
                    _cut(entry.group_key, GROUP_MAX),
                    self.run_id,
                )
            inserted = insert(
                "INSERT INTO ml_training_images (image_url, local_path, image_hash, dataset_source, width, "
                "height, format, byte_size, phash, phash_method, quality_flags, split, group_key, "
                "ingest_run_id) VALUES %s ON CONFLICT (image_hash) DO NOTHING RETURNING id",
                list(image_rows.values()),
            )
            self.summary.ingested += inserted
            self.summary.exact_duplicates += len(read) - inserted
            cursor.execute(
                "SELECT image_hash, id FROM ml_training_images WHERE image_hash = ANY(%s)", (list(image_rows),)
            )
            id_by_hash = dict(cursor.fetchall())
            insert(
                "INSERT INTO image_sources (image_id, dataset_source, local_path, split, ingest_run_id) "
                "VALUES %s ON CONFLICT ON CONSTRAINT uq_image_sources_dataset_path DO NOTHING RETURNING id",
                [
                    (id_by_hash[p.outcome.facts.sha256], dataset, p.entry.local_path,
                     _cut(p.entry.split, SPLIT_MAX), self.run_id)
                    for p in read
                ],
            )
            cursor.execute(
                "SELECT local_path, id, image_id FROM image_sources "
                "WHERE dataset_source = %s AND local_path = ANY(%s)",
                (dataset, [p.entry.local_path for p in read]),
            )
            source_by_path = {path: (source_id, image_id) for path, source_id, image_id in cursor.fetchall()}
            for pending in read:
                pending.source_id, pending.image_id = source_by_path[pending.entry.local_path]

        placed = [p for p in batch if p.source_id is not None]
        label_rows = [
            (r["image_id"], r["image_source_id"], r["condition_type"], r["severity_level"], Json(r["metadata"]),
             r["verified"], r["task"], r["source"], r["status"])
            for p in placed
            for r in _label_rows(dataset, p.entry, p.image_id, p.source_id)
        ]
        if label_rows:
            self.summary.labels += insert(
                "INSERT INTO skin_condition_labels (image_id, image_source_id, condition_type, severity_level, "
                "metadata, verified, task, source, status) VALUES %s "
                "ON CONFLICT ON CONSTRAINT uq_skin_condition_labels_origin DO NOTHING RETURNING id",
                label_rows,
            )
        subject_rows = [
            (r["image_id"], r["gender"], r["age_range"], r["ethnicity"], r["skin_type"], r["fitzpatrick_scale"],
             r["subject_id"], Json(r["additional_info"]) if r["additional_info"] is not None else None)
            for p in placed
            if (r := _subject_row(p.entry, p.image_id)) is not None
        ]
        if subject_rows:
            self.summary.metadata_rows += insert(
                "INSERT INTO subject_metadata (image_id, gender, age_range, ethnicity, skin_type, "
                "fitzpatrick_scale, subject_id, additional_info) VALUES %s "
                "ON CONFLICT ON CONSTRAINT uq_subject_metadata_image_id DO NOTHING RETURNING id",
                subject_rows,
            )
        if rejections:
            insert(
                "INSERT INTO ingest_rejections (ingest_run_id, dataset_source, local_path, reason, detail) "
                "VALUES %s RETURNING id",
                [(self.run_id, dataset, r.local_path, r.reason, r.detail) for r in rejections],
            )
        # running counts commit with the rows they count
        cursor.execute(
            "UPDATE ingest_runs SET counts = %s WHERE id = %s", (Json(self.summary.counts()), self.run_id)
        )
        cursor.close()


# --- the run --------------------------------------------------------------------------------


def _known_sources(engine: Engine, dataset: str) -> dict[str, tuple[int, int]]:
    from sqlalchemy import select

    from skinctl.db.models import ImageSource

    with engine.connect() as connection:
        return {
            path: (source_id, image_id)
            for path, source_id, image_id in connection.execute(
                select(ImageSource.local_path, ImageSource.id, ImageSource.image_id).where(
                    ImageSource.dataset_source == dataset
                )
            )
        }


def _existing_hashes(engine: Engine, hashes: list[str]) -> set[str]:
    from sqlalchemy import select

    from skinctl.db.models import TrainingImage

    found: set[str] = set()
    with engine.connect() as connection:
        for start in range(0, len(hashes), 5000):
            found.update(
                connection.execute(
                    select(TrainingImage.image_hash).where(TrainingImage.image_hash.in_(hashes[start : start + 5000]))
                ).scalars()
            )
    return found


def prepare_scan(source: Path, options: IngestOptions, summary: IngestSummary) -> DatasetScan:
    scan = scan_dataset(
        source,
        options.layout,
        labels=options.labels,
        class_level=options.class_level,
        filename_pattern=options.filename_pattern,
    )
    summary.layout = scan.layout
    summary.notes += scan.notes
    if options.metadata is not None:
        table = read_subject_table(options.metadata)
        matched, unmatched = attach_subject_metadata(scan.entries, table)
        summary.metadata_problems = [str(problem) for problem in table.problems]
        summary.metadata_unmatched_rows = unmatched
        summary.notes.append(
            f"metadata from {options.metadata.name}: {table.rows} rows keyed by {table.key}, "
            f"{matched} images matched, {unmatched} rows matched no image"
        )
    summary.scanned = len(scan.entries)
    summary.unlabeled = scan.unlabeled
    summary.skipped_non_image_files = scan.skipped_files
    return scan


def early_rejections(scan: DatasetScan) -> list[Rejection]:
    """Files rejected before reading: listed in a label file but absent, or named with bytes
    that are not UTF-8 (PostgreSQL text cannot hold them; they are taken out of the scan)."""
    rejections = [Rejection(m.local_path, "missing_file", m.detail) for m in scan.missing]
    kept = []
    for entry in scan.entries:
        try:
            entry.local_path.encode("utf-8")
        except UnicodeEncodeError:
            shown = entry.local_path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            rejections.append(Rejection(shown, "bad_file_name", "the file name is not valid UTF-8; rename the file"))
        else:
            kept.append(entry)
    scan.entries = kept
    return rejections


def ingest_images(
    engine: Engine,
    source: Path,
    options: IngestOptions,
    *,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_link_progress: Callable[[str, int, int], None] | None = None,
) -> IngestSummary:
    """Ingest the dataset at `source`. `on_start(total)` and `on_progress(n)` drive a progress
    bar; `on_link_progress(stage, done, total)` reports the near-duplicate linking after it."""
    options.validate()
    started = time.monotonic()
    summary = IngestSummary(options.dataset, str(source), options.layout, options.dry_run)
    scan = prepare_scan(source, options, summary)
    missing = early_rejections(scan)
    if options.dry_run:
        _dry_run(engine, scan, options, summary, missing, on_start, on_progress)
        summary.status = "dry_run"
        _finish_timing(summary, started)
        return summary

    from sqlalchemy import func, select, text, update

    from skinctl.db.locks import ingest_lock_key
    from skinctl.db.models import IngestRun

    lock_connection = engine.connect()
    try:
        got_lock = lock_connection.execute(
            select(func.pg_try_advisory_lock(func.hashtext(ingest_lock_key(options.dataset))))
        ).scalar()
        lock_connection.commit()
        if not got_lock:
            raise SkinctlError(
                f"Another ingest of dataset {options.dataset!r} is running.",
                hint="Wait for it to finish (see ingest_runs), then run this again.",
            )
        with engine.begin() as connection:
            # we hold the lock, so any run still marked running was killed
            connection.execute(
                update(IngestRun)
                .where(IngestRun.dataset_source == options.dataset, IngestRun.status == "running")
                .values(status="interrupted", finished_at=func.now())
            )
            summary.run_id = connection.execute(
                text(
                    "INSERT INTO ingest_runs (dataset_source, source_path, status, started_by, options, counts) "
                    "VALUES (:dataset, :source, 'running', :user, CAST(:options AS jsonb), CAST(:counts AS jsonb)) RETURNING id"
                ),
                {
                    "dataset": options.dataset,
                    "source": str(source),
                    "user": options.started_by,
                    "options": _json(options.as_json()),
                    "counts": _json(summary.counts()),
                },
            ).scalar_one()
        try:
            _run(engine, scan, options, summary, missing, on_start, on_progress)
            if options.link_near_duplicates:
                _link(engine, options, summary, on_link_progress)
            else:
                summary.near_duplicate_method = "deferred: run `skinctl dedup scan`"
            summary.status = "finished"
        except KeyboardInterrupt:
            summary.status = "interrupted"
            raise
        except BaseException:
            summary.status = "failed"
            raise
        finally:
            _finish_timing(summary, started)
            with engine.begin() as connection:
                connection.execute(
                    update(IngestRun)
                    .where(IngestRun.id == summary.run_id)
                    .values(status=summary.status, finished_at=func.now(), counts=summary.counts())
                )
    finally:
        try:
            lock_connection.execute(select(func.pg_advisory_unlock(func.hashtext(ingest_lock_key(options.dataset)))))
            lock_connection.commit()
        finally:
            lock_connection.close()
    return summary


def _json(value: Any) -> str:
    from skinctl.console import to_json

    return to_json(value)


def _finish_timing(summary: IngestSummary, started: float) -> None:
    summary.seconds = round(time.monotonic() - started, 3)
    read = summary.ingested + summary.exact_duplicates + summary.rejected
    summary.images_per_second = round(read / summary.seconds, 1) if summary.seconds > 0 else 0.0


def _reject(summary: IngestSummary, rejection: Rejection) -> None:
    summary.rejections.append(rejection)
    summary.rejected += 1
    summary.rejected_by_reason[rejection.reason] = summary.rejected_by_reason.get(rejection.reason, 0) + 1


def _run(
    engine: Engine,
    scan: DatasetScan,
    options: IngestOptions,
    summary: IngestSummary,
    missing: list[Rejection],
    on_start: Callable[[int], None] | None,
    on_progress: Callable[[int], None] | None,
) -> None:
    known = _known_sources(engine, options.dataset)
    writer = BatchWriter(options, summary.run_id, summary)
    if on_start:
        on_start(len(scan.entries))

    batch: list[Pending] = []
    rejections: list[Rejection] = []

    def flush() -> None:
        with engine.begin() as connection:
            writer.write(connection, batch, rejections)
        batch.clear()
        rejections.clear()

    for rejection in missing:
        _reject(summary, rejection)
        rejections.append(rejection)

    # already-ingested paths: no read, but their labels and metadata are (re)applied
    for entry in scan.entries:
        if entry.local_path in known:
            source_id, image_id = known[entry.local_path]
            batch.append(Pending(entry, source_id=source_id, image_id=image_id))
            summary.already_ingested += 1
            if len(batch) >= options.batch_size:
                flush()
    if on_progress and summary.already_ingested:
        on_progress(summary.already_ingested)
    if batch or rejections:
        flush()

    to_read = [entry for entry in scan.entries if entry.local_path not in known]
    tasks = [(index, str(entry.path)) for index, entry in enumerate(to_read)]
    stored_hashes: set[str] = set()
    for outcome in _outcomes(tasks, options):
        entry = to_read[outcome.index]
        if outcome.facts is None:
            rejection = Rejection(entry.local_path, outcome.reason or "rejected", outcome.detail or "")
            _reject(summary, rejection)
            rejections.append(rejection)
        else:
            # two workers may both store the same new bytes at once: count the object once
            if outcome.stored_new and outcome.facts.sha256 not in stored_hashes:
                stored_hashes.add(outcome.facts.sha256)
                summary.stored_objects += 1
            batch.append(Pending(entry, outcome=outcome))
        if on_progress:
            on_progress(1)
        if len(batch) + len(rejections) >= options.batch_size:
            flush()
    if batch or rejections:
        flush()


def _link(
    engine: Engine,
    options: IngestOptions,
    summary: IngestSummary,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> None:
    """Link near duplicates of the images this run added, and of earlier runs of this dataset
    that were killed before they got to it (so a resumed run equals an uninterrupted one)."""
    from sqlalchemy import or_, select, text

    from skinctl.db.models import IngestRun, TrainingImage
    from skinctl.dedup import link_near_duplicates
    from skinctl.storage import open_storage

    with engine.connect() as connection:
        run_ids = connection.execute(
            select(IngestRun.id).where(
                IngestRun.dataset_source == options.dataset,
                or_(
                    IngestRun.id == summary.run_id,
                    IngestRun.status.in_(("interrupted", "failed"))
                    & IngestRun.counts["near_duplicates_linked"].astext.is_(None),
                ),
            )
        ).scalars().all()
        image_ids = connection.execute(
            select(TrainingImage.id).where(TrainingImage.ingest_run_id.in_(run_ids))
        ).scalars().all()
    if not image_ids:
        summary.near_duplicate_method = None
        return
    result = link_near_duplicates(
        engine,
        open_storage(options.storage_url),
        image_ids=list(image_ids),
        max_distance=options.near_duplicate_distance,
        workers=options.workers,
        **({"progress": on_progress} if on_progress else {}),
    )
    summary.near_duplicates = int(result["pairs"])
    summary.near_duplicate_method = str(result.get("method"))
    stale = [run_id for run_id in run_ids if run_id != summary.run_id]
    if stale:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE ingest_runs SET counts = coalesce(counts, '{}'::jsonb) || "
                    "jsonb_build_object('near_duplicates_linked', true) WHERE id = ANY(:ids)"
                ),
                {"ids": stale},
            )


def _dry_run(
    engine: Engine,
    scan: DatasetScan,
    options: IngestOptions,
    summary: IngestSummary,
    missing: list[Rejection],
    on_start: Callable[[int], None] | None,
    on_progress: Callable[[int], None] | None,
) -> None:
    """Read and validate everything, count what a real run would add; write nothing."""
    for rejection in missing:
        _reject(summary, rejection)
    known = _known_sources(engine, options.dataset)
    to_read = [entry for entry in scan.entries if entry.local_path not in known]
    summary.already_ingested = len(scan.entries) - len(to_read)
    if on_start:
        on_start(len(to_read))
    first_hash: dict[str, ImageEntry] = {}
    readable = 0
    for outcome in _outcomes([(i, str(e.path)) for i, e in enumerate(to_read)], options):
        entry = to_read[outcome.index]
        if outcome.facts is None:
            _reject(summary, Rejection(entry.local_path, outcome.reason or "rejected", outcome.detail or ""))
        else:
            readable += 1
            first_hash.setdefault(outcome.facts.sha256, entry)
            summary.labels += len(entry.labels)
            summary.metadata_rows += int(entry.subject is not None or entry.skin_type is not None)
        if on_progress:
            on_progress(1)
    existing = _existing_hashes(engine, list(first_hash))
    summary.ingested = len(set(first_hash) - existing)
    summary.exact_duplicates = readable - summary.ingested
    summary.notes.append("dry run: nothing was written; counts say what a real run would add")


def write_report(path: Path, summary: IngestSummary) -> None:
    """Every rejected file (and every metadata value left out) with its reason, as CSV."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["kind", "path", "reason", "detail"])
        for rejection in summary.rejections:
            writer.writerow(["file", rejection.local_path, rejection.reason, rejection.detail])
        for problem in summary.metadata_problems:
            where = problem.split(": ", 1)[0]  # file:line
            writer.writerow(["metadata", where, "invalid_value", problem])


def reasons_table(summary: IngestSummary) -> list[tuple[str, int]]:
    return sorted(Counter(summary.rejected_by_reason).items(), key=lambda item: (-item[1], item[0]))
