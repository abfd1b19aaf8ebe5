"""Exact Hamming-radius search over 64-bit hashes with a multi-index (numpy only).

Pigeonhole: split the 64 bits into r+1 disjoint blocks. Two hashes at Hamming distance <= r
differ in at most r bits, so at least one block is identical. Each block is indexed by
sorting its values; a query looks up its own block values (binary search) and checks the
full distance of only those candidates. The result is exactly what brute force returns.

Hashes are stored as uint64; the database keeps them as signed BIGINT (`to_unsigned` converts).
"""

from __future__ import annotations

import numpy as np

MAX_RADIUS = 15  # more blocks than this leaves blocks of ~4 bits: no better than brute force


def to_unsigned(values: np.ndarray | list[int]) -> np.ndarray:
    """Signed BIGINT hashes (as stored) to uint64, bit for bit."""
    return np.asarray(values, dtype=np.int64).view(np.uint64)


def block_spans(radius: int) -> list[tuple[int, int]]:
    """(shift, width) of each of the radius+1 blocks covering the 64 bits."""
    count = radius + 1
    widths = [64 // count + (1 if i < 64 % count else 0) for i in range(count)]
    spans, shift = [], 0
    for width in widths:
        spans.append((shift, width))
        shift += width
    return spans


def hamming_to(codes: np.ndarray, query: int | np.uint64) -> np.ndarray:
    return np.bitwise_count(codes ^ np.uint64(query)).astype(np.int8)


def brute_force_query(codes: np.ndarray, query: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """The baseline: distance to every stored hash. Returns (ids, distances), ids ascending."""
    distances = hamming_to(codes, query)
    ids = np.flatnonzero(distances <= radius)
    return ids, distances[ids]


def brute_force_pairs(codes: np.ndarray, radius: int, chunk: int = 2048) -> np.ndarray:
    """The baseline for all pairs: rows (i, j, distance) with i < j, sorted."""
    found = []
    for start in range(0, len(codes), chunk):
        block = codes[start : start + chunk]
        distances = np.bitwise_count(block[:, None] ^ codes[None, :])
        rows, cols = np.nonzero(distances <= radius)
        rows = rows + start
        keep = rows < cols
        found.append(
            np.stack([rows[keep], cols[keep], distances[rows[keep] - start, cols[keep]]], axis=1)
        )
    return _sorted_pairs(np.concatenate(found) if found else np.zeros((0, 3), np.int64))


def _sorted_pairs(pairs: np.ndarray) -> np.ndarray:
    pairs = pairs.astype(np.int64, copy=False).reshape(-1, 3)
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    return pairs[order]


class MultiIndex:
    """Hashes within Hamming distance <= `radius` of a query, or all such pairs, exactly.

    `codes` are uint64 (use `to_unsigned` on BIGINT values); ids are positions in `codes`.
    Memory: the codes plus, per block, the codes in block order and an int32 permutation
    (~12 x (radius + 1) bytes per hash: ~84 MB per million at radius 6).
    """

    def __init__(self, codes: np.ndarray, radius: int) -> None:
        if not 0 <= radius <= MAX_RADIUS:
            raise ValueError(f"radius must be between 0 and {MAX_RADIUS}, not {radius}")
        self.codes = np.ascontiguousarray(codes, dtype=np.uint64)
        self.radius = radius
        self.spans = block_spans(radius)
        index_type = np.int32 if len(self.codes) < 2**31 else np.int64
        self._orders: list[np.ndarray] = []
        self._sorted_codes: list[np.ndarray] = []  # contiguous candidates: no random gather
        self._bucket_keys: list[np.ndarray] = []  # the distinct block values, ascending
        self._bucket_bounds: list[np.ndarray] = []  # bucket k is [bounds[k], bounds[k+1])
        for shift, width in self.spans:
            keys = self._block(self.codes, shift, width)
            order = np.argsort(keys, kind="stable").astype(index_type)
            sorted_keys = keys[order]
            self._orders.append(order)
            self._sorted_codes.append(self.codes[order])
            starts = (
                np.flatnonzero(np.diff(sorted_keys)) + 1
                if len(sorted_keys)
                else np.zeros(0, np.int64)
            )
            self._bucket_keys.append(
                sorted_keys[np.concatenate(([0], starts))] if len(sorted_keys) else sorted_keys
            )
            self._bucket_bounds.append(
                np.concatenate(([0], starts, [len(sorted_keys)])).astype(np.int64)
            )

    def __len__(self) -> int:
        return len(self.codes)

    @staticmethod
    def _block(codes: np.ndarray, shift: int, width: int) -> np.ndarray:
        mask = np.uint64((1 << width) - 1)
        return (codes >> np.uint64(shift)) & mask

    def query(self, query: int, radius: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, distances) of stored hashes within `radius` (<= the index radius), ids ascending."""
        radius = self.radius if radius is None else radius
        if radius > self.radius:
            raise ValueError(f"this index answers radius <= {self.radius}, not {radius}")
        query = int(query) & 0xFFFFFFFFFFFFFFFF  # a signed BIGINT works too
        q = np.uint64(query)
        ids_parts, distance_parts = [], []
        for (shift, width), bucket_keys, bounds, codes, order in zip(
            self.spans,
            self._bucket_keys,
            self._bucket_bounds,
            self._sorted_codes,
            self._orders,
            strict=True,
        ):
            key = np.uint64((query >> shift) & ((1 << width) - 1))
            bucket = int(np.searchsorted(bucket_keys, key))
            if bucket < len(bucket_keys) and bucket_keys[bucket] == key:
                lo, hi = bounds[bucket], bounds[bucket + 1]
                distances = hamming_to(codes[lo:hi], q)
                hits = np.flatnonzero(distances <= radius)
                if len(hits):
                    ids_parts.append(order[lo + hits])
                    distance_parts.append(distances[hits])
        if not ids_parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int8)
        # A hash agreeing on several blocks is found several times: dedupe the few survivors.
        ids, first = np.unique(np.concatenate(ids_parts), return_index=True)
        return ids.astype(np.int64), np.concatenate(distance_parts)[first]

    def query_many(
        self, queries: np.ndarray, radius: int | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        return [self.query(int(q), radius) for q in np.asarray(queries, dtype=np.uint64)]

    def all_pairs(self, radius: int | None = None, rows_per_step: int = 64) -> np.ndarray:
        """Every pair within `radius`: rows (i, j, distance) with i < j, sorted, each once.

        Per block, hashes with equal block values form a bucket; pairs inside a bucket are the
        candidates. Each bucket is compared in strips of `rows_per_step` rows against the rows
        after them (the upper triangle only, in cache-sized pieces). A pair is kept only by the
        first block on which it agrees, so nothing is reported twice.
        """
        radius = self.radius if radius is None else radius
        if radius > self.radius:
            raise ValueError(f"this index answers radius <= {self.radius}, not {radius}")
        found: list[np.ndarray] = []
        earlier: list[tuple[int, int]] = []
        for (shift, width), bounds, codes, order in zip(
            self.spans, self._bucket_bounds, self._sorted_codes, self._orders, strict=True
        ):
            sizes = np.diff(bounds)
            hits_i, hits_j, hits_d = [], [], []
            for bucket in np.flatnonzero(sizes > 1).tolist():
                lo, hi = int(bounds[bucket]), int(bounds[bucket + 1])
                bucket_codes = codes[lo:hi]
                for top in range(0, hi - lo - 1, rows_per_step):
                    strip = bucket_codes[top : top + rows_per_step]
                    distances = np.bitwise_count(strip[:, None] ^ bucket_codes[None, top:])
                    row, col = np.nonzero(distances <= radius)
                    keep = col > row  # upper triangle: col is relative to `top`, like row
                    if keep.any():
                        row, col = row[keep], col[keep]
                        hits_i.append(lo + top + row)
                        hits_j.append(lo + top + col)
                        hits_d.append(distances[row, col])
            if hits_i:
                i = order[np.concatenate(hits_i)].astype(np.int64)
                j = order[np.concatenate(hits_j)].astype(np.int64)
                d = np.concatenate(hits_d).astype(np.int64)
                if earlier:
                    # Reported already by an earlier block on which the pair also agrees.
                    seen = np.zeros(len(i), dtype=bool)
                    for e_shift, e_width in earlier:
                        seen |= self._block(self.codes[i], e_shift, e_width) == self._block(
                            self.codes[j], e_shift, e_width
                        )
                    i, j, d = i[~seen], j[~seen], d[~seen]
                found.append(np.stack([np.minimum(i, j), np.maximum(i, j), d], axis=1))
            earlier.append((shift, width))
        if not found:
            return np.zeros((0, 3), np.int64)
        return _sorted_pairs(np.concatenate(found))
