"""The Ray engine: items go to a Ray cluster in chunks, results come back in order.

`address` None starts a local Ray for the run (`ray.init()`, stopped by `close`); otherwise the
driver joins that cluster (`ray://host:10001` through the Ray client, or `host:6379` from a
node of the cluster). The workers must be able to import skinctl (the same image or install on
every node; a driver's PYTHONPATH is passed on to the workers of a local Ray by inheritance).
A task whose worker dies is retried by Ray (`max_retries`); the caller's writes stay in the
driver, so what it committed before a killed driver is kept and a rerun resumes.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from skinctl.errors import ConfigError, SkinctlError

T = TypeVar("T")
R = TypeVar("R")

CHUNK = 32  # items per Ray task: big enough to amortise a task, small enough to spread
TASK_RETRIES = 3  # a task on a worker that died runs again elsewhere
IN_FLIGHT_PER_CPU = 3  # tasks queued per cluster CPU (bounded: results are held until yielded)

_initialized: tuple[Any, ...] | None = None


def _run_chunk(
    function: Callable[[Any], Any],
    initializer: Callable[..., None],
    initargs: tuple[Any, ...],
    chunk: list[Any],
) -> list[Any]:
    """One Ray task: the initializer once per worker process (per initializer and args)."""
    global _initialized
    key = (initializer, initargs)
    if _initialized != key:
        initializer(*initargs)
        _initialized = key
    return [function(item) for item in chunk]


class RayEngine:
    name = "ray"

    def __init__(self, *, address: str | None, workers: int) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "--engine ray needs Ray, which is not installed.",
                hint="pip install 'skinctl[ray]' (or: pip install 'ray[data]').",
            ) from None
        self.ray = ray
        self.started_here = not ray.is_initialized()
        if self.started_here:
            options: dict[str, Any] = {
                "log_to_driver": False,
                "include_dashboard": False,
                "logging_level": "WARNING",
            }
            if address:
                options["address"] = address
            else:
                options["num_cpus"] = workers
            if os.environ.get("PYTHONPATH") and address:
                options["runtime_env"] = {"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}}
            try:
                ray.init(**options)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise ConfigError(
                    f"Cannot join the Ray cluster at {address}: {str(error).splitlines()[0]}",
                    hint="Check the address (ray://HEAD:10001, or HEAD:6379 on a node) and that "
                    "the cluster runs the same Ray and Python versions.",
                ) from None
        self._remote = ray.remote(max_retries=TASK_RETRIES)(_run_chunk)

    def cpus(self) -> int:
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def map_ordered(
        self,
        function: Callable[[T], R],
        items: Sequence[T],
        *,
        initializer: Callable[..., None],
        initargs: tuple[Any, ...] = (),
    ) -> Iterator[R]:
        from ray.exceptions import RayError

        ray = self.ray
        chunks = [list(items[start : start + CHUNK]) for start in range(0, len(items), CHUNK)]
        window = self.cpus() * IN_FLIGHT_PER_CPU
        pending: deque[Any] = deque()
        # the function and initializer go to the object store once, not once per task
        function_ref, initializer_ref = ray.put(function), ray.put(initializer)
        next_chunk = 0
        try:
            while next_chunk < len(chunks) or pending:
                while next_chunk < len(chunks) and len(pending) < window:
                    pending.append(
                        self._remote.remote(
                            function_ref, initializer_ref, initargs, chunks[next_chunk]
                        )
                    )
                    next_chunk += 1
                try:
                    results = ray.get(pending.popleft())
                except RayError as error:
                    raise SkinctlError(
                        f"A Ray task failed after {TASK_RETRIES} retries: "
                        f"{str(error).splitlines()[0]}",
                        hint="Committed batches are kept: run the same command again to resume.",
                    ) from None
                yield from results
        finally:
            for reference in pending:  # on Ctrl-C or an error, drop the queued work
                ray.cancel(reference, force=False)

    def close(self) -> None:
        if self.started_here and self.ray.is_initialized():
            self.ray.shutdown()
            self.started_here = False
