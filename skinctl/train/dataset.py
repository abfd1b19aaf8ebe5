"""What a training run learns from: a query over the database, and a group-aware split.

No TensorFlow here: selection and splitting are plain Python so they are cheap to test and
the split of a run can be reproduced without training.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skinctl.classes.vocabulary import load_vocabulary
from skinctl.db.models import (
    ConditionLabel,
    ImageDuplicate,
    ImageSource,
    SubjectMetadata,
    TrainingImage,
)
from skinctl.errors import TrainingError, UsageError
from skinctl.grouping import UnionFind
from skinctl.train.choices import BalanceBy, Task

# task -> (label task in the database, the label column that holds the class)
TASKS: dict[str, tuple[str, str]] = {
    Task.skin_type: ("skin_type", "condition_type"),
    Task.condition: ("condition", "condition_type"),
    Task.severity: ("condition", "severity_level"),
}


BALANCE_BY = tuple(BalanceBy)
GROUP_FIELDS: dict[str, str] = {
    BalanceBy.fitzpatrick: "fitzpatrick",
    BalanceBy.skin_type: "skin_type",
    BalanceBy.age_range: "age_range",
    BalanceBy.tone: "skin_tone",
}


@dataclass
class Example:
    """One image with its label(s) and what links it to other images."""

    image_id: int
    image_url: str
    labels: list[str]
    dataset_source: str
    group_key: str | None = None
    subject_id: str | None = None
    folder_split: str | None = None  # the split the source dataset's own folders gave it
    fitzpatrick: str | None = None
    skin_type: str | None = None
    age_range: str | None = None
    gender: str | None = None
    ethnicity: str | None = None
    skin_tone: str | None = None  # estimated from the pixels (ITA category)

    @property
    def label(self) -> str:
        """The primary label (the only one unless multi-label)."""
        return self.labels[0]


@dataclass
class Selection:
    task: str
    classes: list[str]
    examples: list[Example]
    multi_label: bool
    left_out: dict[str, int] = field(default_factory=dict)  # reason -> image count
    small_classes: dict[str, int] = field(default_factory=dict)  # --min-images: class -> images


def _norm_classes(classes: Sequence[str] | None) -> list[str] | None:
    if not classes:
        return None
    out = [c.strip() for item in classes for c in item.split(",") if c.strip()]
    return out or None


def select_examples(
    session: Session,
    task: str,
    *,
    datasets: Sequence[str] | None = None,
    verified_only: bool = False,
    classes: Sequence[str] | None = None,
    multi_label: bool = False,
    min_images: int = 0,
    min_classes: int = 2,
    by_label_source: bool = False,
) -> Selection:
    """The labelled images of a task. Rejected labels never count; images with several
    labels are kept only with `multi_label`, otherwise left out and counted. Class names go
    through the class vocabulary (`skinctl.classes`), so datasets that name one class
    differently train it as one; classes with fewer than `min_images` images are left out
    (`Selection.small_classes` says which). `by_label_source`: `datasets` selects labels by
    the dataset the label came from (an exact copy ingested from another dataset keeps its
    image row, but its label names that dataset), not by the image row's first dataset."""
    if task not in TASKS:
        raise UsageError(f"Unknown task {task!r}.", hint=f"Use one of: {', '.join(TASKS)}.")
    label_task, label_field = TASKS[task]
    value = getattr(ConditionLabel, label_field)
    label_dataset = func.coalesce(ImageSource.dataset_source, TrainingImage.dataset_source)
    query = (
        select(
            TrainingImage.id,
            TrainingImage.image_url,
            TrainingImage.dataset_source,
            TrainingImage.group_key,
            TrainingImage.split,
            value,
            label_dataset,
            SubjectMetadata.subject_id,
            SubjectMetadata.fitzpatrick_scale,
            SubjectMetadata.skin_type,
            SubjectMetadata.age_range,
            SubjectMetadata.gender,
            SubjectMetadata.ethnicity,
            TrainingImage.skin_tone,
        )
        .join(ConditionLabel, ConditionLabel.image_id == TrainingImage.id)
        .outerjoin(ImageSource, ImageSource.id == ConditionLabel.image_source_id)
        .outerjoin(SubjectMetadata, SubjectMetadata.image_id == TrainingImage.id)
        .where(ConditionLabel.task == label_task, value.is_not(None), value != "")
        .where(ConditionLabel.status != "rejected")
        .order_by(TrainingImage.id)
    )
    if verified_only:
        query = query.where(ConditionLabel.status == "verified")
    if datasets:
        chosen = label_dataset if by_label_source else TrainingImage.dataset_source
        query = query.where(chosen.in_(list(datasets)))
    wanted = _norm_classes(classes)
    vocabulary = load_vocabulary(session, label_task) if label_field == "condition_type" else None

    by_image: dict[int, Example] = {}
    labels: dict[int, list[str]] = defaultdict(list)
    for row in session.execute(query):
        (image_id, url, source, group_key, split, label, named_by) = row[:7]
        (subject, fitz, skin_type, age, gender, ethnicity, tone) = row[7:]
        label = str(label).strip()
        if vocabulary is not None:
            label = vocabulary.canonical_or_same(named_by, label)
        if image_id not in by_image:
            by_image[image_id] = Example(
                image_id=image_id,
                image_url=url,
                labels=[],
                dataset_source=source,
                group_key=group_key,
                subject_id=subject,
                folder_split=split,
                fitzpatrick=str(fitz) if fitz is not None else None,
                skin_type=skin_type,
                age_range=age,
                gender=gender,
                ethnicity=ethnicity,
                skin_tone=tone,
            )
        if label not in labels[image_id]:
            labels[image_id].append(label)

    left_out: Counter[str] = Counter()
    examples: list[Example] = []
    for image_id, example in by_image.items():
        image_labels = sorted(labels[image_id])
        if wanted is not None:
            image_labels = [label for label in image_labels if label in wanted]
            if not image_labels:
                left_out["not in --classes"] += 1
                continue
        if len(image_labels) > 1 and not multi_label:
            reason = (
                "several severity levels"
                if task == "severity"
                else "several labels (use --multi-label to train on them)"
            )
            left_out[reason] += 1
            continue
        example.labels = image_labels
        examples.append(example)
    small: dict[str, int] = {}
    if min_images > 0:
        examples, small = _drop_small_classes(examples, min_images, left_out)

    found = sorted({label for example in examples for label in example.labels})
    if wanted is not None:
        missing = [c for c in wanted if c not in found]
        if missing:
            raise UsageError(
                f"No {task} images labelled {', '.join(missing)} match the selection.",
                hint="Check the class names with `skinctl train run --task ... --classes` "
                "against the labels in the database.",
            )
        found = [c for c in wanted]
    if len(found) < min_classes:
        raise TrainingError(
            f"The selection has {len(examples)} {task} images and {len(found)} class(es); "
            "training needs at least two classes.",
            hint="Ingest labelled images first, or widen --dataset / --classes / --verified-only.",
        )
    return Selection(task, found, examples, multi_label, dict(left_out), small)


def _drop_small_classes(
    examples: list[Example], min_images: int, left_out: Counter[str]
) -> tuple[list[Example], dict[str, int]]:
    """Leave out classes with fewer than `min_images` images (a multi-label image keeps its
    other labels); returns the kept examples and class -> image count of those left out."""
    counts = Counter(label for example in examples for label in example.labels)
    small = {name: n for name, n in sorted(counts.items()) if n < min_images}
    if not small:
        return examples, {}
    kept = []
    for example in examples:
        labels = [label for label in example.labels if label not in small]
        if not labels:
            left_out[f"class with fewer than {min_images} images"] += 1
            continue
        example.labels = labels
        kept.append(example)
    return kept, small


# --- group-aware split -----------------------------------------------------------------------


def duplicate_pairs(session: Session, image_ids: Iterable[int]) -> list[tuple[int, int]]:
    """Exact/near-duplicate pairs (from dedup) among these images."""
    ids = set(image_ids)
    pairs = session.execute(select(ImageDuplicate.image_id_a, ImageDuplicate.image_id_b)).all()
    return [(a, b) for a, b in pairs if a in ids and b in ids]


def link_groups(examples: Sequence[Example], pairs: Iterable[tuple[int, int]]) -> dict[int, int]:
    """image id -> group id: images that are duplicates, share a group_key (one source photo,
    one Roboflow source) or one subject are in the same group. Group id = smallest image id."""
    uf = UnionFind(e.image_id for e in examples)
    first_with: dict[tuple[str, str], int] = {}
    for example in examples:
        for kind, key in (("g", example.group_key), ("s", example.subject_id)):
            if key:
                other = first_with.setdefault((kind, key), example.image_id)
                uf.union(other, example.image_id)
    for a, b in pairs:
        uf.union(a, b)
    return {e.image_id: uf.find(e.image_id) for e in examples}


def group_split(
    examples: Sequence[Example],
    groups: dict[int, int],
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> dict[int, str]:
    """image id -> 'train' | 'val' | 'test', whole groups at a time, stratified by label."""
    if not 0 < val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise UsageError(
            f"--val-fraction {val_fraction} and --test-fraction {test_fraction} must each be "
            "between 0 and 1 and leave images for training."
        )
    shares = {"test": test_fraction, "val": val_fraction, "train": 1 - val_fraction - test_fraction}
    return assign_groups(examples, groups, shares, seed)


def group_folds(
    examples: Sequence[Example], groups: dict[int, int], folds: int, seed: int
) -> dict[int, int]:
    """image id -> fold number (0..folds-1), whole groups at a time, stratified by label."""
    assigned = assign_groups(examples, groups, {str(i): 1 / folds for i in range(folds)}, seed)
    return {image_id: int(fold) for image_id, fold in assigned.items()}


def assign_groups(
    examples: Sequence[Example], groups: dict[int, int], shares: dict[str, float], seed: int
) -> dict[int, str]:
    """Place whole groups into named parts with target shares, stratified by label.

    Groups go largest first (ties in seeded random order) into the part that most lacks
    images of the group's main label relative to its target, so every part gets its share of
    every class as far as the group sizes allow.
    """
    members: dict[int, list[Example]] = defaultdict(list)
    for example in examples:
        members[groups[example.image_id]].append(example)
    rng = random.Random(seed)
    order = sorted(members)
    rng.shuffle(order)
    order.sort(key=lambda g: -len(members[g]))  # stable: random order among equal sizes

    class_total = Counter(e.label for e in examples)
    placed: dict[str, Counter[str]] = {name: Counter() for name in shares}
    split_of: dict[int, str] = {}
    for group in order:
        group_examples = members[group]
        label = Counter(e.label for e in group_examples).most_common(1)[0][0]

        def lack(name: str, label: str = label) -> float:
            target = shares[name] * class_total[label]
            return (target - placed[name][label]) / max(target, 1e-9)

        name = max(shares, key=lack)
        for example in group_examples:
            placed[name][example.label] += 1
            split_of[example.image_id] = name
    return split_of


def folder_split(examples: Sequence[Example]) -> dict[int, str]:
    """The source dataset's own train/valid/test folders (may leak: shown for comparison)."""
    names = {
        "train": "train",
        "training": "train",
        "valid": "val",
        "val": "val",
        "validation": "val",
        "test": "test",
        "testing": "test",
    }
    out: dict[int, str] = {}
    missing = 0
    for example in examples:
        name = names.get((example.folder_split or "").lower())
        if name is None:
            missing += 1
        else:
            out[example.image_id] = name
    if missing:
        raise UsageError(
            f"{missing} selected images have no train/valid/test split from their dataset.",
            hint="Use --split group (the default), or select a dataset that ships its own split.",
        )
    return out


def sample_weights(
    examples: Sequence[Example], classes: Sequence[str], balance_by: str | None
) -> tuple[list[float], dict[str, float]]:
    """Per-example weights: inverse class frequency (mean 1), times inverse subject-group
    frequency for `balance_by` where the metadata exists (images without it keep 1)."""
    counts = Counter(e.label for e in examples)
    n, k = len(examples), len(classes)
    class_weight = {c: (n / (k * counts[c]) if counts[c] else 0.0) for c in classes}
    weights = [class_weight[e.label] for e in examples]
    if balance_by:
        if balance_by not in GROUP_FIELDS:
            raise UsageError(
                f"--balance-by {balance_by!r} is not known.",
                hint=f"Use one of: {', '.join(BALANCE_BY)}.",
            )
        attr = GROUP_FIELDS[balance_by]
        values = [getattr(e, attr) for e in examples]
        known = Counter(v for v in values if v is not None)
        if not known:
            raise TrainingError(
                f"--balance-by {balance_by}: none of the selected images has that subject metadata.",
                hint="Run `skinctl images tone` first (tone), or import subject metadata; or drop --balance-by.",
            )
        total = sum(known.values())
        for i, value in enumerate(values):
            if value is not None:
                weights[i] *= total / (len(known) * known[value])
    return weights, class_weight
