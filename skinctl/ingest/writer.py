"""The batch writer of an image ingest: one transaction per batch of files.

Each table gets one multi-row `INSERT ... ON CONFLICT DO NOTHING RETURNING id` (psycopg2's
`execute_values`: SQLAlchemy's per-row parameter handling cost more than the database did). The
tables, columns, conflict targets and column widths are read from the SQLAlchemy models, so a
model change reaches this fast path, and `skinctl db check` (schema drift) covers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from skinctl.db.models import (
    Base,
    ConditionLabel,
    ImageSource,
    IngestRejection,
    IngestRun,
    SubjectMetadata,
    TrainingImage,
)
from skinctl.ingest.imageproc import PHASH_METHOD
from skinctl.ingest.tone import tone_columns

if TYPE_CHECKING:
    from sqlalchemy import Connection, Table

    from skinctl.datasets.readers import ImageEntry
    from skinctl.ingest.summary import IngestTally, Rejection
    from skinctl.ingest.workers import Outcome


@dataclass(frozen=True)
class MultiRowInsert:
    """`INSERT INTO table (columns) VALUES %s ON CONFLICT (target) DO NOTHING RETURNING id`; rows
    are dicts keyed by column name, sent as tuples (psycopg2 formats `%s` rows faster than
    `%(name)s` ones)."""

    sql: str
    columns: tuple[str, ...]

    @classmethod
    def of(
        cls, model: type[Base], columns: tuple[str, ...], conflict: tuple[str, ...] = ()
    ) -> MultiRowInsert:
        table = _table(model)
        names = tuple(
            table.c[column].name for column in columns
        )  # KeyError: the model has no such column
        target = [table.c[column].name for column in conflict]
        sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES %s"
        if target:
            sql += f" ON CONFLICT ({', '.join(target)}) DO NOTHING"
        return cls(sql + f" RETURNING {table.c.id.name}", names)

    def values(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """The rows in column order (KeyError: a row lacks a column)."""
        return [tuple(map(row.__getitem__, self.columns)) for row in rows]


def _table(model: type[Base]) -> Table:
    return cast("Table", model.__table__)


def _width(model: type[Base], column: str) -> int:
    """The VARCHAR length of a column: longer values are cut rather than failing a batch."""
    length = getattr(_table(model).c[column].type, "length", None)
    assert isinstance(length, int), f"{model.__name__}.{column} is not a VARCHAR(n)"
    return length


INSERT_IMAGES = MultiRowInsert.of(
    TrainingImage,
    (
        "image_url",
        "local_path",
        "image_hash",
        "dataset_source",
        "width",
        "height",
        "format",
        "byte_size",
        "phash",
        "phash_method",
        "quality_flags",
        "split",
        "group_key",
        "ingest_run_id",
        "skin_tone_ita",
        "skin_tone",
        "skin_tone_method",
    ),
    conflict=("image_hash",),
)
INSERT_SOURCES = MultiRowInsert.of(
    ImageSource,
    ("image_id", "dataset_source", "local_path", "split", "ingest_run_id"),
    conflict=("dataset_source", "local_path"),
)
INSERT_LABELS = MultiRowInsert.of(
    ConditionLabel,
    (
        "image_id",
        "image_source_id",
        "condition_type",
        "severity_level",
        "metadata",
        "verified",
        "task",
        "source",
        "status",
    ),
    conflict=("image_source_id", "task", "condition_type"),
)
INSERT_SUBJECTS = MultiRowInsert.of(
    SubjectMetadata,
    (
        "image_id",
        "gender",
        "age_range",
        "ethnicity",
        "skin_type",
        "fitzpatrick_scale",
        "subject_id",
        "additional_info",
    ),
    conflict=("image_id",),
)
INSERT_REJECTIONS = MultiRowInsert.of(
    IngestRejection, ("ingest_run_id", "dataset_source", "local_path", "reason", "detail")
)
_images, _sources, _runs = _table(TrainingImage), _table(ImageSource), _table(IngestRun)
SELECT_IMAGE_IDS = (
    f"SELECT {_images.c.image_hash.name}, {_images.c.id.name} FROM {_images.name} "
    f"WHERE {_images.c.image_hash.name} = ANY(%s)"
)
SELECT_SOURCE_IDS = (
    f"SELECT {_sources.c.local_path.name}, {_sources.c.id.name}, {_sources.c.image_id.name} "
    f"FROM {_sources.name} WHERE {_sources.c.dataset_source.name} = %s AND {_sources.c.local_path.name} = ANY(%s)"
)
UPDATE_RUN_COUNTS = (
    f"UPDATE {_runs.name} SET {_runs.c.counts.name} = %s WHERE {_runs.c.id.name} = %s"
)

LOCAL_PATH_MAX = _width(TrainingImage, "local_path")
SPLIT_MAX = _width(ImageSource, "split")
GROUP_MAX = _width(TrainingImage, "group_key")
CONDITION_MAX = _width(ConditionLabel, "condition_type")
SEVERITY_MAX = _width(ConditionLabel, "severity_level")
SUBJECT_ID_MAX = _width(SubjectMetadata, "subject_id")


@dataclass
class Pending:
    """An entry waiting for its batch: read now (outcome), or already known (source_id)."""

    entry: ImageEntry
    outcome: Outcome | None = None
    source_id: int | None = None
    image_id: int | None = None


def _cut(value: str | None, limit: int) -> str | None:
    return None if value is None else value[:limit]


def label_rows(
    dataset: str,
    entry: ImageEntry,
    image_id: int,
    source_id: int,
    canonical: dict[tuple[str, str], str] | None = None,
) -> list[dict[str, Any]]:
    """The entry's labels as `skin_condition_labels` rows (JSONB values still plain dicts),
    class names mapped through the vocabulary (`canonical`: (task, name) -> canonical name;
    the dataset's own name stays in the metadata when it differs)."""
    canonical = canonical or {}

    def named(task: str, name: str) -> tuple[str, dict[str, str]]:
        mapped = canonical.get((task, name), name)
        return mapped, ({"dataset_class": name} if mapped != name else {})

    return [
        {
            "image_id": image_id,
            "image_source_id": source_id,
            "condition_type": _cut(named(label.task, label.condition_type)[0], CONDITION_MAX),
            "severity_level": _cut(label.severity_level, SEVERITY_MAX),
            "metadata": {
                "dataset": dataset,
                "path": entry.local_path,
                **label.origin,
                **named(label.task, label.condition_type)[1],
            },
            "verified": False,
            "task": label.task,
            "source": "dataset",
            "status": "pending",
        }
        for label in entry.labels
    ]


def subject_row(entry: ImageEntry, image_id: int) -> dict[str, Any] | None:
    """The entry's subject (metadata CSV, skin-type class) as a `subject_metadata` row, if any."""
    subject = dict(entry.subject or {})
    if entry.skin_type and not subject.get("skin_type"):
        subject["skin_type"] = entry.skin_type
    if entry.subject_id and not subject.get("subject_id"):
        subject["subject_id"] = entry.subject_id
    if not subject:
        return None
    return {
        "image_id": image_id,
        "gender": subject.get("gender"),
        "age_range": subject.get("age_range"),
        "ethnicity": subject.get("ethnicity"),
        "skin_type": subject.get("skin_type"),
        "fitzpatrick_scale": subject.get("fitzpatrick_scale"),
        "subject_id": _cut(subject.get("subject_id"), SUBJECT_ID_MAX),
        "additional_info": subject.get("additional_info"),
    }


class BatchWriter:
    """Writes one batch of pending entries, inside the caller's transaction, and counts what it
    added in the tally; the run's running counts commit with the rows they count."""

    def __init__(
        self,
        dataset: str,
        run_id: int,
        tally: IngestTally,
        canonical: dict[tuple[str, str], str] | None = None,
    ) -> None:
        self.dataset = dataset
        self.run_id = run_id
        self.tally = tally
        self.canonical = canonical  # class names through the vocabulary (skinctl.classes)

    def write(
        self, connection: Connection, batch: list[Pending], rejections: list[Rejection]
    ) -> None:
        from psycopg2.extras import Json, execute_values

        dataset, tally = self.dataset, self.tally
        cursor = connection.connection.cursor()

        def insert(statement: MultiRowInsert, rows: list[dict[str, Any]]) -> int:
            """Run one multi-row INSERT; how many rows were inserted."""
            values = statement.values(rows)
            return len(
                execute_values(
                    cursor, statement.sql, values, page_size=max(1, len(values)), fetch=True
                )
            )

        read = [
            (p, p.outcome.image_url, p.outcome.facts)
            for p in batch
            if p.outcome is not None and p.outcome.facts is not None
        ]
        if read:
            image_rows: dict[str, dict[str, Any]] = {}
            for pending, image_url, facts in read:
                if facts.sha256 in image_rows:
                    continue  # the first path of these bytes owns the image row
                entry = pending.entry
                image_rows[facts.sha256] = {
                    "image_url": image_url,
                    "local_path": entry.local_path
                    if len(entry.local_path) <= LOCAL_PATH_MAX
                    else None,
                    "image_hash": facts.sha256,
                    "dataset_source": dataset,
                    "width": facts.width,
                    "height": facts.height,
                    "format": facts.format,
                    "byte_size": facts.byte_size,
                    "phash": facts.phash,
                    "phash_method": PHASH_METHOD,
                    "quality_flags": facts.quality_flags,
                    "split": _cut(entry.split, SPLIT_MAX),
                    "group_key": _cut(entry.group_key, GROUP_MAX),
                    "ingest_run_id": self.run_id,
                    **tone_columns(facts.tone),
                }
            inserted = insert(INSERT_IMAGES, list(image_rows.values()))
            tally.ingested += inserted
            tally.exact_duplicates += len(read) - inserted
            cursor.execute(SELECT_IMAGE_IDS, (list(image_rows),))
            id_by_hash = dict(cursor.fetchall())
            insert(
                INSERT_SOURCES,
                [
                    {
                        "image_id": id_by_hash[facts.sha256],
                        "dataset_source": dataset,
                        "local_path": p.entry.local_path,
                        "split": _cut(p.entry.split, SPLIT_MAX),
                        "ingest_run_id": self.run_id,
                    }
                    for p, _, facts in read
                ],
            )
            cursor.execute(SELECT_SOURCE_IDS, (dataset, [p.entry.local_path for p, _, _ in read]))
            source_by_path = {
                path: (source_id, image_id) for path, source_id, image_id in cursor.fetchall()
            }
            for pending, _, _ in read:
                pending.source_id, pending.image_id = source_by_path[pending.entry.local_path]

        placed = [
            (p.entry, p.image_id, p.source_id)
            for p in batch
            if p.source_id is not None and p.image_id is not None
        ]
        labels = [
            {**row, "metadata": Json(row["metadata"])}
            for entry, image_id, source_id in placed
            for row in label_rows(dataset, entry, image_id, source_id, self.canonical)
        ]
        if labels:
            tally.labels += insert(INSERT_LABELS, labels)
        subjects = [
            {
                **row,
                "additional_info": Json(row["additional_info"])
                if row["additional_info"] is not None
                else None,
            }
            for entry, image_id, _ in placed
            if (row := subject_row(entry, image_id)) is not None
        ]
        if subjects:
            tally.metadata_rows += insert(INSERT_SUBJECTS, subjects)
        if rejections:
            insert(
                INSERT_REJECTIONS,
                [
                    {
                        "ingest_run_id": self.run_id,
                        "dataset_source": dataset,
                        "local_path": r.local_path,
                        "reason": r.reason,
                        "detail": r.detail,
                    }
                    for r in rejections
                ],
            )
        cursor.execute(UPDATE_RUN_COUNTS, (Json(tally.counts()), self.run_id))
        cursor.close()
