"""orb-ransac-v2 and later: shared banners do not link different photos, features stay small,
and rows of an older feature method are recomputed while the links it made stay."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, insert, select

from skinctl.db.models import ImageDedupFeatures, ImageDuplicate
from skinctl.dedup import features as feature_lib
from skinctl.dedup import link
from skinctl.dedup.matcher import DEFAULT_METHOD, METHOD, V1, V2, V3, verify
from tests.dedup.imagegen import augmented, drawn_image, jpeg_bytes, with_banner

# Two different smooth scenes (few corners, like faces) under one identical banner a quarter
# of the picture high: the banner alone gives ~100 geometrically consistent matches.
BANNERED = [with_banner(drawn_image(seed, shapes=8), 0.25) for seed in (4, 5)]


@pytest.mark.parametrize("method", [V2, V3], ids=lambda m: m.name)
def test_banner_alone_does_not_make_a_duplicate(method):
    a, b = (feature_lib.features_from_bytes(jpeg_bytes(i), method.features) for i in BANNERED)
    assert verify(a, b, method.params) is None
    # Without the spread, band (and overlay) checks the banner would link them (the test can
    # fail), as v1 did; the band check alone rejects it, and in v3 the overlay check alone too.
    unchecked = dataclasses.replace(method.params, min_spread=0.0, min_band=0.0, overlay_shift=0.0)
    assert verify(a, b, unchecked) is not None
    assert verify(a, b, dataclasses.replace(method.params, min_spread=0.0)) is None
    if method.params.overlay_shift:
        overlay_only = dataclasses.replace(unchecked, overlay_shift=method.params.overlay_shift)
        assert verify(a, b, overlay_only) is None
    a1, b1 = (feature_lib.features_from_bytes(jpeg_bytes(i), V1.features) for i in BANNERED)
    assert verify(a1, b1, V1.params) is not None


@pytest.mark.parametrize("method", [V2, V3], ids=lambda m: m.name)
def test_bannered_copy_still_links_to_its_original(method):
    original = BANNERED[0]
    copy = augmented(original, 3, angle=4.0, crop=0.06)
    a, b = (
        feature_lib.features_from_bytes(jpeg_bytes(i), method.features) for i in (original, copy)
    )
    assert verify(a, b, method.params) is not None


def test_banner_pair_is_not_linked_by_the_service(engine, filer, store):
    first, second = (
        filer.add(jpeg_bytes(image), f"banner/{n}.jpg", label="acne")
        for n, image in enumerate(BANNERED)
    )
    copy = filer.add(jpeg_bytes(augmented(drawn_image(1), 11, angle=6.0)), "copy.jpg", label="acne")
    original = filer.add(jpeg_bytes(drawn_image(1)), "orig.jpg", label="acne")
    summary = link(engine, store)
    assert summary.method == METHOD == DEFAULT_METHOD.name == "orb-ransac-v3"
    with engine.connect() as connection:
        pairs = set(
            connection.execute(select(ImageDuplicate.image_id_a, ImageDuplicate.image_id_b)).all()
        )
    assert pairs == {(min(copy, original), max(copy, original))}
    assert (first, second) not in pairs


def test_stored_features_are_under_10_kb_per_image(engine, filer, store):
    for seed in range(6):
        filer.add(jpeg_bytes(drawn_image(seed, size=(1024, 768))), f"big/{seed}.jpg")
    link(engine, store)
    with engine.connect() as connection:
        sizes = connection.execute(
            select(
                ImageDedupFeatures.method,
                func.octet_length(ImageDedupFeatures.keypoints)
                + func.octet_length(ImageDedupFeatures.descriptors)
                + func.octet_length(ImageDedupFeatures.mirror_keypoints)
                + func.octet_length(ImageDedupFeatures.mirror_descriptors)
                + func.octet_length(ImageDedupFeatures.tokens),
            )
        ).all()
    assert {method for method, _size in sizes} == {DEFAULT_METHOD.features.method}
    assert max(size for _method, size in sizes) <= 128 * 2 * (32 + 4)  # 9,216 bytes


def test_int16_points_round_trip_within_a_sixteenth_of_a_pixel():
    points = (feature_lib.np.random.default_rng(1).random((50, 2)) * 224).astype("float32")
    back = feature_lib.unpack_points16(feature_lib.pack_points16(points))
    assert abs(back - points).max() <= 1 / 16 + 1e-6


@pytest.mark.parametrize("older", [V1, V2], ids=lambda m: m.name)
def test_older_rows_are_recomputed_and_their_links_stay(engine, filer, store, older):
    data = jpeg_bytes(drawn_image(2))
    image = filer.add(data, "a.jpg")
    copy = filer.add(jpeg_bytes(augmented(drawn_image(2), 21, angle=90.0)), "b.jpg")
    old = feature_lib.features_from_bytes(data, older.features)
    with engine.begin() as connection:
        connection.execute(
            insert(ImageDedupFeatures).values(feature_lib.to_row(image, old, older.features))
        )
        connection.execute(
            insert(ImageDuplicate).values(
                image_id_a=min(image, copy),
                image_id_b=max(image, copy),
                distance=20,
                method=older.name,
            )
        )
    summary = link(engine, store)
    assert summary.features_computed == 2  # the older row was replaced by a current one
    with engine.connect() as connection:
        assert set(connection.execute(select(ImageDedupFeatures.method)).scalars()) == {
            DEFAULT_METHOD.features.method
        }
        methods = connection.execute(select(ImageDuplicate.method)).scalars().all()
    assert methods == [older.name]  # the pair was linked before: kept, not duplicated
