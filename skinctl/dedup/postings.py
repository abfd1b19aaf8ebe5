"""The descriptor-token index kept in PostgreSQL, so linking never holds every stored image.

Same candidates as `matcher.TokenIndex` built over every image with current-method features
(a test compares the two), but the postings live in `image_dedup_postings`:

- The 30-bit token space is cut into `BUCKETS` buckets (the token's top bits). A *segment* is
  the postings of one set of images (`image_dedup_segments`: its image and posting counts);
  it has one row per bucket holding that bucket's (token, image id) postings, sorted,
  delta-coded and zlib-compressed (`encode`/`decode`): a few bytes per posting.
- `PostingStore.sync` appends a segment for the images whose current-method features are not
  indexed yet (`image_dedup_features.indexed_at` is set in the same transaction as the
  segment's rows, so a killed run resumes and a re-run adds nothing), checks that the store
  covers exactly the indexed images (else rebuilds it) and merges segments when there are
  more than `MAX_SEGMENTS` (bucket by bucket, one transaction each, resumable).
- `PostingStore.candidates` looks up a batch of query images: one bucket at a time it reads
  that bucket's rows of every segment, counts each query token's postings over all segments
  (tokens held by more than `max_postings` images are stop words, as in `TokenIndex`) and
  adds up the tokens each (query, stored image, orientation) shares; then the `top_k` per
  query exactly as `TokenIndex.candidates` picks them (ties: lower image id first, upright
  before mirrored). Memory: one bucket's postings plus the shared-token counts of the batch,
  at most `PAIR_LIMIT` (query, image) pairs of 8 bytes; a batch with more is looked up in
  several passes over the store (bench/token_index.py: 1,000 new images against 1,000,000
  stored, 3 passes, 1.1 GB peak).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, Engine, delete, func, insert, select, text, update

from skinctl.db.models import ImageDedupFeatures, ImageDedupPosting, ImageDedupSegment
from skinctl.dedup import features as feature_lib
from skinctl.errors import StorageError

TOKEN_SPACE_BITS = 30  # features.tokens: TOKEN_TABLES (4) tables of TOKEN_BITS (28) bits
BUCKET_BITS = 10
BUCKETS = 1 << BUCKET_BITS
OFFSET_BITS = TOKEN_SPACE_BITS - BUCKET_BITS
OFFSET_MASK = (1 << OFFSET_BITS) - 1
APPEND_CHUNK = 25_000  # images per appended segment (one transaction each)
MAX_SEGMENTS = 8  # live segments per method before the smallest are merged
PAIR_BATCH = 4_000_000  # (query, image) postings gathered before they are summed up
PAIR_LIMIT = 24_000_000  # (query, image) pairs counted at once (8 bytes each)
COUNT_BITS = 16  # a pair's count in the low bits of its int64: pair < 2**47, count < 2**16
COUNT_MASK = (1 << COUNT_BITS) - 1
QUERIES_PER_LOOKUP = 1 << 14  # query positions * 2 + mirrored fit 15 bits
_HEADER = struct.Struct("<III")  # distinct tokens, postings, smallest image id
_LOCK = 0x5D1C_0DE5  # pg_advisory_xact_lock key: one writer of the store at a time

assert feature_lib.TOKEN_TABLES <= 4 and feature_lib.TOKEN_BITS + 2 == TOKEN_SPACE_BITS


# --- one bucket's postings as bytes ---------------------------------------------------------


def _shuffle(values: np.ndarray) -> bytes:
    """uint32 values as their byte planes (low bytes, then the next...): small numbers leave
    whole planes of zeros that zlib all but removes."""
    return np.ascontiguousarray(values.astype("<u4").view(np.uint8).reshape(-1, 4).T).tobytes()


def _unshuffle(data: bytes, count: int) -> np.ndarray:
    planes = np.frombuffer(data, dtype=np.uint8).reshape(4, count)
    return np.ascontiguousarray(planes.T).view("<u4").ravel()


def encode(tokens: np.ndarray, image_ids: np.ndarray) -> bytes:
    """Postings of one bucket, sorted by (token, image id) and distinct, as bytes: the distinct
    tokens (deltas of their offsets in the bucket), how many images hold each, and the image
    ids (each list's first id from the smallest id, the next ones as deltas)."""
    tokens = np.asarray(tokens, dtype=np.int64)
    image_ids = np.asarray(image_ids, dtype=np.int64)
    n = len(tokens)
    if n == 0:
        return _HEADER.pack(0, 0, 0)
    starts = np.flatnonzero(np.concatenate(([True], tokens[1:] != tokens[:-1])))
    counts = np.diff(np.append(starts, n))
    offsets = tokens[starts] & OFFSET_MASK
    token_deltas = np.diff(offsets, prepend=0)
    base = int(image_ids.min())
    id_deltas = np.diff(image_ids, prepend=0)
    id_deltas[starts] = image_ids[starts] - base
    body = _shuffle(np.concatenate([token_deltas, counts, id_deltas]))
    return _HEADER.pack(len(starts), n, base) + zlib.compress(body, 1)


@dataclass(frozen=True)
class Bucket:
    """One decoded bucket row: distinct tokens (sorted), the bounds of each token's image ids."""

    tokens: np.ndarray  # int64 (t,)
    bounds: np.ndarray  # int64 (t + 1,)
    image_ids: np.ndarray  # int64 (postings,)


def decode(data: bytes, bucket: int) -> Bucket:
    distinct, n, base = _HEADER.unpack_from(data)
    if n == 0:
        empty = np.zeros(0, np.int64)
        return Bucket(empty, np.zeros(1, np.int64), empty)
    values = _unshuffle(zlib.decompress(data[_HEADER.size :]), 2 * distinct + n).astype(np.int64)
    token_deltas, counts, id_values = (
        values[:distinct],
        values[distinct : 2 * distinct],
        values[2 * distinct :],
    )
    tokens = np.cumsum(token_deltas) + (bucket << OFFSET_BITS)
    bounds = np.concatenate(([0], np.cumsum(counts)))
    running = np.cumsum(id_values)
    starts = bounds[:-1]
    image_ids = running - np.repeat(running[starts] - id_values[starts], counts) + base
    return Bucket(tokens, bounds, image_ids)


def bucket_of(tokens: np.ndarray) -> np.ndarray:
    return np.asarray(tokens, dtype=np.int64) >> OFFSET_BITS


def postings_by_bucket(
    image_ids: Sequence[int], token_lists: Sequence[np.ndarray]
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(bucket, tokens, image ids) of the non-empty buckets, each sorted by (token, image).
    Token lists are kept as given (`features.tokens` gives each token once), as TokenIndex."""
    lengths = np.array([len(t) for t in token_lists], dtype=np.int64)
    if not lengths.sum():
        return
    tokens = np.concatenate([np.asarray(t, dtype=np.int64) for t in token_lists])
    if tokens.min() < 0 or tokens.max() >= 1 << TOKEN_SPACE_BITS:
        raise ValueError("descriptor tokens must lie in [0, 2**30)")
    owners = np.repeat(np.asarray(image_ids, dtype=np.int64), lengths)
    tokens, owners = _sorted(tokens, owners)
    buckets = tokens >> OFFSET_BITS
    cuts = np.flatnonzero(np.diff(buckets)) + 1
    for lo, hi in zip(np.concatenate(([0], cuts)), np.append(cuts, len(tokens)), strict=True):
        yield int(buckets[lo]), tokens[lo:hi], owners[lo:hi]


def _sorted(tokens: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Postings sorted by (token, image id): one sort of token << 32 | image id."""
    if len(owners) and (owners.min() < 0 or owners.max() >= 1 << 32):
        raise ValueError("image ids must lie in [0, 2**32)")
    packed = (tokens.astype(np.int64) << 32) | owners.astype(np.int64)
    packed.sort()
    return packed >> 32, packed & 0xFFFFFFFF


# --- the store -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncSummary:
    indexed: int  # images appended now
    segments: int  # live segments after the pass
    merged: int  # segments merged away now
    rebuilt: bool  # the store did not match the indexed images and was built again


@dataclass(frozen=True)
class Candidate:
    image_id: int
    shared: int
    mirrored: bool


class PostingStore:
    """The token postings of one feature method (`image_dedup_segments` + `_postings`)."""

    def __init__(self, engine: Engine, method: str) -> None:
        self.engine = engine
        self.method = method

    # -- writing --

    def append(
        self, connection: Connection, image_ids: Sequence[int], token_lists: Sequence[np.ndarray]
    ) -> int:
        """Write one segment for these images (inside the caller's transaction); its id."""
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
        rows = [
            (bucket, tokens, owners)
            for bucket, tokens, owners in postings_by_bucket(image_ids, token_lists)
        ]
        segment = connection.execute(
            insert(ImageDedupSegment)
            .values(
                method=self.method,
                images=len(image_ids),
                postings=sum(len(t) for _b, t, _o in rows),
            )
            .returning(ImageDedupSegment.id)
        ).scalar_one()
        self._write_rows(connection, segment, rows)
        return segment

    def _write_rows(
        self,
        connection: Connection,
        segment: int,
        rows: Iterable[tuple[int, np.ndarray, np.ndarray]],
    ) -> None:
        batch: list[dict] = []
        for bucket, tokens, owners in rows:
            batch.append(
                {
                    "method": self.method,
                    "bucket": bucket,
                    "segment_id": segment,
                    "postings": len(tokens),
                    "data": encode(tokens, owners),
                }
            )
            if len(batch) >= 256:
                connection.execute(insert(ImageDedupPosting), batch)
                batch = []
        if batch:
            connection.execute(insert(ImageDedupPosting), batch)

    def sync(self, *, chunk: int = APPEND_CHUNK, max_segments: int = MAX_SEGMENTS) -> SyncSummary:
        """Index the current-method images not indexed yet, check, compact (see the module)."""
        merged = self._finish_merges()
        indexed = self._append_pending(chunk)
        rebuilt = False
        if not self._consistent():
            self.clear()
            indexed = self._append_pending(chunk)
            rebuilt = True
            if not self._consistent():
                raise StorageError(
                    "The near-duplicate token index does not match the stored features.",
                    hint="Another process may be writing features; run the linking again.",
                )
        merged += self.compact(max_segments)
        return SyncSummary(indexed, len(self.segments()), merged, rebuilt)

    def _consistent(self) -> bool:
        """Whether the live segments cover exactly the indexed images (counted under the lock,
        so a concurrent append is seen whole or not at all)."""
        with self.engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
            stored = sum(n for _i, n, _p in self._live(connection))
            return self._indexed(connection) == stored

    def _append_pending(self, chunk: int) -> int:
        with self.engine.connect() as connection:
            pending = (
                connection.execute(
                    select(ImageDedupFeatures.image_id)
                    .where(
                        ImageDedupFeatures.method == self.method,
                        ImageDedupFeatures.indexed_at.is_(None),
                    )
                    .order_by(ImageDedupFeatures.image_id)
                )
                .scalars()
                .all()
            )
        indexed = 0
        for start in range(0, len(pending), chunk):
            with self.engine.begin() as connection:
                connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
                # Read again under the lock: another pass may have indexed some meanwhile.
                rows = connection.execute(
                    select(
                        ImageDedupFeatures.image_id,
                        ImageDedupFeatures.method,
                        ImageDedupFeatures.tokens,
                        ImageDedupFeatures.descriptors,
                    )
                    .where(
                        ImageDedupFeatures.image_id.in_(pending[start : start + chunk]),
                        ImageDedupFeatures.method == self.method,
                        ImageDedupFeatures.indexed_at.is_(None),
                    )
                    .order_by(ImageDedupFeatures.image_id)
                ).all()
                if not rows:
                    continue
                ids = [row.image_id for row in rows]
                self.append(
                    connection,
                    ids,
                    [feature_lib.row_tokens(r.method, r.tokens, r.descriptors) for r in rows],
                )
                connection.execute(
                    update(ImageDedupFeatures)
                    .where(ImageDedupFeatures.image_id.in_(ids))
                    .values(indexed_at=func.now())
                )
                indexed += len(ids)
        return indexed

    def clear(self) -> None:
        """Drop this method's postings and mark its images as not indexed."""
        with self.engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
            connection.execute(
                delete(ImageDedupPosting).where(ImageDedupPosting.method == self.method)
            )
            connection.execute(
                delete(ImageDedupSegment).where(ImageDedupSegment.method == self.method)
            )
            connection.execute(
                update(ImageDedupFeatures)
                .where(
                    ImageDedupFeatures.method == self.method,
                    ImageDedupFeatures.indexed_at.is_not(None),
                )
                .values(indexed_at=None)
            )

    # -- compaction --

    def compact(self, max_segments: int = MAX_SEGMENTS) -> int:
        """Merge the smallest live segments when there are more than `max_segments`; how many
        segments were merged away."""
        if len(self.segments()) <= max_segments:
            return 0
        with self.engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
            live = self._live(connection)  # again under the lock: another pass may have merged
            if len(live) <= max_segments:
                return 0
            smallest = sorted(live, key=lambda s: (s[1], s[0]))[: len(live) - max_segments // 2 + 1]
            target = connection.execute(
                insert(ImageDedupSegment)
                .values(
                    method=self.method,
                    images=sum(s[1] for s in smallest),
                    postings=sum(s[2] for s in smallest),
                )
                .returning(ImageDedupSegment.id)
            ).scalar_one()
            connection.execute(
                update(ImageDedupSegment)
                .where(ImageDedupSegment.id.in_([s[0] for s in smallest]))
                .values(merged_into=target)
            )
        return self._finish_merges()

    def _finish_merges(self) -> int:
        """Move the postings of segments being merged into their target, one bucket per
        transaction (a reader sees each posting exactly once at any time), then drop them."""
        with self.engine.connect() as connection:
            merging = connection.execute(
                select(ImageDedupSegment.id, ImageDedupSegment.merged_into).where(
                    ImageDedupSegment.method == self.method,
                    ImageDedupSegment.merged_into.is_not(None),
                )
            ).all()
        targets: dict[int, list[int]] = {}
        for source, target in merging:
            if target is not None:
                targets.setdefault(int(target), []).append(int(source))
        for target, sources in targets.items():
            with self.engine.connect() as connection:
                buckets = (
                    connection.execute(
                        select(ImageDedupPosting.bucket)
                        .where(
                            ImageDedupPosting.method == self.method,
                            ImageDedupPosting.segment_id.in_(sources),
                        )
                        .distinct()
                        .order_by(ImageDedupPosting.bucket)
                    )
                    .scalars()
                    .all()
                )
            for bucket in buckets:
                with self.engine.begin() as connection:
                    connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
                    rows = connection.execute(
                        select(ImageDedupPosting.segment_id, ImageDedupPosting.data).where(
                            ImageDedupPosting.method == self.method,
                            ImageDedupPosting.bucket == bucket,
                            ImageDedupPosting.segment_id.in_(sources),
                        )
                    ).all()
                    if not rows:
                        continue
                    parts = [decode(bytes(row.data), bucket) for row in rows]
                    tokens = np.concatenate([np.repeat(p.tokens, np.diff(p.bounds)) for p in parts])
                    tokens, owners = _sorted(tokens, np.concatenate([p.image_ids for p in parts]))
                    connection.execute(
                        delete(ImageDedupPosting).where(
                            ImageDedupPosting.method == self.method,
                            ImageDedupPosting.bucket == bucket,
                            ImageDedupPosting.segment_id.in_(sources),
                        )
                    )
                    self._write_rows(connection, target, [(bucket, tokens, owners)])
            with self.engine.begin() as connection:
                connection.execute(
                    delete(ImageDedupSegment).where(ImageDedupSegment.id.in_(sources))
                )
        return len(merging)

    # -- reading --

    def segments(self) -> list[tuple[int, int, int]]:
        """(id, images, postings) of the live segments (not being merged away)."""
        with self.engine.connect() as connection:
            return self._live(connection)

    def _live(self, connection: Connection) -> list[tuple[int, int, int]]:
        return [
            (int(i), int(n), int(p))
            for i, n, p in connection.execute(
                select(ImageDedupSegment.id, ImageDedupSegment.images, ImageDedupSegment.postings)
                .where(
                    ImageDedupSegment.method == self.method,
                    ImageDedupSegment.merged_into.is_(None),
                )
                .order_by(ImageDedupSegment.id)
            ).all()
        ]

    def stored_images(self) -> int:
        """Images the store covers (what `TokenIndex.size` would be)."""
        return sum(n for _i, n, _p in self.segments())

    def indexed_images(self) -> int:
        with self.engine.connect() as connection:
            return self._indexed(connection)

    def _indexed(self, connection: Connection) -> int:
        return int(
            connection.execute(
                select(func.count()).where(
                    ImageDedupFeatures.method == self.method,
                    ImageDedupFeatures.indexed_at.is_not(None),
                )
            ).scalar_one()
        )

    def size_bytes(self) -> int:
        """Disk used by the store (both tables, their indexes and TOAST)."""
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    text(
                        "SELECT pg_total_relation_size('image_dedup_postings') "
                        "+ pg_total_relation_size('image_dedup_segments')"
                    )
                ).scalar_one()
            )

    def _bucket_rows(self, buckets: Sequence[int]) -> Iterator[tuple[int, list[bytes]]]:
        """(bucket, the data of each of its rows) for these buckets, in bucket order, streamed."""
        wanted = sorted(set(int(b) for b in buckets))
        if not wanted:
            return
        with self.engine.connect() as connection:
            result = connection.execution_options(stream_results=True, yield_per=64).execute(
                select(ImageDedupPosting.bucket, ImageDedupPosting.data)
                .where(
                    ImageDedupPosting.method == self.method,
                    ImageDedupPosting.bucket.in_(wanted),
                )
                .order_by(ImageDedupPosting.bucket, ImageDedupPosting.segment_id)
            )
            current, blobs = -1, []
            for bucket, data in result:
                if bucket != current and blobs:
                    yield current, blobs
                    blobs = []
                current = bucket
                blobs.append(bytes(data))
            if blobs:
                yield current, blobs

    def candidates(
        self,
        queries: Sequence[tuple[int, np.ndarray, np.ndarray]],
        *,
        top_k: int,
        min_shared: int,
        max_postings: int | None = None,
        stored: int | None = None,
    ) -> dict[int, list[Candidate]]:
        """Up to `top_k` candidates of each query (image id, upright tokens, mirrored tokens),
        best first, as `TokenIndex.candidates` over the stored images (the query itself left
        out). `max_postings` None: max(64, stored images / 1000).

        One pass over the store usually serves the whole batch. When the (query, image) counts
        outgrow `PAIR_LIMIT`, the pass keeps counting for the first queries only and learns
        every query's posting volume; the rest are looked up again in as many passes as their
        volumes need."""
        if stored is None:
            stored = self.stored_images()
        if len(queries) > QUERIES_PER_LOOKUP:
            result = {}
            for start in range(0, len(queries), QUERIES_PER_LOOKUP):
                result.update(
                    self.candidates(
                        queries[start : start + QUERIES_PER_LOOKUP],
                        top_k=top_k,
                        min_shared=min_shared,
                        max_postings=max_postings,
                        stored=stored,
                    )
                )
            return result
        if any(len(q[1]) > COUNT_MASK or len(q[2]) > COUNT_MASK for q in queries):
            raise ValueError(f"a query has more than {COUNT_MASK} tokens")
        limit = max_postings if max_postings is not None else max(64, stored // 1000)
        query_ids = np.array([q[0] for q in queries], dtype=np.int64)
        result: dict[int, list[Candidate]] = {int(i): [] for i in query_ids}
        # Query side: (key = query position * 2 + mirrored, token), sorted by token.
        keys, tokens = [], []
        for position, (_image_id, upright, mirrored) in enumerate(queries):
            for side, side_tokens in enumerate((upright, mirrored)):
                side_tokens = np.asarray(side_tokens, dtype=np.int64)
                keys.append(np.full(len(side_tokens), 2 * position + side, np.int64))
                tokens.append(side_tokens)
        if not queries or not sum(len(t) for t in tokens):
            return result
        all_keys, all_tokens = np.concatenate(keys), np.concatenate(tokens)
        del keys, tokens
        order = np.argsort(all_tokens, kind="stable")
        all_keys, all_tokens = all_keys[order], all_tokens[order]
        todo = [np.arange(len(queries))]
        while todo:
            positions = todo.pop(0)
            wanted = np.zeros(len(queries), bool)
            wanted[positions] = True
            chosen = wanted[all_keys >> 1]
            done, pair_keys, shared, volumes = self._pass(
                all_keys[chosen], all_tokens[chosen], limit, positions, len(queries)
            )
            for image_id, found in _top(
                query_ids, pair_keys, shared, top_k=top_k, min_shared=min_shared
            ).items():
                if found:
                    result[image_id] = found
            rest = positions[positions >= done]
            # The rest in groups whose postings fit the limit (at least one query a group).
            group: list[int] = []
            total = 0
            for position in rest.tolist():
                if group and total + volumes[position] > PAIR_LIMIT:
                    todo.append(np.array(group))
                    group, total = [], 0
                group.append(position)
                total += int(volumes[position])
            if group:
                todo.append(np.array(group))
        return result

    def _pass(
        self,
        query_keys: np.ndarray,
        query_tokens: np.ndarray,
        limit: int,
        positions: np.ndarray,
        queries: int,
    ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """One pass over the buckets the query tokens fall in: (the first query position NOT
        counted in full, the (query key << 32 | image id) keys and their shared-token counts of
        the queries before it, every query's posting volume)."""
        buckets = query_tokens >> OFFSET_BITS
        cuts = np.searchsorted(buckets, np.arange(BUCKETS + 1))
        volumes = np.zeros(queries, np.int64)
        counter = _PairCounter(int(positions.min()), queries)
        for bucket, blobs in self._bucket_rows(np.unique(buckets).tolist()):
            lo, hi = cuts[bucket], cuts[bucket + 1]
            bucket_tokens, bucket_keys = query_tokens[lo:hi], query_keys[lo:hi]
            distinct, inverse = np.unique(bucket_tokens, return_inverse=True)
            held = np.zeros(len(distinct), np.int64)  # images holding each token, all segments
            found = []
            for blob in blobs:
                part = decode(blob, bucket)
                last = len(part.tokens) - 1
                at = np.minimum(np.searchsorted(part.tokens, distinct), max(last, 0))
                hit = part.tokens[at] == distinct if last >= 0 else np.zeros(len(distinct), bool)
                counts = np.where(hit, part.bounds[at + 1] - part.bounds[at], 0)
                held += counts
                found.append((part, at, counts))
            usable = (held > 0) & (held <= limit)
            volumes += np.bincount(
                bucket_keys >> 1,
                weights=np.where(usable, held, 0)[inverse],
                minlength=len(volumes),
            ).astype(np.int64)
            for part, at, counts in found:
                entries = np.flatnonzero(
                    usable[inverse] & (counts[inverse] > 0) & (bucket_keys >> 1 < counter.done)
                )
                if not len(entries):
                    continue
                starts = part.bounds[at[inverse[entries]]]
                lengths = counts[inverse[entries]]
                offsets = np.repeat(
                    starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths
                )
                owners = part.image_ids[offsets + np.arange(lengths.sum())]
                counter.add((np.repeat(bucket_keys[entries], lengths) << 32) | owners)
        pair_keys, shared = counter.totals()
        return counter.done, pair_keys, shared, volumes


class _PairCounter:
    """Shared-token counts per pair (query key << 32 | image id), kept as one sorted int64
    array of pair << COUNT_BITS | count (8 bytes a pair) and summed up every PAIR_BATCH new
    pairs. Past PAIR_LIMIT counted pairs it stops counting the last queries (`done`: the first
    query position no longer counted) and drops what it had of them."""

    def __init__(self, first: int, end: int) -> None:
        self.first = first  # always counted in full, so that every pass finishes one query
        self.packed = np.zeros(0, np.int64)
        self.pending: list[np.ndarray] = []
        self.size = 0
        self.done = end

    def add(self, keys: np.ndarray) -> None:
        self.pending.append(keys)
        self.size += len(keys)
        if self.size >= PAIR_BATCH:
            self._fold()

    def _fold(self) -> None:
        if not self.pending:
            return
        raw = np.concatenate(self.pending)
        self.pending, self.size = [], 0
        raw.sort()
        starts = np.flatnonzero(np.concatenate(([True], raw[1:] != raw[:-1])))
        new = (raw[starts] << COUNT_BITS) | np.diff(np.append(starts, len(raw)))
        del raw, starts
        # Pairs counted already get the new counts added; the others are merged in by position
        # (both lists are sorted), without sorting everything again.
        at = np.searchsorted(self.packed, new & ~COUNT_MASK)
        same = np.zeros(len(new), bool)
        inside = at < len(self.packed)
        same[inside] = (self.packed[at[inside]] >> COUNT_BITS) == (new[inside] >> COUNT_BITS)
        self.packed[at[same]] += new[same] & COUNT_MASK
        fresh, at = new[~same], at[~same]
        del new, same, inside
        if len(fresh):
            merged = np.empty(len(self.packed) + len(fresh), np.int64)
            is_fresh = np.zeros(len(merged), bool)
            is_fresh[at + np.arange(len(fresh))] = True
            merged[is_fresh] = fresh
            merged[~is_fresh] = self.packed
            self.packed = merged
            del merged, is_fresh
        if len(self.packed) > PAIR_LIMIT:
            # Keep the first queries holding about half the limit; the rest start again later.
            position_shift = COUNT_BITS + 33
            per_query = np.bincount(self.packed >> position_shift)
            keep = int(np.searchsorted(np.cumsum(per_query), PAIR_LIMIT // 2, side="right"))
            self.done = max(self.first + 1, min(self.done, keep))
            self.packed = self.packed[
                : int(np.searchsorted(self.packed, self.done << position_shift))
            ]

    def totals(self) -> tuple[np.ndarray, np.ndarray]:
        self._fold()
        return self.packed >> COUNT_BITS, self.packed & COUNT_MASK


def _top(
    query_ids: np.ndarray, pair_keys: np.ndarray, shared: np.ndarray, *, top_k: int, min_shared: int
) -> dict[int, list[Candidate]]:
    """The `TokenIndex.candidates` choice for every query at once: pairs sharing at least
    `min_shared` tokens, not the query itself; per stored image its best orientation (upright
    on a tie); the `top_k` images by shared tokens, then lower image id."""
    result: dict[int, list[Candidate]] = {int(i): [] for i in query_ids}
    positions = (pair_keys >> 33).astype(np.int64)
    mirrored = ((pair_keys >> 32) & 1).astype(bool)
    images = pair_keys & 0xFFFFFFFF
    keep = (shared >= min_shared) & (images != query_ids[positions])
    positions, mirrored, images, shared = (
        positions[keep],
        mirrored[keep],
        images[keep],
        shared[keep],
    )
    order = np.lexsort((mirrored, images, -shared, positions))
    positions, mirrored, images, shared = (
        positions[order],
        mirrored[order],
        images[order],
        shared[order],
    )
    # First row per (query, image): its best orientation. Rows stay ordered by
    # (query, -shared, image), so each query's first top_k rows are its candidates.
    pair = positions << 32 | images
    _unique, first = np.unique(pair, return_index=True)
    first = np.sort(first)
    positions, mirrored, images, shared = (
        positions[first],
        mirrored[first],
        images[first],
        shared[first],
    )
    group_start = np.searchsorted(positions, positions, side="left")
    rank = np.arange(len(positions)) - group_start
    for i in np.flatnonzero(rank < top_k):
        result[int(query_ids[positions[i]])].append(
            Candidate(int(images[i]), int(shared[i]), bool(mirrored[i]))
        )
    return result
