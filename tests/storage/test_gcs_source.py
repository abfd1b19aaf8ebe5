"""`skinctl ingest images gs://bucket/prefix`: a bucket as the source, against gcp-storage-emulator
with the real client: paged listing, labels from folders or a label file in the bucket, the same
validation as a folder, and a rerun (or a run after more uploads) reads only what is new."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from skinctl.db.models import ConditionLabel, ImageSource, IngestRejection, TrainingImage
from tests.ingest.helpers import draw, encode


@pytest.fixture
def bucket(gcs_url: str):
    """The emulator bucket of `gcs_url`, as a store rooted at the bucket (no prefix)."""
    from skinctl.storage.gcs import GCSStorage, parse_gs_url

    name, _ = parse_gs_url(gcs_url)
    return GCSStorage(f"gs://{name}")


def upload_set(bucket, prefix: str, count: int, start: int = 0) -> dict[str, bytes]:
    """count images under prefix/train/<dry|oily>/, returned by key relative to prefix."""
    uploaded = {}
    for index in range(start, start + count):
        key = f"train/{('dry', 'oily')[index % 2]}/img_{index:03d}.jpg"
        data = encode(draw("rings", index))
        bucket.put(f"{prefix}/{key}", data)
        uploaded[key] = data
    return uploaded


def test_bucket_source_is_ingested_like_a_folder_and_rerun_reads_only_new(
    storage_cli, engine, bucket, tmp_path, monkeypatch
):
    import skinctl.storage.gcs as gcs

    monkeypatch.setattr(gcs, "LIST_PAGE_SIZE", 3)  # several pages even for a small set
    uploaded = upload_set(bucket, "raw/skin-types", 7)
    bucket.put("raw/skin-types/README.txt", b"not an image")
    bucket.put("raw/skin-types/train/dry/broken.jpg", b"\xff\xd8\xff\xe0 truncated")
    bucket.put("raw/other/img.jpg", encode(draw("rings", 99)))  # outside the prefix
    url = f"gs://{bucket.bucket_name}/raw/skin-types"
    store = f"file://{tmp_path / 'images'}"

    first = storage_cli(
        "ingest",
        "images",
        url,
        "--dataset",
        "bucket",
        "--storage",
        store,
        "--workers",
        "2",
        "--json",
    )
    assert first.exit_code != 0  # a rejected file: the rejection exit code, rows kept
    summary = first.json()
    assert summary["scanned"] == 8 and summary["ingested"] == 7 and summary["rejected"] == 1
    assert summary["skipped_non_image_files"] == 1
    assert summary["labels"] == 7
    with engine.connect() as connection:
        hashes = dict(
            connection.execute(select(TrainingImage.local_path, TrainingImage.image_hash)).all()
        )
        labels = dict(
            connection.execute(
                select(ImageSource.local_path, ConditionLabel.condition_type).join(
                    ConditionLabel, ConditionLabel.image_source_id == ImageSource.id
                )
            ).all()
        )
        rejected = connection.execute(
            select(IngestRejection.local_path, IngestRejection.reason)
        ).all()
    assert hashes == {key: hashlib.sha256(data).hexdigest() for key, data in uploaded.items()}
    assert labels == {key: key.split("/")[1] for key in uploaded}
    assert rejected == [("train/dry/broken.jpg", "corrupt")]
    assert all(
        (tmp_path / "images" / sha[:2] / f"{sha}.jpg").read_bytes() == uploaded[key]
        for key, sha in hashes.items()
    )

    # more uploads: the rerun lists everything, reads only the new objects
    upload_set(bucket, "raw/skin-types", 3, start=7)
    second = storage_cli(
        "ingest", "images", url, "--dataset", "bucket", "--storage", store, "--json"
    )
    again = second.json()
    assert again["ingested"] == 3 and again["already_ingested"] == 7 and again["labels"] == 3
    with engine.connect() as connection:
        assert len(connection.execute(select(TrainingImage.id)).all()) == 10


def test_label_file_in_the_bucket(storage_cli, engine, bucket, tmp_path):
    images = {f"photos/p{index}.jpg": encode(draw("rings", 40 + index)) for index in range(4)}
    for key, data in images.items():
        bucket.put(f"flat/{key}", data)
    bucket.put("labels/flat.csv", b"filename,label\np0.jpg,acne\np1.jpg,rosacea\np2.jpg,acne\n")
    result = storage_cli(
        "ingest",
        "images",
        f"gs://{bucket.bucket_name}/flat",
        "--dataset",
        "flat",
        "--labels",
        f"gs://{bucket.bucket_name}/labels/flat.csv",
        "--storage",
        f"file://{tmp_path / 'images'}",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    assert result.json()["ingested"] == 4 and result.json()["labels"] == 3
    with engine.connect() as connection:
        labels = dict(
            connection.execute(
                select(ImageSource.local_path, ConditionLabel.condition_type).join(
                    ConditionLabel, ConditionLabel.image_source_id == ImageSource.id
                )
            ).all()
        )
    assert labels == {"photos/p0.jpg": "acne", "photos/p1.jpg": "rosacea", "photos/p2.jpg": "acne"}


def test_paged_listing_sees_every_object(gcs):
    for index in range(7):
        gcs.put(f"k/{index}.jpg", b"x" * index)
    listed = list(gcs.list_objects(page_size=2))
    assert sorted((o.key, o.size) for o in listed) == [(f"k/{i}.jpg", i) for i in range(7)]
