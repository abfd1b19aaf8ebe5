"""Reading the recorded duplicates: groups (`dedup list`), label conflicts
(`dedup list --conflicts`) and one image's duplicates (`dedup show`). Nothing here writes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

from sqlalchemy import Engine, func, select

from skinctl.db.models import ConditionLabel, ImageDuplicate, ImageSource, TrainingImage
from skinctl.errors import NotFound
from skinctl.grouping import UnionFind


@dataclass(frozen=True)
class SourceFile:
    """A file path an image was read from (several for exact duplicates)."""

    source_id: int
    dataset: str
    local_path: str | None
    split: str | None


@dataclass(frozen=True)
class ImageLabel:
    task: str
    condition_type: str
    source_id: int | None  # the source file the label came with
    status: str


@dataclass(frozen=True)
class ImageDetail:
    """One image with its source files and its labels (rejected ones left out)."""

    id: int
    dataset: str
    local_path: str | None
    image_url: str
    split: str | None
    sources: list[SourceFile] = field(default_factory=list)
    labels: list[ImageLabel] = field(default_factory=list)
    skin_tone: str | None = None  # estimated from the pixels (ITA category); None: none yet
    skin_tone_ita: float | None = None

    def in_dataset(self, dataset: str) -> bool:
        return self.dataset == dataset or any(s.dataset == dataset for s in self.sources)


@dataclass(frozen=True)
class DuplicatePair:
    image_id_a: int
    image_id_b: int
    distance: int
    method: str


@dataclass(frozen=True)
class DuplicateGroup:
    """Images linked by near-duplicate pairs, with the exact duplicates of each."""

    group_id: int  # the smallest image id in the group
    images: int
    files: int  # source files of all its images
    exact_duplicates: int  # files beyond one per image
    near_pairs: int
    labels: list[str]
    members: list[ImageDetail]
    pairs: list[DuplicatePair]


@dataclass(frozen=True)
class SourceLabels:
    """What one source file of an image was labelled (an exact-duplicate conflict)."""

    source_id: int | None
    local_path: str | None
    labels: list[str]


@dataclass(frozen=True)
class ImageLabels:
    """What one image of a near-duplicate pair was labelled."""

    local_path: str | None
    labels: list[str]


@dataclass(frozen=True)
class LabelConflict:
    kind: str  # exact (one image, sources labelled differently) or near (a linked pair)
    task: str
    image_ids: list[int]
    labels: list[str]
    by_image: dict[str, list[SourceLabels]] | dict[str, list[ImageLabels]]
    distance: int
    method: str


@dataclass(frozen=True)
class NearDuplicate:
    """An image linked to the one shown, with the pair's distance and method."""

    id: int
    dataset: str
    local_path: str | None
    image_url: str
    split: str | None
    sources: list[SourceFile]
    labels: list[ImageLabel]
    distance: int
    method: str
    skin_tone: str | None = None
    skin_tone_ita: float | None = None


@dataclass(frozen=True)
class GroupMembers:
    group_id: int
    images: int
    member_ids: list[int]


@dataclass(frozen=True)
class ImageDuplicates:
    """One image (`dedup show`): its sources and labels, its direct pairs and its whole group."""

    id: int
    dataset: str
    local_path: str | None
    image_url: str
    split: str | None
    sources: list[SourceFile]
    labels: list[ImageLabel]
    exact_duplicates: int
    duplicates: list[NearDuplicate]
    group: GroupMembers
    skin_tone: str | None = None
    skin_tone_ita: float | None = None


def _pairs(connection, max_distance: int | None) -> list:  # noqa: ANN001
    query = select(
        ImageDuplicate.image_id_a,
        ImageDuplicate.image_id_b,
        ImageDuplicate.distance,
        ImageDuplicate.method,
    ).order_by(ImageDuplicate.image_id_a, ImageDuplicate.image_id_b)
    if max_distance is not None:
        query = query.where(ImageDuplicate.distance <= max_distance)
    return connection.execute(query).all()


def _image_details(connection, image_ids: Iterable[int]) -> dict[int, ImageDetail]:  # noqa: ANN001
    ids = sorted(set(image_ids))
    details: dict[int, ImageDetail] = {}
    for start in range(0, len(ids), 5_000):
        chunk = ids[start : start + 5_000]
        for row in connection.execute(
            select(
                TrainingImage.id,
                TrainingImage.dataset_source,
                TrainingImage.local_path,
                TrainingImage.image_url,
                TrainingImage.split,
                TrainingImage.skin_tone,
                TrainingImage.skin_tone_ita,
            ).where(TrainingImage.id.in_(chunk))
        ).all():
            details[row.id] = ImageDetail(
                id=row.id,
                dataset=row.dataset_source,
                local_path=row.local_path,
                image_url=row.image_url,
                split=row.split,
                skin_tone=row.skin_tone,
                skin_tone_ita=row.skin_tone_ita,
            )
        for row in connection.execute(
            select(
                ImageSource.id,
                ImageSource.image_id,
                ImageSource.dataset_source,
                ImageSource.local_path,
                ImageSource.split,
            )
            .where(ImageSource.image_id.in_(chunk))
            .order_by(ImageSource.id)
        ).all():
            details[row.image_id].sources.append(
                SourceFile(
                    source_id=row.id,
                    dataset=row.dataset_source,
                    local_path=row.local_path,
                    split=row.split,
                )
            )
        for row in connection.execute(
            select(
                ConditionLabel.image_id,
                ConditionLabel.task,
                ConditionLabel.condition_type,
                ConditionLabel.image_source_id,
                ConditionLabel.status,
            )
            .where(ConditionLabel.image_id.in_(chunk), ConditionLabel.status != "rejected")
            .order_by(ConditionLabel.id)
        ).all():
            details[row.image_id].labels.append(
                ImageLabel(
                    task=row.task,
                    condition_type=row.condition_type,
                    source_id=row.image_source_id,
                    status=row.status,
                )
            )
    return details


def duplicate_groups(
    engine: Engine, *, dataset: str | None = None, max_distance: int | None = None
) -> list[DuplicateGroup]:
    """Groups of duplicates: connected components of near-duplicate pairs, merged with exact
    duplicates (one image read from several source paths). Largest first."""
    with engine.connect() as connection:
        pairs = _pairs(connection, max_distance)
        multi_source = (
            connection.execute(
                select(ImageSource.image_id).group_by(ImageSource.image_id).having(func.count() > 1)
            )
            .scalars()
            .all()
        )
        union = UnionFind()
        for pair in pairs:
            union.union(pair.image_id_a, pair.image_id_b)
        for image_id in multi_source:
            union.find(image_id)
        members: dict[int, list[int]] = defaultdict(list)
        for image_id in list(union.parent):
            members[union.find(image_id)].append(image_id)
        details = _image_details(connection, union.parent)
    pairs_of: dict[int, list[DuplicatePair]] = defaultdict(list)
    for pair in pairs:
        pairs_of[union.find(pair.image_id_a)].append(
            DuplicatePair(pair.image_id_a, pair.image_id_b, pair.distance, pair.method)
        )
    groups = []
    for root, ids in members.items():
        images = [details[i] for i in sorted(ids) if i in details]
        if dataset is not None and not any(d.in_dataset(dataset) for d in images):
            continue
        sources = sum(max(1, len(d.sources)) for d in images)
        groups.append(
            DuplicateGroup(
                group_id=root,
                images=len(images),
                files=sources,
                exact_duplicates=sources - len(images),
                near_pairs=len(pairs_of[root]),
                labels=sorted({label.condition_type for d in images for label in d.labels}),
                members=images,
                pairs=pairs_of[root],
            )
        )
    groups.sort(key=lambda g: (-g.files, g.group_id))
    return groups


def _label_sets(detail: ImageDetail) -> dict[str, dict[int | None, set[str]]]:
    """task -> source id -> the condition types that source gave the image."""
    by_task: dict[str, dict[int | None, set[str]]] = defaultdict(lambda: defaultdict(set))
    for label in detail.labels:
        by_task[label.task][label.source_id].add(label.condition_type)
    return by_task


def label_conflicts(
    engine: Engine, *, dataset: str | None = None, max_distance: int | None = None
) -> list[LabelConflict]:
    """Duplicates that carry different labels for the same task.

    exact: one image whose source files were labelled differently (e.g. filed under two class
    folders); near: two linked images whose labels differ. Most severe (exact) first."""
    with engine.connect() as connection:
        pairs = _pairs(connection, max_distance)
        multi_source = [
            image_id
            for image_id in connection.execute(
                select(ConditionLabel.image_id)
                .where(ConditionLabel.status != "rejected", ConditionLabel.image_id.is_not(None))
                .group_by(ConditionLabel.image_id, ConditionLabel.task)
                .having(func.count(func.distinct(ConditionLabel.image_source_id)) > 1)
            ).scalars()
            if image_id is not None  # the query's own filter, said again for the type checker
        ]
        details = _image_details(
            connection,
            [*multi_source, *(p.image_id_a for p in pairs), *(p.image_id_b for p in pairs)],
        )
    conflicts = []
    for image_id in sorted(set(multi_source)):
        detail = details[image_id]
        if dataset is not None and not detail.in_dataset(dataset):
            continue
        for task, by_source in sorted(_label_sets(detail).items()):
            distinct = {frozenset(types) for types in by_source.values()}
            if len(distinct) > 1:
                paths: dict[int | None, str | None] = {
                    s.source_id: s.local_path for s in detail.sources
                }
                conflicts.append(
                    LabelConflict(
                        kind="exact",
                        task=task,
                        image_ids=[image_id],
                        labels=sorted({t for types in by_source.values() for t in types}),
                        by_image={
                            str(image_id): [
                                SourceLabels(
                                    source_id=source_id,
                                    local_path=paths.get(source_id),
                                    labels=sorted(types),
                                )
                                for source_id, types in sorted(
                                    by_source.items(), key=lambda x: x[0] or 0
                                )
                            ]
                        },
                        distance=0,
                        method="sha256",
                    )
                )
    for pair in pairs:
        a, b = details.get(pair.image_id_a), details.get(pair.image_id_b)
        if a is None or b is None:
            continue
        if dataset is not None and not (a.in_dataset(dataset) or b.in_dataset(dataset)):
            continue
        sets_a, sets_b = _label_sets(a), _label_sets(b)
        for task in sorted(set(sets_a) & set(sets_b)):
            labels_a = set().union(*sets_a[task].values())
            labels_b = set().union(*sets_b[task].values())
            if labels_a != labels_b:
                conflicts.append(
                    LabelConflict(
                        kind="near",
                        task=task,
                        image_ids=[pair.image_id_a, pair.image_id_b],
                        labels=sorted(labels_a | labels_b),
                        by_image={
                            str(pair.image_id_a): [
                                ImageLabels(local_path=a.local_path, labels=sorted(labels_a))
                            ],
                            str(pair.image_id_b): [
                                ImageLabels(local_path=b.local_path, labels=sorted(labels_b))
                            ],
                        },
                        distance=pair.distance,
                        method=pair.method,
                    )
                )
    return conflicts


def image_duplicates(engine: Engine, image_id: int) -> ImageDuplicates:
    """One image: its sources and labels, its direct duplicate pairs and its whole group."""
    with engine.connect() as connection:
        if (
            connection.execute(select(TrainingImage.id).where(TrainingImage.id == image_id)).first()
            is None
        ):
            raise NotFound(
                f"No image with id {image_id}.",
                hint="`skinctl dedup list` shows images with duplicates.",
            )
        direct = connection.execute(
            select(
                ImageDuplicate.image_id_a,
                ImageDuplicate.image_id_b,
                ImageDuplicate.distance,
                ImageDuplicate.method,
            )
            .where(
                (ImageDuplicate.image_id_a == image_id) | (ImageDuplicate.image_id_b == image_id)
            )
            .order_by(ImageDuplicate.distance, ImageDuplicate.image_id_a, ImageDuplicate.image_id_b)
        ).all()
        others = [p.image_id_b if p.image_id_a == image_id else p.image_id_a for p in direct]
        details = _image_details(connection, [image_id, *others])
        group = _component(connection, image_id)
    image = details[image_id]
    return ImageDuplicates(
        **_detail_fields(image),
        exact_duplicates=max(0, len(image.sources) - 1),
        duplicates=[
            NearDuplicate(
                **_detail_fields(details[other]), distance=pair.distance, method=pair.method
            )
            for other, pair in zip(others, direct, strict=True)
        ],
        group=GroupMembers(group_id=min(group), images=len(group), member_ids=sorted(group)),
    )


def _detail_fields(detail: ImageDetail) -> dict:
    return {f.name: getattr(detail, f.name) for f in fields(ImageDetail)}


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
