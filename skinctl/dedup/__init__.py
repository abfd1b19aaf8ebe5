"""Near-duplicate images: a Hamming multi-index over 64-bit hashes, an ORB + RANSAC method with
token candidates, and the database service that links, groups and finds label conflicts.

Importing this package is cheap; numpy, OpenCV and SQLAlchemy load when a function runs.

Ingest calls, after its rows are committed:

    link_near_duplicates(engine, storage, image_ids=new_image_ids, max_distance=N)

It reads the new images' bytes from `storage`, stores their features, links them against all
stored images, and also picks up any image never fully linked before (an interrupted run).
`max_distance` (0..15, default 8) is the pHash radius of the extra candidate stage; pairs the
geometric check accepts are recorded whatever their pHash distance, which goes in `distance`.
"""

from __future__ import annotations

from typing import Any


def link_near_duplicates(
    engine: Any,
    storage: Any,
    *,
    image_ids: list[int] | None = None,
    max_distance: int | None = None,
    **options: Any,
) -> dict:
    """Link the given (new) images against every stored image (all pairs when `image_ids` is
    None) and record `image_duplicates` rows idempotently. `options`: `workers`, `progress`
    (see `skinctl.dedup.service.link_near_duplicates`)."""
    from skinctl.dedup.service import link_near_duplicates as link

    return link(engine, storage, image_ids=image_ids, max_distance=max_distance, **options)


__all__ = ["link_near_duplicates"]
