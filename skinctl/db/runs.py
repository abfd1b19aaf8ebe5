"""The one lifecycle of an `ingest_runs` row, shared by every ingest (images, products,
reviews, CosIng).

    with recorded_ingest_run(engine, source="products:sephora", ...) as run:
        ...                      # work, committing in batches
        run.counts = {...}       # what to record when the run ends

The row is written `running` when the block starts (under the source's advisory lock, so any
other row still marked `running` for that source was killed and becomes `interrupted`), and ends
`finished`, `interrupted` (Ctrl-C: KeyboardInterrupt) or `failed` (any other exception, which is
re-raised) with its counts and `finished_at`. A process killed with -9 leaves `running` behind;
the next run of that source marks it `interrupted`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, insert, update

from skinctl.db.locks import held_ingest_lock
from skinctl.db.models import RunStatus  # one status vocabulary for ingest and training runs


@dataclass
class IngestRunRecord:
    """The live handle of a recorded run: set `counts` (and `status` for a custom ending)."""

    id: int
    source: str
    counts: dict[str, Any] = field(default_factory=dict)
    status: RunStatus = RunStatus.running

    def save_counts(self, engine: Engine) -> None:
        """Write the running counts now (long runs show progress in `ingest_runs`)."""
        from skinctl.db.models import IngestRun

        with engine.begin() as connection:
            connection.execute(
                update(IngestRun).where(IngestRun.id == self.id).values(counts=self.counts)
            )


@contextmanager
def recorded_ingest_run(
    engine: Engine,
    *,
    source: str,
    path: str | None,
    options: dict[str, Any] | None,
    user: str | None,
    counts: dict[str, Any] | None = None,
) -> Iterator[IngestRunRecord]:
    from skinctl.db.models import IngestRun

    with held_ingest_lock(engine, source):
        with engine.begin() as connection:
            # we hold the lock, so a row of this source still marked running was killed
            connection.execute(
                update(IngestRun)
                .where(IngestRun.dataset_source == source, IngestRun.status == RunStatus.running)
                .values(status=RunStatus.interrupted, finished_at=func.now())
            )
            run_id = connection.execute(
                insert(IngestRun)
                .values(
                    dataset_source=source,
                    source_path=path,
                    status=RunStatus.running,
                    started_by=user,
                    options=options,
                    counts=counts or {},
                )
                .returning(IngestRun.id)
            ).scalar_one()
        run = IngestRunRecord(id=run_id, source=source, counts=dict(counts or {}))
        try:
            yield run
            if run.status == RunStatus.running:
                run.status = RunStatus.finished
        except KeyboardInterrupt:
            run.status = RunStatus.interrupted
            raise
        except BaseException:
            run.status = RunStatus.failed
            raise
        finally:
            _finish(engine, run)


def _finish(engine: Engine, run: IngestRunRecord) -> None:
    from skinctl.db.models import IngestRun

    # A failed run may have failed because the database went away: recording is best effort
    # then, and must not hide the original error.
    try:
        with engine.begin() as connection:
            connection.execute(
                update(IngestRun)
                .where(IngestRun.id == run.id)
                .values(status=run.status, finished_at=func.now(), counts=run.counts)
            )
    except Exception:
        if run.status == RunStatus.finished:
            raise
