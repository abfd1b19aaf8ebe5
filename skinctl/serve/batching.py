"""Request batching: concurrent requests share one model call.

Requests `submit` (model, image bytes) and await the probabilities. One collector task takes
what is queued, waits up to `max_wait` seconds for more while other requests are known to be on
their way (so a lone request never waits), and runs each model's share of the batch as one call
on a single model thread. Items carry the model object they were submitted with, so after a
swap the requests that started on the old model still finish on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from skinctl.serve.models import ServedModel


@dataclass
class _Item:
    model: ServedModel
    data: bytes
    future: asyncio.Future


class Batcher:
    def __init__(
        self,
        *,
        max_batch: int = 32,
        max_wait: float = 0.004,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="skinctl-model")
        self.coming = 0  # requests admitted that have not submitted yet

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._collect())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=False, cancel_futures=True)

    def expect(self) -> None:
        """A request will submit soon (called when its body starts being validated)."""
        self.coming += 1

    def unexpect(self) -> None:
        self.coming = max(0, self.coming - 1)

    async def submit(self, model: ServedModel, data: bytes) -> np.ndarray:
        assert self._queue is not None, "Batcher.start() was not called"
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(model, data, future))
        return await future

    async def _collect(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if self.coming <= 0 or remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            await self._run(loop, batch)

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        groups: dict[int, list[_Item]] = {}
        for item in batch:
            groups.setdefault(id(item.model), []).append(item)
        for items in groups.values():
            model = items[0].model
            try:
                output = await loop.run_in_executor(
                    self._executor, model.predict, [item.data for item in items]
                )
            except Exception as error:  # noqa: BLE001 - a failed batch answers each request
                if len(items) > 1:  # find the one input that broke the batch; answer the rest
                    for item in items:
                        await self._run(loop, [item])
                elif not items[0].future.done():  # it fails its request, not the server
                    items[0].future.set_exception(error)
                continue
            if self.on_batch:
                self.on_batch(len(items))
            for item, row in zip(items, output, strict=True):
                if not item.future.done():  # the client may have gone away
                    item.future.set_result(row)
