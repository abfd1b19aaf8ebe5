"""Where per-item work runs: the local process pool, or a Ray cluster.

An engine maps a module-level function over items, in order, after running an initializer once
per worker (`ComputeEngine.map_ordered`). Ingest reads, hashes, analyses and stores images this
way, and batch scoring runs its model the same way on Ray Data; neither keeps a pool of its own.
Importing this package is cheap: Ray is imported only when a Ray engine starts.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skinctl.engines.base import ComputeEngine


class EngineKind(StrEnum):
    local = "local"  # a process pool on this machine
    ray = "ray"  # a Ray cluster (`--address`), or a local one started for the run


def open_engine(kind: EngineKind, *, workers: int, address: str | None = None) -> ComputeEngine:
    """The engine of that kind; `workers` sizes the local pool (and a local Ray), `address`
    names a Ray cluster (`ray://host:10001` or `host:6379`)."""
    if kind == EngineKind.ray:
        from skinctl.engines.ray import RayEngine

        return RayEngine(address=address, workers=workers)
    from skinctl.engines.local import LocalEngine

    return LocalEngine(workers)
