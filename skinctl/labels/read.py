"""The read side of labels: queries, the review queue and its "likely mislabeled" order,
progress, statistics, export rows and the model's suggestion. Nothing here changes a row;
every change goes through `skinctl.labels.service.LabelService` (which is also a reader)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TypeVarTuple

from sqlalchemy import Engine, Select, and_, case, func, select, union
from sqlalchemy.orm import Session, aliased

from skinctl.datasets.readers import SKIN_TYPES
from skinctl.db.models import (
    ConditionLabel,
    ImageDuplicate,
    ImagePrediction,
    LabelHistory,
    TrainingImage,
)
from skinctl.errors import NotFound, UsageError
from skinctl.labels.views import (
    PENDING,
    Candidate,
    ClassStats,
    DatasetStats,
    ExportRow,
    HistoryEntry,
    LabelFilter,
    LabelStats,
    LabelStatus,
    LabelTask,
    LabelView,
    ModelLabelStats,
    ModelSuggestion,
    QueueKey,
    QueueOrder,
)


def label_view(label: ConditionLabel, image: TrainingImage | None = None) -> LabelView:
    image = image if image is not None else label.image
    return LabelView(
        id=label.id,
        image_id=label.image_id,
        task=label.task,
        condition_type=label.condition_type,
        severity_level=label.severity_level,
        confidence_score=label.confidence_score,
        source=label.source,
        status=label.status,
        verified=bool(label.verified),
        verified_by=label.verified_by,
        verified_at=label.verified_at,
        updated_at=label.updated_at,
        version=label.version,
        dataset_source=image.dataset_source if image else None,
        image_url=image.image_url if image else None,
        local_path=image.local_path if image else None,
        split=image.split if image else None,
    )


class LabelReader:
    """Label queries over one engine. Each call is one short read-only session."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def get(self, label_id: int) -> LabelView:
        with self._session() as session:
            label = session.get(ConditionLabel, label_id)
            if label is None:
                raise NotFound(
                    f"Label {label_id} does not exist.",
                    hint="`skinctl label list` shows label ids.",
                )
            return label_view(label)

    def statuses(self, label_ids: Sequence[int]) -> dict[int, str]:
        """{label id: status} in one query (the queue skips labels others decided)."""
        with self._session() as session:
            rows = session.execute(
                select(ConditionLabel.id, ConditionLabel.status).where(
                    ConditionLabel.id.in_(list(label_ids))
                )
            )
            return {label_id: status for label_id, status in rows}

    def labels_of_image(self, image_id: int) -> list[LabelView]:
        with self._session() as session:
            rows = session.execute(
                select(ConditionLabel, TrainingImage)
                .join(TrainingImage, TrainingImage.id == ConditionLabel.image_id)
                .where(ConditionLabel.image_id == image_id)
                .order_by(ConditionLabel.id)
            ).all()
            return [label_view(label, image) for label, image in rows]

    def _filtered(self, filters: LabelFilter) -> Select[ConditionLabel, TrainingImage]:
        query = select(ConditionLabel, TrainingImage).join(
            TrainingImage, TrainingImage.id == ConditionLabel.image_id
        )
        if filters.dataset:
            query = query.where(TrainingImage.dataset_source == filters.dataset)
        if filters.condition:
            query = query.where(ConditionLabel.condition_type == filters.condition)
        if filters.status:
            query = query.where(ConditionLabel.status == filters.status)
        if filters.source:
            query = query.where(ConditionLabel.source == filters.source)
        if filters.task:
            query = query.where(ConditionLabel.task == filters.task)
        if filters.image_id is not None:
            query = query.where(ConditionLabel.image_id == filters.image_id)
        return query

    def list_labels(
        self,
        filters: LabelFilter = LabelFilter(),
        *,
        order: str = "id",
        limit: int | None = None,
        after_id: int | None = None,
    ) -> list[LabelView]:
        """Labels matching `filters`. order 'id' pages by `after_id`; 'suspect' puts likely
        mislabeled first (see `order_by_suspect`)."""
        with self._session() as session:
            query = self._filtered(filters)
            if order == QueueOrder.suspect:
                query = order_by_suspect(session, query)
            elif order == QueueOrder.id:
                if after_id is not None:
                    query = query.where(ConditionLabel.id > after_id)
                query = query.order_by(ConditionLabel.id)
            else:
                raise UsageError(f"Unknown order {order!r}; use suspect or id.")
            if limit is not None:
                query = query.limit(limit)
            return [label_view(label, image) for label, image in session.execute(query)]

    def queue(self, filters: LabelFilter = PENDING, *, order: str = "suspect") -> list[int]:
        """Label ids to review, in order: only ids (cheap even for 100k labels)."""
        with self._session() as session:
            query = self._filtered(filters).with_only_columns(ConditionLabel.id)
            if order == QueueOrder.suspect:
                query = order_by_suspect(session, query)
            else:
                query = query.order_by(ConditionLabel.id)
            return list(session.scalars(query))

    def queue_items(
        self, filters: LabelFilter = PENDING, *, order: str = "suspect"
    ) -> list[QueueKey]:
        """The review queue: one item per image and task that has a label matching `filters`,
        however many labels (two source files, exact copies) it carries, in the order of its
        most suspect label. Only keys: the TUI loads an item when it shows it."""
        with self._session() as session:
            query = self._filtered(filters).with_only_columns(
                ConditionLabel.image_id, ConditionLabel.task
            )
            if order == QueueOrder.suspect:
                query = order_by_suspect(session, query)
            else:
                query = query.order_by(ConditionLabel.image_id, ConditionLabel.id)
            keys = dict.fromkeys(
                QueueKey(image_id, task)
                for image_id, task in session.execute(query)
                if image_id is not None  # joined to its image: never NULL here
            )
            return list(keys)

    def pending_items(self, keys: Iterable[QueueKey]) -> set[QueueKey]:
        """The keys that still have a pending label (someone may have decided others)."""
        keys = list(keys)
        if not keys:
            return set()
        with self._session() as session:
            rows = session.execute(
                select(ConditionLabel.image_id, ConditionLabel.task)
                .where(
                    ConditionLabel.image_id.in_({k.image_id for k in keys}),
                    ConditionLabel.status == LabelStatus.pending,
                )
                .distinct()
            )
            pending = {QueueKey(image_id, task) for image_id, task in rows if image_id is not None}
        return pending & set(keys)

    def candidates(self, image_id: int, task: str) -> list[Candidate]:
        """The live (not rejected) labels of one image and task grouped by class, the class
        most labels carry first: the choices a reviewer decides between in one step."""
        grouped: dict[str, list[LabelView]] = {}
        for label in self.labels_of_image(image_id):
            if label.task == task and label.status != LabelStatus.rejected:
                grouped.setdefault(label.condition_type, []).append(label)
        ordered = sorted(
            grouped.items(), key=lambda item: (-len(item[1]), min(lb.id for lb in item[1]))
        )
        return [Candidate(condition, labels) for condition, labels in ordered]

    def progress(self, filters: LabelFilter = LabelFilter()) -> tuple[int, int]:
        """(verified, total) labels matching filters (status filter ignored): '412 / 3,152'."""
        with self._session() as session:
            base = self._filtered(replace(filters, status=None))
            sub = base.with_only_columns(ConditionLabel.status).subquery()
            row = session.execute(
                select(
                    func.count().filter(sub.c.status == LabelStatus.verified), func.count()
                ).select_from(sub)
            ).one()
            return int(row[0]), int(row[1])

    def classes(self, task: str = "condition", dataset: str | None = None) -> list[str]:
        """Class names in use for a task (every source), alphabetical."""
        return sorted(self.class_counts(task, dataset))

    def class_counts(self, task: str = "condition", dataset: str | None = None) -> dict[str, int]:
        """{class: live labels} for a task, commonest first (ties alphabetical): the queue
        gives the first nine a number key."""
        with self._session() as session:
            query = (
                select(
                    ConditionLabel.condition_type,
                    func.count().filter(ConditionLabel.status != LabelStatus.rejected),
                )
                .where(ConditionLabel.task == task)
                .group_by(ConditionLabel.condition_type)
            )
            if dataset:
                query = query.join(
                    TrainingImage, TrainingImage.id == ConditionLabel.image_id
                ).where(TrainingImage.dataset_source == dataset)
            rows = session.execute(query).all()
        return {name: count for name, count in sorted(rows, key=lambda row: (-row[1], row[0]))}

    def infer_task(self, image_id: int, condition: str) -> LabelTask:
        """The task a class given without `--task` belongs to: see `infer_task`."""
        with self._session() as session:
            return infer_task(session, image_id, condition)

    def suggestion(self, image_id: int) -> ModelSuggestion | None:
        """The latest model prediction for an image (the trainer's `image_predictions`)."""
        with self._session() as session:
            return model_suggestion(session, image_id)

    def history(
        self, *, image_id: int | None = None, label_id: int | None = None
    ) -> list[HistoryEntry]:
        with self._session() as session:
            query = select(LabelHistory).order_by(LabelHistory.id)
            if image_id is not None:
                if session.get(TrainingImage, image_id) is None:
                    raise NotFound(f"Image {image_id} does not exist.")
                query = query.where(LabelHistory.image_id == image_id)
            if label_id is not None:
                query = query.where(LabelHistory.label_id == label_id)
            return [
                HistoryEntry(
                    h.id,
                    h.label_id,
                    h.image_id,
                    h.action,
                    h.before,
                    h.after,
                    h.changed_by,
                    h.changed_at,
                    h.note,
                    h.operation_id,
                    h.undoes_operation_id,
                )
                for h in session.scalars(query)
            ]

    def stats(self) -> LabelStats:
        """Verified share per dataset and class, and how often human verdicts agreed with the
        dataset's labels (a dataset label verified = agreed; rejected = disagreed)."""
        with self._session() as session:
            lab, img = ConditionLabel, TrainingImage
            rows = session.execute(
                select(
                    img.dataset_source,
                    lab.task,
                    lab.condition_type,
                    func.count(),
                    func.count().filter(lab.status == "verified"),
                    func.count().filter(lab.status == "rejected"),
                    func.count().filter(and_(lab.source == "dataset", lab.status == "verified")),
                    func.count().filter(and_(lab.source == "dataset", lab.status == "rejected")),
                    func.count().filter(lab.source == "human"),
                )
                .join(img, img.id == lab.image_id)
                .group_by(img.dataset_source, lab.task, lab.condition_type)
                .order_by(img.dataset_source, lab.task, lab.condition_type)
            ).all()
        classes = []
        datasets: dict[str, dict[str, int]] = {}
        for dataset, task, condition, total, verified, rejected, agreed, disagreed, human in rows:
            classes.append(
                ClassStats(
                    dataset=dataset,
                    task=task,
                    condition=condition,
                    labels=total,
                    verified=verified,
                    rejected=rejected,
                    pending=total - verified - rejected,
                    human_labels=human,
                    verified_share=round(verified / total, 4) if total else 0.0,
                    agreement=_ratio(agreed, agreed + disagreed),
                    reviewed_dataset_labels=agreed + disagreed,
                )
            )
            d = datasets.setdefault(
                dataset, {"labels": 0, "verified": 0, "agreed": 0, "reviewed": 0}
            )
            d["labels"] += total
            d["verified"] += verified
            d["agreed"] += agreed
            d["reviewed"] += agreed + disagreed
        per_dataset = [
            DatasetStats(
                dataset=name,
                labels=d["labels"],
                verified=d["verified"],
                verified_share=round(d["verified"] / d["labels"], 4) if d["labels"] else 0.0,
                agreement=_ratio(d["agreed"], d["reviewed"]),
                reviewed_dataset_labels=d["reviewed"],
            )
            for name, d in sorted(datasets.items())
        ]
        agreed = sum(d["agreed"] for d in datasets.values())
        reviewed = sum(d["reviewed"] for d in datasets.values())
        models = self._model_label_stats()
        accepted = sum(m.accepted for m in models)
        return LabelStats(
            per_dataset,
            classes,
            _ratio(agreed, reviewed),
            reviewed,
            model_labels=models,
            model_acceptance=_ratio(accepted, accepted + sum(m.rejected for m in models)),
        )

    def _model_label_stats(self) -> list[ModelLabelStats]:
        """Per run, how people judged its labels (pre-labels, `serve --record`): verified with
        the model's class = accepted; rejected or superseded by another class = rejected."""
        lab = ConditionLabel
        run = lab.metadata_["run_id"].astext
        with self._session() as session:
            rows = session.execute(
                select(
                    run,
                    func.count(),
                    func.count().filter(lab.status == "verified"),
                    func.count().filter(lab.status == "rejected"),
                )
                .where(lab.source == "model")
                .group_by(run)
                .order_by(run)
            ).all()
        return [
            ModelLabelStats(
                run=int(run_id) if run_id and run_id.isdigit() else None,
                labels=total,
                accepted=accepted,
                rejected=rejected,
                pending=total - accepted - rejected,
                acceptance=_ratio(accepted, accepted + rejected),
            )
            for run_id, total, accepted, rejected in rows
        ]

    def iter_export(self, filters: LabelFilter, *, verified_only: bool) -> Iterator[ExportRow]:
        """Live labels (not rejected) with their image, streamed in id order."""
        with self._session() as session:
            query = self._filtered(filters)
            query = (
                query.where(ConditionLabel.status == "verified")
                if verified_only
                else query.where(ConditionLabel.status != "rejected")
            )
            query = query.order_by(ConditionLabel.id).execution_options(yield_per=1000)
            for label, image in session.execute(query):
                yield ExportRow(
                    label_id=label.id,
                    image_id=image.id,
                    image_hash=image.image_hash,
                    image_url=image.image_url,
                    dataset=image.dataset_source,
                    local_path=image.local_path,
                    split=image.split,
                    task=label.task,
                    condition=label.condition_type,
                    severity=label.severity_level,
                    source=label.source,
                    status=label.status,
                    verified=bool(label.verified),
                    verified_by=label.verified_by,
                    verified_at=label.verified_at,
                )


def infer_task(session: Session, image_id: int, condition: str) -> LabelTask:
    """The task a class given without `--task` belongs to: the task whose classes include it
    (the skin types ingest knows, and every class in use), else the one task the image's
    labels have. Ambiguous or unknown: a usage error naming the tasks."""
    if session.get(TrainingImage, image_id) is None:
        raise NotFound(
            f"Image {image_id} does not exist.", hint="`skinctl label list` shows image ids."
        )
    in_use = set(
        session.scalars(
            select(ConditionLabel.task).where(ConditionLabel.condition_type == condition).distinct()
        )
    )
    if condition.lower() in SKIN_TYPES:
        in_use.add(LabelTask.skin_type)
    own = set(
        session.scalars(
            select(ConditionLabel.task).where(ConditionLabel.image_id == image_id).distinct()
        )
    )
    tasks = in_use or own
    if len(tasks) == 1:
        return LabelTask(tasks.pop())
    if not tasks:
        why = f"is a new class and the image has no labels of {' or '.join(LabelTask)}"
    else:
        why = f"{'is a class of' if in_use else 'has labels of'} both {' and '.join(sorted(tasks))}"
    raise UsageError(
        f"Cannot tell the task of {condition!r} on image {image_id}: it {why}.",
        hint="Pass --task condition or --task skin_type.",
    )


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# -- "likely mislabeled" ordering -----------------------------------------------------------


_Columns = TypeVarTuple("_Columns")


def order_by_suspect(session: Session, query: Select[*_Columns]) -> Select[*_Columns]:
    """Order a label query (ConditionLabel in its FROM) likely-mislabeled first:

    1. a model's mislabel score for the image (the highest any run recorded in
       `image_predictions`), highest first; a model's pre-label without such a score counts
       its doubt (1 - confidence_score), so the most uncertain pre-labels come first; NULL
       last: no model scored it;
    2. images in conflict first: their live labels of one task disagree, or a near/exact
       duplicate image carries a different class;
    3. label id.

    Both keys are computed once per query as grouped sets and joined (not per row), so ordering
    100k labels stays a single pass."""
    lab = ConditionLabel
    live = lab.status != "rejected"
    own = (
        select(lab.image_id.label("image_id"))
        .where(live)
        .group_by(lab.image_id, lab.task)
        .having(func.count(func.distinct(lab.condition_type)) > 1)
    )
    la, lb = aliased(ConditionLabel), aliased(ConditionLabel)
    dup = ImageDuplicate
    pairs = (
        select(dup.image_id_a, dup.image_id_b)
        .join(la, la.image_id == dup.image_id_a)
        .join(lb, lb.image_id == dup.image_id_b)
        .where(
            la.task == lb.task,
            la.condition_type != lb.condition_type,
            la.status != "rejected",
            lb.status != "rejected",
        )
        .subquery()
    )
    conflicts = union(own, select(pairs.c.image_id_a), select(pairs.c.image_id_b)).subquery(
        "conflict_images"
    )
    query = query.outerjoin(conflicts, conflicts.c.image_id == lab.image_id)
    scores = (
        select(ImagePrediction.image_id, func.max(ImagePrediction.mislabel_score).label("score"))
        .group_by(ImagePrediction.image_id)
        .subquery("image_scores")
    )
    query = query.outerjoin(scores, scores.c.image_id == lab.image_id)
    doubt = case((lab.source == "model", 1 - lab.confidence_score))
    keys = [func.coalesce(scores.c.score, doubt).desc().nulls_last()]
    keys += [conflicts.c.image_id.is_(None), lab.id]  # false (in conflict) sorts first
    return query.order_by(*keys)


def model_suggestion(session: Session, image_id: int) -> ModelSuggestion | None:
    """The newest prediction for an image, or None."""
    prediction = session.scalar(
        select(ImagePrediction)
        .where(ImagePrediction.image_id == image_id)
        .order_by(ImagePrediction.id.desc())
        .limit(1)
    )
    if prediction is None:
        return None
    return ModelSuggestion(
        label=prediction.predicted_label,
        confidence=prediction.self_confidence,
        mislabel_score=prediction.mislabel_score,
        run_id=prediction.run_id,
    )
