"""The token posting store (`skinctl.dedup.postings`) against the in-memory `TokenIndex`: the same
candidates on the same tokens, whatever the segments, merges and resumed runs."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import delete, func, insert, select, update

from skinctl.db.models import (
    ImageDedupFeatures,
    ImageDedupPosting,
    ImageDedupSegment,
    TrainingImage,
)
from skinctl.dedup import features as feature_lib
from skinctl.dedup import postings
from skinctl.dedup.matcher import TokenIndex
from skinctl.dedup.postings import PostingStore

METHOD = feature_lib.V2.method


def synthetic_tokens(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Token sets like V2's (up to 512 distinct 30-bit tokens), with common tokens (stop words
    at the default cutoff), copies (all or part of an earlier image's tokens, so ties too) and
    tokens at both ends of the token space."""
    common = rng.integers(0, 1 << 30, 40)
    lists: list[np.ndarray] = []
    for i in range(n):
        size = int(rng.integers(0, 512))
        own = rng.integers(0, 1 << 30, size)
        if i and rng.random() < 0.3:  # a copy: shares a part of an earlier image's tokens
            source = lists[int(rng.integers(0, i))]
            share = source[rng.random(len(source)) < rng.choice([0.1, 0.5, 1.0])]
            own = np.concatenate([own[: size // 2], share])
        if rng.random() < 0.5:
            own = np.concatenate([own, rng.choice(common, int(rng.integers(1, 20)))])
        if rng.random() < 0.05:
            own = np.concatenate([own, [0, 1, (1 << 30) - 1, (1 << 20) - 1, 1 << 20]])
        lists.append(np.unique(own).astype(np.int32))
    return lists


def mirrored_of(
    rng: np.random.Generator, lists: list[np.ndarray], tokens: np.ndarray
) -> np.ndarray:
    """Mirrored query tokens: sometimes another image's tokens (a mirrored copy), else noise."""
    if rng.random() < 0.4:
        other = lists[int(rng.integers(0, len(lists)))]
        return np.unique(np.concatenate([other[rng.random(len(other)) < 0.7], tokens[:20]]))
    return np.unique(rng.integers(0, 1 << 30, 128)).astype(np.int32)


def expected(index: TokenIndex, ids: np.ndarray, queries, **kwargs) -> dict:
    position_of = {int(image_id): p for p, image_id in enumerate(ids)}
    return {
        image_id: [
            (int(ids[p]), count, mirrored)
            for p, count, mirrored in index.candidates(
                upright, mirrored_tokens, exclude=position_of.get(image_id, -1), **kwargs
            )
        ]
        for image_id, upright, mirrored_tokens in queries
    }


def found(store: PostingStore, queries, **kwargs) -> dict:
    return {
        image_id: [(c.image_id, c.shared, c.mirrored) for c in chosen]
        for image_id, chosen in store.candidates(queries, **kwargs).items()
    }


def test_encode_decode_round_trip() -> None:
    rng = np.random.default_rng(1)
    bucket = 517
    tokens = np.sort(rng.integers(0, 5000, 20_000) + (bucket << postings.OFFSET_BITS))
    owners = rng.integers(1, 3_000_000, len(tokens))
    order = np.lexsort((owners, tokens))
    tokens, owners = tokens[order], owners[order]
    decoded = postings.decode(postings.encode(tokens, owners), bucket)
    assert np.array_equal(np.repeat(decoded.tokens, np.diff(decoded.bounds)), tokens)
    assert np.array_equal(decoded.image_ids, owners)
    empty = postings.decode(postings.encode(np.zeros(0), np.zeros(0)), 3)
    assert len(empty.tokens) == 0 and len(empty.image_ids) == 0


@pytest.mark.parametrize(
    ("top_k", "min_shared", "max_postings"), [(6, 8, None), (3, 1, 2), (50, 15, 1000)]
)
def test_candidates_are_the_in_memory_index_ones(engine, top_k, min_shared, max_postings) -> None:
    rng = np.random.default_rng(top_k)
    n = 2_500
    lists = synthetic_tokens(rng, n)
    # Image ids with gaps, appended in three segments whose id ranges interleave.
    ids = np.sort(rng.choice(np.arange(1, 50_000), n, replace=False))
    store = PostingStore(engine, METHOD)
    for part in (slice(0, n, 3), slice(1, n, 3), slice(2, n, 3)):
        with engine.begin() as connection:
            store.append(connection, ids[part].tolist(), lists[part])
    assert len(store.segments()) == 3 and store.stored_images() == n
    index = TokenIndex(lists, max_postings)
    if max_postings is None:
        assert index.max_postings == 64 and max(np.bincount(np.concatenate(lists) % 997)) > 64
    stored = [int(i) for i in rng.choice(ids, 300, replace=False)]
    queries = [
        (image_id, lists[pos], mirrored_of(rng, lists, lists[pos]))
        for image_id in stored
        for pos in [int(np.searchsorted(ids, image_id))]
    ]
    # New images (not stored): a copy of a stored one, nothing in common, no tokens at all.
    queries += [
        (60_001, lists[7][::2], np.zeros(0, np.int32)),
        (60_002, rng.integers(0, 1 << 30, 300).astype(np.int32), lists[9]),
        (60_003, np.zeros(0, np.int32), np.zeros(0, np.int32)),
    ]
    kwargs = {"top_k": top_k, "min_shared": min_shared}
    want = expected(index, ids, queries, **kwargs)
    got = found(store, queries, max_postings=max_postings, **kwargs)
    assert got == want
    assert sum(len(v) for v in want.values()) > 100  # the comparison is not empty
    assert any(m for v in want.values() for _i, _c, m in v)  # mirrored candidates are compared
    assert any(  # and ties (equal shared counts within one query's candidates)
        len({c for _i, c, _m in v}) < len(v) for v in want.values()
    )
    # Merging the segments changes nothing.
    assert store.compact(max_segments=1) == 3
    assert len(store.segments()) == 1 and store.stored_images() == n
    assert found(store, queries, max_postings=max_postings, **kwargs) == want


def test_passes_split_when_the_counts_outgrow_the_limit(engine, monkeypatch) -> None:
    rng = np.random.default_rng(5)
    lists = synthetic_tokens(rng, 800)
    ids = np.arange(1, 801)
    store = PostingStore(engine, METHOD)
    with engine.begin() as connection:
        store.append(connection, ids.tolist(), lists)
    queries = [(int(i), lists[i - 1], mirrored_of(rng, lists, lists[i - 1])) for i in ids[:200]]
    kwargs = {"top_k": 6, "min_shared": 8}
    want = expected(TokenIndex(lists), ids, queries, **kwargs)
    passes = []
    original = PostingStore._pass

    def counted(self, *args):
        passes.append(1)
        return original(self, *args)

    monkeypatch.setattr(PostingStore, "_pass", counted)
    assert found(store, queries, **kwargs) == want
    assert len(passes) == 1
    monkeypatch.setattr(postings, "PAIR_BATCH", 100)
    monkeypatch.setattr(postings, "PAIR_LIMIT", 400)
    assert found(store, queries, **kwargs) == want
    assert len(passes) > 5
    passes.clear()
    monkeypatch.setattr(postings, "PAIR_LIMIT", 10**9)
    monkeypatch.setattr(postings, "QUERIES_PER_LOOKUP", 64)  # 200 queries: 4 lookups
    assert found(store, queries, **kwargs) == want
    assert len(passes) == 4


# --- sync: the store follows image_dedup_features ---------------------------------------------


def add_feature_rows(engine, rng: np.random.Generator, n: int, method: str = METHOD) -> list[int]:
    """n images with V2-like feature rows: random descriptors, some copied from earlier ones."""
    ids = []
    descriptor_sets: list[np.ndarray] = []
    with engine.begin() as connection:
        for _ in range(n):
            image_id = connection.execute(
                insert(TrainingImage)
                .values(image_url="memory://x", dataset_source="synthetic")
                .returning(TrainingImage.id)
            ).scalar_one()
            descriptors = rng.integers(0, 256, (128, 32), dtype=np.uint8)
            if descriptor_sets and rng.random() < 0.4:
                source = descriptor_sets[int(rng.integers(0, len(descriptor_sets)))]
                descriptors[:60] = source[:60]
            descriptor_sets.append(descriptors)
            points = rng.random((128, 2)).astype(np.float32) * 200
            features = feature_lib.ImageFeatures(200, 200, points, descriptors, points, descriptors)
            row = feature_lib.to_row(image_id, features, feature_lib.V2)
            connection.execute(insert(ImageDedupFeatures).values({**row, "method": method}))
            ids.append(image_id)
    return ids


def in_memory(engine) -> tuple[TokenIndex, np.ndarray]:
    """What linking built before the store: every current-method image's tokens, in id order."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                ImageDedupFeatures.image_id,
                ImageDedupFeatures.method,
                ImageDedupFeatures.tokens,
                ImageDedupFeatures.descriptors,
            )
            .where(ImageDedupFeatures.method == METHOD)
            .order_by(ImageDedupFeatures.image_id)
        ).all()
    lists = [feature_lib.row_tokens(r.method, r.tokens, r.descriptors) for r in rows]
    return TokenIndex(lists), np.array([r.image_id for r in rows])


def link_queries(engine, ids: list[int]) -> list:
    with engine.connect() as connection:
        rows = connection.execute(
            select(ImageDedupFeatures.image_id, ImageDedupFeatures.descriptors).where(
                ImageDedupFeatures.image_id.in_(ids)
            )
        ).all()
    return [
        (
            r.image_id,
            feature_lib.tokens(feature_lib.unpack_descriptors(r.descriptors)),
            feature_lib.tokens(feature_lib.unpack_descriptors(r.descriptors)[::-1]),
        )
        for r in sorted(rows)
    ]


def test_sync_appends_resumes_merges_and_rebuilds(engine) -> None:
    rng = np.random.default_rng(3)
    ids = add_feature_rows(engine, rng, 120)
    add_feature_rows(engine, rng, 10, method=feature_lib.V1.method)  # another method: left out
    store = PostingStore(engine, METHOD)
    first = store.sync(chunk=50, max_segments=8)
    assert (first.indexed, first.segments, first.merged, first.rebuilt) == (120, 3, 0, False)
    again = store.sync(chunk=50)
    assert (again.indexed, again.segments, again.rebuilt) == (0, 3, False)
    kwargs = {"top_k": 6, "min_shared": 8}
    queries = link_queries(engine, ids)
    index, stored_ids = in_memory(engine)
    want = expected(index, stored_ids, queries, **kwargs)
    assert sum(len(v) for v in want.values()) > 20
    assert found(store, queries, **kwargs) == want

    # New images: one small segment each pass, merged once there are too many.
    for _ in range(3):
        ids += add_feature_rows(engine, rng, 7)
        summary = store.sync(chunk=50, max_segments=4)
        assert summary.indexed == 7 and summary.segments <= 4
    assert store.stored_images() == store.indexed_images() == 141
    index, stored_ids = in_memory(engine)
    queries = link_queries(engine, ids)
    want = expected(index, stored_ids, queries, **kwargs)
    assert found(store, queries, **kwargs) == want

    # A merge killed half-way (some buckets moved) is finished by the next pass.
    live = store.segments()
    with engine.begin() as connection:
        target = connection.execute(
            insert(ImageDedupSegment)
            .values(
                method=METHOD,
                images=sum(s[1] for s in live),
                postings=sum(s[2] for s in live),
            )
            .returning(ImageDedupSegment.id)
        ).scalar_one()
        connection.execute(
            update(ImageDedupSegment)
            .where(ImageDedupSegment.id.in_([s[0] for s in live]))
            .values(merged_into=target)
        )
    assert found(store, queries, **kwargs) == want  # readers are right meanwhile
    resumed = store.sync()
    assert resumed.merged == len(live) and resumed.segments == 1 and resumed.indexed == 0
    assert found(store, queries, **kwargs) == want

    # Features gone from under the store (an image deleted): rebuilt from the features.
    with engine.begin() as connection:
        connection.execute(delete(TrainingImage).where(TrainingImage.id == ids[5]))
    rebuilt = store.sync()
    assert rebuilt.rebuilt and rebuilt.indexed == 140
    index, stored_ids = in_memory(engine)
    queries = [q for q in queries if q[0] != ids[5]]
    assert found(store, queries, **kwargs) == expected(index, stored_ids, queries, **kwargs)
    with engine.connect() as connection:
        by_bucket = connection.execute(
            select(func.max(ImageDedupPosting.postings), func.count()).where(
                ImageDedupPosting.method == METHOD
            )
        ).one()
    assert by_bucket[1] <= postings.BUCKETS


def test_killed_append_leaves_nothing_and_is_redone(engine, monkeypatch) -> None:
    rng = np.random.default_rng(4)
    add_feature_rows(engine, rng, 30)
    store = PostingStore(engine, METHOD)

    def boom(*_args, **_kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(PostingStore, "_write_rows", boom)
    with pytest.raises(RuntimeError):
        store.sync(chunk=10)
    monkeypatch.undo()
    assert store.segments() == [] and store.indexed_images() == 0
    assert store.sync(chunk=10).indexed == 30 and store.stored_images() == 30
