"""The batcher on its own (no TensorFlow, no HTTP): one model call per batch, a lone request is
not held back, a swap keeps each request on its model, one bad input fails only itself."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from skinctl.serve.batching import Batcher


class FakeModel:
    """Answers [len(data)] per image; records the size of every call."""

    def __init__(self, name: str = "m", fail_on: bytes | None = None) -> None:
        self.name = name
        self.calls: list[int] = []
        self.fail_on = fail_on

    def predict(self, images: list[bytes]) -> np.ndarray:
        self.calls.append(len(images))
        if self.fail_on is not None and self.fail_on in images:
            raise ValueError("cannot decode")
        time.sleep(0.01)  # a model call takes time; requests queue meanwhile
        return np.array([[float(len(d))] for d in images])


async def _run(batcher: Batcher, jobs):
    batcher.start()
    try:
        return await asyncio.gather(*jobs(batcher), return_exceptions=True)
    finally:
        await batcher.stop()


def test_concurrent_requests_share_model_calls():
    model = FakeModel()
    batcher = Batcher(max_batch=8, max_wait=0.05)

    def jobs(b):
        for _ in range(20):
            b.expect()

        async def one(i):
            await asyncio.sleep(0.001 * (i % 3))
            b.unexpect()
            return await b.submit(model, b"x" * i)

        return [one(i) for i in range(20)]

    results = asyncio.run(_run(batcher, jobs))
    assert [float(r[0]) for r in results] == [float(i) for i in range(20)]
    assert sum(model.calls) == 20 and max(model.calls) <= 8 and len(model.calls) <= 5


def test_a_lone_request_does_not_wait_for_company():
    model = FakeModel()
    batcher = Batcher(max_batch=32, max_wait=2.0)  # a long wait that must not be paid

    def jobs(b):
        async def one():
            started = time.perf_counter()
            await b.submit(model, b"abc")
            return time.perf_counter() - started

        return [one()]

    (took,) = asyncio.run(_run(batcher, jobs))
    assert took < 1.0 and model.calls == [1]


def test_each_request_stays_on_the_model_it_submitted_with():
    old, new = FakeModel("old"), FakeModel("new")
    batcher = Batcher(max_batch=16, max_wait=0.01)

    def jobs(b):
        return [b.submit(old if i % 2 else new, b"x") for i in range(10)]

    asyncio.run(_run(batcher, jobs))
    assert sum(old.calls) == 5 and sum(new.calls) == 5  # one batch, split per model


def test_one_bad_input_fails_only_its_request():
    model = FakeModel(fail_on=b"bad")
    batcher = Batcher(max_batch=16, max_wait=0.01)

    def jobs(b):
        return [b.submit(model, data) for data in (b"good", b"bad", b"fine")]

    good, bad, fine = asyncio.run(_run(batcher, jobs))
    assert float(good[0]) == 4.0 and float(fine[0]) == 4.0
    assert isinstance(bad, ValueError)


@pytest.mark.parametrize("max_batch", [1, 3])
def test_batches_never_exceed_max_batch(max_batch):
    model = FakeModel()
    batcher = Batcher(max_batch=max_batch, max_wait=0.01)

    def jobs(b):
        return [b.submit(model, b"x") for _ in range(7)]

    asyncio.run(_run(batcher, jobs))
    assert max(model.calls) <= max_batch and sum(model.calls) == 7
