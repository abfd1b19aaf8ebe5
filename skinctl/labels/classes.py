"""Changes to the class vocabulary that also rewrite existing labels: `classes map`, `rename`,
`merge` and `revert`. Each is one transaction: the vocabulary rows, one `label_class_changes`
row (who, when, the vocabulary before and after) and one label operation in `label_history`
(every label it renamed), so `revert` puts both back."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from skinctl.classes.vocabulary import check_task, name_key, restore, snapshot
from skinctl.db.models import (
    ConditionLabel,
    ImageSource,
    LabelClass,
    LabelClassChange,
    LabelClassSynonym,
    TrainingImage,
)
from skinctl.errors import Conflict, NotFound, UsageError
from skinctl.labels.service import LabelService


@dataclass(frozen=True)
class ClassChangeResult:
    change_id: int
    action: str
    task: str
    dataset: str | None
    name: str
    canonical: str | None
    labels_changed: int  # labels renamed to the canonical class
    labels_retired: int  # labels rejected because their image already had the class
    label_operation_id: str | None


_DATASET = func.coalesce(ImageSource.dataset_source, TrainingImage.dataset_source)


class ClassVocabularyService:
    """Vocabulary changes for one user (each public method is one transaction)."""

    def __init__(self, engine: Engine, user: str) -> None:
        self.engine = engine
        self.labels = LabelService(engine, user)
        self.user = self.labels.user

    # -- plumbing ---------------------------------------------------------------------------

    @staticmethod
    def _class(session: Session, task: str, name: str) -> LabelClass | None:
        return session.scalar(
            select(LabelClass).where(LabelClass.task == task, LabelClass.name_key == name_key(name))
        )

    def _require(self, session: Session, task: str, name: str) -> LabelClass:
        found = self._class(session, task, name)
        if found is None:
            raise NotFound(
                f"There is no {task} class {name!r}.",
                hint="`skinctl classes list` shows the canonical classes.",
            )
        return found

    def _datasets_using(self, session: Session, task: str, key: str) -> list[str]:
        """Datasets whose labels carry this name (any case)."""
        return sorted(
            session.scalars(
                select(_DATASET)
                .distinct()
                .select_from(ConditionLabel)
                .join(TrainingImage, TrainingImage.id == ConditionLabel.image_id)
                .outerjoin(ImageSource, ImageSource.id == ConditionLabel.image_source_id)
                .where(
                    ConditionLabel.task == task,
                    func.lower(func.trim(ConditionLabel.condition_type)) == key,
                )
            )
        )

    def _add_synonym(
        self, session: Session, task: str, dataset: str, name: str, target: LabelClass
    ) -> None:
        existing = session.scalar(
            select(LabelClassSynonym).where(
                LabelClassSynonym.task == task,
                LabelClassSynonym.dataset_source == dataset,
                LabelClassSynonym.name_key == name_key(name),
            )
        )
        if existing is None:
            session.add(
                LabelClassSynonym(
                    class_id=target.id,
                    task=task,
                    dataset_source=dataset,
                    name=name.strip(),
                    name_key=name_key(name),
                    created_by=self.user,
                )
            )
        else:
            existing.class_id = target.id
        session.flush()

    def _relabel(
        self,
        session: Session,
        op: str,
        task: str,
        keys: Collection[str],
        new_name: str,
        dataset: str | None,
        note: str,
    ) -> tuple[int, int]:
        """Rename every label of `task` whose name (any case) is in `keys` to `new_name`, in
        one dataset or all; returns (renamed, retired). A label whose image source already has
        a label of the new name is rejected instead (the pair would be one class twice)."""
        query = (
            select(ConditionLabel)
            .join(TrainingImage, TrainingImage.id == ConditionLabel.image_id)
            .outerjoin(ImageSource, ImageSource.id == ConditionLabel.image_source_id)
            .where(
                ConditionLabel.task == task,
                func.lower(func.trim(ConditionLabel.condition_type)).in_(list(keys)),
                ConditionLabel.condition_type != new_name,
            )
            .order_by(ConditionLabel.id)
            .execution_options(populate_existing=True)
        )
        if dataset is not None:
            query = query.where(_DATASET == dataset)
        labels = session.scalars(query).all()
        taken = {
            (source_id, image_id)
            for source_id, image_id in session.execute(
                select(ConditionLabel.image_source_id, ConditionLabel.image_id).where(
                    ConditionLabel.task == task, ConditionLabel.condition_type == new_name
                )
            )
        }
        renamed = retired = 0
        for label in labels:
            origin = (label.image_source_id, label.image_id)
            if label.image_source_id is not None and origin in taken:
                if label.status != "rejected":
                    self.labels.retire_label(session, op, label, f"{note}: already {new_name}")
                    retired += 1
                continue
            self.labels.rename_label(session, op, label, new_name, note)
            taken.add(origin)
            renamed += 1
        return renamed, retired

    def _drop_if_unused(self, session: Session, task: str, target: LabelClass) -> None:
        """A class left with no labels and no synonyms (a dataset's spelling, now mapped) goes."""
        used = session.scalar(
            select(func.count())
            .select_from(ConditionLabel)
            .where(
                ConditionLabel.task == task,
                ConditionLabel.status != "rejected",
                func.lower(func.trim(ConditionLabel.condition_type)) == target.name_key,
            )
        )
        synonyms = session.scalar(
            select(func.count())
            .select_from(LabelClassSynonym)
            .where(LabelClassSynonym.class_id == target.id)
        )
        if not used and not synonyms:
            session.delete(target)
            session.flush()

    def _record(
        self,
        session: Session,
        *,
        action: str,
        task: str,
        dataset: str | None,
        name: str,
        canonical: str | None,
        before: dict,
        op: str,
        counts: tuple[int, int],
        reverts: int | None = None,
        note: str | None = None,
    ) -> ClassChangeResult:
        session.flush()
        touched = sum(counts)
        change = LabelClassChange(
            action=action,
            task=task,
            dataset_source=dataset,
            name=name,
            canonical=canonical,
            before=before,
            after=snapshot(session, task),
            label_operation_id=op if touched else None,
            labels_changed=touched,
            changed_by=self.user,
            changed_at=datetime.now(),
            reverts_change_id=reverts,
            note=note,
        )
        session.add(change)
        session.flush()
        result = ClassChangeResult(
            change_id=change.id,
            action=action,
            task=task,
            dataset=dataset,
            name=name,
            canonical=canonical,
            labels_changed=counts[0],
            labels_retired=counts[1],
            label_operation_id=change.label_operation_id,
        )
        session.commit()
        return result

    # -- public changes ---------------------------------------------------------------------

    def create(
        self, name: str, *, task: str = "condition", description: str | None = None
    ) -> ClassChangeResult:
        """A new canonical class (no labels change)."""
        check_task(task)
        name = name.strip()
        if not name:
            raise UsageError("A class name must not be empty.")
        with Session(self.engine) as session:
            before = snapshot(session, task)
            existing = self._class(session, task, name)
            if existing is not None:
                if description is None or existing.description == description:
                    raise Conflict(
                        f"The {task} class {existing.name!r} already exists.",
                        hint="Use `skinctl classes rename` to change its spelling.",
                    )
                existing.description = description
            else:
                session.add(
                    LabelClass(
                        task=task,
                        name=name,
                        name_key=name_key(name),
                        description=description,
                        created_by=self.user,
                    )
                )
            return self._record(
                session,
                action="create",
                task=task,
                dataset=None,
                name=name,
                canonical=name,
                before=before,
                op=str(uuid.uuid4()),
                counts=(0, 0),
            )

    def map(
        self, dataset: str, name: str, canonical: str, *, task: str = "condition"
    ) -> ClassChangeResult:
        """What `dataset` calls `name` is the canonical class `canonical` (created if new):
        a synonym, and that dataset's labels renamed."""
        check_task(task)
        if not name.strip() or not canonical.strip():
            raise UsageError("Both the dataset's name and the canonical class must be given.")
        op = str(uuid.uuid4())
        with Session(self.engine) as session:
            before = snapshot(session, task)
            target = self._class(session, task, canonical)
            if target is None:
                target = LabelClass(
                    task=task,
                    name=canonical.strip(),
                    name_key=name_key(canonical),
                    created_by=self.user,
                )
                session.add(target)
                session.flush()
            if name_key(name) != target.name_key:
                self._add_synonym(session, task, dataset, name, target)
            counts = self._relabel(
                session,
                op,
                task,
                {name_key(name)},
                target.name,
                dataset,
                f"classes map {dataset} {name} -> {target.name}",
            )
            old = self._class(session, task, name)
            if old is not None and old.id != target.id:
                self._drop_if_unused(session, task, old)
            return self._record(
                session,
                action="map",
                task=task,
                dataset=dataset,
                name=name.strip(),
                canonical=target.name,
                before=before,
                op=op,
                counts=counts,
            )

    def rename(self, old: str, new: str, *, task: str = "condition") -> ClassChangeResult:
        """Respell a canonical class; every label of it follows, and each dataset that used the
        old name keeps it as a synonym (so its next ingest maps to the new one)."""
        check_task(task)
        new = new.strip()
        if not new:
            raise UsageError("The new class name must not be empty.")
        op = str(uuid.uuid4())
        with Session(self.engine) as session:
            before = snapshot(session, task)
            target = self._require(session, task, old)
            clash = self._class(session, task, new)
            if clash is not None and clash.id != target.id:
                raise Conflict(
                    f"The {task} class {clash.name!r} already exists: merge the two instead.",
                    hint=f"To join {target.name!r} into it use `skinctl classes merge "
                    f"{target.name!r} {clash.name!r}`.",
                )
            old_name, old_key = target.name, target.name_key
            if old_key != name_key(new):
                for dataset in self._datasets_using(session, task, old_key):
                    target.name, target.name_key = new, name_key(new)
                    session.flush()
                    self._add_synonym(session, task, dataset, old_name, target)
            target.name, target.name_key = new, name_key(new)
            session.flush()
            counts = self._relabel(
                session, op, task, {old_key}, new, None, f"classes rename {old_name} -> {new}"
            )
            return self._record(
                session,
                action="rename",
                task=task,
                dataset=None,
                name=old_name,
                canonical=new,
                before=before,
                op=op,
                counts=counts,
            )

    def merge(self, source: str, into: str, *, task: str = "condition") -> ClassChangeResult:
        """Two canonical classes are one: `source`'s labels and synonyms go to `into`, each
        dataset that used `source`'s name keeps it as a synonym, and `source` goes."""
        check_task(task)
        op = str(uuid.uuid4())
        with Session(self.engine) as session:
            before = snapshot(session, task)
            gone = self._require(session, task, source)
            target = self._require(session, task, into)
            if gone.id == target.id:
                raise UsageError(f"{source!r} and {into!r} are the same class.")
            gone_name, gone_key = gone.name, gone.name_key
            for synonym in session.scalars(
                select(LabelClassSynonym).where(LabelClassSynonym.class_id == gone.id)
            ):
                synonym.class_id = target.id
            datasets = self._datasets_using(session, task, gone_key)
            session.delete(gone)
            session.flush()
            for dataset in datasets:
                self._add_synonym(session, task, dataset, gone_name, target)
            counts = self._relabel(
                session,
                op,
                task,
                {gone_key},
                target.name,
                None,
                f"classes merge {gone_name} -> {target.name}",
            )
            return self._record(
                session,
                action="merge",
                task=task,
                dataset=None,
                name=gone_name,
                canonical=target.name,
                before=before,
                op=op,
                counts=counts,
            )

    def revert(self, change_id: int) -> ClassChangeResult:
        """Undo a recorded change: the vocabulary as it was before it, and its label operation
        reverted through the label history. Refused (Conflict) if the vocabulary changed since
        (revert the later changes first) or a label it renamed was changed since."""
        with Session(self.engine) as session:
            change = session.get(LabelClassChange, change_id)
            if change is None:
                raise NotFound(
                    f"There is no class change {change_id}.",
                    hint="`skinctl classes history` lists the changes.",
                )
            if change.action == "revert":
                raise UsageError(
                    f"Change {change_id} is itself a revert.",
                    hint=f"Apply change {change.reverts_change_id} again instead.",
                )
            done = session.scalar(
                select(LabelClassChange.id).where(LabelClassChange.reverts_change_id == change_id)
            )
            if done is not None:
                raise Conflict(f"Class change {change_id} was already reverted (change {done}).")
            task = change.task
            if snapshot(session, task) != change.after:
                raise Conflict(
                    f"The {task} classes changed after change {change_id}.",
                    hint="Revert the later changes first (`skinctl classes history`).",
                )
            before = snapshot(session, task)
            op = str(uuid.uuid4())
            changed = []
            if change.label_operation_id:
                changed = self.labels.revert_operation(session, op, change.label_operation_id)
            restore(session, task, change.before or {"classes": [], "synonyms": []})
            return self._record(
                session,
                action="revert",
                task=task,
                dataset=change.dataset_source,
                name=change.name,
                canonical=change.canonical,
                before=before,
                op=op,
                counts=(len(changed), 0),
                reverts=change_id,
                note=f"revert of {change.action} (change {change_id})",
            )
