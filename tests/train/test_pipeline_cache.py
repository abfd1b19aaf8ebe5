"""Past the memory limit, decoded pixels are cached in a file under the reader's cache folder;
the epochs read from it give the same pixels as an in-memory cache."""

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
    assert [p.name for p in cache_dir.glob("tfdata-*/pixels.u8")]  # the file was written
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, pixels(in_memory))


def test_no_cache_folder_means_memory_whatever_the_size(tmp_path):
    reader = ByteReader(LocalStorage(str(tmp_path)))
    assert cache_place(reader, 10**6, 128, memory_limit=0) is None
    reader.cache_dir = tmp_path / "c"
    assert cache_place(reader, 10, 8, memory_limit=10**6) is None
    place = cache_place(reader, 10**6, 128, memory_limit=10**6)
    assert place is not None and place.parent.parent == tmp_path / "c"


def test_a_disk_cached_training_set_is_shuffled_whole_each_epoch(tmp_path, monkeypatch):
    """Training past the memory limit: the first epoch decodes the images in a seeded random
    order and writes them to the file; each later epoch reads the file in a new random order
    of the whole set. Every epoch gives every image once, with its own target and weight."""
    from skinctl.train import pipeline

    storage = LocalStorage(str(tmp_path / "images"))
    urls = stored_urls(storage, 24)
    reference = pixels(make_dataset(ByteReader(storage), urls, 32, 8))  # in urls order
    # augmentation off, so that an image can be compared with its reference pixels
    monkeypatch.setattr(pipeline, "augment", lambda tf, images, strong=False: images)
    on_disk = make_dataset(
        ByteReader(storage, cache_dir=tmp_path / "cache"),
        urls,
        32,
        5,  # batches of 5: the last one short
        targets=np.arange(24),
        weights=np.arange(24) / 10,
        training=True,
        memory_limit=0,
    )
    epochs = []
    for _ in range(3):
        batches = [[part.numpy() for part in batch] for batch in on_disk]
        assert [len(b[0]) for b in batches] == [5, 5, 5, 5, 4]
        epochs.append([np.concatenate([b[i] for b in batches]) for i in range(3)])
    for images, targets, weights in epochs:
        assert sorted(targets.tolist()) == list(range(24))  # every image once
        assert targets.tolist() != list(range(24))  # in a shuffled order
        np.testing.assert_array_equal(images, reference[targets])  # each with its own target
        np.testing.assert_allclose(weights, targets / 10)
    orders = [tuple(targets.tolist()) for _images, targets, _weights in epochs]
    assert len(set(orders)) == 3  # reshuffled each epoch, the first (decoding) one included


def test_each_image_is_decoded_once_even_when_an_epoch_stops_early(tmp_path):
    """An image is decoded the first time a batch asks for it and read from the file after:
    an epoch stopped after one batch (as Keras does when it builds a model from one batch)
    keeps what it decoded, the next epoch decodes the rest, and later ones decode nothing."""
    storage = LocalStorage(str(tmp_path / "images"))
    urls = stored_urls(storage, 12)
    reference = pixels(make_dataset(ByteReader(storage), urls, 32, 5))
    reads = []

    class CountingReader(ByteReader):
        def read(self, url: str) -> bytes:
            reads.append(url)
            return super().read(url)

    on_disk = make_dataset(
        CountingReader(storage, cache_dir=tmp_path / "cache"), urls, 32, 5, memory_limit=0
    )
    next(iter(on_disk))
    assert 5 <= len(reads) <= 12
    np.testing.assert_array_equal(pixels(on_disk), reference)  # in urls order
    assert sorted(reads) == sorted(urls)  # each image read and decoded once
    np.testing.assert_array_equal(pixels(on_disk), reference)
    assert len(reads) == 12


def test_an_image_that_cannot_be_decoded_stops_the_disk_cached_epoch_with_its_reason(tmp_path):
    import pytest

    storage = LocalStorage(str(tmp_path / "images"))
    urls = stored_urls(storage, 6)
    key = content_key(hashlib.sha256(b"junk").hexdigest(), "png")
    storage.put(key, b"junk")
    reader = ByteReader(storage, cache_dir=tmp_path / "cache")
    on_disk = make_dataset(reader, [*urls, storage.url_for(key)], 32, 4, memory_limit=0)
    with pytest.raises(Exception):  # noqa: B017 - TensorFlow wraps it in its own error types
        pixels(on_disk)
    assert "Cannot decode an image (4 bytes)" in str(reader.first_error)
