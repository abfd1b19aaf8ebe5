"""Using a trained model: `skinctl predict` (files or image ids) and `skinctl train score`
(out-of-sample probabilities for images in the database, and a "likely mislabeled" score)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.orm import Session

from skinctl.classes.vocabulary import load_vocabulary
from skinctl.db.models import (
    ConditionLabel,
    ImagePrediction,
    RunStatus,
    TrainingImage,
    TrainingRun,
    TrainingRunSplit,
)
from skinctl.engines import EngineKind
from skinctl.errors import SkinctlError, StorageError, TrainingError, UsageError
from skinctl.progress import ReportProgress, no_progress
from skinctl.train import dataset as ds
from skinctl.train.choices import SplitMethod, Task
from skinctl.train.fitting import fit, predict_probabilities, prepare
from skinctl.train.options import TrainOptions
from skinctl.train.records import resolve_run

FOLDS_STAGE = "folds"

# Fields left out of the JSON answer when None: a file input has no image id, and the reverse.
OPTIONAL = {"omit_none": True}


@dataclasses.dataclass
class LoadedRun:
    id: int
    task: str
    classes: list[str]
    image_size: int
    multi_label: bool
    thresholds: dict[str, float] | None
    options: TrainOptions
    model: Any


def run_options(run: TrainingRun) -> TrainOptions:
    hp = run.hyperparameters or {}
    names = {f.name for f in dataclasses.fields(TrainOptions)}
    try:
        return TrainOptions(**{k: v for k, v in hp.items() if k in names})
    except TypeError as error:
        raise TrainingError(f"Run {run.id} does not record its training options: {error}") from None


def load_run(engine: Engine, storage: Any, ref: str | int, home: Path) -> LoadedRun:
    """The run's saved model, downloaded once into <home>/models/ and reused."""
    from skinctl.train.pipeline import ByteReader, tensorflow

    with Session(engine) as session:
        run = resolve_run(session, ref, with_model=True)
        options = run_options(run)
        hp = run.hyperparameters or {}
        thresholds = (run.metrics or {}).get("thresholds")
        uri, run_id, task = run.model_uri, run.id, run.task or options.task
    assert uri is not None
    # Named by the model's URI too: a new database may reuse run ids, a URI names one file.
    digest = hashlib.sha256(uri.encode()).hexdigest()[:12]
    cache = home / "models" / f"run-{run_id}-{digest}.keras"
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        data = ByteReader(storage).read(uri)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".keras")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, cache)
    tensorflow()
    import keras

    try:
        model = keras.models.load_model(cache, compile=False)
    except Exception as error:
        cache.unlink(missing_ok=True)
        raise TrainingError(f"Cannot load the model of run {run_id} from {uri}: {error}") from error
    return LoadedRun(
        run_id,
        task,
        list(hp["classes"]),
        options.image_size,
        options.multi_label,
        thresholds,
        options,
        model,
    )


@dataclasses.dataclass(frozen=True)
class ClassConfidence:
    class_: str = dataclasses.field(metadata={"json_name": "class"})
    confidence: float


@dataclasses.dataclass(frozen=True)
class ConditionSeverity:
    """A severity model's answer for one condition, beside the condition's own confidence."""

    condition: str
    condition_confidence: float
    level: str
    confidence: float
    run: int


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The answer for one input (a file, or an image id with its stored URL)."""

    input: str
    file: str | None = dataclasses.field(default=None, metadata=OPTIONAL)
    image_id: int | None = dataclasses.field(default=None, metadata=OPTIONAL)
    image_url: str | None = dataclasses.field(default=None, metadata=OPTIONAL)
    prediction: str = ""
    top: list[ClassConfidence] = dataclasses.field(default_factory=list)
    labels: list[str] | None = dataclasses.field(
        default=None, metadata=OPTIONAL
    )  # multi-label runs
    severity: str | None = dataclasses.field(default=None, metadata=OPTIONAL)  # severity runs
    # condition runs with a severity model for one of their conditions (--severity-run)
    severities: list[ConditionSeverity] | None = dataclasses.field(default=None, metadata=OPTIONAL)


@dataclasses.dataclass(frozen=True)
class RejectedInput:
    input: str
    reason: str


@dataclasses.dataclass(frozen=True)
class PredictResult:
    run: int
    task: str
    classes: list[str]
    results: list[Prediction]
    rejected: list[RejectedInput]
    severity_run: int | None = dataclasses.field(default=None, metadata=OPTIONAL)
    severity_condition: str | None = dataclasses.field(default=None, metadata=OPTIONAL)


def _answer(
    loaded: LoadedRun, source: dict[str, Any], probabilities: np.ndarray, top: int
) -> Prediction:
    order = np.argsort(-probabilities)
    ranked = [ClassConfidence(loaded.classes[i], float(probabilities[i])) for i in order]
    labels = None
    if loaded.multi_label:
        thresholds = loaded.thresholds or {}
        labels = [r.class_ for r in ranked if r.confidence >= thresholds.get(r.class_, 0.5)]
    return Prediction(
        **source,
        prediction=ranked[0].class_,
        top=ranked[:top],
        labels=labels,
        severity=ranked[0].class_ if loaded.task == Task.severity else None,
    )


def severity_condition(session: Session, run_id: int) -> str | None:
    """The condition a severity run grades: the commonest condition (through the class
    vocabulary) among the severity-labelled images it trained on."""
    counts: dict[str, int] = {}
    vocabulary = load_vocabulary(session, "condition")
    for name, dataset, n in session.execute(
        select(ConditionLabel.condition_type, TrainingImage.dataset_source, func.count())
        .join(TrainingRunSplit, TrainingRunSplit.image_id == ConditionLabel.image_id)
        .join(TrainingImage, TrainingImage.id == ConditionLabel.image_id)
        .where(
            TrainingRunSplit.run_id == run_id,
            ConditionLabel.task == "condition",
            ConditionLabel.severity_level.is_not(None),
            ConditionLabel.status != "rejected",
        )
        .group_by(ConditionLabel.condition_type, TrainingImage.dataset_source)
    ):
        canonical = vocabulary.canonical_or_same(dataset, name)
        counts[canonical] = counts.get(canonical, 0) + n
    return max(counts, key=lambda c: (counts[c], c)) if counts else None


def find_severity_run(
    engine: Engine,
    classes: Sequence[str],
    *,
    explicit: str | int | None = None,
    promoted: int | None = None,
) -> tuple[int, str] | None:
    """(run id, condition) of the severity model for one of `classes`: `explicit` (an error if
    it is not a severity run for one of them), else the promoted severity run, else the newest
    finished severity run with a model whose condition is one of `classes`."""
    keys = {c.strip().lower(): c for c in classes}
    with Session(engine) as session:
        if explicit is not None:
            run = resolve_run(session, explicit, with_model=True)
            if run.task != Task.severity:
                raise UsageError(
                    f"Run {run.id} is a {run.task} run, not a severity run.",
                    hint="`skinctl train list --task severity` lists severity runs.",
                )
            condition = severity_condition(session, run.id)
            if condition is None or condition.lower() not in keys:
                raise UsageError(
                    f"Severity run {run.id} grades {condition or 'no condition'}, which the "
                    f"condition run does not answer ({', '.join(classes)}).",
                )
            return run.id, keys[condition.lower()]
        newest = session.scalars(
            select(TrainingRun.id)
            .where(
                TrainingRun.task == Task.severity,
                TrainingRun.status == RunStatus.finished,
                TrainingRun.model_uri.is_not(None),
            )
            .order_by(TrainingRun.id.desc())
        ).all()
        if promoted is not None:
            run = session.get(TrainingRun, promoted)
            if run is not None and run.task == Task.severity and run.model_uri:
                newest = [promoted, *newest]
        for run_id in newest:
            condition = severity_condition(session, run_id)
            if condition is not None and condition.lower() in keys:
                return run_id, keys[condition.lower()]
    return None


def _severities(
    engine: Engine,
    storage: Any,
    home: Path,
    loaded: LoadedRun,
    datas: Sequence[bytes],
    probabilities: np.ndarray,
    found: tuple[int, str],
) -> list[list[ConditionSeverity]]:
    """The severity model's level and confidence per image, beside the condition's confidence."""
    from skinctl.train.pipeline import decode_files

    run_id, condition = found
    severity = load_run(engine, storage, run_id, home)
    levels = np.asarray(
        severity.model.predict(decode_files(list(datas), severity.image_size), verbose=0),
        dtype=np.float64,
    )
    at = loaded.classes.index(condition)
    return [
        [
            ConditionSeverity(
                condition=condition,
                condition_confidence=float(p[at]),
                level=severity.classes[int(np.argmax(row))],
                confidence=float(np.max(row)),
                run=run_id,
            )
        ]
        for p, row in zip(probabilities, levels, strict=True)
    ]


def predict_inputs(
    engine: Engine,
    storage: Any,
    inputs: Sequence[str],
    *,
    run: str | int = "latest",
    top: int = 3,
    home: Path,
    severity_run: str | int | None = None,
    promoted_severity_run: int | None = None,
    with_severity: bool = True,
) -> PredictResult:
    """Per-class confidence for image files or image ids. Unreadable inputs are reported in
    `rejected` (with why) and the others are still answered. A condition run's answer also
    carries a severity level for the condition a severity model grades (`find_severity_run`:
    `severity_run`, else `promoted_severity_run`, else the newest that fits)."""
    from skinctl.train.pipeline import ByteReader, decode_files

    if top < 1:
        raise UsageError("--top must be 1 or more.")
    loaded = load_run(engine, storage, run, home)
    found = None
    if with_severity and (loaded.task == Task.condition or severity_run is not None):
        if loaded.task != Task.condition:
            raise UsageError("--severity-run goes with a condition run.")
        found = find_severity_run(
            engine, loaded.classes, explicit=severity_run, promoted=promoted_severity_run
        )
    reader = ByteReader(storage)
    datas: list[bytes] = []
    images, answered_for = [], []
    rejected: list[RejectedInput] = []
    for item in inputs:
        try:
            path = Path(item)
            if path.is_file():
                data, source = path.read_bytes(), {"input": item, "file": str(path)}
            elif item.isdigit():
                with Session(engine) as session:
                    image = session.get(TrainingImage, int(item))
                if image is None:
                    raise UsageError(f"no file {item!r} and no image with id {item}")
                data = reader.read(image.image_url)
                source = {"input": item, "image_id": image.id, "image_url": image.image_url}
            else:
                raise UsageError("no such file, and not an image id")
            images.append(decode_files([data], loaded.image_size)[0])
            datas.append(data)
            answered_for.append(source)
        except (SkinctlError, OSError) as error:
            rejected.append(RejectedInput(item, str(error)))
        except Exception as error:  # noqa: BLE001 - TensorFlow's decode errors: not an image
            rejected.append(
                RejectedInput(item, f"cannot decode the image ({error.__class__.__name__})")
            )
    results = []
    if images:
        probabilities = np.asarray(
            loaded.model.predict(np.stack(images), verbose=0), dtype=np.float64
        )
        for source, row in zip(answered_for, probabilities, strict=True):
            results.append(_answer(loaded, source, row, top))
        if found is not None:
            graded = _severities(engine, storage, home, loaded, datas, probabilities, found)
            results = [
                dataclasses.replace(r, severities=g) for r, g in zip(results, graded, strict=True)
            ]
    return PredictResult(
        run=loaded.id,
        task=loaded.task,
        classes=loaded.classes,
        results=results,
        rejected=rejected,
        severity_run=found[0] if found else None,
        severity_condition=found[1] if found else None,
    )


# --- train score -----------------------------------------------------------------------------


def _prediction_rows(
    run_id: int,
    examples: Sequence[ds.Example],
    probabilities: np.ndarray,
    classes: Sequence[str],
    origin: str | Sequence[str],
    folds: Sequence[int | None] | None = None,
) -> list[dict[str, Any]]:
    index = {c: i for i, c in enumerate(classes)}
    rows = []
    for i, example in enumerate(examples):
        p = probabilities[i]
        # Self-confidence: the probability the model gives the image's own label (the lowest of
        # them for a multi-label image).
        self_confidence = float(min(p[index[label]] for label in example.labels))
        rows.append(
            {
                "run_id": run_id,
                "image_id": example.image_id,
                "origin": origin if isinstance(origin, str) else origin[i],
                "fold": folds[i] if folds is not None else None,
                "given_labels": list(example.labels),
                "predicted_label": classes[int(np.argmax(p))],
                "probabilities": {c: float(p[j]) for j, c in enumerate(classes)},
                "self_confidence": self_confidence,
                "mislabel_score": 1.0 - self_confidence,
            }
        )
    return rows


@dataclasses.dataclass(frozen=True)
class MislabelCandidate:
    image_id: int
    given_labels: list[str]
    predicted_label: str
    self_confidence: float
    mislabel_score: float


@dataclasses.dataclass(frozen=True)
class ScoreResult:
    run: int
    scored: int
    origin: str  # held-out (the run's own model on its val/test images) or cv (K folds)
    folds: int | None
    agreement_with_given_labels: float
    likely_mislabeled: list[MislabelCandidate]  # the ten highest mislabel scores


def _score_on_ray(
    reader: Any,
    storage: Any,
    model_uri: str | None,
    examples: Sequence[ds.Example],
    options: TrainOptions,
    ray_address: str | None,
) -> np.ndarray:
    from skinctl.engines import open_engine
    from skinctl.engines.ray import RayEngine
    from skinctl.train.batch_scoring import predict_probabilities_on_ray

    if not model_uri:
        raise TrainingError("The run has no saved model to score with.")
    compute = open_engine(EngineKind.ray, workers=os.cpu_count() or 1, address=ray_address)
    assert isinstance(compute, RayEngine)
    try:
        return predict_probabilities_on_ray(
            compute,
            reader.read(model_uri),
            storage.base_url,
            [e.image_url for e in examples],
            options.image_size,
            options.batch_size,
        )
    finally:
        compute.close()


def score_run(
    engine: Engine,
    storage: Any,
    ref: str | int,
    *,
    home: Path,
    folds: int | None = None,
    report: ReportProgress = no_progress,
    engine_kind: EngineKind = EngineKind.local,
    ray_address: str | None = None,
) -> ScoreResult:
    """Store out-of-sample class probabilities and mislabel scores for a run's images.

    Without `folds`: the run's own model scores the images of its validation and test splits
    (it never trained on them). With `folds` = K: K models with the run's settings are trained
    on group-aware folds and each scores the fold it did not see, so every image is scored.
    The labels compared against are the current ones in the database. `engine_kind` ray: the
    held-out images are scored as Ray Data `map_batches` (on the cluster at `ray_address`)."""
    from skinctl.train.pipeline import ByteReader

    reader = ByteReader(storage)
    with Session(engine) as session:
        run = resolve_run(session, ref)
        run_id = run.id
        model_uri = run.model_uri
        options = run_options(run)
        classes = list((run.hyperparameters or {})["classes"])
        options.classes = classes
        prepared = prepare(session, dataclasses.replace(options, split=SplitMethod.group))
        split_of = dict(
            session.execute(
                select(TrainingRunSplit.image_id, TrainingRunSplit.split).where(
                    TrainingRunSplit.run_id == run_id
                )
            ).all()
        )

    examples = prepared.selection.examples
    if folds is None:
        held_out = [e for e in examples if split_of.get(e.image_id) in ("val", "test")]
        if not held_out:
            raise TrainingError(
                f"Run {run_id} has no held-out images left in the database to score."
            )
        if engine_kind == EngineKind.ray:
            probabilities = _score_on_ray(
                reader, storage, model_uri, held_out, options, ray_address
            )
        else:
            loaded = load_run(engine, storage, run_id, home)
            probabilities = predict_probabilities(
                loaded.model, reader, held_out, options.image_size, options.batch_size
            )
        rows = _prediction_rows(
            run_id,
            held_out,
            probabilities,
            classes,
            [f"held-out-{split_of[e.image_id]}" for e in held_out],
        )
    else:
        if folds < 2:
            raise UsageError("--folds must be 2 or more.")
        fold_of = ds.group_folds(examples, prepared.groups, folds, options.seed)
        rows = []
        for fold in range(folds):
            test = [e for e in examples if fold_of[e.image_id] == fold]
            rest = [e for e in examples if fold_of[e.image_id] != fold]
            if not test:
                continue
            inner = ds.assign_groups(
                rest,
                prepared.groups,
                {"train": 1 - options.val_fraction, "val": options.val_fraction},
                options.seed + fold,
            )
            train = [e for e in rest if inner[e.image_id] == "train"]
            val = [e for e in rest if inner[e.image_id] == "val"] or train[:1]
            result = fit(reader, options, classes, train, val)
            if result.interrupted:
                raise KeyboardInterrupt
            probabilities = predict_probabilities(
                result.model, reader, test, options.image_size, options.batch_size
            )
            rows += _prediction_rows(run_id, test, probabilities, classes, "cv", [fold] * len(test))
            report(FOLDS_STAGE, fold + 1, folds)
    if not rows:
        raise StorageError(f"Run {run_id}: nothing to score.")
    with Session(engine) as session, session.begin():
        # Replacing the run's scores keeps `train score` idempotent.
        session.execute(delete(ImagePrediction).where(ImagePrediction.run_id == run_id))
        session.execute(insert(ImagePrediction), rows)
    ranked = sorted(rows, key=lambda r: -r["mislabel_score"])
    accuracy = float(np.mean([r["predicted_label"] in r["given_labels"] for r in rows]))
    return ScoreResult(
        run=run_id,
        scored=len(rows),
        origin="cv" if folds else "held-out",
        folds=folds,
        agreement_with_given_labels=accuracy,
        likely_mislabeled=[
            MislabelCandidate(**{f.name: r[f.name] for f in dataclasses.fields(MislabelCandidate)})
            for r in ranked[:10]
        ],
    )
