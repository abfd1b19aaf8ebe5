"""Keras 3 (3.15, TensorFlow backend) under `MultiWorkerMirroredStrategy`: two fixes without
which `model.fit` fails on the first step (found by tests/train/test_multiworker.py).

- `fit` first reduces one distributed batch with `strategy.reduce("MEAN", (x, y, w))`, which
  the collective strategy refuses (a structure, not a value): the model is built from one local
  batch instead.
- Each step's logs are reduced with `strategy.reduce("MEAN", v, axis=0)`, which fails on the
  scalar losses and metrics: they are averaged over the workers with `axis=None` instead.

Only ever applied when the strategy is a multi-worker one; single-machine runs are untouched.
"""

from __future__ import annotations

from typing import Any


def is_multi_worker(tf: Any, strategy: Any) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def prepare_multi_worker_fit(tf: Any, strategy: Any, model: Any, dataset: Any) -> None:
    """Make `model.fit(dataset)` work under a multi-worker strategy (see the module doc)."""
    if not is_multi_worker(tf, strategy):
        return
    from keras.src.backend.tensorflow import trainer

    local_batch = next(iter(dataset))

    def symbolic_build(iterator: Any = None, data_batch: Any = None) -> None:
        with strategy.scope():
            model._symbolic_build(data_batch=local_batch)

    model._maybe_symbolic_build = symbolic_build
    original = getattr(trainer.reduce_per_replica, "__wrapped__", trainer.reduce_per_replica)

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction in ("auto", "mean") and is_multi_worker(tf, strategy):
            return tf.nest.map_structure(
                lambda v: (
                    strategy.reduce("MEAN", v, axis=None)
                    if isinstance(v, tf.distribute.DistributedValues)
                    else v
                ),
                values,
            )
        return original(values, strategy, reduction)

    reduce_per_replica.__wrapped__ = original  # type: ignore[attr-defined]
    trainer.reduce_per_replica = reduce_per_replica
