"""Batch inference on Ray Data (`train score --engine ray`): the images' URLs become a Ray
dataset, and `map_batches` runs a model per actor (loaded once from the saved .keras bytes),
each reading its batch from the image store, decoding it with the transform of training
(`pipeline.decode_files`) and predicting. The probabilities come back in the examples' order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from skinctl.engines.ray import RayEngine

ACTORS_PER_CPU = 1


class BatchScorer:
    """One Ray actor: a model loaded once, then one batch of image URLs at a time."""

    def __init__(self, model_bytes: bytes, image_size: int, storage_url: str) -> None:
        import tempfile
        from pathlib import Path

        import keras

        from skinctl.storage import open_storage
        from skinctl.train.pipeline import ByteReader

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.keras"
            path.write_bytes(model_bytes)
            self.model: Any = keras.saving.load_model(path, compile=False)
        self.image_size = image_size
        self.reader = ByteReader(open_storage(storage_url))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from skinctl.train.pipeline import decode_files, tf_decodable

        datas = [tf_decodable(self.reader.read(str(url))) for url in batch["url"]]
        pixels = decode_files(datas, self.image_size)
        probabilities = np.asarray(self.model.predict(pixels, verbose=0), dtype=np.float64)
        return {"index": batch["index"], "probabilities": probabilities}


def predict_probabilities_on_ray(
    compute: RayEngine,
    model_bytes: bytes,
    storage_url: str,
    urls: Sequence[str],
    image_size: int,
    batch_size: int,
) -> np.ndarray:
    """Class probabilities for `urls` (rows in that order), computed by Ray Data actors."""
    import ray.data

    rows: list[dict[str, Any]] = [{"index": i, "url": url} for i, url in enumerate(urls)]
    scored = ray.data.from_items(rows).map_batches(
        BatchScorer,
        fn_constructor_args=(model_bytes, image_size, storage_url),
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=max(1, compute.cpus() * ACTORS_PER_CPU),
    )
    out: np.ndarray | None = None
    for batch in scored.iter_batches(batch_format="numpy", batch_size=None):
        if out is None:
            out = np.zeros((len(urls), batch["probabilities"].shape[1]), dtype=np.float64)
        out[batch["index"]] = batch["probabilities"]
    assert out is not None, "no rows came back from Ray Data"
    return out
