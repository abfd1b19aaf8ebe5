"""The vocabulary tables: canonical classes, per-dataset synonyms, and snapshots of a task's
vocabulary (what a recorded change stores, so it can be reverted)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from skinctl.db.models import LABEL_TASKS, LabelClass, LabelClassSynonym
from skinctl.errors import UsageError


def name_key(name: str) -> str:
    """Names that differ only by case or surrounding spaces are one class."""
    return name.strip().lower()


def check_task(task: str) -> str:
    if task not in LABEL_TASKS:
        raise UsageError(
            f"Unknown label task {task!r}.", hint=f"Use one of: {', '.join(LABEL_TASKS)}."
        )
    return task


@dataclass
class Vocabulary:
    """One task's canonical classes and synonyms, read once, for mapping many names."""

    task: str
    classes: dict[str, str] = field(default_factory=dict)  # name_key -> canonical name
    synonyms: dict[tuple[str, str], str] = field(default_factory=dict)  # (dataset, key) -> name

    def canonical(self, dataset: str | None, name: str) -> str | None:
        """The canonical class of a dataset's name, or None if the vocabulary never saw it."""
        key = name_key(name)
        if dataset is not None and (dataset, key) in self.synonyms:
            return self.synonyms[(dataset, key)]
        return self.classes.get(key)

    def canonical_or_same(self, dataset: str | None, name: str) -> str:
        return self.canonical(dataset, name) or name.strip()


def load_vocabulary(db: Session | Connection, task: str) -> Vocabulary:
    check_task(task)
    vocabulary = Vocabulary(task)
    names: dict[int, str] = {}
    for class_id, name in db.execute(
        select(LabelClass.id, LabelClass.name).where(LabelClass.task == task)
    ):
        names[class_id] = name
        vocabulary.classes[name_key(name)] = name
    for dataset, key, class_id in db.execute(
        select(
            LabelClassSynonym.dataset_source, LabelClassSynonym.name_key, LabelClassSynonym.class_id
        ).where(LabelClassSynonym.task == task)
    ):
        vocabulary.synonyms[(dataset, key)] = names[class_id]
    return vocabulary


@dataclass(frozen=True)
class DatasetClassNames:
    """How an ingest maps a dataset's class names, and which it had never seen."""

    canonical: dict[tuple[str, str], str]  # (task, name as the dataset writes it) -> canonical
    unseen: list[str]  # "task:name", added to the vocabulary as new canonical classes


def map_dataset_names(
    connection: Connection, dataset: str, names: Iterable[tuple[str, str]], user: str | None
) -> DatasetClassNames:
    """Map (task, name) pairs of one dataset through the vocabulary; a name it has never seen
    (no synonym for this dataset, no class of that name in any case) becomes a new canonical
    class, in the caller's transaction."""
    vocabularies: dict[str, Vocabulary] = {}
    canonical: dict[tuple[str, str], str] = {}
    unseen: list[str] = []
    for task, name in sorted(set(names)):
        if task not in vocabularies:
            vocabularies[task] = load_vocabulary(connection, task)
        vocabulary = vocabularies[task]
        found = vocabulary.canonical(dataset, name)
        if found is None:
            # Another ingest may add the same class at the same moment: keep whichever won.
            added = connection.scalar(
                pg_insert(LabelClass)
                .values(task=task, name=name.strip(), name_key=name_key(name), created_by=user)
                .on_conflict_do_nothing(constraint="uq_label_classes_task_name_key")
                .returning(LabelClass.name)
            )
            found = added or connection.scalar(
                select(LabelClass.name).where(
                    LabelClass.task == task, LabelClass.name_key == name_key(name)
                )
            )
            assert found is not None
            vocabulary.classes[name_key(found)] = found
            if added:
                unseen.append(f"{task}:{found}")
        canonical[(task, name)] = found
    return DatasetClassNames(canonical, unseen)


# --- snapshots: what a recorded change keeps, so it can be reverted ---------------------------


def snapshot(session: Session, task: str) -> dict[str, Any]:
    """A task's whole vocabulary as plain JSON (ids kept, so a revert restores the same rows)."""
    classes = session.scalars(
        select(LabelClass).where(LabelClass.task == task).order_by(LabelClass.id)
    ).all()
    synonyms = session.scalars(
        select(LabelClassSynonym)
        .where(LabelClassSynonym.task == task)
        .order_by(LabelClassSynonym.id)
    ).all()
    return {
        "classes": [
            {
                "id": c.id,
                "name": c.name,
                "description": c.description,
                "created_by": c.created_by,
                "created_at": c.created_at.isoformat() if c.created_at else None,
            }
            for c in classes
        ],
        "synonyms": [
            {
                "id": s.id,
                "class_id": s.class_id,
                "dataset_source": s.dataset_source,
                "name": s.name,
                "created_by": s.created_by,
                "created_at": s.created_at.isoformat() if s.created_at else None,
            }
            for s in synonyms
        ],
    }


def restore(session: Session, task: str, state: dict[str, Any]) -> None:
    """Put a task's vocabulary back as a snapshot recorded it."""
    from datetime import datetime

    session.execute(delete(LabelClassSynonym).where(LabelClassSynonym.task == task))
    session.execute(delete(LabelClass).where(LabelClass.task == task))
    session.flush()
    for c in state["classes"]:
        session.add(
            LabelClass(
                id=c["id"],
                task=task,
                name=c["name"],
                name_key=name_key(c["name"]),
                description=c["description"],
                created_by=c["created_by"],
                created_at=datetime.fromisoformat(c["created_at"]) if c["created_at"] else None,
            )
        )
    session.flush()
    for s in state["synonyms"]:
        session.add(
            LabelClassSynonym(
                id=s["id"],
                class_id=s["class_id"],
                task=task,
                dataset_source=s["dataset_source"],
                name=s["name"],
                name_key=name_key(s["name"]),
                created_by=s["created_by"],
                created_at=datetime.fromisoformat(s["created_at"]) if s["created_at"] else None,
            )
        )
    session.flush()
