"""The recipes for small models (bench/conditions.py): strong augmentation, mixup, the mirror
used by test-time augmentation, the small residual network, and the options' checks."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from skinctl.errors import UsageError
from skinctl.train.options import TrainOptions


class BytesReader:
    """What make_dataset reads through: url -> bytes (here from memory)."""

    first_error = None

    def __init__(self, images: dict[str, bytes]) -> None:
        self.images = images

    def read(self, url: str) -> bytes:
        return self.images[url]


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def left_red_right_blue(size: int = 16) -> np.ndarray:
    array = np.zeros((size, size, 3), dtype=np.uint8)
    array[:, : size // 2, 0] = 255
    array[:, size // 2 :, 2] = 255
    return array


def test_mirror_flips_every_image():
    from skinctl.train.pipeline import make_dataset

    reader = BytesReader({"a": png(left_red_right_blue())})
    (plain,) = next(iter(make_dataset(reader, ["a"], 16, 1)))
    (mirrored,) = next(iter(make_dataset(reader, ["a"], 16, 1, mirror=True)))
    np.testing.assert_allclose(mirrored.numpy()[0], plain.numpy()[0][:, ::-1])


def test_strong_augmentation_and_mixup_keep_shapes_and_mix_targets():
    from skinctl.train.pipeline import make_dataset

    rng = np.random.default_rng(0)
    images = {str(i): png(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)) for i in range(8)}
    targets = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0, 1, 2, 3]]
    data = make_dataset(
        BytesReader(images),
        list(images),
        24,
        8,
        targets=targets,
        training=True,
        strong=True,
        mixup=0.4,
    )
    batch_images, batch_targets = next(iter(data))
    assert batch_images.shape == (8, 24, 24, 3)
    values = batch_images.numpy()
    assert values.min() >= 0 and values.max() <= 255
    mixed = batch_targets.numpy()
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, rtol=1e-5)
    assert (mixed.max(axis=1) < 0.999).any()  # some targets are mixtures, not one-hot


def test_small_resnet_builds_and_outputs_probabilities():
    from skinctl.train.architectures import build_model

    model = build_model("small-resnet", 32, 5)
    out = model.predict(np.zeros((2, 32, 32, 3), dtype=np.float32), verbose=0)
    assert out.shape == (2, 5)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(UsageError, match="no ImageNet weights"):
        build_model("small-resnet", 32, 5, weights="imagenet")


@pytest.mark.parametrize(
    "changes",
    [{"label_smoothing": 1.0}, {"label_smoothing": -0.1}, {"mixup": -1.0}],
)
def test_recipe_options_are_checked(changes):
    with pytest.raises(UsageError):
        TrainOptions(task="condition", **changes).check()


def test_recipe_choices_are_usage_errors():
    with pytest.raises(UsageError, match="--augment .wild."):
        TrainOptions(task="condition", augment="wild")
    with pytest.raises(UsageError, match="--schedule .step."):
        TrainOptions(task="condition", schedule="step")
