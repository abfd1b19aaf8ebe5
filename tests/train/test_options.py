"""Choices as enums: what `train run` accepts, what a recorded run reads back (no TensorFlow)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from skinctl.db.models import RunStatus, TrainingRun
from skinctl.errors import UsageError
from skinctl.train.choices import Architecture, BalanceBy, SplitMethod, Task
from skinctl.train.options import TrainOptions


def test_text_choices_become_enums_as_recorded_runs_store_them():
    options = TrainOptions(
        task="skin-type", model="efficientnet-b0", split="dataset", balance_by="age-range"
    )
    assert options.task is Task.skin_type and options.model is Architecture.efficientnet_b0
    assert options.split is SplitMethod.dataset and options.balance_by is BalanceBy.age_range
    assert f"{options.task}-{options.model}" == "skin-type-efficientnet-b0"  # the default run name
    assert TrainOptions(task=Task.condition).balance_by is None


@pytest.mark.parametrize(
    ("field", "value", "listed"),
    [
        ("task", "colour", "skin-type, condition, severity, sentiment"),
        ("model", "resnet", "small-cnn, small-resnet, mobilenet-v3-small, efficientnet-b0"),
        ("split", "random", "group, dataset"),
        ("balance_by", "height", "fitzpatrick, skin-type, age-range"),
    ],
)
def test_an_unknown_choice_is_a_usage_error_listing_the_valid_ones(field, value, listed):
    arguments = {"task": "condition", field: value}
    with pytest.raises(UsageError, match=value) as caught:
        TrainOptions(**arguments)
    assert listed in (caught.value.hint or "")


def test_run_status_reads_back_as_its_enum(engine):
    with Session(engine) as session, session.begin():
        session.add(TrainingRun(model_name="m", status="interrupted"))
        session.add(TrainingRun(model_name="n"))  # the column's server default
    with Session(engine) as session:
        statuses = session.scalars(select(TrainingRun.status).order_by(TrainingRun.id)).all()
        assert statuses == [RunStatus.interrupted, RunStatus.finished]
        assert all(type(status) is RunStatus for status in statuses)
        # stored as plain text: the plan's column stays VARCHAR, with its CHECK constraint
        assert (
            session.scalar(text("SELECT status FROM model_training_metrics ORDER BY id LIMIT 1"))
            == "interrupted"
        )
    with pytest.raises(StatementError, match="'paused' is not a valid RunStatus"):
        with Session(engine) as session, session.begin():
            session.add(TrainingRun(model_name="o", status="paused"))
