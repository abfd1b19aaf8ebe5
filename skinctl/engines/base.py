"""The protocol every engine implements."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class ComputeEngine(Protocol):
    name: str

    def map_ordered(
        self,
        function: Callable[[T], R],
        items: Sequence[T],
        *,
        initializer: Callable[..., None],
        initargs: tuple[Any, ...] = (),
    ) -> Iterator[R]:
        """`function(item)` for every item, yielded in the items' order; each worker runs
        `initializer(*initargs)` once before its first item. `function` and `initializer` are
        module-level functions (they are sent to other processes by reference)."""
        ...

    def close(self) -> None:
        """Release what the engine started (a local Ray); an engine can be closed twice."""
        ...
