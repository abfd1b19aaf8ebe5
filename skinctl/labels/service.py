"""The one service every label change goes through: the CLI, the TUI and imports call it.

Rules it keeps:
- Every change appends to `label_history` who (settings.user), when, the row before and after,
  and an operation id shared by every row one call touched.
- Optimistic locking: callers pass the `version` they saw; if the row changed since, the call
  raises `Conflict` naming who changed it. SQLAlchemy's version_id_col also guards the window
  between our read and our UPDATE, so two writers can never both succeed on one version.
- `verified` (the plan's boolean) always equals `status == 'verified'`.
- A person's correction (`set_condition`) never overwrites the dataset's label: the dataset row
  keeps its condition_type and becomes `rejected` (superseded), and the person's class is a
  `source='human'` row with status `verified`. Both steps are one operation, so one undo
  reverts both.
- `undo` reverts the user's most recent not-yet-undone operation on a label or image, after
  commit too, by appending an `undo` operation; it refuses (Conflict) if someone else changed a
  row since, instead of overwriting their work.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, func, select, union
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.exc import StaleDataError

from skinctl.db.models import (
    LABEL_TASKS,
    ConditionLabel,
    ImageDuplicate,
    ImagePrediction,
    LabelHistory,
    TrainingImage,
)
from skinctl.errors import Conflict, NotFound, UsageError

# The label fields a change can touch; `before`/`after` in history hold exactly these.
TRACKED_FIELDS = (
    "condition_type",
    "severity_level",
    "status",
    "verified",
    "verified_by",
    "verified_at",
    "source",
    "task",
    "version",
)


@dataclass(frozen=True)
class LabelView:
    """A label with the image facts a person needs to judge it."""

    id: int
    image_id: int | None
    task: str
    condition_type: str
    severity_level: str | None
    confidence_score: float | None
    source: str
    status: str
    verified: bool
    verified_by: str | None
    verified_at: datetime | None
    updated_at: datetime | None
    version: int
    dataset_source: str | None = None
    image_url: str | None = None
    local_path: str | None = None
    split: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    label_id: int
    image_id: int | None
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    changed_by: str
    changed_at: datetime
    note: str | None
    operation_id: str | None
    undoes_operation_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LabelFilter:
    dataset: str | None = None
    condition: str | None = None
    verified: bool | None = None  # True: status verified; False: pending
    source: str | None = None
    status: str | None = None
    task: str | None = None
    image_id: int | None = None


@dataclass
class OperationResult:
    """What one service call did: the operation id and the labels it changed (after)."""

    operation_id: str
    labels: list[LabelView] = field(default_factory=list)

    @property
    def label(self) -> LabelView:
        return self.labels[-1]


def _snapshot(label: ConditionLabel) -> dict[str, Any]:
    data = {name: getattr(label, name) for name in TRACKED_FIELDS}
    if data["verified_at"] is not None:
        data["verified_at"] = data["verified_at"].isoformat()
    return data


def _view(label: ConditionLabel, image: TrainingImage | None = None) -> LabelView:
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


def _set_status(label: ConditionLabel, status: str, user: str, now: datetime) -> None:
    """Status and the plan's `verified` boolean change together, always."""
    label.status = status
    label.verified = status == "verified"
    label.verified_by = user if status != "pending" else None
    label.verified_at = now if status != "pending" else None
    label.updated_at = now


def _conflict(label_id: int, seen: int, label: ConditionLabel | None, session: Session) -> Conflict:
    who = None
    if label is not None:
        who = session.scalar(
            select(LabelHistory.changed_by)
            .where(LabelHistory.label_id == label_id)
            .order_by(LabelHistory.id.desc())
            .limit(1)
        )
    current = f"; it is now version {label.version} ({label.condition_type}, {label.status})" if label else ""
    by = f" by {who}" if who else ""
    return Conflict(
        f"Label {label_id} was changed{by} since you saw version {seen}{current}.",
        hint="Reload the label, check the other change, and apply yours again if it still holds.",
    )


class LabelService:
    """Label changes and queries for one user. Each public change is one transaction."""

    def __init__(self, engine: Engine, user: str) -> None:
        if not user:
            raise UsageError("No user to record label changes under.", hint="Set SKINCTL_USER.")
        self.engine = engine
        self.user = user

    # -- plumbing ---------------------------------------------------------------------------

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _load(self, session: Session, label_id: int, seen_version: int | None) -> ConditionLabel:
        label = session.get(ConditionLabel, label_id, populate_existing=True)
        if label is None:
            raise NotFound(f"Label {label_id} does not exist.", hint="`skinctl label list` shows label ids.")
        if seen_version is not None and label.version != seen_version:
            raise _conflict(label_id, seen_version, label, session)
        return label

    def _record(
        self,
        session: Session,
        operation_id: str,
        label: ConditionLabel,
        action: str,
        before: dict[str, Any] | None,
        note: str | None = None,
        undoes: str | None = None,
    ) -> None:
        """Flush the label change (the versioned UPDATE) and append its history row."""
        label_id = label.id  # read now: after a failed flush the object is unusable
        try:
            session.flush()
        except StaleDataError:
            # The caller's transaction (or savepoint) is rolled back by whoever owns it.
            fresh = self._session()
            try:
                current = fresh.get(ConditionLabel, label_id)
                raise _conflict(label_id, before["version"] if before else 0, current, fresh) from None
            finally:
                fresh.close()
        session.add(
            LabelHistory(
                label_id=label.id,
                image_id=label.image_id,
                action=action,
                before=before,
                after=_snapshot(label),
                changed_by=self.user,
                changed_at=datetime.now(),
                note=note,
                operation_id=operation_id,
                undoes_operation_id=undoes,
            )
        )

    def _commit(self, session: Session, result: OperationResult) -> OperationResult:
        try:
            session.commit()
        except StaleDataError:
            session.rollback()
            raise Conflict("A label changed while saving; nothing was saved.") from None
        return result

    # -- changes (session-level, used by the public methods and by import) -----------------

    def _change_status(
        self, session: Session, op: str, label_id: int, status: str, seen: int | None, note: str | None
    ) -> ConditionLabel:
        label = self._load(session, label_id, seen)
        if label.status == status and label.verified == (status == "verified"):
            return label  # already so: no new version, no history row (idempotent)
        before = _snapshot(label)
        _set_status(label, status, self.user, datetime.now())
        self._record(session, op, label, "verify" if status == "verified" else "reject", before, note)
        return label

    def _set_condition(
        self,
        session: Session,
        op: str,
        image_id: int,
        condition: str,
        severity: str | None,
        task: str,
        seen: Mapping[int, int] | None,
        note: str | None,
    ) -> ConditionLabel:
        condition = condition.strip()
        if not condition:
            raise UsageError("The condition must not be empty.")
        if task not in LABEL_TASKS:
            raise UsageError(f"Unknown task {task!r}; use one of {', '.join(LABEL_TASKS)}.")
        if session.get(TrainingImage, image_id) is None:
            raise NotFound(f"Image {image_id} does not exist.", hint="`skinctl label list` shows image ids.")
        seen = seen or {}
        labels = session.scalars(
            select(ConditionLabel)
            .where(ConditionLabel.image_id == image_id, ConditionLabel.task == task)
            .order_by(ConditionLabel.id)
            .execution_options(populate_existing=True)
        ).all()
        for label in labels:
            if label.id in seen and label.version != seen[label.id]:
                raise _conflict(label.id, seen[label.id], label, session)
        now = datetime.now()
        # Keep one row per (image, class): prefer a human row already carrying this class.
        same = [lb for lb in labels if lb.condition_type == condition]
        same.sort(key=lambda lb: (lb.source != "human", lb.id))
        target = same[0] if same else None
        if target is None:
            target = ConditionLabel(
                image_id=image_id,
                task=task,
                condition_type=condition,
                severity_level=severity,
                source="human",
                metadata_={"set_by": self.user},
            )
            _set_status(target, "verified", self.user, now)
            session.add(target)
            self._record(session, op, target, "create", None, note)
        else:
            changed = target.status != "verified" or (severity is not None and severity != target.severity_level)
            if changed:
                before = _snapshot(target)
                _set_status(target, "verified", self.user, now)
                if severity is not None:
                    target.severity_level = severity
                self._record(session, op, target, "set", before, note)
        # Every other live label of this task on the image is superseded, never overwritten.
        for label in labels:
            if label is target or label.status == "rejected":
                continue
            before = _snapshot(label)
            _set_status(label, "rejected", self.user, now)
            self._record(session, op, label, "supersede", before, note or f"superseded by {condition}")
        return target

    def _set_severity(
        self, session: Session, op: str, label_id: int, severity: str | None, seen: int | None, note: str | None
    ) -> ConditionLabel:
        label = self._load(session, label_id, seen)
        severity = severity.strip() if severity and severity.strip() else None
        if label.severity_level == severity:
            return label
        before = _snapshot(label)
        label.severity_level = severity
        label.updated_at = datetime.now()
        self._record(session, op, label, "severity", before, note)
        return label

    # -- public changes ---------------------------------------------------------------------

    def verify(self, label_id: int, version: int | None = None, note: str | None = None) -> OperationResult:
        """Mark a label correct. `version` is the one the caller saw (None: whatever is current)."""
        op = str(uuid.uuid4())
        with self._session() as session:
            label = self._change_status(session, op, label_id, "verified", version, note)
            return self._commit(session, OperationResult(op, [_view(label)]))

    def reject(self, label_id: int, version: int | None = None, reason: str | None = None) -> OperationResult:
        op = str(uuid.uuid4())
        with self._session() as session:
            label = self._change_status(session, op, label_id, "rejected", version, reason)
            return self._commit(session, OperationResult(op, [_view(label)]))

    def set_condition(
        self,
        image_id: int,
        condition: str,
        severity: str | None = None,
        *,
        task: str = "condition",
        seen: Mapping[int, int] | None = None,
        note: str | None = None,
    ) -> OperationResult:
        """A person's class for an image: see the module docstring. `seen` maps label ids the
        caller showed to the versions it showed (conflict if any changed)."""
        op = str(uuid.uuid4())
        with self._session() as session:
            label = self._set_condition(session, op, image_id, condition, severity, task, seen, note)
            return self._commit(session, OperationResult(op, [_view(label)]))

    def set_severity(
        self, label_id: int, severity: str | None, version: int | None = None, note: str | None = None
    ) -> OperationResult:
        op = str(uuid.uuid4())
        with self._session() as session:
            label = self._set_severity(session, op, label_id, severity, version, note)
            return self._commit(session, OperationResult(op, [_view(label)]))

    def undo(self, *, label_id: int | None = None, image_id: int | None = None) -> OperationResult:
        """Revert this user's latest operation (not itself an undo, not already undone) that
        touched the label or image. Appends an `undo` operation; Conflict if a row it would
        restore was changed by someone since (their change is never overwritten)."""
        if (label_id is None) == (image_id is None):
            raise UsageError("Undo needs a label id or an image id.")
        with self._session() as session:
            touched = LabelHistory.label_id == label_id if label_id is not None else LabelHistory.image_id == image_id
            undone = select(LabelHistory.undoes_operation_id).where(
                LabelHistory.undoes_operation_id.is_not(None)
            )
            target_op = session.scalar(
                select(LabelHistory.operation_id)
                .where(
                    touched,
                    LabelHistory.changed_by == self.user,
                    LabelHistory.operation_id.is_not(None),
                    LabelHistory.undoes_operation_id.is_(None),
                    LabelHistory.operation_id.not_in(undone),
                )
                .order_by(LabelHistory.id.desc())
                .limit(1)
            )
            what = f"label {label_id}" if label_id is not None else f"image {image_id}"
            if target_op is None:
                raise NotFound(f"Nothing of yours to undo on {what}.", hint="`skinctl label history` shows its changes.")
            rows = session.scalars(
                select(LabelHistory).where(LabelHistory.operation_id == target_op).order_by(LabelHistory.id.desc())
            ).all()
            op = str(uuid.uuid4())
            changed: list[ConditionLabel] = []
            for row in rows:
                label = session.get(ConditionLabel, row.label_id, populate_existing=True)
                assert label is not None  # history rows reference existing labels (FK)
                if not self._untouched_since(session, row):
                    raise _conflict(label.id, row.after["version"] if row.after else 1, label, session)
                before = _snapshot(label)
                if row.before is None:
                    # A row this operation created cannot be deleted (history points at it):
                    # undo retires it as rejected.
                    _set_status(label, "rejected", self.user, datetime.now())
                else:
                    for name in ("condition_type", "severity_level", "status", "verified", "verified_by", "source", "task"):
                        setattr(label, name, row.before[name])
                    at = row.before.get("verified_at")
                    label.verified_at = datetime.fromisoformat(at) if at else None
                    label.updated_at = datetime.now()
                self._record(session, op, label, "undo", before, f"undo of {row.action}", undoes=target_op)
                changed.append(label)
            return self._commit(session, OperationResult(op, [_view(lb) for lb in changed]))

    @staticmethod
    def _untouched_since(session: Session, row: LabelHistory) -> bool:
        """True if every later change of the row's label was itself undone (or is such an
        undo): the label is then still as `row` left it, and undoing `row` overwrites no one."""
        later = session.execute(
            select(LabelHistory.operation_id, LabelHistory.undoes_operation_id).where(
                LabelHistory.label_id == row.label_id, LabelHistory.id > row.id
            )
        ).all()
        if not later:
            return True
        undone = set(
            session.scalars(
                select(LabelHistory.undoes_operation_id).where(
                    LabelHistory.undoes_operation_id.in_({op for op, _ in later} | {u for _, u in later if u})
                )
            )
        )
        return all(op in undone or (undoes is not None and undoes in undone) for op, undoes in later)

    # -- queries ----------------------------------------------------------------------------

    def get(self, label_id: int) -> LabelView:
        with self._session() as session:
            label = session.get(ConditionLabel, label_id)
            if label is None:
                raise NotFound(f"Label {label_id} does not exist.", hint="`skinctl label list` shows label ids.")
            return _view(label)

    def statuses(self, label_ids: Sequence[int]) -> dict[int, str]:
        """{label id: status} in one query (the queue skips labels others decided)."""
        with self._session() as session:
            rows = session.execute(
                select(ConditionLabel.id, ConditionLabel.status).where(ConditionLabel.id.in_(list(label_ids)))
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
            return [_view(label, image) for label, image in rows]

    def _filtered(self, filters: LabelFilter):
        query = select(ConditionLabel, TrainingImage).join(
            TrainingImage, TrainingImage.id == ConditionLabel.image_id
        )
        if filters.dataset:
            query = query.where(TrainingImage.dataset_source == filters.dataset)
        if filters.condition:
            query = query.where(ConditionLabel.condition_type == filters.condition)
        if filters.verified is True:
            query = query.where(ConditionLabel.status == "verified")
        elif filters.verified is False:
            query = query.where(ConditionLabel.status == "pending")
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
        self, filters: LabelFilter = LabelFilter(), *, order: str = "id", limit: int | None = None, after_id: int | None = None
    ) -> list[LabelView]:
        """Labels matching `filters`. order 'id' pages by `after_id`; 'suspect' puts likely
        mislabeled first (see `suspect_order`)."""
        with self._session() as session:
            query = self._filtered(filters)
            if order == "suspect":
                query = order_by_suspect(session, query)
            elif order == "id":
                if after_id is not None:
                    query = query.where(ConditionLabel.id > after_id)
                query = query.order_by(ConditionLabel.id)
            else:
                raise UsageError(f"Unknown order {order!r}; use suspect or id.")
            if limit is not None:
                query = query.limit(limit)
            return [_view(label, image) for label, image in session.execute(query)]

    def queue(self, filters: LabelFilter = LabelFilter(verified=False), *, order: str = "suspect") -> list[int]:
        """Label ids to review, in order: only ids (cheap even for 100k labels); the TUI loads
        each label when it shows it."""
        with self._session() as session:
            query = self._filtered(filters).with_only_columns(ConditionLabel.id)
            if order == "suspect":
                query = order_by_suspect(session, query)
            else:
                query = query.order_by(ConditionLabel.id)
            return list(session.scalars(query))

    def progress(self, filters: LabelFilter = LabelFilter()) -> tuple[int, int]:
        """(verified, total) labels matching filters (verified filter ignored): '412 / 3,152'."""
        with self._session() as session:
            base = self._filtered(LabelFilter(**{**asdict(filters), "verified": None, "status": None}))
            sub = base.with_only_columns(ConditionLabel.status).subquery()
            row = session.execute(
                select(func.count().filter(sub.c.status == "verified"), func.count()).select_from(sub)
            ).one()
            return int(row[0]), int(row[1])

    def classes(self, task: str = "condition", dataset: str | None = None) -> list[str]:
        """Class names in use for a task (every source), alphabetical: the queue's number keys."""
        with self._session() as session:
            query = select(ConditionLabel.condition_type).where(ConditionLabel.task == task).distinct()
            if dataset:
                query = query.join(TrainingImage, TrainingImage.id == ConditionLabel.image_id).where(
                    TrainingImage.dataset_source == dataset
                )
            return sorted(session.scalars(query))

    def suggestion(self, image_id: int) -> dict[str, Any] | None:
        """The latest model prediction for an image (the trainer's `image_predictions`)."""
        with self._session() as session:
            return model_suggestion(session, image_id)

    def history(self, *, image_id: int | None = None, label_id: int | None = None) -> list[HistoryEntry]:
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
                    h.id, h.label_id, h.image_id, h.action, h.before, h.after, h.changed_by,
                    h.changed_at, h.note, h.operation_id, h.undoes_operation_id,
                )
                for h in session.scalars(query)
            ]

    def stats(self) -> dict[str, Any]:
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
                {
                    "dataset": dataset,
                    "task": task,
                    "condition": condition,
                    "labels": total,
                    "verified": verified,
                    "rejected": rejected,
                    "pending": total - verified - rejected,
                    "human_labels": human,
                    "verified_share": round(verified / total, 4) if total else 0.0,
                    "agreement": _ratio(agreed, agreed + disagreed),
                    "reviewed_dataset_labels": agreed + disagreed,
                }
            )
            d = datasets.setdefault(dataset, {"labels": 0, "verified": 0, "agreed": 0, "reviewed": 0})
            d["labels"] += total
            d["verified"] += verified
            d["agreed"] += agreed
            d["reviewed"] += agreed + disagreed
        per_dataset = [
            {
                "dataset": name,
                "labels": d["labels"],
                "verified": d["verified"],
                "verified_share": round(d["verified"] / d["labels"], 4) if d["labels"] else 0.0,
                "agreement": _ratio(d["agreed"], d["reviewed"]),
                "reviewed_dataset_labels": d["reviewed"],
            }
            for name, d in sorted(datasets.items())
        ]
        agreed = sum(d["agreed"] for d in datasets.values())
        reviewed = sum(d["reviewed"] for d in datasets.values())
        return {
            "datasets": per_dataset,
            "classes": classes,
            "agreement": _ratio(agreed, reviewed),
            "reviewed_dataset_labels": reviewed,
        }

    def iter_export(self, filters: LabelFilter, *, verified_only: bool) -> Iterator[dict[str, Any]]:
        """Live labels (not rejected) with their image, streamed in id order."""
        with self._session() as session:
            query = self._filtered(filters)
            query = query.where(ConditionLabel.status == "verified") if verified_only else query.where(
                ConditionLabel.status != "rejected"
            )
            query = query.order_by(ConditionLabel.id).execution_options(yield_per=1000)
            for label, image in session.execute(query):
                yield {
                    "label_id": label.id,
                    "image_id": image.id,
                    "image_hash": image.image_hash,
                    "image_url": image.image_url,
                    "dataset": image.dataset_source,
                    "local_path": image.local_path,
                    "split": image.split,
                    "task": label.task,
                    "condition": label.condition_type,
                    "severity": label.severity_level,
                    "source": label.source,
                    "status": label.status,
                    "verified": bool(label.verified),
                    "verified_by": label.verified_by,
                    "verified_at": label.verified_at,
                }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# -- "likely mislabeled" ordering -----------------------------------------------------------


def order_by_suspect(session: Session, query):
    """Order a label query (ConditionLabel in its FROM) likely-mislabeled first:

    1. a model's mislabel score for the image (the highest any run recorded in
       `image_predictions`), highest first; NULL last: no model scored it;
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
        .where(la.task == lb.task, la.condition_type != lb.condition_type, la.status != "rejected", lb.status != "rejected")
        .subquery()
    )
    conflicts = union(
        own, select(pairs.c.image_id_a), select(pairs.c.image_id_b)
    ).subquery("conflict_images")
    query = query.outerjoin(conflicts, conflicts.c.image_id == lab.image_id)
    scores = (
        select(ImagePrediction.image_id, func.max(ImagePrediction.mislabel_score).label("score"))
        .group_by(ImagePrediction.image_id)
        .subquery("image_scores")
    )
    query = query.outerjoin(scores, scores.c.image_id == lab.image_id)
    keys = [scores.c.score.desc().nulls_last()]
    keys += [conflicts.c.image_id.is_(None), lab.id]  # false (in conflict) sorts first
    return query.order_by(*keys)


def model_suggestion(session: Session, image_id: int) -> dict[str, Any] | None:
    """{'label', 'confidence', 'mislabel_score', 'run_id'} from the newest prediction, or None."""
    prediction = session.scalar(
        select(ImagePrediction).where(ImagePrediction.image_id == image_id).order_by(ImagePrediction.id.desc()).limit(1)
    )
    if prediction is None:
        return None
    return {
        "label": prediction.predicted_label,
        "confidence": prediction.self_confidence,
        "mislabel_score": prediction.mislabel_score,
        "run_id": prediction.run_id,
    }


def versions_of(labels: Sequence[LabelView]) -> dict[int, int]:
    """{label id: version} of what a caller showed, for `set_condition(seen=...)`."""
    return {label.id: label.version for label in labels}
