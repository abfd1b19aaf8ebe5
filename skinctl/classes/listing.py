"""`skinctl classes list`: every canonical class with its image count per dataset, its
synonyms, and the label names no class covers yet."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from skinctl.classes.vocabulary import check_task, load_vocabulary
from skinctl.db.models import (
    LABEL_TASKS,
    ConditionLabel,
    ImageSource,
    LabelClass,
    LabelClassChange,
    LabelClassSynonym,
    TrainingImage,
)


@dataclass(frozen=True)
class Synonym:
    dataset: str
    name: str


@dataclass(frozen=True)
class ClassRow:
    task: str
    name: str
    description: str | None
    images: dict[str, int]  # dataset -> images with a live label of this class
    total_images: int
    synonyms: list[Synonym]


@dataclass(frozen=True)
class ClassList:
    classes: list[ClassRow]
    unmapped: list[str]  # "task:name" used by labels but in no class


@dataclass(frozen=True)
class ClassChangeRow:
    id: int
    action: str
    task: str
    dataset: str | None
    name: str
    canonical: str | None
    labels_changed: int
    changed_by: str
    changed_at: str
    reverts_change_id: int | None


def list_classes(engine: Engine, task: str | None = None) -> ClassList:
    tasks = [check_task(task)] if task else list(LABEL_TASKS)
    dataset = func.coalesce(ImageSource.dataset_source, TrainingImage.dataset_source)
    rows: list[ClassRow] = []
    unmapped: list[str] = []
    with Session(engine) as session:
        for current in tasks:
            vocabulary = load_vocabulary(session, current)
            counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            for source, name, images in session.execute(
                select(
                    dataset,
                    ConditionLabel.condition_type,
                    func.count(ConditionLabel.image_id.distinct()),
                )
                .join(TrainingImage, TrainingImage.id == ConditionLabel.image_id)
                .outerjoin(ImageSource, ImageSource.id == ConditionLabel.image_source_id)
                .where(ConditionLabel.task == current, ConditionLabel.status != "rejected")
                .group_by(dataset, ConditionLabel.condition_type)
            ):
                canonical = vocabulary.canonical(source, name)
                if canonical is None:
                    unmapped.append(f"{current}:{name}")
                    continue
                counts[canonical][source] += images
            synonyms: dict[int, list[Synonym]] = defaultdict(list)
            for s in session.scalars(
                select(LabelClassSynonym)
                .where(LabelClassSynonym.task == current)
                .order_by(LabelClassSynonym.dataset_source, LabelClassSynonym.name)
            ):
                synonyms[s.class_id].append(Synonym(s.dataset_source, s.name))
            for c in session.scalars(
                select(LabelClass).where(LabelClass.task == current).order_by(LabelClass.name_key)
            ):
                images = dict(sorted(counts[c.name].items()))
                rows.append(
                    ClassRow(
                        task=current,
                        name=c.name,
                        description=c.description,
                        images=images,
                        total_images=sum(images.values()),
                        synonyms=synonyms[c.id],
                    )
                )
    return ClassList(rows, sorted(set(unmapped)))


def list_changes(engine: Engine, limit: int = 50) -> list[ClassChangeRow]:
    with Session(engine) as session:
        changes = session.scalars(
            select(LabelClassChange).order_by(LabelClassChange.id.desc()).limit(limit)
        ).all()
        return [
            ClassChangeRow(
                id=c.id,
                action=c.action,
                task=c.task,
                dataset=c.dataset_source,
                name=c.name,
                canonical=c.canonical,
                labels_changed=c.labels_changed,
                changed_by=c.changed_by,
                changed_at=c.changed_at.isoformat(timespec="seconds"),
                reverts_change_id=c.reverts_change_id,
            )
            for c in changes
        ]
