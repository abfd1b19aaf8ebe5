"""`skinctl reviews score`: a sentiment run's class and probabilities for every review, streamed
in id order and written with COPY; a run scored again resumes after the last review it stored."""

from __future__ import annotations

import hashlib
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from skinctl.db.models import Review, ReviewSentiment, TrainingRun
from skinctl.errors import NotFound, TrainingError, UsageError
from skinctl.progress import ReportProgress, no_progress
from skinctl.reviews.data import CLASSES, review_text

BATCH = 20_000


@dataclass(frozen=True)
class ScoreResult:
    run_id: int
    scored: int  # in this call
    already_scored: int  # by this run before this call
    total_reviews: int
    by_sentiment: dict[str, int]  # over every review the run has scored
    seconds: float
    reviews_per_second: float | None


def sentiment_run(session: Session, ref: str | int | None) -> TrainingRun:
    """A sentiment run by id, or the newest finished one with a saved model."""
    if ref is None or str(ref).lower() == "latest":
        run = session.scalar(
            select(TrainingRun)
            .where(
                TrainingRun.task == "sentiment",
                TrainingRun.status == "finished",
                TrainingRun.model_uri.is_not(None),
            )
            .order_by(TrainingRun.id.desc())
            .limit(1)
        )
        if run is None:
            raise NotFound(
                "No sentiment run with a saved model is recorded.",
                hint="Train one with `skinctl train run --task sentiment`.",
            )
        return run
    try:
        run = session.get(TrainingRun, int(ref))
    except ValueError:
        raise UsageError(
            f"{ref!r} is not a run id.", hint="Pass a run id from `skinctl train list`."
        ) from None
    if run is None or run.task != "sentiment":
        raise NotFound(
            f"Run {ref} is not a sentiment run.",
            hint="See `skinctl train list --task sentiment`, or train one with "
            "`skinctl train run --task sentiment`.",
        )
    if not run.model_uri:
        raise NotFound(f"Sentiment run {run.id} ({run.status}) has no saved model.")
    return run


def load_model(storage: Any, run_id: int, uri: str, home: Path) -> Any:
    """The run's saved model, downloaded once into <home>/models/."""
    from skinctl.reviews.model import keras_module

    digest = hashlib.sha256(uri.encode()).hexdigest()[:12]
    cache = home / "models" / f"run-{run_id}-{digest}.keras"
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        data = storage.get(storage.key_for(uri))
        fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".keras")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, cache)
    keras = keras_module()
    try:
        return keras.models.load_model(cache, compile=False)
    except Exception as error:
        cache.unlink(missing_ok=True)
        raise TrainingError(f"Cannot load the model of run {run_id} from {uri}: {error}") from error


def score_reviews(
    engine: Engine,
    storage: Any,
    home: Path,
    run: str | int | None = None,
    *,
    batch: int = BATCH,
    progress: ReportProgress = no_progress,
) -> ScoreResult:
    import time

    from skinctl.products.ingest import copy_rows
    from skinctl.reviews.model import Scorer

    with Session(engine) as session:
        chosen = sentiment_run(session, run)
        run_id, uri = chosen.id, chosen.model_uri
    assert uri is not None
    scorer = Scorer.from_model(load_model(storage, run_id, uri, home))
    started = time.monotonic()
    with engine.connect() as connection:
        total = connection.execute(select(func.count()).select_from(Review)).scalar_one()
        last = (
            connection.execute(
                select(func.max(ReviewSentiment.review_id)).where(ReviewSentiment.run_id == run_id)
            ).scalar_one()
            or 0
        )
        already = connection.execute(
            select(func.count())
            .select_from(ReviewSentiment)
            .where(ReviewSentiment.run_id == run_id)
        ).scalar_one()

    def fetch(after: int) -> list[Any]:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    select(Review.id, Review.title, Review.review_text)
                    .where(Review.id > after)
                    .order_by(Review.id)
                    .limit(batch)
                ).all()
            )

    scored = 0
    # The next batch is read while this one is scored and written (the database works on the
    # other core).
    with ThreadPoolExecutor(1) as reader:
        pending = reader.submit(fetch, last)
        while rows := pending.result():
            pending = reader.submit(fetch, rows[-1][0])
            probabilities = scorer.predict([review_text(title, body) for _, title, body in rows])
            labels = probabilities.argmax(axis=1)
            values = [
                (rid, run_id, CLASSES[label], float(p[0]), float(p[1]), float(p[2]))
                for (rid, _, _), label, p in zip(rows, labels, probabilities, strict=True)
            ]
            with engine.begin() as connection:
                copy_rows(
                    connection,
                    "review_sentiments",
                    ("review_id", "run_id", "sentiment", "p_negative", "p_neutral", "p_positive"),
                    values,
                )
            scored += len(rows)
            progress("scoring", already + scored, total)
    seconds = time.monotonic() - started
    with engine.connect() as connection:
        by_sentiment = dict(
            connection.execute(
                select(ReviewSentiment.sentiment, func.count())
                .where(ReviewSentiment.run_id == run_id)
                .group_by(ReviewSentiment.sentiment)
            ).all()
        )
    return ScoreResult(
        run_id=run_id,
        scored=scored,
        already_scored=already,
        total_reviews=total,
        by_sentiment={c: by_sentiment.get(c, 0) for c in CLASSES},
        seconds=round(seconds, 2),
        reviews_per_second=round(scored / seconds, 1) if scored and seconds else None,
    )
