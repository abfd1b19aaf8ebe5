"""Advisory-lock keys shared by the services that must see each other across processes."""

from __future__ import annotations

from sqlalchemy import Connection, func, select


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
