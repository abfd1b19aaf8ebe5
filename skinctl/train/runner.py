"""`skinctl train run`: select and split, fit, then evaluate -> save -> record, and finish.

The run row is written first (status running) with the split of every image, each epoch is
committed as it ends, and the row is finished, interrupted (Ctrl-C: the best checkpoint so far
is kept and evaluated) or failed at the end. The steps live in their own modules:
fitting (prepare, fit), evaluate (test figures), save (model file and checksum) and recorder
(the database rows); this module only runs them in order and handles how a run ends.

In a multi-worker run (TF_CONFIG) every worker runs every step, so the collective operations
stay in step, but only the chief (`recorder.is_chief`) writes rows and uploads the model; the
other workers save to a scratch folder and return None.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from skinctl.db.models import RunStatus
from skinctl.errors import SkinctlError, TrainingError
from skinctl.progress import ReportProgress, no_progress
from skinctl.train.evaluate import evaluate_model
from skinctl.train.fitting import Epoch, Prepared, fit, library_versions, prepare
from skinctl.train.options import TrainOptions
from skinctl.train.recorder import (
    finish_run,
    is_chief,
    record_epoch,
    record_evaluation,
    start_run,
)
from skinctl.train.records import RunDetail, run_detail
from skinctl.train.save import save_model
from skinctl.train.weights import initial_weights

EPOCHS_STAGE = "epochs"
EVALUATE_STAGE = "evaluate"


def _hyperparameters(options: TrainOptions, prepared: Prepared) -> dict[str, Any]:
    """Every option plus what the selection turned out to be (recorded with the run)."""
    parts = prepared.parts
    return {
        **asdict(options),
        "classes_option": options.classes,  # what --classes asked for (None: all)
        "classes": prepared.classes,  # the class list, in output order
        "split_sizes": {name: len(rows) for name, rows in parts.items()},
        "class_counts": {
            name: dict(Counter(lbl for e in rows for lbl in e.labels))
            for name, rows in parts.items()
        },
        "left_out": prepared.selection.left_out,
        "small_classes": prepared.selection.small_classes,  # --min-images: left out, with counts
        "linked_groups": len(set(prepared.groups.values())),
        "library_versions": library_versions(),
    }


def run_training(
    engine: Engine,
    storage: Any,
    options: TrainOptions,
    *,
    home: Path,
    user: str | None = None,
    report: ReportProgress = no_progress,
    extra_callbacks: Sequence[Any] = (),
    announce: Callable[[str], None] = lambda _message: None,
) -> RunDetail | None:
    """Train and record one run; returns what `train show` prints. `report` gets the epochs
    (cumulative, out of --epochs: early stopping may end sooner) and the evaluation.
    `announce` gets one-line notices (ImageNet weights unavailable: training from scratch). A
    worker that is not the chief of a multi-worker run trains along, records nothing, returns
    None."""
    from skinctl.train.pipeline import ByteReader

    options.check()
    # The weights actually used are what the run records (a cached ImageNet file, or None).
    options = replace(
        options, weights=initial_weights(options.model, options.weights, home, announce)
    )
    if not is_chief():
        return _train_along(engine, storage, options, home=home, report=report)
    started = time.monotonic()
    with Session(engine) as session:
        prepared = prepare(session, options)
    name = options.name or f"{options.task}-{options.model}"
    run_id = start_run(
        engine, options, prepared, _hyperparameters(options, prepared), name=name, user=user
    )

    def on_epoch(epoch: Epoch) -> None:
        record_epoch(engine, run_id, epoch)
        report(EPOCHS_STAGE, epoch.epoch, options.epochs)

    run_dir = home / "runs" / f"run-{run_id}"
    reader = ByteReader(storage, cache_dir=home / "cache" / "tfdata")
    try:
        result = fit(
            reader,
            options,
            prepared.classes,
            prepared.parts["train"],
            prepared.parts["val"],
            on_epoch=on_epoch,
            extra_callbacks=extra_callbacks,
        )
        if not result.history:
            finish_run(
                engine,
                run_id,
                started,
                status=RunStatus.interrupted if result.interrupted else RunStatus.failed,
                note="stopped before the first epoch ended; nothing to keep",
            )
            return run_summary(engine, run_id)
        report(EVALUATE_STAGE, 0, 1)
        evaluation = evaluate_model(result.model, reader, prepared, options)
        saved = save_model(result.model, storage, run_id, run_dir)
        record_evaluation(
            engine, run_id, prepared.classes, options.multi_label, result, evaluation, saved
        )
        report(EVALUATE_STAGE, 1, 1)
        finish_run(
            engine,
            run_id,
            started,
            status=RunStatus.interrupted if result.interrupted else RunStatus.finished,
            note="interrupted (Ctrl-C): the best checkpoint so far was kept"
            if result.interrupted
            else None,
        )
    except KeyboardInterrupt:
        finish_run(
            engine,
            run_id,
            started,
            status=RunStatus.interrupted,
            note="interrupted during evaluation",
        )
        raise
    except Exception as error:
        if not isinstance(error, SkinctlError) and isinstance(reader.first_error, SkinctlError):
            error = reader.first_error  # the plain cause, not TensorFlow's wrapping of it
        finish_run(engine, run_id, started, status=RunStatus.failed, note=f"failed: {error}")
        if isinstance(error, SkinctlError):
            raise error from None
        raise TrainingError(
            f"Training run {run_id} failed: {error}", hint="Run with -v for the traceback."
        ) from error
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return run_summary(engine, run_id)


def _train_along(
    engine: Engine, storage: Any, options: TrainOptions, *, home: Path, report: ReportProgress
) -> None:
    """A non-chief worker: the same selection (seeded), fit, evaluation and save as the chief, so
    every collective step has all its workers; no rows, and the model file stays in scratch."""
    import os
    import tempfile

    from skinctl.train.pipeline import ByteReader

    with Session(engine) as session:
        prepared = prepare(session, options)
    reader = ByteReader(storage, cache_dir=home / "cache" / "tfdata")
    result = fit(
        reader,
        options,
        prepared.classes,
        prepared.parts["train"],
        prepared.parts["val"],
        on_epoch=lambda epoch: report(EPOCHS_STAGE, epoch.epoch, options.epochs),
    )
    if not result.history:
        return None
    evaluate_model(result.model, reader, prepared, options)
    (home / "runs").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home / "runs", prefix=f"worker-{os.getpid()}-") as scratch:
        result.model.save(Path(scratch) / "model.keras")
    return None


def run_summary(engine: Engine, run_id: int) -> RunDetail:
    return run_detail(engine, run_id)
