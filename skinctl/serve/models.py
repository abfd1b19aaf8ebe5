"""Loading a promoted model for serving and running it on a batch of encoded images.

The model file is read from the image store, verified against the promotion's SHA-256 and
cached under `<home>/models/` by that checksum. Images reach the model through the trainer's
own transform (`skinctl.train.pipeline.tf_decodable` + `decode_resize`), compiled together
with the model into one TensorFlow graph: one call per batch, any batch size, one trace.
TensorFlow is imported only when a model is loaded.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from skinctl.db.models import TrainingRun
from skinctl.errors import TrainingError
from skinctl.registry.service import Promotion, read_model_bytes, verify_checksum
from skinctl.registry.tasks import Task


@dataclass(frozen=True)
class ModelFacts:
    """What a caller is told about a model it was answered by."""

    task: Task
    run_id: int
    promotion_id: int
    name: str
    version: str | None
    architecture: str | None
    test_accuracy: float | None
    accuracy_ci95: tuple[float, float] | None
    majority_rate: float | None
    beats_majority: bool
    multi_label: bool
    classes: tuple[str, ...]
    image_size: int
    model_sha256: str


@dataclass(frozen=True, eq=False)
class ServedModel:
    """One loaded promotion. Identity matters: requests keep the object they started with, so a
    swap never changes the model under a request in flight."""

    facts: ModelFacts
    thresholds: dict[str, float] | None
    predictor: Predictor = field(repr=False)

    def predict(self, images: list[bytes]) -> np.ndarray:
        return self.predictor(images)


class Predictor:
    """decode + resize + model, as one compiled function over a vector of encoded images."""

    def __init__(self, model: Any, image_size: int) -> None:
        from skinctl.train.pipeline import decode_resize, tensorflow

        tf = tensorflow()
        self.model = model
        self.image_size = image_size
        spec = tf.TensorSpec([image_size, image_size, 3], tf.float32)

        def run(encoded: Any) -> Any:
            images = tf.map_fn(
                lambda data: tf.cast(decode_resize(tf, data, image_size), tf.float32),
                encoded,
                fn_output_signature=spec,
            )
            return model(images, training=False)

        self._run = tf.function(run, input_signature=[tf.TensorSpec([None], tf.string)])
        self._tf = tf

    def __call__(self, images: list[bytes]) -> np.ndarray:
        output = self._run(self._tf.constant(images, dtype=self._tf.string))
        return np.asarray(output, dtype=np.float64)


def tf_ready(data: bytes) -> bytes:
    """Bytes TensorFlow decodes as training did (WebP/TIFF and rotated JPEGs via Pillow)."""
    from skinctl.train.pipeline import tf_decodable

    return tf_decodable(data)


_cache_lock = threading.Lock()


def _cached_model_file(storage: Any, promotion: Promotion, home: Path) -> Path:
    """The verified model file under <home>/models/, named by its checksum."""
    cache = home / "models" / f"sha256-{promotion.model_sha256}.keras"
    with _cache_lock:
        if cache.exists():
            if hashlib.sha256(cache.read_bytes()).hexdigest() == promotion.model_sha256:
                return cache
            cache.unlink()
        data = read_model_bytes(storage, promotion.model_uri)
        verify_checksum(
            data, promotion.model_sha256, uri=promotion.model_uri, run_id=promotion.run_id
        )
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".keras")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, cache)
        return cache


def load_served_model(
    engine: Engine, storage: Any, promotion: Promotion, home: Path
) -> ServedModel:
    """Read, verify, load and warm up the model of a promotion."""
    with Session(engine) as session:
        run = session.get(TrainingRun, promotion.run_id)
        if run is None:
            raise TrainingError(f"Run {promotion.run_id} of promotion {promotion.id} is gone.")
        hp = run.hyperparameters or {}
        thresholds = (
            (run.metrics or {}).get("thresholds") if isinstance(run.metrics, dict) else None
        )
    try:
        classes = tuple(str(c) for c in hp["classes"])
        image_size = int(hp["image_size"])
    except (KeyError, TypeError, ValueError):
        raise TrainingError(
            f"Run {promotion.run_id} does not record its classes and image size."
        ) from None
    path = _cached_model_file(storage, promotion, home)
    from skinctl.train.pipeline import tensorflow

    tensorflow()
    import keras

    try:
        # keras ships no type hints: pyright infers load_model's result as a loose union.
        model = cast("keras.Model", keras.models.load_model(path, compile=False))
    except Exception as error:
        raise TrainingError(
            f"Cannot load the model of run {promotion.run_id} from {promotion.model_uri}: {error}"
        ) from error
    outputs = int(model.output_shape[-1])
    if outputs != len(classes):
        raise TrainingError(
            f"The model of run {promotion.run_id} has {outputs} outputs for {len(classes)} classes."
        )
    predictor = Predictor(model, image_size)
    facts = ModelFacts(
        task=promotion.task,
        run_id=promotion.run_id,
        promotion_id=promotion.id,
        name=promotion.model_name,
        version=promotion.version,
        architecture=promotion.architecture,
        test_accuracy=promotion.accuracy,
        accuracy_ci95=promotion.accuracy_ci95,
        majority_rate=promotion.majority_rate,
        beats_majority=promotion.beats_majority,
        multi_label=bool(hp.get("multi_label")),
        classes=classes,
        image_size=image_size,
        model_sha256=promotion.model_sha256,
    )
    served = ServedModel(facts, thresholds if isinstance(thresholds, dict) else None, predictor)
    served.predict([warmup_image()])  # trace the graph now, not on the first request
    return served


def warmup_image() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (128, 128, 128)).save(out, format="PNG")
    return out.getvalue()
