"""`ingest images --dry-run`: read and validate everything, count what a real run would add,
write nothing (no run row, no lock, no stored object)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from skinctl.ingest.known import existing_hashes, known_sources
from skinctl.ingest.summary import IngestTally, Rejection
from skinctl.ingest.workers import outcomes
from skinctl.progress import ReportProgress

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from skinctl.datasets.readers import DatasetScan, ImageEntry
    from skinctl.ingest.options import IngestOptions

STAGE = "images"


def dry_run(
    engine: Engine,
    scan: DatasetScan,
    options: IngestOptions,
    tally: IngestTally,
    report: ReportProgress,
) -> None:
    known = known_sources(engine, options.dataset)
    to_read = [entry for entry in scan.entries if entry.local_path not in known]
    tally.already_ingested = len(scan.entries) - len(to_read)
    report(STAGE, 0, len(to_read))
    first_hash: dict[str, ImageEntry] = {}
    readable = 0
    done = 0
    with options.compute_engine() as compute:
        for outcome in outcomes(
            [entry.locator for entry in to_read],
            engine=compute,
            storage_url=None,
            max_pixels=options.max_pixels,
        ):
            entry = to_read[outcome.index]
            if outcome.facts is None:
                tally.reject(
                    Rejection(entry.local_path, outcome.reason or "rejected", outcome.detail or "")
                )
            else:
                readable += 1
                first_hash.setdefault(outcome.facts.sha256, entry)
                tally.labels += len(entry.labels)
                tally.metadata_rows += int(entry.subject is not None or entry.skin_type is not None)
            done += 1
            report(STAGE, done, len(to_read))
    existing = existing_hashes(engine, list(first_hash))
    tally.ingested = len(set(first_hash) - existing)
    tally.exact_duplicates = readable - tally.ingested
    tally.notes.append("dry run: nothing was written; counts say what a real run would add")
