"""Storing many objects at once from a thread pool (any backend: GCS latency hides behind threads).

For the ingest pipeline:

    from skinctl.storage.bulk import put_many
    outcomes = put_many(storage, [(content_key(sha, ext), data), ...], workers=8)
    for outcome in outcomes:          # same order as the input
        if outcome.error: ...         # a StorageError message; the others were still stored
        image_url = outcome.url       # storage.url_for(key)

Backends retry transient errors themselves (GCSStorage: exponential back-off), so an error here
is final for this run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from skinctl.errors import SkinctlError
from skinctl.storage.base import Storage

DEFAULT_WORKERS = 8


@dataclass(frozen=True)
class PutOutcome:
    key: str
    url: str
    uploaded: bool  # False when an identical object was already stored (or on error)
    error: str | None = None


def put_many(
    storage: Storage,
    items: Iterable[tuple[str, bytes]],
    *,
    workers: int = DEFAULT_WORKERS,
    on_done: Callable[[PutOutcome], None] | None = None,
) -> list[PutOutcome]:
    """Store every (key, data) pair; returns one outcome per item, in input order.

    A failed item does not stop the others; `on_done` is called in the caller's thread as results
    arrive (for progress bars)."""

    def put_one(item: tuple[str, bytes]) -> PutOutcome:
        key, data = item
        try:
            uploaded = storage.put(key, data)
            return PutOutcome(key, storage.url_for(key), uploaded)
        except SkinctlError as error:
            return PutOutcome(key, storage.url_for(key), False, error.message)
        except OSError as error:
            return PutOutcome(key, storage.url_for(key), False, f"{type(error).__name__}: {error}")

    outcomes: list[PutOutcome] = []
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="skinctl-put") as pool:
        for outcome in pool.map(put_one, items):
            outcomes.append(outcome)
            if on_done:
                on_done(outcome)
    return outcomes
