"""The multi-index returns exactly what brute force returns, for queries and all pairs."""

from __future__ import annotations

import numpy as np
import pytest

from skinctl.dedup.index import (
    MultiIndex,
    block_spans,
    brute_force_pairs,
    brute_force_query,
    to_unsigned,
)


def random_codes(seed: int, n: int, copies: int, max_flips: int) -> np.ndarray:
    """Random 64-bit hashes plus near copies of some of them: `copies` with up to `max_flips`
    bits changed, and as many with up to `max_flips + 3` (some just outside the radius)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    parts = [codes]
    for flips in (max_flips, max_flips + 3):
        near = codes[rng.integers(0, n, size=copies)].copy()
        for _ in range(flips):
            bits = rng.integers(0, 64, size=copies).astype(np.uint64)
            flip = rng.random(copies) < 0.8
            near[flip] ^= np.uint64(1) << bits[flip]
        parts.append(near)
    # Exact repeats and all-zero / all-one hashes are edge cases worth having.
    parts.append(codes[:5])
    parts.append(np.array([0, 2**64 - 1, 2**64 - 1], dtype=np.uint64))
    return np.concatenate(parts)


@pytest.mark.parametrize("radius", [0, 1, 4, 6, 8, 12])
def test_all_pairs_equal_brute_force(radius: int) -> None:
    codes = random_codes(seed=radius, n=3_000, copies=600, max_flips=radius)
    expected = brute_force_pairs(codes, radius)
    got = MultiIndex(codes, radius).all_pairs()
    assert len(expected) >= 600  # the planted copies are there to be found
    assert np.array_equal(got, expected)
    assert (got[:, 0] < got[:, 1]).all()


def test_all_pairs_small_strips_and_smaller_radius() -> None:
    codes = random_codes(seed=99, n=2_000, copies=400, max_flips=8)
    index = MultiIndex(codes, 8)
    assert np.array_equal(index.all_pairs(rows_per_step=7), brute_force_pairs(codes, 8))
    # An index built for radius 8 answers any smaller radius exactly too.
    assert np.array_equal(index.all_pairs(5), brute_force_pairs(codes, 5))


@pytest.mark.parametrize("radius", [0, 3, 6, 8, 10])
def test_query_equals_brute_force(radius: int) -> None:
    codes = random_codes(seed=10 + radius, n=20_000, copies=2_000, max_flips=radius)
    index = MultiIndex(codes, radius)
    rng = np.random.default_rng(radius)
    queries = np.concatenate(
        [codes[rng.integers(0, len(codes), 150)], rng.integers(0, 2**64, 50, dtype=np.uint64)]
    )
    hits = 0
    for query in queries:
        ids, distances = index.query(int(query))
        expected_ids, expected_distances = brute_force_query(codes, int(query), radius)
        assert np.array_equal(ids, expected_ids)
        assert np.array_equal(distances, expected_distances)
        hits += len(ids)
    assert hits >= 150  # every stored query finds at least itself


def test_signed_bigint_hashes_round_trip() -> None:
    signed = [-1, -(2**63), 2**63 - 1, 0, -12345]
    codes = to_unsigned(signed)
    assert codes.dtype == np.uint64
    index = MultiIndex(codes, 2)
    ids, distances = index.query(-1)  # a signed query is read bit for bit
    assert ids.tolist() == [0, 2] and distances.tolist() == [0, 1]  # 2**63 - 1 is one bit off
    assert int(codes[1]) == 2**63


def test_blocks_cover_64_bits_and_radius_is_checked() -> None:
    for radius in range(16):
        spans = block_spans(radius)
        assert len(spans) == radius + 1
        assert sum(width for _shift, width in spans) == 64
    with pytest.raises(ValueError):
        MultiIndex(np.zeros(3, np.uint64), 16)
    with pytest.raises(ValueError):
        MultiIndex(np.zeros(3, np.uint64), 4).query(0, radius=5)
    empty = MultiIndex(np.zeros(0, np.uint64), 4)
    assert len(empty.query(123)[0]) == 0 and len(empty.all_pairs()) == 0
