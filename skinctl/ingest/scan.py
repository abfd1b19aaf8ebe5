"""What an image ingest will read: the dataset reader's scan, the subject metadata attached,
and the files rejected before any is read."""

from __future__ import annotations

from pathlib import Path

from skinctl.datasets.metadata import attach_subject_metadata, read_subject_table
from skinctl.datasets.readers import DatasetScan, scan_dataset
from skinctl.ingest.options import IngestOptions
from skinctl.ingest.summary import IngestTally, Rejection


def prepare_scan(source: Path, options: IngestOptions, tally: IngestTally) -> DatasetScan:
    """Every image of the dataset (stable order, sorted by path) with its labels and metadata;
    the files rejected before reading are already in the tally."""
    scan = scan_dataset(
        source,
        options.layout,
        labels=options.labels,
        class_level=options.class_level,
        filename_pattern=options.filename_pattern,
    )
    tally.layout = scan.layout
    tally.notes += scan.notes
    if options.metadata is not None:
        table = read_subject_table(options.metadata)
        matched, unmatched = attach_subject_metadata(scan.entries, table)
        tally.metadata_problems = [str(problem) for problem in table.problems]
        tally.metadata_unmatched_rows = unmatched
        tally.notes.append(
            f"metadata from {options.metadata.name}: {table.rows} rows keyed by {table.key}, "
            f"{matched} images matched, {unmatched} rows matched no image"
        )
    tally.scanned = len(scan.entries)
    tally.unlabeled = scan.unlabeled
    tally.skipped_non_image_files = scan.skipped_files
    for rejection in _early_rejections(scan):
        tally.reject(rejection)
    return scan


def _early_rejections(scan: DatasetScan) -> list[Rejection]:
    """Files rejected before reading: listed in a label file but absent, or named with bytes
    that are not UTF-8 (PostgreSQL text cannot hold them; they are taken out of the scan)."""
    rejections = [Rejection(m.local_path, "missing_file", m.detail) for m in scan.missing]
    kept = []
    for entry in scan.entries:
        try:
            entry.local_path.encode("utf-8")
        except UnicodeEncodeError:
            shown = entry.local_path.encode("utf-8", "surrogateescape").decode(
                "utf-8", "backslashreplace"
            )
            rejections.append(
                Rejection(
                    shown, "bad_file_name", "the file name is not valid UTF-8; rename the file"
                )
            )
        else:
            kept.append(entry)
    scan.entries = kept
    return rejections
