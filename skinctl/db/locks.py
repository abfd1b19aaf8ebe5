"""Advisory locks shared by the services that must see each other across processes.

One context manager, `held_ingest_lock`, is how every ingest (images, products, reviews, CosIng)
keeps two runs of one source apart; `ingest_is_live` lets `storage gc` tell a live run from a
killed one (a killed process no longer holds its lock).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, func, select

from skinctl.errors import SkinctlError


class IngestAlreadyRunning(SkinctlError):
    """Another process holds the ingest lock of this source."""


def ingest_lock_key(dataset: str) -> str:
    """The advisory lock (by `hashtext`) an ingest of `dataset` holds while it runs."""
    return f"skinctl-ingest:{dataset}"


def ingest_is_live(connection: Connection, dataset: str) -> bool:
    """True while some session holds the dataset's ingest lock: a run marked `running` whose
    lock is free was killed."""
    key = func.hashtext(ingest_lock_key(dataset))
    got = connection.execute(select(func.pg_try_advisory_lock(key))).scalar()
    if got:
        connection.execute(select(func.pg_advisory_unlock(key)))
    return not got


@contextmanager
def held_ingest_lock(engine: Engine, dataset: str) -> Iterator[None]:
    """Hold `dataset`'s session-level ingest lock for the block, on a connection of its own
    (so it survives the block's commits); refuse at once if another process holds it."""
    key = func.hashtext(ingest_lock_key(dataset))
    connection = engine.connect()
    try:
        got_lock = connection.execute(select(func.pg_try_advisory_lock(key))).scalar()
        connection.commit()
        if not got_lock:
            raise IngestAlreadyRunning(
                f"Another ingest of {dataset!r} is running.",
                hint="Wait for it to finish (`skinctl stats` lists runs), then run this again.",
            )
        try:
            yield
        finally:
            connection.execute(select(func.pg_advisory_unlock(key)))
            connection.commit()
    finally:
        connection.close()
