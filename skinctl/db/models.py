"""SQLAlchemy 2 typed models. They mirror the Alembic migrations exactly (`skinctl db check`).

The plan's four tables keep their names, columns, types and index names; later migrations
only add to them.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

LABEL_SOURCES = ("dataset", "human", "model")
LABEL_STATUSES = ("pending", "verified", "rejected")
LABEL_TASKS = ("condition", "skin_type")
# The six ITA categories (skinctl.ingest.tone.SkinTone; a test keeps them equal).
SKIN_TONES = ("very_light", "light", "intermediate", "tan", "brown", "dark")


class RunStatus(StrEnum):
    """Where a training run is: running until it ends finished, interrupted (Ctrl-C) or failed."""

    running = "running"
    finished = "finished"
    interrupted = "interrupted"
    failed = "failed"


RUN_STATUSES = tuple(status.value for status in RunStatus)
SPLITS = ("train", "val", "test")


class StrEnumText(TypeDecorator[StrEnum]):
    """A VARCHAR column read back as a StrEnum (the database type stays VARCHAR(length);
    a CHECK constraint holds the values)."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[StrEnum], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Any) -> StrEnum | None:
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# --- migration 0001: the plan's four tables -------------------------------------------------


class TrainingImage(Base):
    __tablename__ = "ml_training_images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_url: Mapped[str] = mapped_column(String(500), nullable=False)
    local_path: Mapped[str | None] = mapped_column(String(255))
    image_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    dataset_source: Mapped[str] = mapped_column(String(100), nullable=False)
    created_at: Mapped[datetime | None] = mapped_column(
        DateTime, server_default=func.current_timestamp()
    )
    # migration 0002
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    format: Mapped[str | None] = mapped_column(String(16))
    byte_size: Mapped[int | None] = mapped_column(BigInteger)
    phash: Mapped[int | None] = mapped_column(BigInteger)
    phash_method: Mapped[str | None] = mapped_column(String(32))
    quality_flags: Mapped[list[str]] = mapped_column(
        ARRAY(String(32)), nullable=False, server_default=text("'{}'::varchar[]")
    )
    split: Mapped[str | None] = mapped_column(String(16))
    group_key: Mapped[str | None] = mapped_column(String(255))
    ingest_run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))
    # migration 0012: estimated skin tone (ITA°) from the pixels; method NULL = not yet computed
    skin_tone_ita: Mapped[float | None] = mapped_column(Float)
    skin_tone: Mapped[str | None] = mapped_column(String(16))
    skin_tone_method: Mapped[str | None] = mapped_column(String(32))

    labels: Mapped[list[ConditionLabel]] = relationship(back_populates="image")
    sources: Mapped[list[ImageSource]] = relationship(back_populates="image")

    __table_args__ = (
        Index("idx_training_images_source", "dataset_source"),
        Index("ix_ml_training_images_phash", "phash"),
        Index("ix_ml_training_images_group_key", "group_key"),
        Index("ix_ml_training_images_quality_flags", "quality_flags", postgresql_using="gin"),
        Index("ix_ml_training_images_skin_tone", "skin_tone"),
        CheckConstraint(f"skin_tone IN {SKIN_TONES!r}", name="skin_tone"),
    )


class ConditionLabel(Base):
    __tablename__ = "skin_condition_labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int | None] = mapped_column(ForeignKey("ml_training_images.id"))
    condition_type: Mapped[str] = mapped_column(String(100), nullable=False)
    confidence_score: Mapped[float | None] = mapped_column(Float)
    severity_level: Mapped[str | None] = mapped_column(String(50))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    verified: Mapped[bool | None] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime | None] = mapped_column(
        DateTime, server_default=func.current_timestamp()
    )
    # migration 0002
    task: Mapped[str] = mapped_column(
        String(20), nullable=False, server_default=text("'condition'")
    )
    source: Mapped[str] = mapped_column(
        String(16), nullable=False, server_default=text("'dataset'")
    )
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, server_default=text("'pending'")
    )
    verified_by: Mapped[str | None] = mapped_column(String(100))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    image_source_id: Mapped[int | None] = mapped_column(ForeignKey("image_sources.id"))

    image: Mapped[TrainingImage | None] = relationship(back_populates="labels")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("idx_condition_labels_type", "condition_type"),
        Index("ix_skin_condition_labels_image_id", "image_id"),
        Index("ix_skin_condition_labels_status", "status"),
        UniqueConstraint(
            "image_source_id", "task", "condition_type", name="uq_skin_condition_labels_origin"
        ),
        CheckConstraint(f"source IN {LABEL_SOURCES!r}", name="source"),
        CheckConstraint(f"status IN {LABEL_STATUSES!r}", name="status"),
        CheckConstraint(f"task IN {LABEL_TASKS!r}", name="task"),
    )


class SubjectMetadata(Base):
    __tablename__ = "subject_metadata"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int | None] = mapped_column(ForeignKey("ml_training_images.id"))
    gender: Mapped[str | None] = mapped_column(String(20))
    age_range: Mapped[str | None] = mapped_column(String(20))
    ethnicity: Mapped[str | None] = mapped_column(String(50))
    skin_type: Mapped[str | None] = mapped_column(String(50))
    fitzpatrick_scale: Mapped[int | None] = mapped_column(Integer)
    additional_info: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # migration 0002
    subject_id: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (
        CheckConstraint("fitzpatrick_scale BETWEEN 1 AND 6", name="fitzpatrick_scale"),
        Index("idx_metadata_skin_type", "skin_type"),
        UniqueConstraint("image_id", name="uq_subject_metadata_image_id"),
    )


class TrainingRun(Base):
    __tablename__ = "model_training_metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(100), nullable=False)
    version: Mapped[str | None] = mapped_column(String(50))
    training_date: Mapped[datetime | None] = mapped_column(
        DateTime, server_default=func.current_timestamp()
    )
    dataset_size: Mapped[int | None] = mapped_column(Integer)
    accuracy: Mapped[float | None] = mapped_column(Float)
    precision_score: Mapped[float | None] = mapped_column(Float)
    recall: Mapped[float | None] = mapped_column(Float)
    f1_score: Mapped[float | None] = mapped_column(Float)
    training_duration_minutes: Mapped[int | None] = mapped_column(Integer)
    hyperparameters: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    notes: Mapped[str | None] = mapped_column(Text)
    # migration 0006
    task: Mapped[str | None] = mapped_column(String(20))
    architecture: Mapped[str | None] = mapped_column(String(50))
    status: Mapped[RunStatus] = mapped_column(
        StrEnumText(RunStatus, 16), nullable=False, server_default=text("'finished'")
    )
    model_uri: Mapped[str | None] = mapped_column(String(500))
    seed: Mapped[int | None] = mapped_column(Integer)
    epochs_run: Mapped[int | None] = mapped_column(Integer)
    best_epoch: Mapped[int | None] = mapped_column(Integer)
    majority_rate: Mapped[float | None] = mapped_column(Float)
    # confidence intervals, balanced accuracy, thresholds, split sizes, durations ...
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    confusion_matrix: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    started_by: Mapped[str | None] = mapped_column(String(100))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        Index("idx_training_metrics_date", "training_date"),
        Index("ix_model_training_metrics_task", "task"),
        CheckConstraint(f"status IN {RUN_STATUSES!r}", name="status"),
    )


# --- migration 0002: ingest runs, provenance, duplicates, label history ----------------------


class IngestRun(Base):
    """One `skinctl ingest images` invocation: options, counts, timing."""

    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_source: Mapped[str] = mapped_column(String(100), nullable=False)
    source_path: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, server_default=text("'running'")
    )
    started_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, server_default=func.current_timestamp()
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    started_by: Mapped[str | None] = mapped_column(String(100))
    options: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    __table_args__ = (
        CheckConstraint(
            "status IN ('running', 'finished', 'interrupted', 'failed')", name="status"
        ),
    )


class ImageSource(Base):
    """Every file path an image was read from: the first one and each exact duplicate."""

    __tablename__ = "image_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("ml_training_images.id"), nullable=False)
    dataset_source: Mapped[str] = mapped_column(String(100), nullable=False)
    local_path: Mapped[str] = mapped_column(Text, nullable=False)
    split: Mapped[str | None] = mapped_column(String(16))
    ingest_run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))
    created_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, server_default=func.current_timestamp()
    )

    image: Mapped[TrainingImage] = relationship(back_populates="sources")

    __table_args__ = (
        UniqueConstraint("dataset_source", "local_path", name="uq_image_sources_dataset_path"),
        Index("ix_image_sources_image_id", "image_id"),
    )


class IngestRejection(Base):
    """A file an ingest run could not accept, and why."""

    __tablename__ = "ingest_rejections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ingest_run_id: Mapped[int] = mapped_column(ForeignKey("ingest_runs.id"), nullable=False)
    dataset_source: Mapped[str] = mapped_column(String(100), nullable=False)
    local_path: Mapped[str] = mapped_column(Text, nullable=False)
    reason: Mapped[str] = mapped_column(String(40), nullable=False)
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, server_default=func.current_timestamp()
    )

    __table_args__ = (Index("ix_ingest_rejections_ingest_run_id", "ingest_run_id"),)


class ImageDuplicate(Base):
    """A near-duplicate pair (image_id_a < image_id_b) and how far apart they are."""

    __tablename__ = "image_duplicates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id_a: Mapped[int] = mapped_column(ForeignKey("ml_training_images.id"), nullable=False)
    image_id_b: Mapped[int] = mapped_column(ForeignKey("ml_training_images.id"), nullable=False)
    distance: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    method: Mapped[str] = mapped_column(String(32), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, server_default=func.current_timestamp()
    )

    __table_args__ = (
        UniqueConstraint("image_id_a", "image_id_b", name="uq_image_duplicates_pair"),
        CheckConstraint("image_id_a < image_id_b", name="ordered"),
        Index("ix_image_duplicates_image_id_b", "image_id_b"),
    )


class LabelHistory(Base):
    """Append-only: every change to a label, who made it, when, before and after.
    A trigger (migration 0002) refuses UPDATE and DELETE on this table."""

    __tablename__ = "label_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("skin_condition_labels.id"), nullable=False)
    image_id: Mapped[int | None] = mapped_column(ForeignKey("ml_training_images.id"))
    action: Mapped[str] = mapped_column(String(20), nullable=False)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    changed_by: Mapped[str] = mapped_column(String(100), nullable=False)
    changed_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, server_default=func.current_timestamp()
    )
    note: Mapped[str | None] = mapped_column(Text)
    # migration 0004: rows written by one service call share an operation id; an undo names
    # the operation it reverts.
    operation_id: Mapped[str | None] = mapped_column(String(36))
    undoes_operation_id: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (
        Index("ix_label_history_label_id", "label_id"),
        Index("ix_label_history_image_id", "image_id"),
        # --- migration 0004: label operations (undo)
        Index("ix_label_history_operation_id", "operation_id"),
        Index("ix_label_history_undoes_operation_id", "undoes_operation_id"),
        Index("ix_label_history_changed_by_changed_at", "changed_by", "changed_at"),
    )


# --- migration 0006: training runs in detail ---------------------------------------------------


def _run_fk() -> ForeignKey:
    return ForeignKey("model_training_metrics.id", ondelete="CASCADE")


def _image_fk() -> ForeignKey:
    return ForeignKey("ml_training_images.id", ondelete="CASCADE")


class TrainingEpoch(Base):
    """One epoch of a run: losses and accuracies on the training and validation splits."""

    __tablename__ = "training_epochs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(_run_fk(), nullable=False)
    epoch: Mapped[int] = mapped_column(Integer, nullable=False)  # 1-based
    train_loss: Mapped[float | None] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)
    train_accuracy: Mapped[float | None] = mapped_column(Float)
    val_accuracy: Mapped[float | None] = mapped_column(Float)
    learning_rate: Mapped[float | None] = mapped_column(Float)
    seconds: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    __table_args__ = (UniqueConstraint("run_id", "epoch", name="uq_training_epochs_run_epoch"),)


class TrainingClassMetric(Base):
    """Precision, recall and F1 of one class on a run's test split."""

    __tablename__ = "training_class_metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(_run_fk(), nullable=False)
    class_name: Mapped[str] = mapped_column(String(100), nullable=False)
    precision: Mapped[float | None] = mapped_column(Float)
    recall: Mapped[float | None] = mapped_column(Float)
    f1: Mapped[float | None] = mapped_column(Float)
    support: Mapped[int] = mapped_column(Integer, nullable=False)
    threshold: Mapped[float | None] = mapped_column(Float)  # multi-label runs only

    __table_args__ = (
        UniqueConstraint("run_id", "class_name", name="uq_training_class_metrics_run_class"),
    )


class TrainingGroupMetric(Base):
    """Test metrics within one subject group (Fitzpatrick 3, skin type oily, age 25-34 ...)."""

    __tablename__ = "training_group_metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(_run_fk(), nullable=False)
    group_by: Mapped[str] = mapped_column(String(30), nullable=False)
    group_value: Mapped[str] = mapped_column(String(100), nullable=False)
    support: Mapped[int] = mapped_column(Integer, nullable=False)
    accuracy: Mapped[float | None] = mapped_column(Float)
    accuracy_low: Mapped[float | None] = mapped_column(Float)
    accuracy_high: Mapped[float | None] = mapped_column(Float)
    f1_macro: Mapped[float | None] = mapped_column(Float)
    majority_rate: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint(
            "run_id", "group_by", "group_value", name="uq_training_group_metrics_run_group"
        ),
    )


class TrainingRunSplit(Base):
    """Which split each image was in for a run, so the run can be reproduced and compared."""

    __tablename__ = "training_run_splits"

    run_id: Mapped[int] = mapped_column(_run_fk(), primary_key=True)
    image_id: Mapped[int] = mapped_column(_image_fk(), primary_key=True)
    split: Mapped[str] = mapped_column(String(16), nullable=False)
    split_group: Mapped[int | None] = mapped_column(Integer)  # linked images share a group

    __table_args__ = (
        CheckConstraint(f"split IN {SPLITS!r}", name="split"),
        Index("ix_training_run_splits_image_id", "image_id"),
    )


class ImagePrediction(Base):
    """A run's out-of-sample class probabilities for one image, and how much the model doubts
    the image's given label (`mislabel_score` = 1 - probability of the given label)."""

    __tablename__ = "image_predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(_run_fk(), nullable=False)
    image_id: Mapped[int] = mapped_column(_image_fk(), nullable=False)
    origin: Mapped[str] = mapped_column(
        String(20), nullable=False
    )  # held-out-test, held-out-val, cv
    fold: Mapped[int | None] = mapped_column(Integer)
    given_labels: Mapped[list[str]] = mapped_column(ARRAY(String(100)), nullable=False)
    predicted_label: Mapped[str] = mapped_column(String(100), nullable=False)
    probabilities: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    self_confidence: Mapped[float] = mapped_column(Float, nullable=False)
    mislabel_score: Mapped[float] = mapped_column(Float, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, server_default=func.current_timestamp()
    )

    __table_args__ = (
        UniqueConstraint("run_id", "image_id", name="uq_image_predictions_run_image"),
        Index("ix_image_predictions_image_id", "image_id"),
        Index("ix_image_predictions_mislabel_score", "mislabel_score"),
    )


PLAN_TABLES = (
    "ml_training_images",
    "skin_condition_labels",
    "subject_metadata",
    "model_training_metrics",
)


# --- migration 0007: products, reviews, CosIng ingredients and annexes -----------------------

MATCH_METHODS = ("exact", "synonym", "mapped", "fuzzy", "none")


class Ingredient(Base):
    """One CosIng inventory entry. `name_key` is the normalised INCI name (the lookup key)."""

    __tablename__ = "ingredients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inci_name: Mapped[str] = mapped_column(Text, nullable=False)
    name_key: Mapped[str] = mapped_column(Text, nullable=False)
    cosing_ref_no: Mapped[str | None] = mapped_column(String(20))
    inn_name: Mapped[str | None] = mapped_column(Text)
    ph_eur_name: Mapped[str | None] = mapped_column(Text)
    cas_no: Mapped[str | None] = mapped_column(Text)
    ec_no: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    restriction: Mapped[str | None] = mapped_column(Text)
    functions: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")
    )
    update_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, server_default=func.current_timestamp()
    )
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        UniqueConstraint("name_key", name="uq_ingredients_name_key"),
        Index("ix_ingredients_cosing_ref_no", "cosing_ref_no"),
    )


class AnnexEntry(Base):
    """A CosIng annex entry: II prohibited, III restricted, IV colorants, V preservatives and
    VI UV filters allowed (with their limits)."""

    __tablename__ = "annex_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    annex: Mapped[str] = mapped_column(String(8), nullable=False)
    reference_number: Mapped[str] = mapped_column(String(20), nullable=False)
    # Some reference numbers cover several rows (Annex II 38: three coal-tar substances).
    entry_no: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default=text("1"))
    chemical_name: Mapped[str | None] = mapped_column(Text)
    glossary_name: Mapped[str | None] = mapped_column(Text)
    cas_no: Mapped[str | None] = mapped_column(Text)
    ec_no: Mapped[str | None] = mapped_column(Text)
    product_type: Mapped[str | None] = mapped_column(Text)
    max_concentration: Mapped[str | None] = mapped_column(Text)
    other_limitations: Mapped[str | None] = mapped_column(Text)
    conditions: Mapped[str | None] = mapped_column(Text)
    regulation: Mapped[str | None] = mapped_column(Text)
    # Annex II only: the text limits the prohibition ("when used as a substance in hair dye
    # products", "except if the full refining history is known").
    conditional: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    identified_ingredients: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")
    )
    update_date: Mapped[date | None] = mapped_column(Date)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, server_default=func.current_timestamp()
    )
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)
    # migration 0010: Annex IV's colour. Lettered conditions per product type ("a) Rinse-off
    # products ... b) Leave-on products") stay as written in product_type / max_concentration.
    colour: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint(
            "annex", "reference_number", "entry_no", name="uq_annex_entries_annex_reference"
        ),
        CheckConstraint("annex IN ('II', 'III', 'IV', 'V', 'VI')", name="annex"),
    )


class AnnexEntryIngredient(Base):
    """Which inventory ingredients an annex entry covers, and how the link was found."""

    __tablename__ = "annex_entry_ingredients"

    annex_entry_id: Mapped[int] = mapped_column(
        ForeignKey("annex_entries.id", ondelete="CASCADE"), primary_key=True
    )
    ingredient_id: Mapped[int] = mapped_column(
        ForeignKey("ingredients.id", ondelete="CASCADE"), primary_key=True
    )
    link_method: Mapped[str] = mapped_column(String(20), nullable=False)

    __table_args__ = (
        CheckConstraint(
            "link_method IN ('restriction_ref', 'identified_name', 'glossary_name')",
            name="link_method",
        ),
        Index("ix_annex_entry_ingredients_ingredient_id", "ingredient_id"),
    )


class IngredientSynonym(Base):
    """A name as written on products mapped by a person to an inventory ingredient."""

    __tablename__ = "ingredient_synonyms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name_key: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    ingredient_id: Mapped[int] = mapped_column(
        ForeignKey("ingredients.id", ondelete="CASCADE"), nullable=False
    )
    source: Mapped[str] = mapped_column(String(16), nullable=False, server_default=text("'user'"))
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, server_default=func.current_timestamp()
    )

    __table_args__ = (
        UniqueConstraint("name_key", name="uq_ingredient_synonyms_name_key"),
        CheckConstraint("source IN ('user', 'builtin')", name="source"),
    )


class Product(Base):
    """A product from a retailer dataset; `raw` keeps the source row as read."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    external_id: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    brand: Mapped[str | None] = mapped_column(String(200))
    product_type: Mapped[str | None] = mapped_column(String(100))
    category_path: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    size: Mapped[str | None] = mapped_column(String(100))
    rating: Mapped[float | None] = mapped_column(Float)
    review_count: Mapped[int | None] = mapped_column(Integer)
    raw: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    # migration 0010: the product's own claims ("Best for Oily, Combo, Normal Skin").
    highlights: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")
    )
    ingest_run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))
    created_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, server_default=func.current_timestamp()
    )
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_products_source_external_id"),
        CheckConstraint("price IS NULL OR price >= 0", name="price"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 0 AND 5", name="rating"),
        Index("ix_products_product_type", "product_type"),
        Index("ix_products_brand", "brand"),
    )


class ProductIngredient(Base):
    """One entry of a product's ingredient list, as written, and its match in the inventory."""

    __tablename__ = "product_ingredients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    name_as_written: Mapped[str] = mapped_column(Text, nullable=False)
    name_key: Mapped[str] = mapped_column(Text, nullable=False)
    ingredient_id: Mapped[int | None] = mapped_column(
        ForeignKey("ingredients.id", ondelete="SET NULL")
    )
    match_method: Mapped[str] = mapped_column(
        String(10), nullable=False, server_default=text("'none'")
    )
    match_score: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("product_id", "position", name="uq_product_ingredients_product_position"),
        CheckConstraint(
            "match_method IN ('exact', 'synonym', 'mapped', 'fuzzy', 'none')", name="match_method"
        ),
        Index("ix_product_ingredients_ingredient_id", "ingredient_id"),
        Index("ix_product_ingredients_name_key", "name_key"),
    )


class Review(Base):
    """A product review; `external_id` makes re-ingesting the same file a no-op."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    external_id: Mapped[str] = mapped_column(Text, nullable=False)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"))
    product_external_id: Mapped[str] = mapped_column(Text, nullable=False)
    author_id: Mapped[str | None] = mapped_column(String(64))
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    is_recommended: Mapped[bool | None] = mapped_column(Boolean)
    helpfulness: Mapped[float | None] = mapped_column(Float)
    total_feedback_count: Mapped[int | None] = mapped_column(Integer)
    skin_type: Mapped[str | None] = mapped_column(String(20))
    skin_tone: Mapped[str | None] = mapped_column(String(30))
    eye_color: Mapped[str | None] = mapped_column(String(30))
    hair_color: Mapped[str | None] = mapped_column(String(30))
    title: Mapped[str | None] = mapped_column(Text)
    review_text: Mapped[str | None] = mapped_column(Text)
    submitted_on: Mapped[date | None] = mapped_column(Date)
    # Provenance (migration 0015): the file's name and the review's row in it (1 = the first
    # row after the header). The whole CSV row is not kept: the typed columns hold what is used.
    source_file: Mapped[str | None] = mapped_column(Text)
    source_row: Mapped[int | None] = mapped_column(Integer)
    ingest_run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))
    created_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, server_default=func.current_timestamp()
    )
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        # led by the column that tells reviews apart: sorts to build it are faster (migration 0018)
        UniqueConstraint("external_id", "source", name="uq_reviews_source_external_id"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating"),
        Index("ix_reviews_product_id_skin_type", "product_id", "skin_type"),
        # reviews waiting for their product (`link_reviews`); migration 0017
        Index(
            "ix_reviews_unlinked",
            "product_external_id",
            "source",
            postgresql_where=text("product_id IS NULL"),
        ),
    )


# --- migration 0004: label operations -------------------------------------------------------
# Only new columns and indexes on label_history (operation_id, undoes_operation_id); they are
# declared in LabelHistory above so the one model stays the one place that describes the table.
# --- migration 0008: near-duplicate features ------------------------------------------------


class ImageDedupFeatures(Base):
    """Derived per-image features of the near-duplicate method (`skinctl.dedup.features`):
    ORB keypoints/descriptors of the image and its mirror image, and the candidate tokens
    (int32, little-endian). Recomputable from the stored image at any time."""

    __tablename__ = "image_dedup_features"

    image_id: Mapped[int] = mapped_column(
        ForeignKey("ml_training_images.id", ondelete="CASCADE"), primary_key=True
    )
    method: Mapped[str] = mapped_column(String(32), nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    keypoints: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    descriptors: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    mirror_keypoints: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    mirror_descriptors: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    tokens: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, server_default=func.current_timestamp()
    )
    # Set once the image's candidates were all checked and recorded; NULL = still to link.
    linked_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Set in the transaction that wrote the image's tokens to the posting store
    # (`skinctl.dedup.postings`, migration 0016); NULL = not indexed yet.
    indexed_at: Mapped[datetime | None] = mapped_column(DateTime)


# --- migration 0016: the near-duplicate token index in the database (`dedup.postings`) -------


class ImageDedupSegment(Base):
    """One appended (or merged) set of images of the token posting store: how many images and
    postings it holds. `merged_into`: the segment its postings are being moved to (then it no
    longer counts; it is deleted once the move is done)."""

    __tablename__ = "image_dedup_segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    method: Mapped[str] = mapped_column(String(32), nullable=False)
    images: Mapped[int] = mapped_column(Integer, nullable=False)
    postings: Mapped[int] = mapped_column(BigInteger, nullable=False)
    merged_into: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, server_default=func.current_timestamp()
    )


class ImageDedupPosting(Base):
    """The (token, image id) postings of one segment in one token bucket (the token's top
    bits), encoded by `skinctl.dedup.postings.encode` (delta-coded, zlib; stored EXTERNAL, so
    PostgreSQL does not compress it again)."""

    __tablename__ = "image_dedup_postings"

    method: Mapped[str] = mapped_column(String(32), primary_key=True)
    bucket: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("image_dedup_segments.id", ondelete="CASCADE"), primary_key=True
    )
    postings: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


# --- migration 0009: the model registry and API keys (`skinctl model`, `skinctl serve`) -------

PROMOTION_TASKS = ("condition", "severity", "skin-type")


class ModelPromotion(Base):
    """A run promoted to serve a task under an alias. Never deleted: demoting (or promoting
    another run) sets `demoted_at`, so the rows are the registry's history. `model_sha256` is
    the checksum the server verifies the model file against: the one training recorded, or the
    one computed at promotion for runs trained before training recorded it."""

    __tablename__ = "model_promotions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task: Mapped[str] = mapped_column(String(20), nullable=False)
    alias: Mapped[str] = mapped_column(
        String(50), nullable=False, server_default=text("'production'")
    )
    run_id: Mapped[int] = mapped_column(ForeignKey("model_training_metrics.id"), nullable=False)
    model_uri: Mapped[str] = mapped_column(String(500), nullable=False)
    model_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    checksum_source: Mapped[str] = mapped_column(String(16), nullable=False)  # training | promotion
    forced: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    note: Mapped[str | None] = mapped_column(Text)
    promoted_by: Mapped[str] = mapped_column(String(100), nullable=False)
    promoted_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, server_default=func.current_timestamp()
    )
    demoted_by: Mapped[str | None] = mapped_column(String(100))
    demoted_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        Index(
            "uq_model_promotions_live",
            "task",
            "alias",
            unique=True,
            postgresql_where=text("demoted_at IS NULL"),
        ),
        Index("ix_model_promotions_run_id", "run_id"),
        CheckConstraint(f"task IN {PROMOTION_TASKS!r}", name="task"),
        CheckConstraint("checksum_source IN ('training', 'promotion')", name="checksum_source"),
    )


class ApiKey(Base):
    """An API key of `skinctl serve`: only its SHA-256 is kept; `prefix` identifies it in lists."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    key_sha256: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, server_default=func.current_timestamp()
    )
    revoked_by: Mapped[str | None] = mapped_column(String(100))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        Index(
            "uq_api_keys_live_name",
            "name",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )


# --- migration 0010: review sentiment -------------------------------------------------------


SENTIMENTS = ("negative", "neutral", "positive")


class ReviewSentiment(Base):
    """A sentiment run's answer for one review: the class and its three probabilities."""

    __tablename__ = "review_sentiments"

    review_id: Mapped[int] = mapped_column(
        ForeignKey("reviews.id", ondelete="CASCADE"), primary_key=True
    )
    run_id: Mapped[int] = mapped_column(
        ForeignKey("model_training_metrics.id", ondelete="CASCADE"), primary_key=True
    )
    sentiment: Mapped[str] = mapped_column(String(10), nullable=False)
    p_negative: Mapped[float] = mapped_column(Float, nullable=False)
    p_neutral: Mapped[float] = mapped_column(Float, nullable=False)
    p_positive: Mapped[float] = mapped_column(Float, nullable=False)

    __table_args__ = (
        CheckConstraint(f"sentiment IN {SENTIMENTS!r}", name="sentiment"),
        Index("ix_review_sentiments_run_id", "run_id"),
    )


# --- migration 0011: the class vocabulary, evaluations of a run on other data ----------------


class LabelClass(Base):
    """A canonical class of a label task (`condition`, `skin_type`). `name_key` is the name
    lower-cased: classes differ by more than case."""

    __tablename__ = "label_classes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task: Mapped[str] = mapped_column(String(20), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    name_key: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, server_default=func.current_timestamp()
    )

    __table_args__ = (
        UniqueConstraint("task", "name_key", name="uq_label_classes_task_name_key"),
        CheckConstraint(f"task IN {LABEL_TASKS!r}", name="task"),
    )


class LabelClassSynonym(Base):
    """What one dataset calls a canonical class (`acne_multilabel` says `Milium` for `Milia`)."""

    __tablename__ = "label_class_synonyms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_id: Mapped[int] = mapped_column(
        ForeignKey("label_classes.id", ondelete="CASCADE"), nullable=False
    )
    task: Mapped[str] = mapped_column(String(20), nullable=False)
    dataset_source: Mapped[str] = mapped_column(String(100), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    name_key: Mapped[str] = mapped_column(String(100), nullable=False)
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, server_default=func.current_timestamp()
    )

    __table_args__ = (
        UniqueConstraint(
            "task", "dataset_source", "name_key", name="uq_label_class_synonyms_dataset_name"
        ),
        Index("ix_label_class_synonyms_class_id", "class_id"),
    )


class LabelClassChange(Base):
    """Every change to the vocabulary: who, when, the vocabulary rows before and after, and
    the label operation (in `label_history`) that applied it to existing labels."""

    __tablename__ = "label_class_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(20), nullable=False)
    task: Mapped[str] = mapped_column(String(20), nullable=False)
    dataset_source: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    canonical: Mapped[str | None] = mapped_column(String(100))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    label_operation_id: Mapped[str | None] = mapped_column(String(36))
    labels_changed: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    changed_by: Mapped[str] = mapped_column(String(100), nullable=False)
    changed_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, server_default=func.current_timestamp()
    )
    reverts_change_id: Mapped[int | None] = mapped_column(ForeignKey("label_class_changes.id"))
    note: Mapped[str | None] = mapped_column(Text)


class ModelEvaluation(Base):
    """A run's model scored on other data (`skinctl train evaluate`), with the same figures as
    the run's own test, and how many images were left out as copies of its training images."""

    __tablename__ = "model_evaluations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(_run_fk(), nullable=False)
    datasets: Mapped[list[str]] = mapped_column(ARRAY(String(100)), nullable=False)
    evaluated_by: Mapped[str | None] = mapped_column(String(100))
    evaluated_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, server_default=func.current_timestamp()
    )
    images: Mapped[int] = mapped_column(Integer, nullable=False)
    exact_copies_left_out: Mapped[int] = mapped_column(Integer, nullable=False)
    near_copies_left_out: Mapped[int] = mapped_column(Integer, nullable=False)
    left_out: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    accuracy: Mapped[float | None] = mapped_column(Float)
    accuracy_low: Mapped[float | None] = mapped_column(Float)
    accuracy_high: Mapped[float | None] = mapped_column(Float)
    f1_macro: Mapped[float | None] = mapped_column(Float)
    f1_low: Mapped[float | None] = mapped_column(Float)
    f1_high: Mapped[float | None] = mapped_column(Float)
    majority_rate: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    confusion_matrix: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    class_map: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    __table_args__ = (Index("ix_model_evaluations_run_id", "run_id"),)


def _evaluation_fk() -> ForeignKey:
    return ForeignKey("model_evaluations.id", ondelete="CASCADE")


class EvaluationClassMetric(Base):
    """Precision, recall and F1 of one class in an evaluation (as `training_class_metrics`)."""

    __tablename__ = "evaluation_class_metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(_evaluation_fk(), nullable=False)
    class_name: Mapped[str] = mapped_column(String(100), nullable=False)
    precision: Mapped[float | None] = mapped_column(Float)
    recall: Mapped[float | None] = mapped_column(Float)
    f1: Mapped[float | None] = mapped_column(Float)
    support: Mapped[int] = mapped_column(Integer, nullable=False)
    threshold: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint(
            "evaluation_id", "class_name", name="uq_evaluation_class_metrics_evaluation_class"
        ),
    )


class EvaluationGroupMetric(Base):
    """Metrics within one group in an evaluation: the columns of `training_group_metrics`, so a
    fairness summary reads either table the same way."""

    __tablename__ = "evaluation_group_metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(_evaluation_fk(), nullable=False)
    group_by: Mapped[str] = mapped_column(String(30), nullable=False)
    group_value: Mapped[str] = mapped_column(String(100), nullable=False)
    support: Mapped[int] = mapped_column(Integer, nullable=False)
    accuracy: Mapped[float | None] = mapped_column(Float)
    accuracy_low: Mapped[float | None] = mapped_column(Float)
    accuracy_high: Mapped[float | None] = mapped_column(Float)
    f1_macro: Mapped[float | None] = mapped_column(Float)
    majority_rate: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint(
            "evaluation_id",
            "group_by",
            "group_value",
            name="uq_evaluation_group_metrics_evaluation_group",
        ),
    )
