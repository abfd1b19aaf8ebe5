"""Ingest maps class names through the vocabulary and reports names it has never seen."""

from __future__ import annotations

from sqlalchemy import select

from skinctl.db.models import ConditionLabel, ImageSource
from tests.ingest.helpers import draw, encode, write


def test_ingest_maps_through_the_vocabulary_and_reports_new_names(cli, engine, tmp_path):
    write(tmp_path / "a" / "Milia" / "one.jpg", encode(draw("spots", 1)))
    write(tmp_path / "a" / "Acne" / "two.jpg", encode(draw("rings", 2)))
    first = cli("ingest", "images", str(tmp_path / "a"), "--dataset", "a", "--json")
    assert first.exit_code == 0, first.stderr
    assert any("condition:Acne, condition:Milia" in note for note in first.json()["notes"])

    # dataset b spells one class in another case and calls the other Milium
    assert cli("classes", "map", "b", "Milium", "Milia").exit_code == 0
    write(tmp_path / "b" / "Milium" / "three.jpg", encode(draw("spots", 3)))
    write(tmp_path / "b" / "acne" / "four.jpg", encode(draw("rings", 4)))
    write(tmp_path / "b" / "Keloid" / "five.jpg", encode(draw("stripes", 5)))
    second = cli("ingest", "images", str(tmp_path / "b"), "--dataset", "b", "--json")
    assert second.exit_code == 0, second.stderr
    notes = [n for n in second.json()["notes"] if "never seen" in n]
    assert len(notes) == 1 and "condition:Keloid" in notes[0] and "Milium" not in notes[0]

    with engine.connect() as connection:
        rows = connection.execute(
            select(ImageSource.local_path, ConditionLabel.condition_type, ConditionLabel.metadata_)
            .join(ImageSource, ImageSource.id == ConditionLabel.image_source_id)
            .where(ImageSource.dataset_source == "b")
            .order_by(ImageSource.local_path)
        ).all()
    assert [(path, name) for path, name, _ in rows] == [
        ("Keloid/five.jpg", "Keloid"),
        ("Milium/three.jpg", "Milia"),
        ("acne/four.jpg", "Acne"),
    ]
    assert rows[1][2]["dataset_class"] == "Milium"  # the dataset's own word is kept
    listed = {c["name"]: c for c in cli("classes", "list", "--json").json()["classes"]}
    assert listed["Milia"]["images"] == {"a": 1, "b": 1}
