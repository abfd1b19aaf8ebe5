"""The models `train run --model` can build. Every model takes float32 RGB pixels in 0..255
(the keras.applications models rescale inside; the small CNN has its own Rescaling layer)."""

from __future__ import annotations

import contextlib
import sys
import warnings
from pathlib import Path
from typing import Any, cast

from skinctl.errors import TrainingError, UsageError
from skinctl.train.choices import Architecture

ARCHITECTURES = {
    Architecture.small_cnn: "a 4-block CNN (~30k parameters) that trains on a CPU in minutes",
    Architecture.small_resnet: "a 3-stage residual CNN (~0.3M parameters) for small sets on a CPU",
    Architecture.mobilenet_v3_small: "keras.applications.MobileNetV3Small (weights=None unless --weights)",
    Architecture.efficientnet_b0: "keras.applications.EfficientNetB0 (weights=None unless --weights)",
}

OWN_MODELS = (Architecture.small_cnn, Architecture.small_resnet)  # built here, no ImageNet


def _first_line(error: Exception, limit: int = 200) -> str:
    """Keras errors can embed whole weight tensors: keep the first line, shortened."""
    line = str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _small_cnn(keras: Any, inputs: Any) -> Any:
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    for filters in (16, 32, 64, 96):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        # momentum 0.9: small sets give few steps per epoch; the default 0.99 lags far behind.
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.Activation("relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.layers.Dropout(0.2)(x)


def _small_resnet(keras: Any, inputs: Any) -> Any:
    """A stem and three residual stages (two 3x3 convolutions, a strided 1x1 shortcut)."""
    layers = keras.layers

    def conv_bn(x: Any, filters: int, kernel: int, strides: int = 1) -> Any:
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
        return layers.BatchNormalization(momentum=0.9)(x)

    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Activation("relu")(conv_bn(x, 24, 3))
    for filters in (32, 64, 128):
        shortcut = conv_bn(x, filters, 1, strides=2)
        y = layers.Activation("relu")(conv_bn(x, filters, 3, strides=2))
        y = conv_bn(y, filters, 3)
        x = layers.Activation("relu")(layers.Add()([shortcut, y]))
    x = layers.GlobalAveragePooling2D()(x)
    return layers.Dropout(0.3)(x)


def _backbone(keras: Any, name: str, inputs: Any, image_size: int, weights: str | None) -> Any:
    constructor = {
        "mobilenet-v3-small": keras.applications.MobileNetV3Small,
        "efficientnet-b0": keras.applications.EfficientNetB0,
    }[name]
    kwargs: dict[str, Any] = {}
    if name == "mobilenet-v3-small":
        kwargs["minimalistic"] = False
    try:
        # Keras prints download progress on stdout, which belongs to --json output.
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "weights for 224 px will be loaded"
            base = constructor(
                include_top=False,
                weights=weights,
                input_shape=(image_size, image_size, 3),
                pooling="avg",
                **kwargs,
            )
    except Exception as error:  # keras raises a bare Exception when a download fails
        if weights == "imagenet":
            raise TrainingError(
                f"Keras could not download the ImageNet weights of {name} ({error.__class__.__name__}).",
                hint="This machine cannot reach the weight hosts: download the no-top weights file "
                "elsewhere and pass it with --weights FILE, or train from scratch without --weights.",
            ) from error
        raise TrainingError(
            f"Cannot build {name} with weights {weights!r}: {_first_line(error)}",
            hint="--weights for keras.applications models must be a no-top .h5 weights file of "
            "that architecture.",
        ) from error
    x = base(inputs)
    return keras.layers.Dropout(0.2)(x)


def build_model(
    name: str,
    image_size: int,
    n_classes: int,
    *,
    multi_label: bool = False,
    weights: str | None = None,
) -> Any:
    """A compiled-later Keras model. `weights`: None, "imagenet" (needs a network), or a file:
    a keras.applications no-top .h5 for those architectures, or a `.weights.h5` / `.keras`
    file of the whole model for any architecture."""
    if name not in ARCHITECTURES:
        raise UsageError(
            f"Unknown model {name!r}.", hint=f"Use one of: {', '.join(ARCHITECTURES)}."
        )
    import keras

    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise UsageError(f"--weights {weights}: no such file.")
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    whole_model_file = (
        weights is not None
        and weights != "imagenet"
        and (name in OWN_MODELS or weights.endswith((".weights.h5", ".keras")))
    )
    if name in OWN_MODELS:
        if weights == "imagenet":
            raise UsageError(
                f"{name} has no ImageNet weights.",
                hint="Drop --weights, or pick another --model.",
            )
        features = (_small_cnn if name == "small-cnn" else _small_resnet)(keras, inputs)
    else:
        features = _backbone(keras, name, inputs, image_size, None if whole_model_file else weights)
    activation = "sigmoid" if multi_label else "softmax"
    outputs = keras.layers.Dense(n_classes, activation=activation, name="classes")(features)
    model = keras.Model(inputs, outputs, name=name.replace("-", "_"))
    if whole_model_file:
        assert weights is not None
        try:
            if weights.endswith(".keras"):
                # keras ships no type hints: pyright infers load_model's result as a loose union.
                source = cast("keras.Model", keras.models.load_model(weights, compile=False))
                model.set_weights(source.get_weights())
            else:
                model.load_weights(weights)
        except Exception as error:
            raise TrainingError(
                f"Cannot load weights from {weights}: {_first_line(error)}",
                hint="The file must come from the same --model, --image-size and class count.",
            ) from error
    return model


def distribution_strategy(tf: Any) -> Any:
    """MirroredStrategy across GPUs when there are several; the default (one GPU or the CPU)
    otherwise. With TF_CONFIG set, MultiWorkerMirroredStrategy (see README)."""
    import json
    import os

    if os.environ.get("TF_CONFIG") and json.loads(os.environ["TF_CONFIG"]).get("cluster"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
