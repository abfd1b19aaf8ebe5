"""The local engine: a process pool on this machine (fork where available)."""

from __future__ import annotations

import multiprocessing
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from skinctl.errors import SkinctlError

T = TypeVar("T")
R = TypeVar("R")

CHUNKSIZE = 8


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM when the parent dies (kill -9), instead of lingering."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _pool_worker_start(initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
    _die_with_parent()
    # Ctrl-C is the parent's to handle (it records the run as interrupted and stops the pool)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    initializer(*initargs)


class LocalEngine:
    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def map_ordered(
        self,
        function: Callable[[T], R],
        items: Sequence[T],
        *,
        initializer: Callable[..., None],
        initargs: tuple[Any, ...] = (),
    ) -> Iterator[R]:
        if self.workers == 1 or len(items) < 2:
            initializer(*initargs)
            for item in items:
                yield function(item)
            return
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        # fork: the workers need no re-import and touch nothing of the parent's connections
        context = multiprocessing.get_context(
            "fork" if "fork" in multiprocessing.get_all_start_methods() else None
        )
        # an executor, not multiprocessing.Pool: a worker that dies (a decoder crash) breaks the
        # executor with an error instead of leaving the run waiting forever for its results
        executor = ProcessPoolExecutor(
            self.workers,
            mp_context=context,
            initializer=_pool_worker_start,
            initargs=(initializer, initargs),
        )
        try:
            yield from executor.map(function, items, chunksize=CHUNKSIZE)
        except BrokenProcessPool:
            executor.shutdown(wait=False, cancel_futures=True)
            raise SkinctlError(
                "A worker process died (a crash in an image decoder, or out of memory).",
                hint="Committed batches are kept: run the same command again to resume, with "
                "fewer --workers if memory is short.",
            ) from None
        except BaseException:
            # on Ctrl-C or an error, drop the queued work instead of finishing it
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        # Done: wait for the pool's threads and processes to end, so that the next pool is not
        # forked while one of them holds a lock (the fork would inherit it held).
        executor.shutdown(wait=True)

    def close(self) -> None:
        pass
