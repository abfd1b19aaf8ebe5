"""Selection from the database and the group-aware split (no TensorFlow)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from sqlalchemy.orm import Session

from skinctl.db.models import ImageDuplicate
from skinctl.errors import TrainingError, UsageError
from skinctl.storage.local import LocalStorage
from skinctl.train import dataset as ds
from tests.train.factory import add_image, draw_image


def _examples(n_groups: int, seed: int = 0) -> list[ds.Example]:
    """Groups of 1-5 images sharing a group_key; every third group also shares a subject with
    the next group, so links chain across keys."""
    rng = np.random.default_rng(seed)
    examples, image_id = [], 1
    for g in range(n_groups):
        label = ("dry", "normal", "oily")[g % 3]
        subject = f"s{g // 2}" if g % 3 == 0 else None
        for _ in range(int(rng.integers(1, 6))):
            examples.append(
                ds.Example(
                    image_id,
                    f"file:///x/{image_id}.jpg",
                    [label],
                    "set",
                    group_key=f"photo-{g}",
                    subject_id=subject,
                )
            )
            image_id += 1
    return examples


def test_linked_images_never_straddle_splits():
    examples = _examples(120)
    pairs = [(1, 200), (5, 77), (300, 301)]  # duplicates across different group keys
    groups = ds.link_groups(examples, pairs)
    split = ds.group_split(examples, groups, val_fraction=0.15, test_fraction=0.2, seed=3)
    by_id = {e.image_id: e for e in examples}
    for a, b in pairs:
        assert split[a] == split[b] and groups[a] == groups[b]
    for key in {e.group_key for e in examples}:
        assert len({split[e.image_id] for e in examples if e.group_key == key}) == 1
    for subject in {e.subject_id for e in examples if e.subject_id}:
        assert len({split[e.image_id] for e in examples if e.subject_id == subject}) == 1
    # chained links: 1 is linked to 200 by a duplicate, so 200's whole photo group follows 1
    assert {split[e.image_id] for e in examples if e.group_key == by_id[200].group_key} == {
        split[1]
    }


def test_split_is_stratified_seeded_and_sized():
    examples = _examples(300)
    groups = ds.link_groups(examples, [])
    split = ds.group_split(examples, groups, val_fraction=0.15, test_fraction=0.2, seed=3)
    assert split == ds.group_split(examples, groups, val_fraction=0.15, test_fraction=0.2, seed=3)
    assert split != ds.group_split(examples, groups, val_fraction=0.15, test_fraction=0.2, seed=4)
    sizes = Counter(split.values())
    assert sizes["test"] / len(examples) == pytest.approx(0.2, abs=0.04)
    assert sizes["val"] / len(examples) == pytest.approx(0.15, abs=0.04)
    for label in ("dry", "normal", "oily"):
        of_label = [e for e in examples if e.label == label]
        share = sum(split[e.image_id] == "test" for e in of_label) / len(of_label)
        assert share == pytest.approx(0.2, abs=0.06)


def test_folds_cover_everything_once():
    examples = _examples(90)
    groups = ds.link_groups(examples, [])
    folds = ds.group_folds(examples, groups, 4, seed=1)
    assert set(folds) == {e.image_id for e in examples} and set(folds.values()) == {0, 1, 2, 3}
    for key in {e.group_key for e in examples}:
        assert len({folds[e.image_id] for e in examples if e.group_key == key}) == 1


def test_bad_fractions_are_refused():
    examples = _examples(10)
    with pytest.raises(UsageError, match="val-fraction"):
        ds.group_split(
            examples, ds.link_groups(examples, []), val_fraction=0.5, test_fraction=0.5, seed=0
        )


def test_selection_from_the_database(engine, tmp_path):
    storage = LocalStorage(str(tmp_path / "images"))
    rng = np.random.default_rng(0)
    with Session(engine) as session, session.begin():
        a = add_image(
            session,
            storage,
            draw_image("acne", rng),
            labels=["acne"],
            dataset="one",
            status="verified",
            subject_id="p1",
            fitzpatrick=2,
        )
        b = add_image(
            session,
            storage,
            draw_image("eczema", rng),
            labels=["eczema"],
            dataset="one",
            subject_id="p1",
        )
        c = add_image(
            session, storage, draw_image("acne", rng), labels=["acne", "eczema"], dataset="two"
        )
        add_image(
            session,
            storage,
            draw_image("rosacea", rng),
            labels=["rosacea"],
            dataset="two",
            severity="2",
            status="rejected",
        )
        e = add_image(
            session,
            storage,
            draw_image("rosacea", rng),
            labels=["rosacea"],
            dataset="two",
            severity="1",
        )
        add_image(
            session,
            storage,
            draw_image("acne", rng),
            labels=["oily"],
            task="skin_type",
            dataset="three",
        )
        session.add(
            ImageDuplicate(image_id_a=a.image_id, image_id_b=e.image_id, distance=3, method="phash")
        )

    with Session(engine) as session:
        selection = ds.select_examples(session, "condition")
        assert selection.classes == ["acne", "eczema", "rosacea"]
        assert [x.image_id for x in selection.examples] == [
            a.image_id,
            b.image_id,
            e.image_id,
        ]  # rejected label dropped
        assert sum(selection.left_out.values()) == 1 and "multi-label" in next(
            iter(selection.left_out)
        )
        multi = ds.select_examples(session, "condition", multi_label=True)
        assert next(x for x in multi.examples if x.image_id == c.image_id).labels == [
            "acne",
            "eczema",
        ]
        only_one = ds.select_examples(session, "condition", datasets=["one"])
        assert {x.image_id for x in only_one.examples} == {a.image_id, b.image_id}
        assert only_one.examples[0].fitzpatrick == "2" and only_one.examples[0].subject_id == "p1"
        with pytest.raises(TrainingError, match="at least two classes"):
            ds.select_examples(session, "condition", verified_only=True)
        with pytest.raises(UsageError, match="psoriasis"):
            ds.select_examples(session, "condition", classes=["acne,psoriasis"])
        picked = ds.select_examples(session, "condition", classes=["acne", "rosacea"])
        assert picked.classes == ["acne", "rosacea"] and picked.left_out == {"not in --classes": 1}
        with pytest.raises(TrainingError):
            ds.select_examples(
                session, "severity"
            )  # one severity level left after the rejected one
        pairs = ds.duplicate_pairs(session, [x.image_id for x in selection.examples])
        groups = ds.link_groups(selection.examples, pairs)
        assert groups[a.image_id] == groups[b.image_id] == groups[e.image_id]  # subject + duplicate


def test_class_and_group_weights():
    examples = [
        ds.Example(
            i,
            "u",
            ["a" if i < 6 else "b"],
            "s",
            fitzpatrick=("1" if i % 4 == 0 else "5") if i < 8 else None,
        )
        for i in range(8 + 2)
    ]
    weights, class_weight = ds.sample_weights(examples, ["a", "b"], None)
    assert class_weight == {"a": pytest.approx(10 / 12), "b": pytest.approx(10 / 8)}
    assert sum(weights) == pytest.approx(len(examples))
    balanced, _ = ds.sample_weights(examples, ["a", "b"], "fitzpatrick")
    # fitzpatrick 1 has 2 images and 5 has 6: the rarer group weighs 3x as much per image
    assert balanced[0] / weights[0] == pytest.approx(3 * balanced[1] / weights[1])
    assert balanced[9] == weights[9]  # no metadata: unchanged
    with pytest.raises(TrainingError, match="none of the selected"):
        ds.sample_weights(examples, ["a", "b"], "age-range")


def test_folder_split_uses_the_datasets_own_folders():
    examples = [
        ds.Example(i, "u", ["a"], "s", folder_split=f)
        for i, f in enumerate(["train", "valid", "test", "TRAIN"])
    ]
    assert ds.folder_split(examples) == {0: "train", 1: "val", 2: "test", 3: "train"}
    examples.append(ds.Example(9, "u", ["a"], "s", folder_split=None))
    with pytest.raises(UsageError, match="1 selected images have no train/valid/test split"):
        ds.folder_split(examples)
