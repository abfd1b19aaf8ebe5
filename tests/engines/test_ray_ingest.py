"""`ingest images --engine ray` on a two-node Ray cluster on 127.0.0.1 writes the same rows,
labels, hashes and near-duplicate links as `--engine local`; the engines map in order."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import aliased

from skinctl.db.models import (
    ConditionLabel,
    ImageDedupFeatures,
    ImageDuplicate,
    ImageSource,
    TrainingImage,
)
from skinctl.engines import EngineKind, open_engine
from tests.conftest import truncate_all
from tests.ingest.helpers import draw, encode, near_copy, write

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _square(value: int) -> int:
    return value * value


_offset = 0


def _set_offset(value: int) -> None:
    global _offset
    _offset = value


def _shifted(value: int) -> int:
    return value + _offset


def make_set(root: Path) -> None:
    """Two classes of generated photos, a near copy and an exact copy of some, one bad file."""
    for index in range(16):
        kind = ("rings", "spots")[index % 2]
        image = draw(kind, index)
        write(root / kind / f"img_{index:02d}.jpg", encode(image))
        if index % 5 == 0:
            write(root / kind / f"near_{index:02d}.jpg", near_copy(image))
    write(root / "rings" / "copy_03.jpg", encode(draw("spots", 3)))
    write(root / "spots" / "broken.jpg", b"\xff\xd8\xff\xe0 not really")


def snapshot(engine: Engine) -> dict[str, object]:
    """What an ingest wrote, keyed by paths (ids differ between runs)."""
    a, b = aliased(TrainingImage), aliased(TrainingImage)
    with engine.connect() as connection:
        images = set(
            connection.execute(
                select(
                    TrainingImage.local_path,
                    TrainingImage.image_hash,
                    TrainingImage.phash,
                    TrainingImage.width,
                    TrainingImage.height,
                    TrainingImage.image_url,
                )
            ).all()
        )
        sources = set(
            connection.execute(
                select(ImageSource.local_path, TrainingImage.image_hash).join(
                    TrainingImage, TrainingImage.id == ImageSource.image_id
                )
            ).all()
        )
        labels = set(
            connection.execute(
                select(ImageSource.local_path, ConditionLabel.condition_type).join(
                    ConditionLabel, ConditionLabel.image_source_id == ImageSource.id
                )
            ).all()
        )
        links = {
            frozenset(pair)
            for pair in connection.execute(
                select(a.image_hash, b.image_hash)
                .join(ImageDuplicate, ImageDuplicate.image_id_a == a.id)
                .join(b, ImageDuplicate.image_id_b == b.id)
            ).all()
        }
        # the near-duplicate features, computed on the engine's workers
        features = set(
            connection.execute(
                select(
                    TrainingImage.image_hash,
                    ImageDedupFeatures.method,
                    ImageDedupFeatures.keypoints,
                    ImageDedupFeatures.descriptors,
                ).join(ImageDedupFeatures, ImageDedupFeatures.image_id == TrainingImage.id)
            ).all()
        )
    return {
        "images": images,
        "sources": sources,
        "labels": labels,
        "links": links,
        "features": features,
    }


def test_local_engine_maps_in_order_with_initializer():
    compute = open_engine(EngineKind.local, workers=2)
    assert list(
        compute.map_ordered(_square, range(50), initializer=_set_offset, initargs=(0,))
    ) == [i * i for i in range(50)]
    assert list(
        compute.map_ordered(_shifted, list(range(20)), initializer=_set_offset, initargs=(100,))
    ) == list(range(100, 120))


def test_ray_engine_maps_in_order_on_the_cluster(ray_cluster):
    compute = open_engine(EngineKind.ray, workers=1, address=ray_cluster)
    try:
        assert compute.cpus() == 2  # pyright: ignore[reportAttributeAccessIssue]
        result = list(
            compute.map_ordered(_shifted, list(range(200)), initializer=_set_offset, initargs=(7,))
        )
        assert result == list(range(7, 207))
    finally:
        compute.close()


def test_ray_ingest_matches_local_ingest(cli, engine, tmp_path, ray_cluster):
    root = tmp_path / "set"
    make_set(root)
    store = f"file://{tmp_path / 'images'}"
    common = ["ingest", "images", str(root), "--dataset", "gen", "--storage", store, "--json"]

    local = cli(*common, "--engine", "local", "--workers", "2")
    assert local.exit_code != 0 and local.json()["rejected"] == 1  # the bad file, rows kept
    expected = snapshot(engine)
    assert expected["links"], "the planted near copies were linked"
    assert len(expected["features"]) == 20  # every readable image (one is an exact copy)

    truncate_all(engine)
    distributed = cli(*common, "--engine", "ray", "--address", ray_cluster)
    # the same summary, but for timings, the run id and the objects (already in the store)
    varying = {"seconds": 0, "images_per_second": 0, "run_id": 0, "stored_objects": 0}
    assert distributed.json() | varying == local.json() | varying
    assert snapshot(engine) == expected

    # a rerun on Ray reads nothing new and adds nothing
    again = cli(*common, "--engine", "ray", "--address", ray_cluster)
    assert again.json()["ingested"] == 0 and again.json()["already_ingested"] == 21
    assert snapshot(engine) == expected


def test_address_without_ray_engine_is_a_usage_error(cli, tmp_path):
    result = cli("ingest", "images", str(tmp_path), "--dataset", "x", "--address", "ray://h:10001")
    assert result.exit_code != 0
    assert "--engine ray" in result.stderr
