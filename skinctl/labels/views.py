"""What the label service takes and returns: the choices (enums), the query filter, and the
typed rows (plain Python: the commands import the enums for their options, and
`skinctl --help` stays cheap). `skinctl.console.print_json` turns these dataclasses into the commands' JSON, so a
field's name and place here is its JSON key and place."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class LabelStatus(StrEnum):
    pending = "pending"
    verified = "verified"
    rejected = "rejected"


class LabelSource(StrEnum):
    dataset = "dataset"
    human = "human"
    model = "model"


class LabelTask(StrEnum):
    condition = "condition"
    skin_type = "skin_type"


class ExportFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"
    folders = "folders"  # a class-folder tree


class QueueOrder(StrEnum):
    suspect = "suspect"  # likely mislabeled first
    id = "id"


@dataclass(frozen=True)
class LabelView:
    """A label with the image facts a person needs to judge it."""

    id: int
    image_id: int | None
    task: str
    condition_type: str
    severity_level: str | None
    confidence_score: float | None
    source: str
    status: str
    verified: bool
    verified_by: str | None
    verified_at: datetime | None
    updated_at: datetime | None
    version: int
    dataset_source: str | None = None
    image_url: str | None = None
    local_path: str | None = None
    split: str | None = None


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    label_id: int
    image_id: int | None
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    changed_by: str
    changed_at: datetime
    note: str | None
    operation_id: str | None
    undoes_operation_id: str | None


@dataclass(frozen=True)
class LabelFilter:
    dataset: str | None = None
    condition: str | None = None
    status: LabelStatus | None = None  # pending: not yet reviewed
    source: LabelSource | None = None
    task: LabelTask | None = None
    image_id: int | None = None


PENDING = LabelFilter(status=LabelStatus.pending)


@dataclass(frozen=True)
class OperationResult:
    """What one service call did: the operation id and the labels it changed (after)."""

    operation_id: str
    labels: list[LabelView] = field(default_factory=list)

    @property
    def label(self) -> LabelView:
        return self.labels[-1]


@dataclass(frozen=True)
class ModelSuggestion:
    """The newest prediction a training run recorded for an image."""

    label: str
    confidence: float | None
    mislabel_score: float | None
    run_id: int


@dataclass(frozen=True)
class DatasetStats:
    dataset: str
    labels: int
    verified: int
    verified_share: float
    agreement: float | None
    reviewed_dataset_labels: int


@dataclass(frozen=True)
class ClassStats:
    dataset: str
    task: str
    condition: str
    labels: int
    verified: int
    rejected: int
    pending: int
    human_labels: int
    verified_share: float
    agreement: float | None
    reviewed_dataset_labels: int


@dataclass(frozen=True)
class ModelLabelStats:
    """How people judged one run's labels: accepted = verified with the model's class."""

    run: int | None
    labels: int
    accepted: int
    rejected: int  # rejected, or superseded by a person's other class
    pending: int
    acceptance: float | None  # accepted / (accepted + rejected)


@dataclass(frozen=True)
class LabelStats:
    """Verified share per dataset and class; agreement of dataset labels with human verdicts;
    how often people accept a model's labels."""

    datasets: list[DatasetStats]
    classes: list[ClassStats]
    agreement: float | None
    reviewed_dataset_labels: int
    model_labels: list[ModelLabelStats] = field(default_factory=list)
    model_acceptance: float | None = None


@dataclass(frozen=True)
class ExportRow:
    """One live label with its image, as `label export` writes it (csv columns, jsonl keys)."""

    label_id: int
    image_id: int
    image_hash: str | None
    image_url: str
    dataset: str
    local_path: str | None
    split: str | None
    task: str
    condition: str
    severity: str | None
    source: str
    status: str
    verified: bool
    verified_by: str | None
    verified_at: datetime | None


@dataclass(frozen=True)
class QueueKey:
    """One item of the verification queue: an image and a task (all its labels of that task)."""

    image_id: int
    task: str


@dataclass(frozen=True)
class Candidate:
    """One class offered for a queue item: the live labels carrying it (exact copies of the
    image filed under the same class are one candidate, not several)."""

    condition: str
    labels: list[LabelView]

    @property
    def status(self) -> str:
        statuses = {label.status for label in self.labels}
        return LabelStatus.verified if statuses == {LabelStatus.verified} else LabelStatus.pending


def versions_of(labels: list[LabelView]) -> dict[int, int]:
    """{label id: version} of what a caller showed, for `set_condition(seen=...)`."""
    return {label.id: label.version for label in labels}
