"""ImageNet weights by default: the from-scratch fallback when they cannot be fetched (this
machine has no internet), and a weights file the test writes itself, found in the cache."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from skinctl.errors import TrainingError
from skinctl.train import weights as w
from skinctl.train.architectures import build_model


@pytest.fixture
def unreachable(monkeypatch):
    """Point the download at a closed local port: fails at once, whatever the network."""
    for model, spec in list(w.IMAGENET_NO_TOP.items()):
        monkeypatch.setitem(
            w.IMAGENET_NO_TOP,
            model,
            dataclasses.replace(spec, origin=f"http://127.0.0.1:9/{spec.file_name}"),
        )


def test_fallback_to_scratch_with_one_notice(tmp_path, unreachable):
    notices: list[str] = []
    chosen = w.initial_weights("mobilenet-v3-small", None, tmp_path, notices.append)
    assert chosen is None
    assert len(notices) == 1 and "\n" not in notices[0]
    assert "from scratch" in notices[0] and "mobilenet-v3-small" in notices[0]
    assert not any(w.weights_cache(tmp_path).glob("*.h5"))  # no partial file left behind


def test_required_imagenet_fails_plainly(tmp_path, unreachable):
    with pytest.raises(TrainingError, match="Cannot fetch the ImageNet weights"):
        w.initial_weights("efficientnet-b0", "imagenet", tmp_path, lambda _m: None)


def test_none_and_small_cnn_never_fetch(tmp_path, unreachable):
    notices: list[str] = []
    assert w.initial_weights("mobilenet-v3-small", "none", tmp_path, notices.append) is None
    assert w.initial_weights("small-cnn", None, tmp_path, notices.append) is None
    assert notices == []


def test_a_cached_weights_file_is_used_without_fetching(tmp_path, unreachable):
    """The test writes a no-top file in Keras's legacy .h5 layout (what keras.applications
    downloads) where the cache keeps it; the model built from the default loads it."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(3)
    source = keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg", minimalistic=False
    )
    cached = w.weights_cache(tmp_path) / w.IMAGENET_NO_TOP["mobilenet-v3-small"].file_name
    cached.parent.mkdir(parents=True)
    with h5py.File(cached, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, source)

    notices: list[str] = []
    chosen = w.initial_weights("mobilenet-v3-small", None, tmp_path, notices.append)
    assert chosen == str(cached) and notices == []
    model = build_model("mobilenet-v3-small", 32, 3, weights=chosen)
    backbone = model.get_layer(source.name)
    for mine, theirs in zip(backbone.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
