"""What an image ingest will read: the dataset reader's scan, the subject metadata attached,
and the files rejected before any is read."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from skinctl.datasets.metadata import attach_subject_metadata, read_subject_table
from skinctl.datasets.readers import (
    IMAGE_EXTENSIONS,
    MANIFEST_NAME,
    ROBOFLOW_LABELS_NAME,
    DatasetScan,
    scan_dataset,
)
from skinctl.errors import UsageError
from skinctl.ingest.options import IngestOptions
from skinctl.ingest.summary import IngestTally, Rejection
from skinctl.ingest.workers import MAX_FILE_BYTES
from skinctl.storage.gcs import parse_gs_url


def prepare_scan(source: Path | str, options: IngestOptions, tally: IngestTally) -> DatasetScan:
    """Every image of the dataset (stable order, sorted by path) with its labels and metadata;
    the files rejected before reading are already in the tally. `source`: a folder, or a
    `gs://bucket/prefix` URL (see `scan_bucket`)."""
    if isinstance(source, str):
        scan = scan_bucket(source, options, tally)
    else:
        scan = scan_dataset(
            source,
            options.layout,
            labels=_local(options.labels),
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


def _local(labels: Path | str | None) -> Path | None:
    if isinstance(labels, str):
        raise UsageError(
            f"--labels {labels} is in a bucket; a bucket label file goes with a bucket source.",
            hint="Ingest the bucket (gs://...) or give a local label file.",
        )
    return labels


def scan_bucket(url: str, options: IngestOptions, tally: IngestTally) -> DatasetScan:
    """The scan of a `gs://bucket/prefix` source: the listing (paged) stands in for the folder
    walk, the same readers give labels (class folders, or a label file: `--labels` local or
    gs://, or a manifest / `_classes.csv` in the bucket), and every entry reads its object URL.
    The label files are downloaded into a scratch folder at their paths inside the prefix."""
    import tempfile

    from skinctl.storage.gcs import GCSStorage

    store = GCSStorage(url)
    base = store.base_url
    images: list[tuple[Path, str]] = []
    label_keys: list[str] = []
    skipped = 0
    too_large: list[Rejection] = []
    with tempfile.TemporaryDirectory(prefix="skinctl-bucket-") as scratch:
        root = Path(scratch)
        for stored in store.list_objects():
            key = stored.key
            if any(part.startswith(".") for part in key.split("/")[:-1]):
                continue  # hidden folders, as a folder walk skips them
            if PurePosixPath(key).suffix.lower() not in IMAGE_EXTENSIONS:
                skipped += 1
                if PurePosixPath(key).name in (MANIFEST_NAME, ROBOFLOW_LABELS_NAME):
                    label_keys.append(key)
                continue
            if stored.size > MAX_FILE_BYTES:
                too_large.append(
                    Rejection(
                        key,
                        "too_large",
                        f"{stored.size:,} bytes is over the limit of {MAX_FILE_BYTES:,}",
                    )
                )
                continue
            images.append((root / key, key))
        images.sort(key=lambda item: item[1])
        for key in label_keys:
            (root / key).parent.mkdir(parents=True, exist_ok=True)
            (root / key).write_bytes(store.get(key))
        labels = options.labels
        if isinstance(labels, str):  # a gs:// label file: downloaded beside the listing
            bucket_name, name = parse_gs_url(labels)
            labels = root / "_labels" / PurePosixPath(name).name
            labels.parent.mkdir(exist_ok=True)
            labels.write_bytes(GCSStorage(f"gs://{bucket_name}").get(name))
        scan = scan_dataset(
            root,
            options.layout,
            labels=labels,
            class_level=options.class_level,
            filename_pattern=options.filename_pattern,
            listing=(images, skipped - len(label_keys)),
        )
    for entry in scan.entries:
        entry.url = f"{base}/{entry.local_path}"
    scan.root = Path(url)
    scan.notes.insert(0, f"listed {len(images):,} images in {base}")
    for rejection in too_large:
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
