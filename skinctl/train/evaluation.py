"""`skinctl train evaluate RUN --dataset NAME`: a run's model on data it never trained on.

Every image that is a copy of an image the run trained on (its train and validation splits)
is left out and counted: exact copies (the same image row: the same bytes, whichever dataset
they came from) and near copies (linked in `image_duplicates`, transitively, or sharing a
source-photo group key). Class names go through the class vocabulary; images of classes the
run does not know are left out and counted. The figures are those of the run's own test
(accuracy and macro-F1 with 95% intervals, the majority-class rate, per class, per group) and
are recorded as an evaluation of the run (`model_evaluations` and its per-class and per-group
tables, which mirror `training_class_metrics` and `training_group_metrics`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from skinctl.db.models import (
    EvaluationClassMetric,
    EvaluationGroupMetric,
    ImageDuplicate,
    ModelEvaluation,
    TrainingImage,
    TrainingRun,
    TrainingRunSplit,
)
from skinctl.errors import NotFound, UsageError
from skinctl.grouping import UnionFind
from skinctl.progress import ReportProgress, no_progress
from skinctl.train import dataset as ds
from skinctl.train import metrics as mt
from skinctl.train.evaluate import GroupScore, group_metrics, majority_warning
from skinctl.train.fairness import FairnessSummary, fairness_summary
from skinctl.train.fitting import predict_probabilities, targets_for
from skinctl.train.records import (
    ClassRow,
    EvaluationSummary,
    GroupRow,
    class_row,
    evaluation_summary,
    group_row,
)

PREDICT_STAGE = "evaluate"
UNKNOWN_CLASS = "class the run does not know"


@dataclass(frozen=True)
class EvaluationDetail(EvaluationSummary):
    """A recorded evaluation with everything `train evaluate` prints."""

    majority_class: str | None
    warning: str | None
    unknown_classes: dict[str, int]  # classes of the data the run never learned -> images
    per_class: list[ClassRow]
    per_group: list[GroupRow]
    confusion_matrix: dict[str, Any] | None
    fairness: FairnessSummary  # worst group vs the rest, from `per_group` (as for a run's test)


@dataclass(frozen=True)
class Candidates:
    """The evaluation data after leaving out copies of the run's training images."""

    examples: list[ds.Example]
    exact: int
    near: int
    left_out: dict[str, int]
    unknown_classes: dict[str, int]


def trained_on(session: Session, run_id: int) -> set[int]:
    """Images the model was fitted on or chose its best epoch by (train and val splits)."""
    return set(
        session.scalars(
            select(TrainingRunSplit.image_id).where(
                TrainingRunSplit.run_id == run_id, TrainingRunSplit.split.in_(("train", "val"))
            )
        )
    )


def copies_of(session: Session, seen: set[int], image_ids: Sequence[int]) -> set[int]:
    """Of `image_ids`, those that are near copies of a `seen` image: linked in
    `image_duplicates` (directly or through other copies) or sharing a group key."""
    if not seen or not image_ids:
        return set()
    uf = UnionFind([*seen, *image_ids])
    for a, b in session.execute(select(ImageDuplicate.image_id_a, ImageDuplicate.image_id_b)):
        uf.union(a, b)
    keys = dict(
        session.execute(
            select(TrainingImage.id, TrainingImage.group_key).where(
                TrainingImage.id.in_([*seen, *image_ids]), TrainingImage.group_key.is_not(None)
            )
        ).all()
    )
    first: dict[str, int] = {}
    for image_id, key in keys.items():
        if key is not None:
            uf.union(first.setdefault(key, image_id), image_id)
    seen_roots = {uf.find(i) for i in seen}
    return {i for i in image_ids if uf.find(i) in seen_roots}


def select_candidates(
    session: Session,
    run_id: int,
    task: str,
    classes: Sequence[str],
    datasets: Sequence[str],
    multi_label: bool,
) -> Candidates:
    selection = ds.select_examples(
        session,
        task,
        datasets=datasets,
        multi_label=multi_label,
        min_classes=0,
        by_label_source=True,
    )
    left_out: Counter[str] = Counter(selection.left_out)
    unknown: Counter[str] = Counter()
    known = set(classes)
    kept: list[ds.Example] = []
    for example in selection.examples:
        labels = [label for label in example.labels if label in known]
        unknown.update(label for label in example.labels if label not in known)
        if not labels:
            left_out[UNKNOWN_CLASS] += 1
            continue
        example.labels = labels
        kept.append(example)
    seen = trained_on(session, run_id)
    exact = [e for e in kept if e.image_id in seen]
    rest = [e for e in kept if e.image_id not in seen]
    near = copies_of(session, seen, [e.image_id for e in rest])
    examples = [e for e in rest if e.image_id not in near]
    if exact:
        left_out["exact copy of a training image"] = len(exact)
    if near:
        left_out["near copy of a training image"] = len(near)
    return Candidates(
        examples, len(exact), len(near), dict(left_out), dict(sorted(unknown.items()))
    )


def _majority(hyperparameters: dict[str, Any], classes: Sequence[str]) -> str:
    """The run's training split's commonest class (what a do-nothing model would answer)."""
    train_counts = (hyperparameters.get("class_counts") or {}).get("train") or {}
    if train_counts:
        return max(train_counts, key=lambda c: (train_counts[c], c in classes))
    return classes[0]


def evaluate_run(
    engine: Engine,
    storage: Any,
    ref: str | int,
    datasets: Sequence[str],
    *,
    home: Path,
    user: str | None = None,
    report: ReportProgress = no_progress,
) -> EvaluationDetail:
    """Score run `ref`'s model on `datasets`, leaving out copies of its training images, and
    record the evaluation. Near copies are only known once the images are linked: callers
    link first (`skinctl.dedup.link`)."""
    from skinctl.train.pipeline import ByteReader
    from skinctl.train.predict import load_run

    if not datasets:
        raise UsageError("Name the data to evaluate on with --dataset.")
    loaded = load_run(engine, storage, ref, home)
    with Session(engine) as session:
        run = session.get_one(TrainingRun, loaded.id)
        hyperparameters = dict(run.hyperparameters or {})
        candidates = select_candidates(
            session,
            loaded.id,
            loaded.task,
            loaded.classes,
            datasets,
            loaded.multi_label,
        )
    examples, classes = candidates.examples, loaded.classes
    if not examples:
        raise NotFound(
            f"No image of {', '.join(datasets)} is left to evaluate run {loaded.id} on "
            f"({', '.join(f'{n} {why}' for why, n in candidates.left_out.items()) or 'no labelled images'}).",
            hint="Evaluate on a dataset the run did not train on, with classes it knows.",
        )
    report(PREDICT_STAGE, 0, len(examples))
    probabilities = predict_probabilities(
        loaded.model, ByteReader(storage), examples, loaded.image_size, loaded.options.batch_size
    )
    report(PREDICT_STAGE, len(examples), len(examples))
    majority = _majority(hyperparameters, classes)
    seed = loaded.options.seed
    thresholds = (
        np.array([(loaded.thresholds or {}).get(c, 0.5) for c in classes])
        if loaded.multi_label
        else None
    )

    def evaluation_of(indices: list[int]) -> mt.Evaluation:
        sub = [examples[i] for i in indices]
        if loaded.multi_label:
            assert thresholds is not None
            y_true = targets_for(sub, classes, True).astype(bool)
            y_pred = probabilities[indices] >= thresholds[None, :]
            majority_row = np.array([c == majority for c in classes])
            return mt.evaluate_multilabel(y_true, y_pred, classes, majority_row, seed=seed)
        return mt.evaluate(
            targets_for(sub, classes, False),
            probabilities[indices].argmax(axis=1),
            classes,
            list(classes).index(majority),
            seed=seed,
        )

    whole = evaluation_of(list(range(len(examples))))
    groups = group_metrics(evaluation_of, examples)
    evaluation_id = _record(
        engine,
        loaded.id,
        datasets,
        user,
        candidates,
        whole,
        groups,
        classes,
        loaded.multi_label,
        thresholds,
    )
    return evaluation_detail(engine, evaluation_id)


def _record(
    engine: Engine,
    run_id: int,
    datasets: Sequence[str],
    user: str | None,
    candidates: Candidates,
    whole: mt.Evaluation,
    groups: list[GroupScore],
    classes: Sequence[str],
    multi_label: bool,
    thresholds: np.ndarray | None,
) -> int:
    with Session(engine) as session, session.begin():
        row = ModelEvaluation(
            run_id=run_id,
            datasets=list(datasets),
            evaluated_by=user,
            evaluated_at=datetime.now(),
            images=whole.n,
            exact_copies_left_out=candidates.exact,
            near_copies_left_out=candidates.near,
            left_out=candidates.left_out,
            accuracy=whole.accuracy,
            accuracy_low=whole.accuracy_ci[0],
            accuracy_high=whole.accuracy_ci[1],
            f1_macro=whole.f1,
            f1_low=whole.f1_ci[0],
            f1_high=whole.f1_ci[1],
            majority_rate=whole.majority_rate,
            metrics={
                "test": whole.summary(),
                "warning": majority_warning(whole),
                "unknown_classes": candidates.unknown_classes,
            },
            confusion_matrix={
                "classes": list(classes),
                "matrix": whole.matrix.tolist(),
                "rows": "true class",
                "columns": "predicted class",
                **({"kind": "multi-label co-occurrence"} if multi_label else {}),
            },
        )
        session.add(row)
        session.flush()
        for per_class in whole.per_class:
            threshold = None
            if thresholds is not None:
                threshold = float(thresholds[list(classes).index(per_class["class_name"])])
            session.add(
                EvaluationClassMetric(evaluation_id=row.id, threshold=threshold, **per_class)
            )
        for group in groups:
            session.add(EvaluationGroupMetric(evaluation_id=row.id, **asdict(group)))
        return row.id


def evaluation_detail(engine: Engine, evaluation_id: int) -> EvaluationDetail:
    with Session(engine) as session:
        row = session.get(ModelEvaluation, evaluation_id)
        if row is None:
            raise NotFound(f"There is no evaluation {evaluation_id}.")
        classes = session.scalars(
            select(EvaluationClassMetric)
            .where(EvaluationClassMetric.evaluation_id == evaluation_id)
            .order_by(EvaluationClassMetric.class_name)
        )
        groups = session.scalars(
            select(EvaluationGroupMetric)
            .where(EvaluationGroupMetric.evaluation_id == evaluation_id)
            .order_by(EvaluationGroupMetric.group_by, EvaluationGroupMetric.group_value)
        )
        metrics = row.metrics or {}
        per_group = [group_row(g) for g in groups]
        return EvaluationDetail(
            **asdict(evaluation_summary(row)),
            majority_class=(metrics.get("test") or {}).get("majority_class"),
            warning=metrics.get("warning"),
            unknown_classes=metrics.get("unknown_classes") or {},
            per_class=[class_row(c) for c in classes],
            per_group=per_group,
            confusion_matrix=row.confusion_matrix,
            fairness=fairness_summary(per_group),
        )
