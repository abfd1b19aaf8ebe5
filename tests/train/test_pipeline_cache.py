"""Past the memory limit, decoded pixels are cached in a tf.data file cache under the reader's
cache folder; the epochs read from it give the same pixels as an in-memory cache."""

from __future__ import annotations

import hashlib

import numpy as np

from skinctl.storage import content_key
from skinctl.storage.local import LocalStorage
from skinctl.train.pipeline import ByteReader, cache_place, make_dataset
from tests.train.factory import CLASS_STYLE, draw_image


def stored_urls(storage: LocalStorage, count: int) -> list[str]:
    rng = np.random.default_rng(0)
    urls = []
    for index in range(count):
        data = draw_image(list(CLASS_STYLE)[index % 3], rng, 40)
        key = content_key(hashlib.sha256(data).hexdigest(), "png")
        storage.put(key, data)
        urls.append(storage.url_for(key))
    return urls


def pixels(dataset) -> np.ndarray:
    return np.concatenate([batch[0].numpy() for batch in dataset])


def test_disk_cache_past_the_memory_limit_gives_the_same_pixels(tmp_path):
    storage = LocalStorage(str(tmp_path / "images"))
    urls = stored_urls(storage, 12)
    cache_dir = tmp_path / "cache"
    in_memory = make_dataset(ByteReader(storage, cache_dir=cache_dir), urls, 32, 5)
    assert not cache_dir.exists()  # 12 small images fit in memory
    on_disk = make_dataset(ByteReader(storage, cache_dir=cache_dir), urls, 32, 5, memory_limit=0)
    first, second = pixels(on_disk), pixels(on_disk)
    assert [p.name for p in cache_dir.glob("tfdata-*/cache*")]  # the file cache was written
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, pixels(in_memory))


def test_no_cache_folder_means_memory_whatever_the_size(tmp_path):
    reader = ByteReader(LocalStorage(str(tmp_path)))
    assert cache_place(reader, 10**6, 128, memory_limit=0) is None
    reader.cache_dir = tmp_path / "c"
    assert cache_place(reader, 10, 8, memory_limit=10**6) is None
    place = cache_place(reader, 10**6, 128, memory_limit=10**6)
    assert place is not None and place.parent.parent == tmp_path / "c"


def test_a_disk_cached_training_set_is_shuffled_within_a_bounded_buffer(tmp_path, monkeypatch):
    """Training past the memory limit: the images are read once in a seeded random order and
    each epoch reshuffles them in a buffer smaller than the set (a full-size buffer would hold
    every decoded image in memory again); each epoch still gives every image once, with its own
    target."""
    from skinctl.train import pipeline

    storage = LocalStorage(str(tmp_path / "images"))
    urls = stored_urls(storage, 24)
    reference = pixels(make_dataset(ByteReader(storage), urls, 32, 8))  # in urls order
    buffers = []
    real_buffer = pipeline.shuffle_buffer
    monkeypatch.setattr(pipeline, "shuffle_buffer", lambda size: buffers.append(size) or 4)
    # augmentation off, so that an image can be compared with its reference pixels
    monkeypatch.setattr(pipeline, "augment", lambda tf, images, strong=False: images)
    on_disk = make_dataset(
        ByteReader(storage, cache_dir=tmp_path / "cache"),
        urls,
        32,
        8,
        targets=np.arange(24),
        training=True,
        memory_limit=0,
    )
    epochs = []
    for _ in range(2):
        batches = [(images.numpy(), targets.numpy()) for images, targets in on_disk]
        epochs.append(
            (np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]))
        )
    assert buffers == [32]
    for images, targets in epochs:
        assert sorted(targets.tolist()) == list(range(24))  # every image once
        assert targets.tolist() != list(range(24))  # in a shuffled order
        np.testing.assert_array_equal(images, reference[targets])  # each with its own target
    assert epochs[0][1].tolist() != epochs[1][1].tolist()  # reshuffled each epoch
    assert real_buffer(128) == 10_922 and real_buffer(1024) == 1_000
