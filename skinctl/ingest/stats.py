"""`skinctl stats`: the dataset health report, computed in PostgreSQL.

An image belongs to a dataset when one of its sources (`image_sources`) does: an image found in
two datasets counts in both. Labels are counted through the source they were read from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from skinctl.db.models import SKIN_TONES

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine


@dataclass(frozen=True)
class DatasetCounts:
    dataset: str
    files: int
    images: int
    exact_duplicate_files: int
    labelled_images: int
    label_coverage: float


# A TypedDict, not a dataclass: its `--json` key `class` is a Python keyword.
ClassCount = TypedDict(
    "ClassCount", {"dataset": str, "task": str, "class": str, "split": str, "images": int}
)


@dataclass(frozen=True)
class NearDuplicateCounts:
    pairs: int
    images: int
    max_distance: int


@dataclass(frozen=True)
class LabelConflicts:
    exact_duplicate_conflicts: int
    near_duplicate_conflicts: int


@dataclass(frozen=True)
class RejectedCount:
    reason: str
    files: int


@dataclass(frozen=True)
class Sizes:
    """Pixel and byte sizes of the selected images (None when there is none)."""

    images: int
    min_width: int | None
    max_width: int | None
    min_height: int | None
    max_height: int | None
    median_width: int | float | None
    median_height: int | float | None
    min_bytes: int | None
    max_bytes: int | None
    median_bytes: int | float | None
    total_bytes: int


@dataclass(frozen=True)
class AspectCount:
    aspect: str
    images: int


@dataclass(frozen=True)
class FormatCount:
    format: str
    images: int


@dataclass(frozen=True)
class FlagCount:
    flag: str
    images: int


TONE_ORDER = (*SKIN_TONES, "no_skin", "not_estimated")


@dataclass(frozen=True)
class ToneCount:
    """Images per estimated skin tone (ITA category); `no_skin`: computed, too little skin;
    `not_estimated`: stored before tones existed (`skinctl images tone` fills them)."""

    tone: str
    images: int


@dataclass(frozen=True)
class DatasetStats:
    """`skinctl stats`: one dataset (or all, `dataset` None)."""

    dataset: str | None
    datasets: tuple[DatasetCounts, ...]
    classes: tuple[ClassCount, ...]
    near_duplicates: NearDuplicateCounts
    label_conflicts: LabelConflicts
    rejected: tuple[RejectedCount, ...]
    sizes: Sizes
    aspect: tuple[AspectCount, ...]
    formats: tuple[FormatCount, ...]
    quality_flags: tuple[FlagCount, ...]
    skin_tones: tuple[ToneCount, ...] = ()


# A label set per source: 'task:class' sorted, so two sources of one image compare equal when
# they carry the same labels. Sources without labels do not take part in conflicts.
SOURCE_LABEL_SETS = """
    SELECT s.image_id, s.dataset_source,
           string_agg(l.task || ':' || l.condition_type, ',' ORDER BY l.task, l.condition_type) AS labels
    FROM image_sources s JOIN skin_condition_labels l ON l.image_source_id = s.id
    GROUP BY s.id, s.image_id, s.dataset_source
"""

# Every label an image carries, from any source, as one sorted string.
IMAGE_LABEL_SETS = """
    SELECT image_id,
           string_agg(DISTINCT task || ':' || condition_type, ',') AS labels
    FROM skin_condition_labels WHERE image_id IS NOT NULL GROUP BY image_id
"""

# Images of the selected datasets (all when :dataset is null).
SELECTED_IMAGES = """
    SELECT DISTINCT image_id FROM image_sources
    WHERE CAST(:dataset AS varchar) IS NULL OR dataset_source = :dataset
"""


def _rows(connection: Connection, sql: str, dataset: str | None) -> list[dict[str, Any]]:
    from sqlalchemy import text

    return [dict(row._mapping) for row in connection.execute(text(sql), {"dataset": dataset})]


def dataset_stats(engine: Engine, dataset: str | None = None) -> DatasetStats:
    with engine.connect() as connection:
        datasets = _rows(
            connection,
            """
            SELECT s.dataset_source AS dataset, count(*) AS files,
                   count(DISTINCT s.image_id) AS images,
                   count(*) - count(DISTINCT s.image_id) AS exact_duplicate_files,
                   count(DISTINCT s.image_id) FILTER (WHERE EXISTS (
                       SELECT 1 FROM skin_condition_labels l WHERE l.image_id = s.image_id
                   )) AS labelled_images
            FROM image_sources s
            WHERE CAST(:dataset AS varchar) IS NULL OR s.dataset_source = :dataset
            GROUP BY s.dataset_source ORDER BY s.dataset_source
            """,
            dataset,
        )
        for row in datasets:
            row["label_coverage"] = (
                round(row["labelled_images"] / row["images"], 4) if row["images"] else 0.0
            )
        classes = _rows(
            connection,
            """
            SELECT s.dataset_source AS dataset, l.task, l.condition_type AS class,
                   coalesce(s.split, '-') AS split, count(DISTINCT l.image_id) AS images
            FROM skin_condition_labels l JOIN image_sources s ON s.id = l.image_source_id
            WHERE CAST(:dataset AS varchar) IS NULL OR s.dataset_source = :dataset
            GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
            """,
            dataset,
        )
        near = _rows(
            connection,
            f"""
            SELECT count(*) AS pairs,
                   count(DISTINCT d.image_id_a) + count(DISTINCT d.image_id_b) AS image_mentions,
                   coalesce(max(d.distance), 0) AS max_distance
            FROM image_duplicates d
            WHERE d.image_id_a IN ({SELECTED_IMAGES}) OR d.image_id_b IN ({SELECTED_IMAGES})
            """,
            dataset,
        )[0]
        near_images = _rows(
            connection,
            f"""
            SELECT count(*) AS images FROM (
                SELECT image_id_a AS id FROM image_duplicates UNION SELECT image_id_b FROM image_duplicates
            ) ids WHERE ids.id IN ({SELECTED_IMAGES})
            """,
            dataset,
        )[0]["images"]
        conflicts = _rows(
            connection,
            f"""
            WITH sets AS ({SOURCE_LABEL_SETS}),
            per_image AS (
                SELECT image_id, count(DISTINCT labels) AS variants FROM sets GROUP BY image_id
            ),
            image_labels AS ({IMAGE_LABEL_SETS}),
            selected AS ({SELECTED_IMAGES})
            SELECT
              (SELECT count(*) FROM per_image p JOIN selected s ON s.image_id = p.image_id
                 WHERE p.variants > 1) AS exact_duplicate_conflicts,
              (SELECT count(*) FROM image_duplicates d
                 JOIN image_labels a ON a.image_id = d.image_id_a
                 JOIN image_labels b ON b.image_id = d.image_id_b
                 WHERE a.labels <> b.labels
                   AND (d.image_id_a IN (SELECT image_id FROM selected)
                        OR d.image_id_b IN (SELECT image_id FROM selected))) AS near_duplicate_conflicts
            """,
            dataset,
        )[0]
        rejected = _rows(
            connection,
            """
            SELECT reason, count(*) AS files FROM (
                SELECT DISTINCT ON (r.dataset_source, r.local_path) r.reason
                FROM ingest_rejections r
                WHERE (CAST(:dataset AS varchar) IS NULL OR r.dataset_source = :dataset)
                  AND NOT EXISTS (SELECT 1 FROM image_sources s
                                  WHERE s.dataset_source = r.dataset_source AND s.local_path = r.local_path)
                ORDER BY r.dataset_source, r.local_path, r.id DESC
            ) latest GROUP BY reason ORDER BY files DESC, reason
            """,
            dataset,
        )
        sizes = _rows(
            connection,
            f"""
            SELECT count(*) AS images,
                   min(width) AS min_width, max(width) AS max_width,
                   min(height) AS min_height, max(height) AS max_height,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY width) AS median_width,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY height) AS median_height,
                   min(byte_size) AS min_bytes, max(byte_size) AS max_bytes,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY byte_size) AS median_bytes,
                   coalesce(sum(byte_size), 0) AS total_bytes
            FROM ml_training_images WHERE id IN ({SELECTED_IMAGES})
            """,
            dataset,
        )[0]
        aspect = _rows(
            connection,
            f"""
            SELECT CASE WHEN width::float / nullif(height, 0) < 0.8 THEN 'portrait (<0.8)'
                        WHEN width::float / nullif(height, 0) <= 1.25 THEN 'square-ish (0.8-1.25)'
                        WHEN width::float / nullif(height, 0) <= 2 THEN 'landscape (1.25-2)'
                        ELSE 'wide (>2)' END AS aspect, count(*) AS images
            FROM ml_training_images WHERE id IN ({SELECTED_IMAGES}) AND height IS NOT NULL
            GROUP BY 1 ORDER BY 2 DESC
            """,
            dataset,
        )
        formats = _rows(
            connection,
            f"""
            SELECT coalesce(format, '-') AS format, count(*) AS images FROM ml_training_images
            WHERE id IN ({SELECTED_IMAGES}) GROUP BY 1 ORDER BY 2 DESC
            """,
            dataset,
        )
        flags = _rows(
            connection,
            f"""
            SELECT flag, count(*) AS images
            FROM ml_training_images, unnest(quality_flags) AS flag
            WHERE id IN ({SELECTED_IMAGES}) GROUP BY flag ORDER BY 2 DESC, 1
            """,
            dataset,
        )
        tones = _rows(
            connection,
            f"""
            SELECT tone, count(*) AS images FROM (
                SELECT CASE WHEN skin_tone IS NOT NULL THEN skin_tone
                            WHEN skin_tone_method IS NOT NULL THEN 'no_skin'
                            ELSE 'not_estimated' END AS tone
                FROM ml_training_images WHERE id IN ({SELECTED_IMAGES})
            ) tones
            GROUP BY tone ORDER BY array_position(ARRAY{list(TONE_ORDER)}::varchar[], tone)
            """,
            dataset,
        )
    for key, value in list(sizes.items()):
        if value is not None and not isinstance(value, int):
            value = float(value)
            sizes[key] = int(value) if value.is_integer() else round(value, 1)
    return DatasetStats(
        dataset=dataset,
        datasets=tuple(DatasetCounts(**row) for row in datasets),
        classes=tuple(ClassCount(**row) for row in classes),
        near_duplicates=NearDuplicateCounts(
            pairs=near["pairs"], images=near_images, max_distance=near["max_distance"]
        ),
        label_conflicts=LabelConflicts(**conflicts),
        rejected=tuple(RejectedCount(**row) for row in rejected),
        sizes=Sizes(**sizes),
        aspect=tuple(AspectCount(**row) for row in aspect),
        formats=tuple(FormatCount(**row) for row in formats),
        quality_flags=tuple(FlagCount(**row) for row in flags),
        skin_tones=tuple(ToneCount(**row) for row in tones),
    )
