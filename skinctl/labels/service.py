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
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from skinctl.db.models import LABEL_TASKS, ConditionLabel, LabelHistory, TrainingImage
from skinctl.errors import Conflict, NotFound, UsageError
from skinctl.labels.read import LabelReader, label_view, model_suggestion, order_by_suspect
from skinctl.labels.views import (
    HistoryEntry,
    LabelFilter,
    LabelView,
    OperationResult,
    versions_of,
)

# Names callers import from this module (the read side and the types moved out of it).
__all__ = [
    "HistoryEntry",
    "LabelFilter",
    "LabelService",
    "LabelView",
    "OperationResult",
    "model_suggestion",
    "order_by_suspect",
    "versions_of",
]

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


def _snapshot(label: ConditionLabel) -> dict[str, Any]:
    data = {name: getattr(label, name) for name in TRACKED_FIELDS}
    if data["verified_at"] is not None:
        data["verified_at"] = data["verified_at"].isoformat()
    return data


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
    current = (
        f"; it is now version {label.version} ({label.condition_type}, {label.status})"
        if label
        else ""
    )
    by = f" by {who}" if who else ""
    return Conflict(
        f"Label {label_id} was changed{by} since you saw version {seen}{current}.",
        hint="Reload the label, check the other change, and apply yours again if it still holds.",
    )


class LabelService(LabelReader):
    """Label changes for one user (each public change is one transaction), and every query of
    the read side (`LabelReader`) through the same object."""

    def __init__(self, engine: Engine, user: str) -> None:
        if not user:
            raise UsageError("No user to record label changes under.", hint="Set SKINCTL_USER.")
        super().__init__(engine)
        self.user = user

    # -- plumbing ---------------------------------------------------------------------------

    def _load(self, session: Session, label_id: int, seen_version: int | None) -> ConditionLabel:
        label = session.get(ConditionLabel, label_id, populate_existing=True)
        if label is None:
            raise NotFound(
                f"Label {label_id} does not exist.", hint="`skinctl label list` shows label ids."
            )
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
                raise _conflict(
                    label_id, before["version"] if before else 0, current, fresh
                ) from None
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
        self,
        session: Session,
        op: str,
        label_id: int,
        status: str,
        seen: int | None,
        note: str | None,
    ) -> ConditionLabel:
        label = self._load(session, label_id, seen)
        if label.status == status and label.verified == (status == "verified"):
            return label  # already so: no new version, no history row (idempotent)
        before = _snapshot(label)
        _set_status(label, status, self.user, datetime.now())
        self._record(
            session, op, label, "verify" if status == "verified" else "reject", before, note
        )
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
        *,
        keep_agreeing: bool = False,
    ) -> ConditionLabel:
        condition = condition.strip()
        if not condition:
            raise UsageError("The condition must not be empty.")
        if task not in LABEL_TASKS:
            raise UsageError(f"Unknown task {task!r}; use one of {', '.join(LABEL_TASKS)}.")
        if session.get(TrainingImage, image_id) is None:
            raise NotFound(
                f"Image {image_id} does not exist.", hint="`skinctl label list` shows image ids."
            )
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
            changed = target.status != "verified" or (
                severity is not None and severity != target.severity_level
            )
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
            if keep_agreeing and label.condition_type == condition:
                # Another row with the same class (an exact copy filed under it too) agrees.
                if label.status != "verified":
                    before = _snapshot(label)
                    _set_status(label, "verified", self.user, now)
                    self._record(session, op, label, "verify", before, note)
                continue
            before = _snapshot(label)
            _set_status(label, "rejected", self.user, now)
            self._record(
                session, op, label, "supersede", before, note or f"superseded by {condition}"
            )
        return target

    def _set_severity(
        self,
        session: Session,
        op: str,
        label_id: int,
        severity: str | None,
        seen: int | None,
        note: str | None,
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

    def record_new_label(
        self, session: Session, operation_id: str, label: ConditionLabel, note: str | None = None
    ) -> None:
        """Append the `create` history entry of a label the caller added in `session` (model
        answers: `serve --record`, pre-labels), the same entry this service's own changes write.
        The caller owns the transaction."""
        self._record(session, operation_id, label, "create", None, note)

    def rename_label(
        self, session: Session, operation_id: str, label: ConditionLabel, name: str, note: str
    ) -> None:
        """Give a label another class name (a class vocabulary change: map, rename, merge),
        keeping its source and status, with a `class` history entry. The caller owns the
        transaction."""
        before = _snapshot(label)
        label.condition_type = name
        label.updated_at = datetime.now()
        self._record(session, operation_id, label, "class", before, note)

    def retire_label(
        self, session: Session, operation_id: str, label: ConditionLabel, note: str
    ) -> None:
        """Reject a label a class change made redundant (its image already has the class)."""
        before = _snapshot(label)
        _set_status(label, "rejected", self.user, datetime.now())
        self._record(session, operation_id, label, "class", before, note)

    def verify(
        self, label_id: int, version: int | None = None, note: str | None = None
    ) -> OperationResult:
        """Mark a label correct. `version` is the one the caller saw (None: whatever is current)."""
        op = str(uuid.uuid4())
        with self._session() as session:
            label = self._change_status(session, op, label_id, "verified", version, note)
            return self._commit(session, OperationResult(op, [label_view(label)]))

    def reject(
        self, label_id: int, version: int | None = None, reason: str | None = None
    ) -> OperationResult:
        op = str(uuid.uuid4())
        with self._session() as session:
            label = self._change_status(session, op, label_id, "rejected", version, reason)
            return self._commit(session, OperationResult(op, [label_view(label)]))

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
            label = self._set_condition(
                session, op, image_id, condition, severity, task, seen, note
            )
            return self._commit(session, OperationResult(op, [label_view(label)]))

    def decide(
        self,
        image_id: int,
        task: str,
        condition: str,
        *,
        seen: Mapping[int, int] | None = None,
        note: str | None = None,
    ) -> OperationResult:
        """A reviewer's one decision on an image's labels of one task (the queue's item): every
        row carrying `condition` is verified (a human row is added if none does), every other
        live row of the task is superseded, all in one operation that one undo reverts. Rows
        that agree (exact copies filed under the same class) are all verified, not superseded.
        `seen` as for `set_condition`."""
        op = str(uuid.uuid4())
        with self._session() as session:
            self._set_condition(
                session, op, image_id, condition, None, task, seen, note, keep_agreeing=True
            )
            return self._commit(session, OperationResult(op, self._changed_by(session, op)))

    def reject_all(
        self,
        image_id: int,
        task: str,
        *,
        seen: Mapping[int, int] | None = None,
        reason: str | None = None,
    ) -> OperationResult:
        """Every live label of one task on an image is wrong: all rejected in one operation."""
        op = str(uuid.uuid4())
        seen = seen or {}
        with self._session() as session:
            labels = session.scalars(
                select(ConditionLabel)
                .where(ConditionLabel.image_id == image_id, ConditionLabel.task == task)
                .order_by(ConditionLabel.id)
                .execution_options(populate_existing=True)
            ).all()
            for label in labels:
                if label.id in seen and label.version != seen[label.id]:
                    raise _conflict(label.id, seen[label.id], label, session)
            for label in labels:
                if label.status != "rejected":
                    self._change_status(session, op, label.id, "rejected", None, reason)
            return self._commit(session, OperationResult(op, self._changed_by(session, op)))

    @staticmethod
    def _changed_by(session: Session, op: str) -> list[LabelView]:
        """The labels an operation changed, as they are now (after its flushes)."""
        session.flush()
        ids = session.scalars(
            select(LabelHistory.label_id)
            .where(LabelHistory.operation_id == op)
            .order_by(LabelHistory.id)
        )
        return [
            label_view(session.get_one(ConditionLabel, label_id)) for label_id in dict.fromkeys(ids)
        ]

    def set_severity(
        self,
        label_id: int,
        severity: str | None,
        version: int | None = None,
        note: str | None = None,
    ) -> OperationResult:
        op = str(uuid.uuid4())
        with self._session() as session:
            label = self._set_severity(session, op, label_id, severity, version, note)
            return self._commit(session, OperationResult(op, [label_view(label)]))

    def undo(self, *, label_id: int | None = None, image_id: int | None = None) -> OperationResult:
        """Revert this user's latest operation (not itself an undo, not already undone) that
        touched the label or image. Appends an `undo` operation; Conflict if a row it would
        restore was changed by someone since (their change is never overwritten)."""
        if (label_id is None) == (image_id is None):
            raise UsageError("Undo needs a label id or an image id.")
        with self._session() as session:
            touched = (
                LabelHistory.label_id == label_id
                if label_id is not None
                else LabelHistory.image_id == image_id
            )
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
                raise NotFound(
                    f"Nothing of yours to undo on {what}.",
                    hint="`skinctl label history` shows its changes.",
                )
            op = str(uuid.uuid4())
            changed = self.revert_operation(session, op, target_op)
            return self._commit(session, OperationResult(op, [label_view(lb) for lb in changed]))

    def revert_operation(self, session: Session, op: str, target_op: str) -> list[ConditionLabel]:
        """Append operation `op` that puts back every label operation `target_op` changed
        (Conflict if someone changed one of them since). The caller owns the transaction."""
        rows = session.scalars(
            select(LabelHistory)
            .where(LabelHistory.operation_id == target_op)
            .order_by(LabelHistory.id.desc())
        ).all()
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
                for name in (
                    "condition_type",
                    "severity_level",
                    "status",
                    "verified",
                    "verified_by",
                    "source",
                    "task",
                ):
                    setattr(label, name, row.before[name])
                at = row.before.get("verified_at")
                label.verified_at = datetime.fromisoformat(at) if at else None
                label.updated_at = datetime.now()
            self._record(
                session, op, label, "undo", before, f"undo of {row.action}", undoes=target_op
            )
            changed.append(label)
        return changed

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
                    LabelHistory.undoes_operation_id.in_(
                        {op for op, _ in later} | {u for _, u in later if u}
                    )
                )
            )
        )
        return all(
            op in undone or (undoes is not None and undoes in undone) for op, undoes in later
        )
