"""`skinctl ingest images`: validate, hash, store and load an image dataset into PostgreSQL.

The shape of a run (each step in its own module):
1. `scan`: the dataset reader lists every image with its labels (stable order, sorted by path);
2. paths this dataset already has in `image_sources` are not read again (`known`: resume,
   idempotency); their labels and metadata are still applied, so a rerun with a new label file
   adds them;
3. `workers`: a process pool reads each file once, analyses it and stores the bytes
   content-addressed BEFORE the parent commits the rows;
4. `writer`: the parent writes rows in one transaction per batch (multi-row INSERT ... ON
   CONFLICT), so a kill -9 loses at most the batch in flight and never leaves half of one;
5. `linking`: near duplicates are linked after the rows are committed.

The run is recorded by `skinctl.db.runs.recorded_ingest_run` (one `ingest_runs` row, under the
dataset's advisory lock: finished, interrupted or failed, like every other ingest). `dry_run`
reads and counts without writing anything.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from skinctl.ingest.dry_run import dry_run
from skinctl.ingest.known import known_sources
from skinctl.ingest.linking import DEFERRED, link_run_images
from skinctl.ingest.options import IngestOptions
from skinctl.ingest.scan import prepare_scan
from skinctl.ingest.summary import IngestResult, IngestStatus, IngestTally, Rejection
from skinctl.ingest.workers import outcomes
from skinctl.ingest.writer import BatchWriter, Pending
from skinctl.progress import ReportProgress, no_progress

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from skinctl.datasets.readers import DatasetScan
    from skinctl.engines.base import ComputeEngine

STAGE = "images"  # the progress stage of reading files; linking reports "near duplicates: ..."


def ingest_images(
    engine: Engine,
    source: Path | str,
    options: IngestOptions,
    *,
    report: ReportProgress = no_progress,
) -> IngestResult:
    """Ingest the dataset at `source` (a folder, or a `gs://bucket/prefix` URL). `report` gets cumulative progress: the files (stage
    "images"), then each near-duplicate linking stage."""
    from skinctl.db.runs import recorded_ingest_run

    options.validate()
    started = time.monotonic()
    tally = IngestTally(options.dataset, str(source), options.layout, options.dry_run)
    scan = prepare_scan(source, options, tally)
    if options.dry_run:
        dry_run(engine, scan, options, tally, report)
        tally.stop_clock(started)
        return tally.result(IngestStatus.DRY_RUN)

    with recorded_ingest_run(
        engine,
        source=options.dataset,
        path=str(source),
        options=options.as_json(),
        user=options.started_by,
        counts=tally.counts(),
    ) as run:
        tally.run_id = run.id
        try:
            # one engine for reading the files and for the near-duplicate features
            with options.compute_engine() as compute:
                _load(engine, scan, options, tally, run.id, report, compute)
                if options.link_near_duplicates:
                    linked = link_run_images(
                        engine,
                        dataset=options.dataset,
                        run_id=run.id,
                        storage_url=options.storage_url,
                        max_distance=options.near_duplicate_distance,
                        workers=options.workers,
                        report=report,
                        compute=compute,
                    )
                    tally.near_duplicates = linked.pairs
                    tally.near_duplicate_method = linked.method
                else:
                    tally.near_duplicate_method = DEFERRED
        finally:
            tally.stop_clock(started)
            run.counts = tally.counts()  # recorded with the run's ending, whatever it is
    return tally.result(IngestStatus(run.status))


def _load(
    engine: Engine,
    scan: DatasetScan,
    options: IngestOptions,
    tally: IngestTally,
    run_id: int,
    report: ReportProgress,
    compute: ComputeEngine,
) -> None:
    """Read the new files (on `compute`) and write every entry's rows (of run `run_id`), one
    transaction per batch."""
    known = known_sources(engine, options.dataset)
    writer = BatchWriter(options.dataset, run_id, tally, _class_names(engine, scan, options, tally))
    total = len(scan.entries)
    report(STAGE, 0, total)

    batch: list[Pending] = []
    rejections: list[Rejection] = list(tally.rejections)  # found before reading: written first

    def flush() -> None:
        with engine.begin() as connection:
            writer.write(connection, batch, rejections)
        batch.clear()
        rejections.clear()

    # already-ingested paths: no read, but their labels and metadata are (re)applied
    for entry in scan.entries:
        if entry.local_path in known:
            source_id, image_id = known[entry.local_path]
            batch.append(Pending(entry, source_id=source_id, image_id=image_id))
            tally.already_ingested += 1
            if len(batch) >= options.batch_size:
                flush()
    if batch or rejections:
        flush()
    done = tally.already_ingested
    report(STAGE, done, total)

    to_read = [entry for entry in scan.entries if entry.local_path not in known]
    stored_hashes: set[str] = set()
    for outcome in outcomes(
        [entry.locator for entry in to_read],
        engine=compute,
        storage_url=options.storage_url,
        max_pixels=options.max_pixels,
    ):
        entry = to_read[outcome.index]
        if outcome.facts is None:
            rejection = Rejection(
                entry.local_path, outcome.reason or "rejected", outcome.detail or ""
            )
            tally.reject(rejection)
            rejections.append(rejection)
        else:
            # two workers may both store the same new bytes at once: count the object once
            if outcome.stored_new and outcome.facts.sha256 not in stored_hashes:
                stored_hashes.add(outcome.facts.sha256)
                tally.stored_objects += 1
            batch.append(Pending(entry, outcome=outcome))
        done += 1
        report(STAGE, done, total)
        if len(batch) + len(rejections) >= options.batch_size:
            flush()
    if batch or rejections:
        flush()


def _class_names(
    engine: Engine, scan: DatasetScan, options: IngestOptions, tally: IngestTally
) -> dict[tuple[str, str], str]:
    """The dataset's class names through the vocabulary; names it has never seen become
    classes of their own, and the tally says which."""
    from skinctl.classes.vocabulary import map_dataset_names

    names = {(label.task, label.condition_type) for e in scan.entries for label in e.labels}
    with engine.begin() as connection:
        mapped = map_dataset_names(connection, options.dataset, names, options.started_by)
    if mapped.unseen:
        tally.notes.append(
            f"classes never seen before, added to the vocabulary: {', '.join(mapped.unseen)} "
            "(`skinctl classes map` joins one to an existing class)"
        )
    return mapped.canonical
