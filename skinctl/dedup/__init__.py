"""Near-duplicate linking (minimal version from the ingest branch).

The dedup engineer's module replaces this file at merge; it keeps the same entry point:
`link_near_duplicates(engine, storage, *, image_ids=None, max_distance=None) -> dict`.
This version compares 64-bit pHashes by Hamming distance with numpy (XOR + popcount) between
the given images and every stored image, and records pairs as ImageDuplicate rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from skinctl.storage import Storage

DEFAULT_MAX_DISTANCE = 8
METHOD = "phash"
QUERY_CHUNK = 256  # rows of the (query x stored) distance matrix computed at once


def _popcount64(values):  # noqa: ANN001, ANN202 - numpy arrays
    import numpy as np

    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(values)
    as_bytes = values.view(np.uint8).reshape(*values.shape, 8)
    return np.unpackbits(as_bytes, axis=-1).sum(axis=-1)


def link_near_duplicates(
    engine: Engine,
    storage: Storage,
    *,
    image_ids: list[int] | None = None,
    max_distance: int | None = None,
) -> dict[str, Any]:
    """Link each of `image_ids` (default: every image) to every stored image whose pHash is within
    `max_distance` bits. Idempotent: existing pairs are kept (ON CONFLICT DO NOTHING)."""
    import numpy as np
    from sqlalchemy import select
    from sqlalchemy.dialects.postgresql import insert

    from skinctl.db.models import ImageDuplicate, TrainingImage

    distance_limit = DEFAULT_MAX_DISTANCE if max_distance is None else max_distance
    with engine.connect() as connection:
        stored = connection.execute(
            select(TrainingImage.id, TrainingImage.phash).where(TrainingImage.phash.is_not(None))
        ).all()
    if not stored or (image_ids is not None and not image_ids):
        return {"pairs": 0, "new_pairs": 0, "method": METHOD, "max_distance": distance_limit}
    ids = np.fromiter((row[0] for row in stored), dtype=np.int64, count=len(stored))
    hashes = np.fromiter((row[1] for row in stored), dtype=np.int64, count=len(stored)).view(np.uint64)
    if image_ids is None:
        query_positions = np.arange(len(ids))
    else:
        query_positions = np.nonzero(np.isin(ids, np.asarray(image_ids, dtype=np.int64)))[0]

    pairs: dict[tuple[int, int], int] = {}
    for start in range(0, len(query_positions), QUERY_CHUNK):
        chunk = query_positions[start : start + QUERY_CHUNK]
        distances = _popcount64(hashes[chunk, None] ^ hashes[None, :])
        rows, columns = np.nonzero(distances <= distance_limit)
        for row, column in zip(rows.tolist(), columns.tolist(), strict=True):
            a, b = int(ids[chunk[row]]), int(ids[column])
            if a != b:
                pairs[(min(a, b), max(a, b))] = int(distances[row, column])

    new_pairs = 0
    if pairs:
        rows = [
            {"image_id_a": a, "image_id_b": b, "distance": d, "method": METHOD}
            for (a, b), d in sorted(pairs.items())
        ]
        with engine.begin() as connection:
            for start in range(0, len(rows), 1000):
                result = connection.execute(
                    insert(ImageDuplicate)
                    .values(rows[start : start + 1000])
                    .on_conflict_do_nothing(constraint="uq_image_duplicates_pair")
                    .returning(ImageDuplicate.id)
                )
                new_pairs += len(result.all())
    return {"pairs": len(pairs), "new_pairs": new_pairs, "method": METHOD, "max_distance": distance_limit}
