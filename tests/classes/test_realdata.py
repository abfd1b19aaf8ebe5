"""On ../shared/data: `classes map` joins acne_multilabel's `Milium` to skin_conditions'
`Milia`, and one selection over both sets has at least seven canonical classes."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from skinctl.classes.vocabulary import map_dataset_names
from skinctl.db.models import ConditionLabel
from skinctl.labels.classes import ClassVocabularyService
from skinctl.storage.local import LocalStorage
from skinctl.train.dataset import select_examples
from tests.conftest import shared_data
from tests.train.realdata import load_acne_severity, load_skin_conditions

pytestmark = pytest.mark.realdata


def test_milium_joins_milia_and_the_union_has_seven_classes(engine, home):
    conditions, acne = shared_data("skin_conditions"), shared_data("acne_multilabel")
    storage = LocalStorage(str(home / "images"))
    with Session(engine) as session, session.begin():
        load_skin_conditions(session, storage, conditions)
        load_acne_severity(session, storage, acne)
    with Session(engine) as session:
        used = session.execute(
            select(ConditionLabel.condition_type).distinct()
        ).scalars()  # what each dataset calls its classes, as ingest registers them
        names = [("condition", name) for name in used]
    with engine.begin() as connection:
        map_dataset_names(connection, "skin_conditions", names, "test")
    result = ClassVocabularyService(engine, "tester").map("acne_multilabel", "Milium", "Milia")
    assert result.labels_changed == 44 and result.labels_retired == 0
    with Session(engine) as session:
        selection = select_examples(
            session,
            "condition",
            datasets=["skin_conditions", "acne_multilabel"],
            multi_label=True,
            min_images=20,
        )
    assert len(selection.classes) >= 7
    assert "Milium" not in selection.classes
    milia = {e.dataset_source for e in selection.examples if "Milia" in e.labels}
    assert milia == {"skin_conditions", "acne_multilabel"}
    assert selection.small_classes == {"Crystanlline": 9, "Syringoma": 15}
