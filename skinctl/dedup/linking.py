"""Near-duplicate linking: find pairs among the stored images and record them.

`link` is the one entry point: ingest calls it after committing new images (for those
images), and `skinctl dedup scan` calls it over what is stored. Pairs go to `image_duplicates`
(image_id_a < image_id_b, distance = the pHash Hamming distance of the two, method) with
ON CONFLICT DO NOTHING, so re-running is harmless. Nothing is ever deleted.

The method (`skinctl.dedup.matcher`, recorded as `METHOD`): per-image ORB features (kept in
`image_dedup_features`, computed from the stored bytes when missing or of an older feature
method; the candidate tokens are derived from the stored descriptors); candidates are the
images sharing the most descriptor tokens (looked up in the token index kept in the database,
`skinctl.dedup.postings`, which each pass first brings up to date), plus the images within
`max_distance` pHash bits (found with the multi-index); every candidate pair is checked
geometrically.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Engine, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert

from skinctl.db.models import ImageDedupFeatures, ImageDuplicate, TrainingImage
from skinctl.dedup import features as feature_lib
from skinctl.dedup.index import MAX_RADIUS, MultiIndex, to_unsigned
from skinctl.dedup.matcher import (
    DEFAULT_METHOD,
    DEFAULT_PARAMS,
    METHOD,
    MatchParams,
    query_tokens,
    verify,
)
from skinctl.dedup.postings import PostingStore
from skinctl.engines import EngineKind, open_engine
from skinctl.errors import NotFound, StorageError, UsageError
from skinctl.progress import ReportProgress, no_progress

if TYPE_CHECKING:
    from skinctl.engines.base import ComputeEngine

DEFAULT_PHASH_DISTANCE = 8  # pHash neighbours within this radius are verified candidates too
FEATURE_SPEC = DEFAULT_METHOD.features
FEATURE_BATCH = 256  # images decoded and written per transaction
VERIFY_BATCH = 2_000  # candidate pairs verified and written per transaction
QUERY_BATCH = 2_000  # images looked up per pass over the token posting store


@dataclass(frozen=True)
class UnreadableImage:
    image_id: int
    reason: str


@dataclass(frozen=True)
class LinkSummary:
    """What one linking pass did (the `dedup scan --json` document)."""

    method: str  # the pair check recorded on every pair
    feature_method: str
    max_distance: int  # pHash radius of the extra candidate stage
    images: int  # images looked up (queries)
    stored_images: int
    pairs: int  # new pairs recorded
    candidates: int
    verified: int  # candidate pairs the geometric check accepted (new or not)
    features_computed: int
    unreadable: list[UnreadableImage]
    already_linked: int  # candidate pairs recorded by an earlier pass
    seconds: float


def _check_distance(max_distance: int | None) -> int:
    radius = DEFAULT_PHASH_DISTANCE if max_distance is None else int(max_distance)
    if not 0 <= radius <= MAX_RADIUS:
        raise UsageError(
            f"max distance {radius} is out of range.",
            hint=f"Use a pHash Hamming distance between 0 and {MAX_RADIUS} (default {DEFAULT_PHASH_DISTANCE}).",
        )
    return radius


def link(
    engine: Engine,
    storage: Any,
    *,
    image_ids: Sequence[int] | None = None,
    max_distance: int | None = None,
    dataset: str | None = None,
    params: MatchParams = DEFAULT_PARAMS,
    workers: int | None = None,
    full: bool = True,
    report: ReportProgress = no_progress,
    compute: ComputeEngine | None = None,
) -> LinkSummary:
    """Link near duplicates and record them in `image_duplicates` (idempotently).

    `image_ids`: link these (new) images against every stored image; None: every image
    (`full=True`) or only those not linked yet (`full=False`: each image was compared with
    everything stored when it was linked, so that covers every pair). Images never fully
    linked (an interrupted pass) are always looked up too. `dataset` limits the lookups to one
    dataset's images; `workers` processes (default: the core count) compute features and
    verify pairs; `compute` (an ingest's engine: a Ray cluster ...) computes the features
    instead. `report` gets the stages features, candidates and verify."""
    started = time.perf_counter()
    radius = _check_distance(max_distance)
    workers = workers or os.cpu_count() or 1
    with engine.connect() as connection:
        images = connection.execute(
            select(
                TrainingImage.id,
                TrainingImage.image_url,
                TrainingImage.phash,
                TrainingImage.dataset_source,
            ).order_by(TrainingImage.id)
        ).all()
    known = {row.id: row for row in images}
    if image_ids is not None:
        wanted = sorted(set(int(i) for i in image_ids))
        unknown = [i for i in wanted if i not in known]
        if unknown:
            raise NotFound(
                f"No image with id {', '.join(map(str, unknown[:5]))}{' ...' if len(unknown) > 5 else ''}.",
                hint="Pass ids of rows in ml_training_images.",
            )
    else:
        wanted = None
    if dataset is not None:
        in_dataset = [row.id for row in images if row.dataset_source == dataset]
        if wanted is None and not full:
            wanted = []  # only the dataset's images not linked yet (added below)
        else:
            wanted = in_dataset if wanted is None else sorted(set(wanted) & set(in_dataset))

    def summary(
        *,
        queries: int = 0,
        candidates: int = 0,
        already_linked: int = 0,
        verified: int = 0,
        pairs: int = 0,
    ) -> LinkSummary:
        return LinkSummary(
            method=METHOD,
            feature_method=FEATURE_SPEC.method,
            max_distance=radius,
            images=queries,
            stored_images=len(images),
            pairs=pairs,
            candidates=candidates,
            verified=verified,
            features_computed=len(computed_ids),
            unreadable=unreadable,
            already_linked=already_linked,
            seconds=round(time.perf_counter() - started, 3),
        )

    computed_ids, unreadable = _ensure_features(
        engine, storage, images, compute or open_engine(EngineKind.local, workers=workers), report
    )
    # Images never fully linked (new, or an earlier run was interrupted) are always looked up
    # too, so linking catches up by itself.
    with engine.connect() as connection:
        pending = set(
            connection.execute(
                select(ImageDedupFeatures.image_id).where(ImageDedupFeatures.linked_at.is_(None))
            ).scalars()
        )
    if wanted is None and full:
        queries = [row.id for row in images]
    elif wanted is None:
        queries = sorted(pending)
    else:
        queries = sorted(
            set(wanted)
            | {i for i in pending if dataset is None or known[i].dataset_source == dataset}
        )
    if not queries:
        return summary()

    candidates = _candidate_pairs(engine, images, queries, radius, params, report)
    with engine.connect() as connection:
        existing = _existing_pairs(connection, candidates)
    to_verify = sorted(pair for pair in candidates if pair not in existing)

    phash = {row.id: row.phash for row in images}
    verified = inserted = 0
    pool = ProcessPoolExecutor(workers) if workers > 1 and len(to_verify) > 200 else None
    try:
        for start in range(0, len(to_verify), VERIFY_BATCH):
            batch = to_verify[start : start + VERIFY_BATCH]
            with engine.connect() as connection:
                loaded = _load_features(connection, {i for pair in batch for i in pair})
            tasks = [(a, b, candidates[(a, b)]) for a, b in batch if a in loaded and b in loaded]
            # Each worker gets a slice of the pairs and only the features that slice needs.
            slices = [tasks[k::workers] for k in range(workers)] if pool else [tasks]
            payloads = [
                (chunk, {i: loaded[i] for a, b, _m in chunk for i in (a, b)}, params)
                for chunk in slices
                if chunk
            ]
            results = pool.map(_verify_chunk, payloads) if pool else map(_verify_chunk, payloads)
            rows = [
                {
                    "image_id_a": a,
                    "image_id_b": b,
                    "distance": _phash_distance(phash[a], phash[b]),
                    "method": METHOD,
                }
                for found in results
                for a, b in found
            ]
            verified += len(rows)
            if rows:
                # One transaction per batch: an interrupted scan keeps what it recorded.
                with engine.begin() as connection:
                    result = connection.execute(
                        insert(ImageDuplicate)
                        .values(rows)
                        .on_conflict_do_nothing()
                        .returning(ImageDuplicate.id)
                    )
                    inserted += len(result.all())
            report("verify", min(start + VERIFY_BATCH, len(to_verify)), len(to_verify))
    finally:
        if pool is not None:
            pool.shutdown()
    with engine.begin() as connection:
        for start in range(0, len(queries), 10_000):
            connection.execute(
                update(ImageDedupFeatures)
                .where(ImageDedupFeatures.image_id.in_(queries[start : start + 10_000]))
                .values(linked_at=func.now())
            )
    return summary(
        queries=len(queries),
        candidates=len(candidates),
        already_linked=len(candidates) - len(to_verify),
        verified=verified,
        pairs=inserted,
    )


def _verify_chunk(payload) -> list[tuple[int, int]]:  # noqa: ANN001
    """The verified pairs of one slice (runs in a worker process or inline)."""
    tasks, loaded, params = payload
    found = []
    for a, b, mirrored in tasks:
        match = verify(loaded[a], loaded[b], params, mirrored)
        if match is None and mirrored is not None:
            match = verify(loaded[a], loaded[b], params, not mirrored)
        if match is not None:
            found.append((a, b))
    return found


def _phash_distance(a: int | None, b: int | None) -> int:
    if a is None or b is None:
        return 64
    return int(np.bitwise_count(to_unsigned([a])[0] ^ to_unsigned([b])[0]))


def _existing_pairs(connection, pairs: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:  # noqa: ANN001
    pairs = list(pairs)
    existing: set[tuple[int, int]] = set()
    for start in range(0, len(pairs), 5_000):
        chunk = pairs[start : start + 5_000]
        existing.update(
            (a, b)
            for a, b in connection.execute(
                select(ImageDuplicate.image_id_a, ImageDuplicate.image_id_b).where(
                    tuple_(ImageDuplicate.image_id_a, ImageDuplicate.image_id_b).in_(chunk)
                )
            ).all()
        )
    return existing


# --- features --------------------------------------------------------------------------------


def _ensure_features(  # noqa: ANN202 - (ids computed, unreadable images)
    engine: Engine,
    storage: Any,
    images: Sequence[Any],
    compute: ComputeEngine,
    report: ReportProgress,
):
    """Compute and store the features of every image that has none (or an older method's), on
    `compute`'s workers: each reads the images from the store itself (a Ray worker on another
    machine too). Returns (ids computed now, unreadable images with the reason)."""
    with engine.connect() as connection:
        current = set(
            connection.execute(
                select(ImageDedupFeatures.image_id).where(
                    ImageDedupFeatures.method == FEATURE_SPEC.method
                )
            ).scalars()
        )
    missing = [row for row in images if row.id not in current]
    unreadable: list[UnreadableImage] = []
    computed: list[int] = []
    rows: list[dict] = []

    def write() -> None:
        with engine.begin() as connection:
            statement = insert(ImageDedupFeatures).values(rows)
            connection.execute(
                statement.on_conflict_do_update(
                    index_elements=[ImageDedupFeatures.image_id],
                    set_={
                        **{c: statement.excluded[c] for c in rows[0] if c != "image_id"},
                        "linked_at": None,
                        "indexed_at": None,
                    },
                )
            )
        computed.extend(row["image_id"] for row in rows)
        rows.clear()

    if compute.name == "local" and len(missing) <= FEATURE_BATCH:
        # a few images: here, not in a pool forked for them (forking a process that runs
        # threads, as a test session does, can hang the child on a lock it inherited held)
        compute = open_engine(EngineKind.local, workers=1)
    results = compute.map_ordered(
        _stored_features,
        [row.image_url for row in missing],
        initializer=_init_feature_worker,
        initargs=(storage.base_url,),
    )
    for done, (row, result) in enumerate(zip(missing, results, strict=True), start=1):
        if isinstance(result, str):
            unreadable.append(UnreadableImage(row.id, result))
        else:
            rows.append(feature_lib.to_row(row.id, result, FEATURE_SPEC))
        if rows and (len(rows) >= FEATURE_BATCH or done == len(missing)):
            write()  # one transaction per batch: an interrupted pass keeps what it computed
        if done % FEATURE_BATCH == 0 or done == len(missing):
            report("features", done, len(missing))
    return computed, unreadable


_feature_storage: Any = None


def _init_feature_worker(storage_url: str) -> None:
    """Once per worker (local pool or Ray): the image store to read from."""
    global _feature_storage
    from skinctl.storage import open_storage

    _feature_storage = open_storage(storage_url)


def _stored_features(url: str):  # noqa: ANN202 - ImageFeatures or why not (text)
    """One stored image's features (runs in a worker)."""
    try:
        data = _feature_storage.get(_feature_storage.key_for(url))
    except (StorageError, ValueError, OSError) as error:
        return f"cannot read {url}: {error}"
    result = _features_or_error(data)
    return f"cannot decode: {result}" if isinstance(result, str) else result


def _features_or_error(data: bytes):  # noqa: ANN202 - ImageFeatures or the error text
    try:
        return feature_lib.features_from_bytes(data, FEATURE_SPEC)
    except Exception as error:  # noqa: BLE001 - any decoder failure is reported per image
        return f"{type(error).__name__}: {error}"


def _load_features(connection, image_ids: Iterable[int]) -> dict[int, feature_lib.ImageFeatures]:  # noqa: ANN001
    ids = sorted(image_ids)
    loaded = {}
    for start in range(0, len(ids), 1_000):
        for row in connection.execute(
            select(*ImageDedupFeatures.__table__.columns).where(
                ImageDedupFeatures.image_id.in_(ids[start : start + 1_000]),
                ImageDedupFeatures.method == FEATURE_SPEC.method,
            )
        ):
            loaded[row.image_id] = feature_lib.from_row(row)
    return loaded


# --- candidates ------------------------------------------------------------------------------


def _candidate_pairs(
    engine: Engine,
    images: Sequence[Any],
    queries: list[int],
    radius: int,
    params: MatchParams,
    report: ReportProgress,
) -> dict[tuple[int, int], bool | None]:
    """Candidate pairs (a < b) -> the orientation to try first (None: both)."""
    # The token postings live in the database (`postings.PostingStore`): bring them up to date
    # with the stored features, then look the queries up in batches, one pass over the store
    # per batch, so only one bucket of postings and one batch's counts are ever in memory.
    store = PostingStore(engine, FEATURE_SPEC.method)
    store.sync()
    stored = store.stored_images()
    pairs: dict[tuple[int, int], bool | None] = {}

    def add(a: int, b: int, mirrored: bool | None) -> None:
        pair = (min(a, b), max(a, b))
        if pair in pairs and pairs[pair] != mirrored:
            pairs[pair] = None
        else:
            pairs.setdefault(pair, mirrored)

    for start in range(0, len(queries), QUERY_BATCH):
        batch: list[tuple[int, np.ndarray, np.ndarray]] = []
        for load_start in range(start, min(start + QUERY_BATCH, len(queries)), 1_000):
            with engine.connect() as connection:
                loaded = _load_features(
                    connection, queries[load_start : min(load_start + 1_000, start + QUERY_BATCH)]
                )
            batch += [(i, *query_tokens(loaded[i])) for i in sorted(loaded)]
        found = store.candidates(
            batch,
            top_k=params.top_k,
            min_shared=params.min_shared,
            max_postings=params.max_postings,
            stored=stored,
        )
        for image_id, chosen in found.items():
            for candidate in chosen:
                add(image_id, candidate.image_id, candidate.mirrored)
        report("candidates", min(start + QUERY_BATCH, len(queries)), len(queries))

    # pHash neighbours: cheap, and they catch copies with few keypoints (flat images).
    hashed = [(row.id, row.phash) for row in images if row.phash is not None]
    if hashed:
        hash_ids = np.array([h[0] for h in hashed], dtype=np.int64)
        hash_index = MultiIndex(to_unsigned([h[1] for h in hashed]), radius)
        if len(queries) == len(images):
            for i, j, _d in hash_index.all_pairs():
                add(int(hash_ids[i]), int(hash_ids[j]), None)
        else:
            phash = {row.id: row.phash for row in images}
            for image_id in queries:
                if phash.get(image_id) is None:
                    continue
                found, _distances = hash_index.query(phash[image_id])
                for other in hash_ids[found].tolist():
                    if other != image_id:
                        add(image_id, other, None)
    return pairs
