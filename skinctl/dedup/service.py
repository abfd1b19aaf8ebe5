"""Near-duplicate links in the database: find and record pairs, list groups and label conflicts.

`link_near_duplicates` is what ingest calls after committing new images, and what
`skinctl dedup scan` calls over everything stored. Pairs go to `image_duplicates`
(image_id_a < image_id_b, distance = the pHash Hamming distance of the two, method) with
ON CONFLICT DO NOTHING, so re-running is harmless. Nothing is ever deleted.

The method (`skinctl.dedup.matcher`, recorded as `METHOD`): per-image ORB features (kept in
`image_dedup_features`, computed from the stored bytes when missing); candidates are the
images sharing the most descriptor tokens, plus the images within `max_distance` pHash bits
(found with the multi-index); every candidate pair is checked geometrically.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert

from skinctl.db.models import (
    ConditionLabel,
    ImageDedupFeatures,
    ImageDuplicate,
    ImageSource,
    TrainingImage,
)
from skinctl.dedup import features as feature_lib
from skinctl.dedup.index import MAX_RADIUS, MultiIndex, to_unsigned
from skinctl.dedup.matcher import (
    DEFAULT_PARAMS,
    METHOD,
    MatchParams,
    TokenIndex,
    query_tokens,
    verify,
)
from skinctl.errors import NotFound, StorageError, UsageError
from skinctl.grouping import UnionFind

DEFAULT_PHASH_DISTANCE = 8  # pHash neighbours within this radius are verified candidates too
FEATURE_BATCH = 256  # images decoded and written per transaction
VERIFY_BATCH = 2_000  # candidate pairs verified and written per transaction

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def _no_progress(_stage: str, _done: int, _total: int) -> None:
    return None


def _check_distance(max_distance: int | None) -> int:
    radius = DEFAULT_PHASH_DISTANCE if max_distance is None else int(max_distance)
    if not 0 <= radius <= MAX_RADIUS:
        raise UsageError(
            f"max distance {radius} is out of range.",
            hint=f"Use a pHash Hamming distance between 0 and {MAX_RADIUS} (default {DEFAULT_PHASH_DISTANCE}).",
        )
    return radius


def link_near_duplicates(
    engine: Engine,
    storage: Any,
    *,
    image_ids: list[int] | None = None,
    max_distance: int | None = None,
    workers: int | None = None,
    progress: Progress = _no_progress,
) -> dict:
    """Link the given (new) images against every stored image, or all pairs when `image_ids`
    is None. Returns counts: {"pairs": new pairs recorded, "method": ..., ...}.
    `progress(stage, done, total)` reports the stages (features, candidates, verify)."""
    return link(
        engine, storage, image_ids=image_ids, max_distance=max_distance,
        workers=workers or os.cpu_count() or 1, progress=progress,
    )


def link(
    engine: Engine,
    storage: Any,
    *,
    image_ids: Sequence[int] | None = None,
    max_distance: int | None = None,
    dataset: str | None = None,
    params: MatchParams = DEFAULT_PARAMS,
    workers: int = 1,
    full: bool = True,
    progress: Progress = _no_progress,
) -> dict:
    """`link_near_duplicates` with the knobs the CLI exposes: `dataset` limits the queries to
    one dataset's images; `workers` processes compute features and verify pairs; with
    `image_ids` None, `full=False` looks up only the images not linked yet (each image was
    compared with everything stored when it was linked, so that covers every pair), while
    `full=True` checks every image again."""
    started = time.perf_counter()
    radius = _check_distance(max_distance)
    with engine.connect() as connection:
        images = connection.execute(
            select(TrainingImage.id, TrainingImage.image_url, TrainingImage.phash, TrainingImage.dataset_source)
            .order_by(TrainingImage.id)
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
    summary: dict[str, Any] = {
        "method": METHOD,
        "feature_method": feature_lib.FEATURE_METHOD,
        "max_distance": radius,
        "images": 0,
        "stored_images": len(images),
        "pairs": 0,
        "candidates": 0,
        "verified": 0,
        "features_computed": 0,
        "unreadable": [],
    }
    computed_ids, unreadable = _ensure_features(engine, storage, images, workers, progress)
    summary["features_computed"] = len(computed_ids)
    summary["unreadable"] = unreadable
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
            set(wanted) | {i for i in pending if dataset is None or known[i].dataset_source == dataset}
        )
    summary["images"] = len(queries)
    if not queries:
        summary["seconds"] = round(time.perf_counter() - started, 3)
        return summary

    candidates = _candidate_pairs(engine, images, queries, radius, params, progress)
    with engine.connect() as connection:
        existing = _existing_pairs(connection, candidates)
    to_verify = sorted(pair for pair in candidates if pair not in existing)
    summary["candidates"] = len(candidates)
    summary["already_linked"] = len(candidates) - len(to_verify)

    phash = {row.id: row.phash for row in images}
    verified = inserted = 0
    pool = ProcessPoolExecutor(workers) if workers > 1 and len(to_verify) > 200 else None
    try:
        for start in range(0, len(to_verify), VERIFY_BATCH):
            batch = to_verify[start:start + VERIFY_BATCH]
            with engine.connect() as connection:
                loaded = _load_features(connection, {i for pair in batch for i in pair})
            tasks = [(a, b, candidates[(a, b)]) for a, b in batch if a in loaded and b in loaded]
            # Each worker gets a slice of the pairs and only the features that slice needs.
            slices = [tasks[k::workers] for k in range(workers)] if pool else [tasks]
            payloads = [
                (chunk, {i: loaded[i] for a, b, _m in chunk for i in (a, b)}, params) for chunk in slices if chunk
            ]
            results = pool.map(_verify_chunk, payloads) if pool else map(_verify_chunk, payloads)
            rows = [
                {"image_id_a": a, "image_id_b": b, "distance": _phash_distance(phash[a], phash[b]), "method": METHOD}
                for found in results for a, b in found
            ]
            verified += len(rows)
            if rows:
                # One transaction per batch: an interrupted scan keeps what it recorded.
                with engine.begin() as connection:
                    result = connection.execute(
                        insert(ImageDuplicate).values(rows).on_conflict_do_nothing().returning(ImageDuplicate.id)
                    )
                    inserted += len(result.all())
            progress("verify", min(start + VERIFY_BATCH, len(to_verify)), len(to_verify))
    finally:
        if pool is not None:
            pool.shutdown()
    with engine.begin() as connection:
        for start in range(0, len(queries), 10_000):
            connection.execute(
                update(ImageDedupFeatures)
                .where(ImageDedupFeatures.image_id.in_(queries[start:start + 10_000]))
                .values(linked_at=func.now())
            )
    summary["verified"] = verified
    summary["pairs"] = inserted
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary


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
        chunk = pairs[start:start + 5_000]
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


def _read_bytes(storage: Any, url: str) -> bytes:
    return storage.get(storage.key_for(url))


def _ensure_features(engine: Engine, storage: Any, images, workers: int, progress: Progress):  # noqa: ANN001
    """Compute and store the features of every image that has none (or an older method's).
    Returns (ids computed now, unreadable images with the reason)."""
    with engine.connect() as connection:
        current = set(
            connection.execute(
                select(ImageDedupFeatures.image_id).where(ImageDedupFeatures.method == feature_lib.FEATURE_METHOD)
            ).scalars()
        )
    missing = [row for row in images if row.id not in current]
    unreadable: list[dict] = []
    computed: list[int] = []
    pool = ProcessPoolExecutor(workers) if workers > 1 and len(missing) > FEATURE_BATCH else None
    try:
        for start in range(0, len(missing), FEATURE_BATCH):
            batch = missing[start:start + FEATURE_BATCH]
            payloads = []
            for row in batch:
                try:
                    payloads.append((row.id, _read_bytes(storage, row.image_url)))
                except (StorageError, ValueError, OSError) as error:
                    unreadable.append({"image_id": row.id, "reason": f"cannot read {row.image_url}: {error}"})
            results = (pool.map(_features_or_error, [p[1] for p in payloads], chunksize=16) if pool
                       else map(_features_or_error, [p[1] for p in payloads]))
            rows = []
            for (image_id, _data), result in zip(payloads, results, strict=True):
                if isinstance(result, str):
                    unreadable.append({"image_id": image_id, "reason": f"cannot decode: {result}"})
                else:
                    rows.append(feature_lib.to_row(image_id, result))
            if rows:
                with engine.begin() as connection:
                    statement = insert(ImageDedupFeatures).values(rows)
                    connection.execute(
                        statement.on_conflict_do_update(
                            index_elements=[ImageDedupFeatures.image_id],
                            set_={**{c: statement.excluded[c] for c in rows[0] if c != "image_id"},
                                  "linked_at": None},
                        )
                    )
                computed += [row["image_id"] for row in rows]
            progress("features", min(start + FEATURE_BATCH, len(missing)), len(missing))
    finally:
        if pool is not None:
            pool.shutdown()
    return computed, unreadable


def _features_or_error(data: bytes):  # noqa: ANN202 - ImageFeatures or the error text
    try:
        return feature_lib.features_from_bytes(data)
    except Exception as error:  # noqa: BLE001 - any decoder failure is reported per image
        return f"{type(error).__name__}: {error}"


def _load_features(connection, image_ids: Iterable[int]) -> dict[int, feature_lib.ImageFeatures]:  # noqa: ANN001
    ids = sorted(image_ids)
    loaded = {}
    for start in range(0, len(ids), 1_000):
        for row in connection.execute(
            select(*ImageDedupFeatures.__table__.columns).where(
                ImageDedupFeatures.image_id.in_(ids[start:start + 1_000]),
                ImageDedupFeatures.method == feature_lib.FEATURE_METHOD,
            )
        ):
            loaded[row.image_id] = feature_lib.from_row(row)
    return loaded


# --- candidates ------------------------------------------------------------------------------


def _candidate_pairs(
    engine: Engine, images, queries: list[int], radius: int, params: MatchParams, progress: Progress  # noqa: ANN001
) -> dict[tuple[int, int], bool | None]:
    """Candidate pairs (a < b) -> the orientation to try first (None: both)."""
    with engine.connect() as connection:
        token_rows = connection.execute(
            select(ImageDedupFeatures.image_id, ImageDedupFeatures.tokens)
            .where(ImageDedupFeatures.method == feature_lib.FEATURE_METHOD)
            .order_by(ImageDedupFeatures.image_id)
        ).all()
    ids = np.array([row.image_id for row in token_rows], dtype=np.int64)
    index = TokenIndex([feature_lib.unpack_tokens(row.tokens) for row in token_rows], params.max_postings)
    position_of = {int(image_id): position for position, image_id in enumerate(ids)}
    pairs: dict[tuple[int, int], bool | None] = {}

    def add(a: int, b: int, mirrored: bool | None) -> None:
        pair = (min(a, b), max(a, b))
        if pair in pairs and pairs[pair] != mirrored:
            pairs[pair] = None
        else:
            pairs.setdefault(pair, mirrored)

    with_features = [i for i in queries if i in position_of]
    for start in range(0, len(with_features), 1_000):
        chunk = with_features[start:start + 1_000]
        with engine.connect() as connection:
            loaded = _load_features(connection, chunk)
        for image_id in chunk:
            upright, mirrored = query_tokens(loaded[image_id])
            for position, _count, is_mirrored in index.candidates(
                upright, mirrored, top_k=params.top_k, min_shared=params.min_shared,
                exclude=position_of[image_id],
            ):
                add(image_id, int(ids[position]), is_mirrored)
        progress("candidates", min(start + 1_000, len(with_features)), len(with_features))

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


# --- groups, conflicts, one image --------------------------------------------------------------


def _pairs(connection, max_distance: int | None) -> list:  # noqa: ANN001
    query = select(
        ImageDuplicate.image_id_a, ImageDuplicate.image_id_b, ImageDuplicate.distance, ImageDuplicate.method
    ).order_by(ImageDuplicate.image_id_a, ImageDuplicate.image_id_b)
    if max_distance is not None:
        query = query.where(ImageDuplicate.distance <= max_distance)
    return connection.execute(query).all()


def _image_details(connection, image_ids: Iterable[int]) -> dict[int, dict]:  # noqa: ANN001
    ids = sorted(set(image_ids))
    details: dict[int, dict] = {}
    for start in range(0, len(ids), 5_000):
        chunk = ids[start:start + 5_000]
        for row in connection.execute(
            select(
                TrainingImage.id, TrainingImage.dataset_source, TrainingImage.local_path,
                TrainingImage.image_url, TrainingImage.split,
            ).where(TrainingImage.id.in_(chunk))
        ).all():
            details[row.id] = {
                "id": row.id, "dataset": row.dataset_source, "local_path": row.local_path,
                "image_url": row.image_url, "split": row.split, "sources": [], "labels": [],
            }
        for row in connection.execute(
            select(ImageSource.id, ImageSource.image_id, ImageSource.dataset_source, ImageSource.local_path,
                   ImageSource.split)
            .where(ImageSource.image_id.in_(chunk)).order_by(ImageSource.id)
        ).all():
            details[row.image_id]["sources"].append(
                {"source_id": row.id, "dataset": row.dataset_source, "local_path": row.local_path,
                 "split": row.split}
            )
        for row in connection.execute(
            select(ConditionLabel.image_id, ConditionLabel.task, ConditionLabel.condition_type,
                   ConditionLabel.image_source_id, ConditionLabel.status)
            .where(ConditionLabel.image_id.in_(chunk), ConditionLabel.status != "rejected")
            .order_by(ConditionLabel.id)
        ).all():
            details[row.image_id]["labels"].append(
                {"task": row.task, "condition_type": row.condition_type, "source_id": row.image_source_id,
                 "status": row.status}
            )
    return details


def _in_dataset(detail: dict, dataset: str) -> bool:
    return detail["dataset"] == dataset or any(s["dataset"] == dataset for s in detail["sources"])


def duplicate_groups(engine: Engine, *, dataset: str | None = None, max_distance: int | None = None) -> list[dict]:
    """Groups of duplicates: connected components of near-duplicate pairs, merged with exact
    duplicates (one image read from several source paths). Largest first."""
    with engine.connect() as connection:
        pairs = _pairs(connection, max_distance)
        multi_source = connection.execute(
            select(ImageSource.image_id).group_by(ImageSource.image_id).having(func.count() > 1)
        ).scalars().all()
        union = UnionFind()
        for pair in pairs:
            union.union(pair.image_id_a, pair.image_id_b)
        for image_id in multi_source:
            union.find(image_id)
        members: dict[int, list[int]] = defaultdict(list)
        for image_id in list(union.parent):
            members[union.find(image_id)].append(image_id)
        details = _image_details(connection, union.parent)
    pairs_of: dict[int, list[dict]] = defaultdict(list)
    for pair in pairs:
        pairs_of[union.find(pair.image_id_a)].append(
            {"image_id_a": pair.image_id_a, "image_id_b": pair.image_id_b, "distance": pair.distance,
             "method": pair.method}
        )
    groups = []
    for root, ids in members.items():
        images = [details[i] for i in sorted(ids) if i in details]
        if dataset is not None and not any(_in_dataset(d, dataset) for d in images):
            continue
        sources = sum(max(1, len(d["sources"])) for d in images)
        groups.append(
            {
                "group_id": root,
                "images": len(images),
                "files": sources,
                "exact_duplicates": sources - len(images),
                "near_pairs": len(pairs_of[root]),
                "labels": sorted({label["condition_type"] for d in images for label in d["labels"]}),
                "members": images,
                "pairs": pairs_of[root],
            }
        )
    groups.sort(key=lambda g: (-g["files"], g["group_id"]))
    return groups


def _label_sets(detail: dict) -> dict[str, dict[int | None, set[str]]]:
    """task -> source id -> the condition types that source gave the image."""
    by_task: dict[str, dict[int | None, set[str]]] = defaultdict(lambda: defaultdict(set))
    for label in detail["labels"]:
        by_task[label["task"]][label["source_id"]].add(label["condition_type"])
    return by_task


def label_conflicts(engine: Engine, *, dataset: str | None = None, max_distance: int | None = None) -> list[dict]:
    """Duplicates that carry different labels for the same task.

    exact: one image whose source files were labelled differently (e.g. filed under two class
    folders); near: two linked images whose labels differ. Most severe (exact) first."""
    with engine.connect() as connection:
        pairs = _pairs(connection, max_distance)
        multi_source = connection.execute(
            select(ConditionLabel.image_id)
            .where(ConditionLabel.status != "rejected", ConditionLabel.image_id.is_not(None))
            .group_by(ConditionLabel.image_id, ConditionLabel.task)
            .having(func.count(func.distinct(ConditionLabel.image_source_id)) > 1)
        ).scalars().all()
        details = _image_details(
            connection, [*multi_source, *(p.image_id_a for p in pairs), *(p.image_id_b for p in pairs)]
        )
    conflicts = []
    for image_id in sorted(set(multi_source)):
        detail = details[image_id]
        if dataset is not None and not _in_dataset(detail, dataset):
            continue
        for task, by_source in sorted(_label_sets(detail).items()):
            distinct = {frozenset(types) for types in by_source.values()}
            if len(distinct) > 1:
                paths = {s["source_id"]: s["local_path"] for s in detail["sources"]}
                conflicts.append(
                    {
                        "kind": "exact",
                        "task": task,
                        "image_ids": [image_id],
                        "labels": sorted({t for types in by_source.values() for t in types}),
                        "by_image": {
                            str(image_id): [
                                {"source_id": source_id, "local_path": paths.get(source_id),
                                 "labels": sorted(types)}
                                for source_id, types in sorted(by_source.items(), key=lambda x: x[0] or 0)
                            ]
                        },
                        "distance": 0,
                        "method": "sha256",
                    }
                )
    for pair in pairs:
        a, b = details.get(pair.image_id_a), details.get(pair.image_id_b)
        if a is None or b is None:
            continue
        if dataset is not None and not (_in_dataset(a, dataset) or _in_dataset(b, dataset)):
            continue
        sets_a, sets_b = _label_sets(a), _label_sets(b)
        for task in sorted(set(sets_a) & set(sets_b)):
            labels_a = set().union(*sets_a[task].values())
            labels_b = set().union(*sets_b[task].values())
            if labels_a != labels_b:
                conflicts.append(
                    {
                        "kind": "near",
                        "task": task,
                        "image_ids": [pair.image_id_a, pair.image_id_b],
                        "labels": sorted(labels_a | labels_b),
                        "by_image": {
                            str(pair.image_id_a): [{"local_path": a["local_path"], "labels": sorted(labels_a)}],
                            str(pair.image_id_b): [{"local_path": b["local_path"], "labels": sorted(labels_b)}],
                        },
                        "distance": pair.distance,
                        "method": pair.method,
                    }
                )
    return conflicts


def image_duplicates(engine: Engine, image_id: int) -> dict:
    """One image: its sources and labels, its direct duplicate pairs and its whole group."""
    with engine.connect() as connection:
        if connection.execute(select(TrainingImage.id).where(TrainingImage.id == image_id)).first() is None:
            raise NotFound(f"No image with id {image_id}.", hint="`skinctl dedup list` shows images with duplicates.")
        direct = connection.execute(
            select(ImageDuplicate.image_id_a, ImageDuplicate.image_id_b, ImageDuplicate.distance,
                   ImageDuplicate.method)
            .where((ImageDuplicate.image_id_a == image_id) | (ImageDuplicate.image_id_b == image_id))
            .order_by(ImageDuplicate.distance, ImageDuplicate.image_id_a, ImageDuplicate.image_id_b)
        ).all()
        others = [p.image_id_b if p.image_id_a == image_id else p.image_id_a for p in direct]
        details = _image_details(connection, [image_id, *others])
        group = _component(connection, image_id)
    image = details[image_id]
    return {
        **image,
        "exact_duplicates": max(0, len(image["sources"]) - 1),
        "duplicates": [
            {**details[other], "distance": pair.distance, "method": pair.method}
            for other, pair in zip(others, direct, strict=True)
        ],
        "group": {"group_id": min(group), "images": len(group), "member_ids": sorted(group)},
    }


def _component(connection, image_id: int) -> set[int]:  # noqa: ANN001
    """Every image reachable from one image through duplicate pairs (breadth first)."""
    seen, frontier = {image_id}, [image_id]
    while frontier:
        rows = connection.execute(
            select(ImageDuplicate.image_id_a, ImageDuplicate.image_id_b).where(
                ImageDuplicate.image_id_a.in_(frontier) | ImageDuplicate.image_id_b.in_(frontier)
            )
        ).all()
        frontier = [i for row in rows for i in row if i not in seen]
        seen.update(frontier)
    return seen
