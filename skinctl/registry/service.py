"""Model promotions per task: which training run serves, under which alias, with history.

A promotion is a row of `model_promotions`; demoting, or promoting another run for the same
task and alias, closes it (`demoted_at`) and never deletes it, so the rows are the history.
The server (`skinctl.serve`) loads the live promotions and verifies each model file against
the promotion's `model_sha256`: the checksum training recorded (`metrics.model_sha256`), or,
for runs trained before training recorded one, the checksum computed here at promotion.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, select
from sqlalchemy.orm import Session

from skinctl.db.models import ModelPromotion, TrainingRun
from skinctl.errors import NotFound, StorageError, UsageError
from skinctl.registry.tasks import Task

DEFAULT_ALIAS = "production"
PROMOTABLE_STATUSES = ("finished", "interrupted")  # both keep a usable best checkpoint


@dataclass(frozen=True)
class Promotion:
    """A promotion row with the run facts a caller judges it by."""

    id: int
    task: Task
    alias: str
    run_id: int
    model_name: str
    version: str | None
    architecture: str | None
    accuracy: float | None
    accuracy_ci95: tuple[float, float] | None
    majority_rate: float | None
    beats_majority: bool
    model_uri: str
    model_sha256: str
    checksum_source: str  # training | promotion
    forced: bool
    note: str | None
    promoted_by: str
    promoted_at: datetime
    demoted_by: str | None
    demoted_at: datetime | None

    @property
    def live(self) -> bool:
        return self.demoted_at is None


@dataclass(frozen=True)
class PromoteResult:
    promotion: Promotion
    replaced: Promotion | None  # the promotion this one closed
    unchanged: bool  # the run was already live for this task and alias


def accuracy_ci95(run: TrainingRun) -> tuple[float, float] | None:
    test = run.metrics.get("test") if isinstance(run.metrics, dict) else None
    ci = test.get("accuracy_ci95") if isinstance(test, dict) else None
    if isinstance(ci, list | tuple) and len(ci) == 2:
        return (float(ci[0]), float(ci[1]))
    return None


def beats_majority(run: TrainingRun) -> bool:
    """The trainer's definition: the accuracy's 95% interval lies above the majority-class rate
    (the point estimate when no interval was recorded)."""
    if run.accuracy is None or run.majority_rate is None:
        return False
    ci = accuracy_ci95(run)
    return (ci[0] if ci else run.accuracy) > run.majority_rate


def _promotion(row: ModelPromotion, run: TrainingRun) -> Promotion:
    return Promotion(
        id=row.id,
        task=Task(row.task),
        alias=row.alias,
        run_id=row.run_id,
        model_name=run.model_name,
        version=run.version,
        architecture=run.architecture,
        accuracy=run.accuracy,
        accuracy_ci95=accuracy_ci95(run),
        majority_rate=run.majority_rate,
        beats_majority=beats_majority(run),
        model_uri=row.model_uri,
        model_sha256=row.model_sha256,
        checksum_source=row.checksum_source,
        forced=row.forced,
        note=row.note,
        promoted_by=row.promoted_by,
        promoted_at=row.promoted_at,
        demoted_by=row.demoted_by,
        demoted_at=row.demoted_at,
    )


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.3f}"


def _refusal(run: TrainingRun) -> str | None:
    """Why a run should not serve without --force, or None."""
    if run.accuracy is None or run.majority_rate is None:
        return f"run {run.id} has no test accuracy and majority-class rate to judge it by"
    if beats_majority(run):
        return None
    ci = accuracy_ci95(run)
    interval = f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else ""
    return (
        f"run {run.id}'s test accuracy {_fmt(run.accuracy)}{interval} does not beat its "
        f"majority-class rate {_fmt(run.majority_rate)}: always answering the commonest class "
        "does as well"
    )


def training_checksum(run: TrainingRun) -> str | None:
    """The model file's SHA-256 that training recorded, if it did."""
    value = run.metrics.get("model_sha256") if isinstance(run.metrics, dict) else None
    return value.lower() if isinstance(value, str) and len(value) == 64 else None


def read_model_bytes(storage: Any, uri: str) -> bytes:
    """The saved model's bytes from the image store (local or gs://), or the place the URI names."""
    from skinctl.train.pipeline import ByteReader  # numpy only; TensorFlow stays unimported

    return ByteReader(storage).read(uri)


def verify_checksum(data: bytes, expected: str, *, uri: str, run_id: int) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise StorageError(
            f"The model file of run {run_id} ({uri}) has SHA-256 {actual[:12]}..., not the "
            f"{expected[:12]}... recorded for it: it changed since it was recorded.",
            hint="Retrain the run, or restore the original file to the image store.",
        )


def promote(
    engine: Engine,
    storage: Any,
    run_ref: str | int,
    task: Task,
    *,
    user: str,
    alias: str = DEFAULT_ALIAS,
    force: bool = False,
    note: str | None = None,
) -> PromoteResult:
    """Make a run the one that serves `task` under `alias`, closing the previous promotion."""
    from skinctl.train.records import resolve_run

    alias = alias.strip()
    if not alias:
        raise UsageError("The alias must not be empty.", hint="The default alias is production.")
    with Session(engine) as session:
        run = resolve_run(session, run_ref, with_model=True)
        if (run.task or "") != task.value:
            raise UsageError(
                f"Run {run.id} was trained for task {run.task!r}, not {task.value!r}.",
                hint=f"Promote it with --task {run.task}, or pick a {task.value} run from "
                "`skinctl train list`.",
            )
        if run.status not in PROMOTABLE_STATUSES:
            raise UsageError(
                f"Run {run.id} is {run.status}; only finished (or interrupted) runs can serve.",
                hint="See `skinctl train show RUN`.",
            )
        live = session.scalar(
            select(ModelPromotion).where(
                ModelPromotion.task == task.value,
                ModelPromotion.alias == alias,
                ModelPromotion.demoted_at.is_(None),
            )
        )
        if live is not None and live.run_id == run.id:
            return PromoteResult(_promotion(live, run), None, unchanged=True)
        refusal = _refusal(run)
        if refusal and not force:
            raise UsageError(
                f"Not promoting: {refusal}.", hint="Pass --force to promote it anyway."
            )
        uri = run.model_uri
        assert uri is not None
        data = read_model_bytes(storage, uri)
        recorded = training_checksum(run)
        if recorded:
            verify_checksum(data, recorded, uri=uri, run_id=run.id)
            checksum, source = recorded, "training"
        else:
            checksum, source = hashlib.sha256(data).hexdigest(), "promotion"

    now = datetime.now()
    with Session(engine) as session, session.begin():
        # Lock the live row (if any) so two promotions cannot both close it.
        live = session.scalar(
            select(ModelPromotion)
            .where(
                ModelPromotion.task == task.value,
                ModelPromotion.alias == alias,
                ModelPromotion.demoted_at.is_(None),
            )
            .with_for_update()
        )
        replaced = None
        if live is not None:
            live.demoted_at, live.demoted_by = now, user
            session.flush()
            replaced = _promotion(live, session.get_one(TrainingRun, live.run_id))
        row = ModelPromotion(
            task=task.value,
            alias=alias,
            run_id=run.id,
            model_uri=uri,
            model_sha256=checksum,
            checksum_source=source,
            forced=bool(refusal),
            note=note,
            promoted_by=user,
            promoted_at=now,
        )
        session.add(row)
        session.flush()
        return PromoteResult(
            _promotion(row, session.get_one(TrainingRun, run.id)), replaced, unchanged=False
        )


def demote(engine: Engine, task: Task, *, user: str, alias: str = DEFAULT_ALIAS) -> Promotion:
    """Stop serving `task` under `alias` (the server drops the model at its next poll)."""
    with Session(engine) as session, session.begin():
        live = session.scalar(
            select(ModelPromotion)
            .where(
                ModelPromotion.task == task.value,
                ModelPromotion.alias == alias,
                ModelPromotion.demoted_at.is_(None),
            )
            .with_for_update()
        )
        if live is None:
            raise NotFound(
                f"No run is promoted for task {task.value} under alias {alias!r}.",
                hint="`skinctl model list` shows what is promoted.",
            )
        live.demoted_at, live.demoted_by = datetime.now(), user
        session.flush()
        return _promotion(live, session.get_one(TrainingRun, live.run_id))


def _query(session: Session, query: Select[ModelPromotion]) -> list[Promotion]:
    rows = session.execute(
        query.join(TrainingRun, TrainingRun.id == ModelPromotion.run_id).add_columns(TrainingRun)
    ).all()
    return [_promotion(row, run) for row, run in rows]


def live_promotions(engine: Engine, *, alias: str | None = None) -> list[Promotion]:
    """What serves now, by task then alias."""
    with Session(engine) as session:
        query = select(ModelPromotion).where(ModelPromotion.demoted_at.is_(None))
        if alias is not None:
            query = query.where(ModelPromotion.alias == alias)
        return _query(session, query.order_by(ModelPromotion.task, ModelPromotion.alias))


def history(
    engine: Engine, *, task: Task | None = None, alias: str | None = None
) -> list[Promotion]:
    """Every promotion, newest first."""
    with Session(engine) as session:
        query = select(ModelPromotion)
        if task is not None:
            query = query.where(ModelPromotion.task == task.value)
        if alias is not None:
            query = query.where(ModelPromotion.alias == alias)
        return _query(session, query.order_by(ModelPromotion.id.desc()))
