"""The choices of `skinctl train` (`--task`, `--model`, `--split`, `--balance-by`) as enums.

Kept apart from the code that uses them so the command line can use them as option types
without importing SQLAlchemy, NumPy or TensorFlow (`skinctl --help` stays cheap).
"""

from __future__ import annotations

from enum import StrEnum


class Task(StrEnum):
    """What a run learns (`--task`). A new task is one member here and one entry in TASKS."""

    skin_type = "skin-type"
    condition = "condition"
    severity = "severity"
    sentiment = "sentiment"  # review text, not images: trained by skinctl.reviews


class SplitMethod(StrEnum):
    """`--split`: group-aware (leak-free), or the source dataset's own folders (may leak)."""

    group = "group"
    dataset = "dataset"


class BalanceBy(StrEnum):
    """`--balance-by`: the subject attribute training reweights across."""

    fitzpatrick = "fitzpatrick"
    skin_type = "skin-type"
    age_range = "age-range"
    tone = "tone"  # the skin tone estimated from the pixels (ITA), no metadata needed


class Architecture(StrEnum):
    """`--model`: the network a run trains. A new one is a member here, a line in
    ARCHITECTURES and a branch in `build_model`."""

    small_cnn = "small-cnn"
    small_resnet = "small-resnet"
    mobilenet_v3_small = "mobilenet-v3-small"
    efficientnet_b0 = "efficientnet-b0"


class Augment(StrEnum):
    """Training-time augmentation: basic (mirror, brightness, contrast) or strong (also
    random crops/zoom, 90-degree turns, vertical flips, saturation)."""

    basic = "basic"
    strong = "strong"


class Schedule(StrEnum):
    """Learning-rate schedule over the epochs: constant, or cosine decay to zero."""

    constant = "constant"
    cosine = "cosine"
