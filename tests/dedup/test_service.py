"""The dedup service on a real PostgreSQL, with generated images and augmented copies."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, func, select, update

from skinctl.console import to_json
from skinctl.db.models import ImageDedupFeatures, ImageDuplicate
from skinctl.dedup import link
from skinctl.dedup.matcher import METHOD
from skinctl.dedup.reports import duplicate_groups, image_duplicates, label_conflicts
from skinctl.errors import NotFound, UsageError
from tests.dedup.imagegen import augmented, drawn_image, jpeg_bytes

# (seed of the original, copy seed, mirrored, angle, brightness)
COPIES = [
    (1, 11, False, 6.0, 1.0),
    (1, 12, True, -9.0, 1.15),
    (2, 21, False, 90.0, 1.0),
    (3, 31, True, 3.0, 0.85),
]
UNRELATED = [4, 5, 6, 7]


def pairs(engine) -> set[tuple[int, int]]:
    with engine.connect() as connection:
        return {
            (a, b)
            for a, b in connection.execute(
                select(ImageDuplicate.image_id_a, ImageDuplicate.image_id_b)
            )
        }


def file_set(filer) -> tuple[dict[int, int], dict[tuple[int, int], int], list[int]]:
    """Originals, their copies and unrelated images: (seed -> id, (seed, copy seed) -> id, unrelated ids)."""
    originals = {
        seed: filer.add(jpeg_bytes(drawn_image(seed)), f"orig/{seed}.jpg", label="acne")
        for seed in (1, 2, 3)
    }
    copies = {
        (seed, copy_seed): filer.add(
            jpeg_bytes(
                augmented(
                    drawn_image(seed), copy_seed, mirror=mirror, angle=angle, brightness=light
                )
            ),
            f"copies/{seed}_{copy_seed}.jpg",
            label="acne",
        )
        for seed, copy_seed, mirror, angle, light in COPIES
    }
    unrelated = [
        filer.add(jpeg_bytes(drawn_image(seed)), f"other/{seed}.jpg", label="acne")
        for seed in UNRELATED
    ]
    return originals, copies, unrelated


def expected_pairs(originals, copies) -> set[tuple[int, int]]:
    members: dict[int, list[int]] = {seed: [image_id] for seed, image_id in originals.items()}
    for (seed, _copy_seed), image_id in copies.items():
        members[seed].append(image_id)
    return {(min(a, b), max(a, b)) for ids in members.values() for a in ids for b in ids if a < b}


def test_all_pairs_links_copies_and_not_unrelated_images(engine, filer, store):
    originals, copies, _unrelated = file_set(filer)
    summary = link(engine, store)
    assert summary.method == METHOD
    assert summary.features_computed == 11 and summary.unreadable == []
    # Every copy (rotated, cropped, mirrored, 90 degrees, brighter/darker) is linked to its
    # original and to its sibling copy; nothing else is.
    assert pairs(engine) == expected_pairs(originals, copies)
    assert summary.pairs == len(expected_pairs(originals, copies))
    with engine.connect() as connection:
        rows = connection.execute(select(ImageDuplicate.method, ImageDuplicate.distance)).all()
    assert all(row.method == METHOD and 0 <= row.distance <= 64 for row in rows)


def test_second_run_changes_nothing(engine, filer, store):
    file_set(filer)
    first = link(engine, store)
    with engine.connect() as connection:
        before = connection.execute(select(func.count()).select_from(ImageDuplicate)).scalar_one()
        features_before = connection.execute(
            select(func.count()).select_from(ImageDedupFeatures)
        ).scalar_one()
    second = link(engine, store)
    with engine.connect() as connection:
        after = connection.execute(select(func.count()).select_from(ImageDuplicate)).scalar_one()
        features_after = connection.execute(
            select(func.count()).select_from(ImageDedupFeatures)
        ).scalar_one()
    assert first.pairs == before > 0
    assert second.pairs == 0 and second.features_computed == 0
    assert second.already_linked == before  # found again, recorded once
    assert (after, features_after) == (before, features_before)


def test_new_images_are_linked_against_stored_ones(engine, filer, store):
    old = {seed: filer.add(jpeg_bytes(drawn_image(seed)), f"old/{seed}.jpg") for seed in (1, 2, 4)}
    link(engine, store)
    assert pairs(engine) == set()
    new_copy = filer.add(
        jpeg_bytes(augmented(drawn_image(2), 5, mirror=True, angle=-8)), "new/copy.jpg"
    )
    new_other = filer.add(jpeg_bytes(drawn_image(9)), "new/other.jpg")
    summary = link(engine, store, image_ids=[new_copy, new_other], max_distance=6)
    assert summary.images == 2 and summary.max_distance == 6
    assert summary.features_computed == 2  # the stored images' features were kept
    assert pairs(engine) == {(old[2], new_copy)}


def test_interrupted_linking_catches_up_by_itself(engine, filer, store):
    originals, copies, _unrelated = file_set(filer)
    link(engine, store)
    everything = pairs(engine)
    # As if a run had stored one image's features and died before recording its pairs.
    lost = copies[(1, 12)]
    with engine.begin() as connection:
        connection.execute(
            delete(ImageDuplicate).where(
                (ImageDuplicate.image_id_a == lost) | (ImageDuplicate.image_id_b == lost)
            )
        )
        connection.execute(
            update(ImageDedupFeatures)
            .where(ImageDedupFeatures.image_id == lost)
            .values(linked_at=None)
        )
    assert pairs(engine) != everything
    summary = link(engine, store, image_ids=[])  # e.g. a re-run that adds nothing
    assert summary.images == 1 and summary.pairs == 2
    assert pairs(engine) == everything


def test_unreadable_image_is_reported_and_the_rest_linked(engine, filer, store):
    originals, copies, _unrelated = file_set(filer)
    # Lose one stored object: that image is reported, the others still get linked.
    lost = copies[(3, 31)]
    with engine.connect() as connection:
        from skinctl.db.models import TrainingImage

        url = connection.execute(
            select(TrainingImage.image_url).where(TrainingImage.id == lost)
        ).scalar_one()
    store.delete(store.key_for(url))
    summary = link(engine, store)
    assert [item.image_id for item in summary.unreadable] == [lost]
    assert "cannot read" in summary.unreadable[0].reason
    expected = {pair for pair in expected_pairs(originals, copies) if lost not in pair}
    assert pairs(engine) == expected


def test_bad_arguments(engine, filer, store):
    image_id = filer.add(jpeg_bytes(drawn_image(1)), "a.jpg")
    with pytest.raises(NotFound, match="999"):
        link(engine, store, image_ids=[image_id, 999])
    with pytest.raises(UsageError):
        link(engine, store, max_distance=40)
    with pytest.raises(NotFound):
        image_duplicates(engine, 999)
    assert link(engine, store, image_ids=[]).pairs == 0


def test_groups_merge_exact_and_near_duplicates(engine, filer, store):
    originals, copies, unrelated = file_set(filer)
    filer.add_source(unrelated[0], "elsewhere/4.jpg", dataset="other", label="acne")  # exact copy
    link(engine, store)
    groups = duplicate_groups(engine)
    by_root = {g.group_id: g for g in groups}
    assert by_root[originals[1]].images == 3 and by_root[originals[1]].near_pairs == 3
    assert by_root[originals[2]].images == 2
    exact = by_root[unrelated[0]]
    assert (exact.images, exact.files, exact.exact_duplicates, exact.near_pairs) == (1, 2, 1, 0)
    assert groups[0].group_id == originals[1]  # largest first
    assert [g.group_id for g in duplicate_groups(engine, dataset="other")] == [unrelated[0]]
    # Filtering by distance keeps only pairs within it (pHash bits; the copies are far apart).
    assert all(p.distance <= 4 for g in duplicate_groups(engine, max_distance=4) for p in g.pairs)

    shown = image_duplicates(engine, copies[(1, 12)])
    assert {d.id for d in shown.duplicates} == {originals[1], copies[(1, 11)]}
    assert shown.group.member_ids == sorted([originals[1], copies[(1, 11)], copies[(1, 12)]])


def test_label_conflicts_exact_and_near(engine, filer, store):
    photo = filer.add(jpeg_bytes(drawn_image(1)), "dry/1.jpg", label="dry", task="skin_type")
    filer.add_source(
        photo, "oily/1 - Copy.jpg", label="oily", task="skin_type"
    )  # same bytes, other class
    copy = filer.add(
        jpeg_bytes(augmented(drawn_image(1), 3, angle=5)),
        "normal/1b.jpg",
        label="normal",
        task="skin_type",
    )
    agreeing = filer.add(jpeg_bytes(drawn_image(2)), "dry/2.jpg", label="dry", task="skin_type")
    filer.add(
        jpeg_bytes(augmented(drawn_image(2), 4, mirror=True)),
        "dry/2b.jpg",
        label="dry",
        task="skin_type",
    )
    # Multi-label from one source (one-hot CSV) is not a conflict; the same image filed by
    # a second source with other labels is.
    multi = filer.add(jpeg_bytes(drawn_image(5)), "acne/5.jpg", label=["papule", "pustule"])
    twice = filer.add(jpeg_bytes(drawn_image(6)), "acne/6.jpg", label=["papule", "pustule"])
    filer.add_source(twice, "more/6.jpg", label=["papule"])
    link(engine, store)

    conflicts = label_conflicts(engine)
    kinds = [(c.kind, tuple(c.image_ids), tuple(c.labels)) for c in conflicts]
    assert ("exact", (photo,), ("dry", "oily")) in kinds
    assert ("near", (photo, copy), ("dry", "normal", "oily")) in kinds
    assert all(agreeing not in c.image_ids for c in conflicts)
    assert kinds[0][0] == "exact"  # exact conflicts first
    exact = json.loads(to_json(conflicts[0]))  # the `dedup list --conflicts --json` shape
    assert [list(entry) for entry in exact["by_image"][str(photo)]] == [
        ["source_id", "local_path", "labels"]
    ] * 2
    assert all(multi not in c.image_ids for c in conflicts)
    assert [c.labels for c in conflicts if c.image_ids == [twice]] == [["papule", "pustule"]]


SCAN_KEYS = [
    "method",
    "feature_method",
    "max_distance",
    "images",
    "stored_images",
    "pairs",
    "candidates",
    "verified",
    "features_computed",
    "unreadable",
    "already_linked",
    "seconds",
]
