"""Read-only queries behind the TUI: image pages for the browser (keyset, never the whole
table), one image's details, training runs and their per-epoch and per-class results.

No Textual here, so it is testable on its own and the core stays Textual-free; every label
CHANGE goes through `skinctl.labels.LabelService`, never through this module.
Training runs are read through `skinctl.train.records` (TensorFlow-free), with a fallback to
JSON in hand-written rows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, exists, func, or_, select, text
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from skinctl.db.models import (
    SKIN_TONES,
    ConditionLabel,
    ImageDuplicate,
    ImagePrediction,
    ImageSource,
    SubjectMetadata,
    TrainingImage,
    TrainingRun,
)
from skinctl.train import records
from skinctl.train.fairness import FairnessSummary, fairness_summary

PAGE_SIZE = 100


@dataclass(frozen=True)
class ImageFilter:
    dataset: str | None = None
    condition: str | None = None
    verified: str | None = None  # None | "verified" | "unverified"
    flag: str | None = None
    duplicates: bool = False  # only images with an exact or near duplicate
    split: str | None = None
    skin_type: str | None = None  # the subject's (subject_metadata)
    fitzpatrick: int | None = None
    tone: str | None = None  # the skin tone estimated from the pixels (ITA category)
    run_id: int | None = None  # only images this run scored, most likely mislabeled first
    predicted: str | None = None  # the run's predicted class (with run_id)


# A page ends at a position: the last row's id, or (score, id) when a run's mislabel score orders.
PagePosition = int | tuple[float, int]


@dataclass(frozen=True)
class ImageRow:
    id: int
    dataset: str
    split: str | None
    size: str
    format: str | None
    labels: str
    status: str
    flags: str
    duplicates: int
    predicted: str | None = None  # the filter's run: its predicted class and mislabel score
    score: float | None = None

    @property
    def position(self) -> PagePosition:
        return (self.score, self.id) if self.score is not None else self.id


def _image_conditions(f: ImageFilter) -> list[Any]:
    img, lab = TrainingImage, ConditionLabel
    conditions: list[Any] = []
    if f.dataset:
        conditions.append(img.dataset_source == f.dataset)
    if f.condition:
        conditions.append(
            exists().where(
                lab.image_id == img.id, lab.condition_type == f.condition, lab.status != "rejected"
            )
        )
    if f.verified == "verified":
        conditions.append(exists().where(lab.image_id == img.id, lab.status == "verified"))
    elif f.verified == "unverified":
        conditions.append(exists().where(lab.image_id == img.id, lab.status == "pending"))
    if f.flag:
        conditions.append(img.quality_flags.contains([f.flag]))  # @> uses the GIN index
    if f.split:
        conditions.append(img.split == f.split)
    if f.tone:
        conditions.append(img.skin_tone == f.tone)
    if f.skin_type or f.fitzpatrick is not None:
        subject = [SubjectMetadata.image_id == img.id]
        if f.skin_type:
            subject.append(SubjectMetadata.skin_type == f.skin_type)
        if f.fitzpatrick is not None:
            subject.append(SubjectMetadata.fitzpatrick_scale == f.fitzpatrick)
        conditions.append(exists().where(*subject))
    if f.run_id is not None:
        pred = aliased(ImagePrediction)  # the page query joins ImagePrediction itself
        scored = [pred.image_id == img.id, pred.run_id == f.run_id]
        if f.predicted:
            scored.append(pred.predicted_label == f.predicted)
        conditions.append(exists().where(*scored))
    if f.duplicates:
        conditions.append(
            or_(
                exists().where(ImageDuplicate.image_id_a == img.id),
                exists().where(ImageDuplicate.image_id_b == img.id),
                select(func.count()).where(ImageSource.image_id == img.id).scalar_subquery() > 1,
            )
        )
    return conditions


def image_page(
    engine: Engine, f: ImageFilter, after: PagePosition | None = None, limit: int = PAGE_SIZE
) -> list[ImageRow]:
    """The next `limit` images after position `after` (keyset: constant cost per page however
    deep the user scrolls), with their labels and duplicate counts. In id order; with a run in
    the filter, by that run's mislabel score, highest (most likely mislabeled) first."""
    img, lab, pred = TrainingImage, ConditionLabel, ImagePrediction
    with Session(engine) as session:
        columns = [
            img.id,
            img.dataset_source,
            img.split,
            img.width,
            img.height,
            img.format,
            img.quality_flags,
        ]
        if f.run_id is not None:
            query = select(*columns, pred.predicted_label, pred.mislabel_score).join(
                pred, and_(pred.image_id == img.id, pred.run_id == f.run_id)
            )
        else:
            query = select(*columns)
        query = query.where(*_image_conditions(f))
        if f.run_id is not None:
            if isinstance(after, tuple):
                score, last_id = after
                query = query.where(
                    or_(
                        pred.mislabel_score < score,
                        and_(pred.mislabel_score == score, img.id > last_id),
                    )
                )
            query = query.order_by(pred.mislabel_score.desc(), img.id)
        else:
            if after is not None:
                query = query.where(img.id > (after[1] if isinstance(after, tuple) else after))
            query = query.order_by(img.id)
        rows = session.execute(query.limit(limit)).all()
        ids = [row.id for row in rows]
        labels: dict[int, list[tuple[str, str]]] = {}
        dups: dict[int, int] = {}
        if ids:
            for image_id, condition, status in session.execute(
                select(lab.image_id, lab.condition_type, lab.status)
                .where(lab.image_id.in_(ids))
                .order_by(lab.image_id, lab.id)
            ):
                assert image_id is not None  # selected by image_id IN (ids)
                labels.setdefault(image_id, []).append((condition, status))
            for a, b in session.execute(
                select(ImageDuplicate.image_id_a, ImageDuplicate.image_id_b).where(
                    or_(ImageDuplicate.image_id_a.in_(ids), ImageDuplicate.image_id_b.in_(ids))
                )
            ):
                dups[a] = dups.get(a, 0) + 1
                dups[b] = dups.get(b, 0) + 1
            for image_id, count in session.execute(
                select(ImageSource.image_id, func.count())
                .where(ImageSource.image_id.in_(ids))
                .group_by(ImageSource.image_id)
            ):
                dups[image_id] = dups.get(image_id, 0) + max(0, count - 1)
    result = []
    for row in rows:
        own = labels.get(row.id, [])
        live = [c for c, s in own if s != "rejected"]
        statuses = {s for _, s in own if s != "rejected"}
        status = (
            "verified"
            if statuses == {"verified"}
            else "pending"
            if "pending" in statuses
            else "rejected"
            if own
            else "-"
        )
        result.append(
            ImageRow(
                id=row.id,
                dataset=row.dataset_source,
                split=row.split,
                size=f"{row.width}x{row.height}" if row.width else "",
                format=row.format,
                labels=", ".join(live),
                status=status,
                flags=", ".join(row.quality_flags or []),
                duplicates=dups.get(row.id, 0),
                predicted=row.predicted_label if f.run_id is not None else None,
                score=row.mislabel_score if f.run_id is not None else None,
            )
        )
    return result


def count_images(engine: Engine, f: ImageFilter) -> int:
    with Session(engine) as session:
        return int(
            session.scalar(
                select(func.count()).select_from(TrainingImage).where(*_image_conditions(f))
            )
            or 0
        )


@dataclass(frozen=True)
class FilterChoices:
    datasets: list[str]
    classes: list[str]
    flags: list[str]
    splits: list[str] = field(default_factory=list)
    skin_types: list[str] = field(default_factory=list)
    fitzpatrick: list[int] = field(default_factory=list)
    runs: list[tuple[int, str]] = field(
        default_factory=list
    )  # (run id, "12 condition-cnn 3") that scored images
    predicted: list[str] = field(default_factory=list)
    tones: list[str] = field(default_factory=list)  # estimated skin tones present, lightest first


def filter_choices(engine: Engine) -> FilterChoices:
    def distinct(column: InstrumentedAttribute[Any]) -> list[Any]:
        return list(
            session.scalars(select(column).where(column.is_not(None)).distinct().order_by(column))
        )

    with Session(engine) as session:
        datasets = distinct(TrainingImage.dataset_source)
        classes = distinct(ConditionLabel.condition_type)
        flags = list(
            session.scalars(
                text(
                    "SELECT DISTINCT unnest(quality_flags) AS f FROM ml_training_images ORDER BY f"
                )
            )
        )
        scored = select(ImagePrediction.run_id).distinct().subquery()
        runs = [
            (run_id, f"{run_id} {model} {version or ''}".strip())
            for run_id, model, version in session.execute(
                select(TrainingRun.id, TrainingRun.model_name, TrainingRun.version)
                .join(scored, scored.c.run_id == TrainingRun.id)
                .order_by(TrainingRun.id.desc())
            )
        ]
        return FilterChoices(
            datasets,
            classes,
            flags,
            distinct(TrainingImage.split),
            distinct(SubjectMetadata.skin_type),
            distinct(SubjectMetadata.fitzpatrick_scale),
            runs,
            distinct(ImagePrediction.predicted_label),
            sorted(distinct(TrainingImage.skin_tone), key=SKIN_TONES.index),
        )


@dataclass
class ImageDetail:
    id: int
    image_url: str
    fields: list[tuple[str, str]]
    subject: list[tuple[str, str]]
    duplicates: list[tuple[int, int, str]]  # (other image id, distance, method)
    sources: list[str]


def image_detail(engine: Engine, image_id: int) -> ImageDetail | None:
    with Session(engine) as session:
        image = session.get(TrainingImage, image_id)
        if image is None:
            return None
        fields = [
            ("id", str(image.id)),
            ("dataset", image.dataset_source),
            ("path", image.local_path or ""),
            ("split", image.split or ""),
            ("size", f"{image.width}x{image.height}" if image.width else ""),
            ("format", image.format or ""),
            ("bytes", f"{image.byte_size:,}" if image.byte_size else ""),
            ("sha256", (image.image_hash or "")[:16]),
            ("flags", ", ".join(image.quality_flags or []) or "none"),
            (
                "tone",
                f"{image.skin_tone} (ITA {image.skin_tone_ita:.0f}°, estimated)"
                if image.skin_tone is not None and image.skin_tone_ita is not None
                else "none",
            ),
        ]
        subject_row = session.scalar(
            select(SubjectMetadata).where(SubjectMetadata.image_id == image_id)
        )
        subject = []
        if subject_row is not None:
            for name in (
                "skin_type",
                "fitzpatrick_scale",
                "age_range",
                "gender",
                "ethnicity",
                "subject_id",
            ):
                value = getattr(subject_row, name)
                if value is not None:
                    subject.append((name, str(value)))
        duplicates = [
            (b if a == image_id else a, distance, method)
            for a, b, distance, method in session.execute(
                select(
                    ImageDuplicate.image_id_a,
                    ImageDuplicate.image_id_b,
                    ImageDuplicate.distance,
                    ImageDuplicate.method,
                )
                .where(
                    or_(
                        ImageDuplicate.image_id_a == image_id, ImageDuplicate.image_id_b == image_id
                    )
                )
                .order_by(ImageDuplicate.distance, ImageDuplicate.id)
            )
        ]
        sources = [
            f"{ds}:{path}"
            for ds, path in session.execute(
                select(ImageSource.dataset_source, ImageSource.local_path)
                .where(ImageSource.image_id == image_id)
                .order_by(ImageSource.id)
            )
        ]
        return ImageDetail(image.id, image.image_url, fields, subject, duplicates, sources)


def read_image_bytes(url: str, storage: Any | None) -> bytes:
    from skinctl.labels.transfer import read_image_bytes as read

    return read(url, storage)


# -- training runs ---------------------------------------------------------------------------
# Read through the trainer's own functions (skinctl.train.records, TensorFlow-free): one way to
# read a run. Rows written by hand with only the plan's columns still show: their per-epoch,
# per-class and confusion data may sit in `metrics` or `hyperparameters` JSON instead.


def interval(value: Any) -> tuple[float, float] | None:
    """A recorded 95% CI as (low, high); None unless two numbers (hand-written JSON varies)."""
    if isinstance(value, list | tuple) and len(value) == 2:
        low, high = _number(value[0]), _number(value[1])
        if low is not None and high is not None:
            return (low, high)
    return None


def list_runs(engine: Engine, limit: int = 500) -> list[records.RunSummary]:
    """Newest run first."""
    with Session(engine) as session:
        return records.list_runs(session, limit=limit)


@dataclass
class RunDetail:
    """A run as recorded, with its epochs, per-class scores and confusion matrix found also in
    the JSON of runs written by hand."""

    run: records.RunDetail
    epochs: list[dict[str, float]] = field(
        default_factory=list
    )  # {"epoch": n, "val_loss": .., ...}
    best_epoch: int | None = None
    per_class: list[dict[str, Any]] = field(
        default_factory=list
    )  # class, precision, recall, f1, support
    confusion: dict[str, Any] | None = None  # {"labels": [...], "matrix": [[...]]}
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    notes: str | None = None
    warning: str | None = None  # the trainer's "not better than the majority class" note
    fairness: FairnessSummary | None = None  # worst group vs the rest, per grouping


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _epochs_from_json(blob: Any) -> list[dict[str, float]]:
    """Keras-style {"loss": [..], "val_loss": [..]} or a list of per-epoch dicts, found under
    `history`/`epochs` in a JSON document; anything else gives no epochs."""
    if not isinstance(blob, dict):
        return []
    source = blob.get("history", blob.get("epochs"))
    epochs: list[dict[str, float]] = []
    if isinstance(source, dict):
        series = {k: v for k, v in source.items() if isinstance(v, list)}
        length = max((len(v) for v in series.values()), default=0)
        for i in range(length):
            row: dict[str, float] = {"epoch": float(i + 1)}
            for key, values in series.items():
                if i < len(values) and (number := _number(values[i])) is not None:
                    row[key] = number
            epochs.append(row)
    elif isinstance(source, list):
        for i, item in enumerate(source):
            if isinstance(item, dict):
                row = {k: n for k, v in item.items() if (n := _number(v)) is not None}
                row.setdefault("epoch", float(i + 1))
                epochs.append(row)
    return epochs


def _per_class_from_json(blob: Any) -> list[dict[str, Any]]:
    if not isinstance(blob, dict):
        return []
    source = blob.get("per_class") or blob.get("classes")
    result = []
    if isinstance(source, dict):
        for name, scores in source.items():
            if isinstance(scores, dict):
                result.append(
                    {
                        "class": str(name),
                        **{k: scores.get(k) for k in ("precision", "recall", "f1", "support")},
                    }
                )
    elif isinstance(source, list):
        for item in source:
            if isinstance(item, dict) and ("class" in item or "class_name" in item):
                result.append(
                    {
                        "class": str(item.get("class", item.get("class_name"))),
                        **{k: item.get(k) for k in ("precision", "recall", "f1", "support")},
                    }
                )
    return result


def _confusion_from_json(blob: Any) -> dict[str, Any] | None:
    if isinstance(blob, dict) and "confusion_matrix" in blob:
        blob = blob["confusion_matrix"]
    if isinstance(blob, dict) and isinstance(blob.get("matrix"), list):
        names = (
            blob.get("labels") or blob.get("classes") or range(len(blob["matrix"]))
        )  # trainer: "classes"
        return {"labels": [str(x) for x in names], "matrix": blob["matrix"]}
    if isinstance(blob, list) and blob and all(isinstance(r, list) for r in blob):
        return {"labels": [str(i) for i in range(len(blob))], "matrix": blob}
    return None


def run_detail(engine: Engine, run_id: int) -> RunDetail | None:
    with Session(engine) as session:
        if session.get(TrainingRun, run_id) is None:
            return None
        run = records.run_detail(session, run_id)
    hyper = run.hyperparameters if isinstance(run.hyperparameters, dict) else {}
    metrics = run.metrics
    detail = RunDetail(run, hyperparameters=hyper, notes=run.notes)
    detail.epochs = (
        [
            {
                "epoch": float(e.epoch),
                **{
                    k: n
                    for k, v in asdict(e).items()
                    if k != "epoch" and (n := _number(v)) is not None
                },
            }
            for e in run.epochs
        ]
        or _epochs_from_json(metrics)
        or _epochs_from_json(hyper)
    )
    detail.per_class = (
        [
            {
                "class": c.class_name,
                "precision": c.precision,
                "recall": c.recall,
                "f1": c.f1,
                "support": c.support,
            }
            for c in run.per_class
        ]
        or _per_class_from_json(metrics)
        or _per_class_from_json(hyper)
    )
    detail.fairness = fairness_summary(run.per_group)
    detail.confusion = (
        _confusion_from_json(run.confusion_matrix)
        or _confusion_from_json(metrics)
        or _confusion_from_json(hyper)
    )
    if isinstance(metrics, dict) and isinstance(metrics.get("warning"), str):
        detail.warning = metrics["warning"]
    best = run.best_epoch or (
        hyper.get("best_epoch") if isinstance(hyper.get("best_epoch"), int) else None
    )
    if best is None and detail.epochs:
        key = next(
            (k for k in ("val_loss", "loss", "train_loss") if any(k in e for e in detail.epochs)),
            None,
        )
        if key:
            scored = [e for e in detail.epochs if key in e]
            best = int(min(scored, key=lambda e: e[key])["epoch"])
    detail.best_epoch = best
    return detail
