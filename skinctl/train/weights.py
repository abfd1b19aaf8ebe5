"""ImageNet weights for the keras.applications backbones: used by default when they can be
fetched, cached under the skinctl home (fetched once), and a from-scratch fallback with a
one-line notice when they cannot (no network, a proxy, a firewall).

`--weights` values: unset (the default: ImageNet when available, for mobilenet-v3-small and
efficientnet-b0), `imagenet` (required: fail when it cannot be fetched), `none` (from scratch),
or a file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from skinctl.errors import TrainingError
from skinctl.train.choices import Architecture

NO_WEIGHTS = "none"
IMAGENET = "imagenet"


@dataclass(frozen=True)
class WeightsFile:
    file_name: str  # the name Keras itself caches it under
    origin: str
    md5: str  # keras.applications' own hash of the no-top file


# The no-top files keras.applications downloads for these models (keras 3.x, same names/hashes).
IMAGENET_NO_TOP: dict[str, WeightsFile] = {
    Architecture.mobilenet_v3_small: WeightsFile(
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        "d3e8ec802a04aa4fc771ee12a9a9b836",
    ),
    Architecture.efficientnet_b0: WeightsFile(
        "efficientnetb0_notop.h5",
        "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
        "50bc09e76180e00e4465e1a485ddc09d",
    ),
}


def weights_cache(home: Path) -> Path:
    return home / "weights"


def fetch_imagenet(model: str, home: Path) -> Path:
    """The cached no-top ImageNet weights file of `model`, downloaded on first use.
    Raises TrainingError when it cannot be fetched."""
    spec = IMAGENET_NO_TOP[model]
    folder = weights_cache(home)
    cached = folder / spec.file_name
    if cached.is_file():
        return cached
    folder.mkdir(parents=True, exist_ok=True)
    import contextlib
    import sys

    import keras

    try:
        # Keras prints download progress on stdout, which belongs to --json output.
        with contextlib.redirect_stdout(sys.stderr):
            path = keras.utils.get_file(
                spec.file_name,
                spec.origin,
                file_hash=spec.md5,
                cache_dir=str(folder),
                cache_subdir="",
            )
    except Exception as error:  # noqa: BLE001 - keras raises a bare Exception on a failed download
        partial = folder / spec.file_name
        partial.unlink(missing_ok=True)
        raise TrainingError(
            f"Cannot fetch the ImageNet weights of {model} from {spec.origin} "
            f"({error.__class__.__name__}).",
            hint=f"Download that file elsewhere and put it in {folder}, pass it with --weights "
            "FILE, or train from scratch with --weights none.",
        ) from None
    return Path(path)


def initial_weights(
    model: str, weights: str | None, home: Path, announce: Callable[[str], None]
) -> str | None:
    """What `build_model` starts from: None (from scratch) or a weights file.

    Unset `weights` on a model with ImageNet weights: the cached or fetched file, or None with
    a one-line notice when they cannot be fetched. `imagenet`: the file, or TrainingError."""
    if weights == NO_WEIGHTS:
        return None
    if weights is None:
        if model not in IMAGENET_NO_TOP:
            return None
        try:
            return str(fetch_imagenet(model, home))
        except TrainingError as error:
            announce(f"{error} Training {model} from scratch (weights none).")
            return None
    if weights == IMAGENET:
        if model not in IMAGENET_NO_TOP:
            return IMAGENET  # build_model says why not
        return str(fetch_imagenet(model, home))
    return weights
