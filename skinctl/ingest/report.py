"""The rejection report of an image ingest: `--report FILE` (CSV) and the by-reason table."""

from __future__ import annotations

import csv
from pathlib import Path

from skinctl.errors import SkinctlError
from skinctl.ingest.summary import IngestResult


class ReportNotWritten(SkinctlError):
    """The `--report` file could not be written (the ingest itself is kept)."""


def write_report(path: Path, result: IngestResult) -> None:
    """Every rejected file (and every metadata value left out) with its reason, as CSV.
    ReportNotWritten (one sentence naming the path) when the file cannot be written."""
    hint = (
        "The ingest is kept: give --report a path you can write to and run the same command again."
    )
    if path.parent.exists() and not path.parent.is_dir():
        raise ReportNotWritten(
            f"Cannot write the report {path}: {path.parent} is not a folder.", hint=hint
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["kind", "path", "reason", "detail"])
            for rejection in result.rejections:
                writer.writerow(["file", rejection.local_path, rejection.reason, rejection.detail])
            for problem in result.summary.metadata_problems:
                where = problem.split(": ", 1)[0]  # file:line
                writer.writerow(["metadata", where, "invalid_value", problem])
    except OSError as error:
        raise ReportNotWritten(
            f"Cannot write the report {path}: {error.strerror or error}.", hint=hint
        ) from error


def reasons_table(result: IngestResult) -> list[tuple[str, int]]:
    """(reason, files) rows, the commonest reason first."""
    counts = result.summary.rejected_by_reason
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))
