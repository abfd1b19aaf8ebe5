"""Near-duplicate images: a Hamming multi-index over 64-bit hashes (index), an ORB + RANSAC
method with token candidates (features, matcher), linking pairs into the database (linking)
and reading them back: groups, label conflicts, one image (reports).

Importing this package is cheap; numpy, OpenCV and SQLAlchemy load when a function runs.

The one entry point for linking, called by ingest after its rows are committed and by
`skinctl dedup scan`:

    link(engine, storage, image_ids=new_image_ids, max_distance=N) -> LinkSummary

It reads the new images' bytes from `storage`, stores their features, links them against all
stored images, and also picks up any image never fully linked before (an interrupted run).
`max_distance` (0..15, default 8) is the pHash radius of the extra candidate stage; pairs the
geometric check accepts are recorded whatever their pHash distance, which goes in `distance`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skinctl.dedup.linking import LinkSummary


def link(engine: Any, storage: Any, **options: Any) -> LinkSummary:
    """`skinctl.dedup.linking.link` (imported when called)."""
    from skinctl.dedup.linking import link as link_images

    return link_images(engine, storage, **options)


__all__ = ["link"]
