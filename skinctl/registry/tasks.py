"""The tasks a promoted model can serve (no heavy imports: commands use this at import time)."""

from __future__ import annotations

from enum import StrEnum


class Task(StrEnum):
    """What a promoted model answers; the values are the trainer's `--task` names."""

    condition = "condition"
    severity = "severity"
    skin_type = "skin-type"
