"""The options of a training run (`skinctl train run`), all recorded in the run's
hyperparameters so a run can be repeated or re-scored with the same settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from skinctl.errors import UsageError
from skinctl.train.choices import Architecture, Augment, BalanceBy, Schedule, SplitMethod, Task

E = TypeVar("E", bound=StrEnum)


def _choice(kind: type[E], value: str | E, option: str) -> E:
    try:
        return kind(value)
    except ValueError:
        raise UsageError(
            f"{option} {value!r} is not known.", hint=f"Use one of: {', '.join(kind)}."
        ) from None


@dataclass
class TrainOptions:
    """Every option of `train run`. Choices may be given as their text (as recorded runs store
    them): they are turned into their enums here, and an unknown one is a usage error."""

    task: Task
    datasets: list[str] = field(default_factory=list)
    verified_only: bool = False
    classes: list[str] | None = None
    min_images: int = 0  # classes with fewer images are left out (and named)
    multi_label: bool = False
    balance_by: BalanceBy | None = None
    model: Architecture = Architecture.small_cnn
    image_size: int = 128
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 42
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split: SplitMethod = SplitMethod.group
    patience: int = 5
    name: str | None = None
    version: str | None = None
    weights: str | None = None
    notes: str | None = None
    # Recipes for small from-scratch models (bench/conditions.py measures them).
    augment: Augment = Augment.basic
    label_smoothing: float = 0.0
    mixup: float = 0.0  # Beta(alpha, alpha) mixing of image pairs within a batch; 0 = off
    schedule: Schedule = Schedule.constant
    tta: bool = False  # test-time augmentation: average the prediction with the mirror's

    def __post_init__(self) -> None:
        self.task = _choice(Task, self.task, "--task")
        self.model = _choice(Architecture, self.model, "--model")
        self.split = _choice(SplitMethod, self.split, "--split")
        self.augment = _choice(Augment, self.augment, "--augment")
        self.schedule = _choice(Schedule, self.schedule, "--schedule")
        if self.balance_by is not None:
            self.balance_by = _choice(BalanceBy, self.balance_by, "--balance-by")

    def check(self) -> None:
        if (
            self.image_size < 16
            or self.epochs < 1
            or self.batch_size < 1
            or self.learning_rate <= 0
            or self.min_images < 0
        ):
            raise UsageError(
                "--image-size must be >= 16, --epochs and --batch-size >= 1, --learning-rate > 0, "
                "--min-images >= 0."
            )
        if self.multi_label and self.task == Task.severity:
            raise UsageError(
                "--multi-label does not apply to --task severity (one level per image)."
            )
        if not 0 <= self.label_smoothing < 1 or self.mixup < 0:
            raise UsageError("--label-smoothing must be in [0, 1) and --mixup >= 0.")
        if self.model == Architecture.mobilenet_v3_small and self.image_size < 32:
            raise UsageError(f"{self.model} needs --image-size 32 or more.")
