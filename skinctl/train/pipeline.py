"""The tf.data input: image bytes from the storage backend -> decode -> resize -> (augment) ->
batches. Training, evaluation, scoring and `predict` all go through `decode_resize`, so a
model sees the same pixels whichever way an image reaches it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import numpy as np

from skinctl.errors import StorageError, TrainingError

if TYPE_CHECKING:
    from skinctl.storage import Storage

# Formats tf.io.decode_image reads itself; others (WebP, TIFF) are converted to PNG first.
_TF_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")


def tensorflow() -> Any:
    """Import TensorFlow (3-5 s) only when training or predicting runs, without its C++ log noise."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def tf_decodable(data: bytes) -> bytes:
    """Bytes tf.io.decode_image can read, upright: WebP/TIFF and JPEGs whose EXIF orientation
    is not 'normal' (TensorFlow ignores it; ingest's hashes honour it) go through Pillow and
    come back as PNG."""
    import io

    from PIL import Image, ImageOps

    if data.startswith(_TF_MAGIC) and not (
        data.startswith(b"\xff\xd8\xff") and b"Exif" in data[:64]
    ):
        return data
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG" or image.getexif().get(0x0112, 1) == 1:
                if data.startswith(_TF_MAGIC):
                    return data
                upright = image
            else:
                upright = ImageOps.exif_transpose(image)
            out = io.BytesIO()
            upright.convert("RGB").save(out, format="PNG")
            return out.getvalue()
    except Exception as error:  # noqa: BLE001 - PIL raises many kinds for bad bytes
        raise TrainingError(f"Cannot decode an image ({len(data)} bytes): {error}") from None


class ByteReader:
    """Reads the bytes behind an image_url: from the configured store when the URL is in it,
    else from the file or bucket the URL itself names (rows ingested into another store)."""

    def __init__(self, storage: Storage, *, cache_dir: Path | None = None) -> None:
        self.storage = storage
        # where decoded pixels are cached when they do not fit in memory (see `cache_place`)
        self.cache_dir = cache_dir
        self._buckets: dict[str, Storage] = {}
        # TensorFlow wraps errors raised inside the pipeline in its own long messages; the
        # first one is kept here so callers can report it plainly.
        self.first_error: Exception | None = None

    def read(self, url: str) -> bytes:
        try:
            key = self.storage.key_for(url)
        except ValueError:
            return self._read_foreign(url)
        return self.storage.get(key)

    def _read_foreign(self, url: str) -> bytes:
        if url.startswith("file://") or "://" not in url:
            path = unquote(urlparse(url).path) if url.startswith("file://") else url
            try:
                with open(path, "rb") as handle:
                    return handle.read()
            except OSError as error:
                raise StorageError(f"Cannot read image {url}: {error.strerror}.") from None
        if url.startswith("gs://"):
            from skinctl.storage import open_storage

            bucket = url[5:].split("/", 1)[0]
            store = self._buckets.get(bucket) or open_storage(f"gs://{bucket}")
            self._buckets[bucket] = store
            return store.get(store.key_for(url))
        raise StorageError(f"Unsupported image URL {url}.")


JPEG_RATIOS = (1, 2, 4, 8)


def _decode(tf: Any, data: Any, image_size: int) -> Any:
    """Decode to uint8 RGB. A JPEG much larger than the target is decoded at 1/2, 1/4 or 1/8
    scale by the JPEG decoder itself (DCT scaling: several times faster than a full decode),
    never below the target size."""

    def jpeg() -> Any:
        shape = tf.io.extract_jpeg_shape(data)
        smaller = tf.minimum(shape[0], shape[1])
        # index of the largest ratio that keeps the smaller side >= image_size
        fits = tf.stack([smaller // r >= image_size for r in JPEG_RATIOS[1:]])
        index = tf.reduce_sum(tf.cast(fits, tf.int32))
        branches = [(lambda r=r: tf.io.decode_jpeg(data, channels=3, ratio=r)) for r in JPEG_RATIOS]
        return tf.switch_case(index, branches)

    def other() -> Any:
        return tf.io.decode_image(data, channels=3, expand_animations=False)

    return tf.cond(tf.io.is_jpeg(data), jpeg, other)


def decode_resize(tf: Any, data: Any, image_size: int) -> Any:
    """Encoded bytes (tf.string) -> uint8 RGB image of image_size x image_size."""
    image = _decode(tf, data, image_size)
    image = tf.image.resize(image, [image_size, image_size], antialias=True)
    image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    image.set_shape([image_size, image_size, 3])
    return image


def augment(tf: Any, images: Any, strong: bool = False) -> Any:
    """Training-only, on a float batch (B, H, W, 3): mirror, and small brightness/contrast
    changes drawn per image. Works on whole batches: far fewer per-element ops.

    `strong` adds what small from-scratch models need most on a few hundred photos: a random
    crop of 70-100% of each side resized back (zoom and shift), a vertical flip, a 90-degree
    turn per batch (skin close-ups have no "up") and a saturation change."""
    images = tf.image.random_flip_left_right(images)
    batch = tf.shape(images)[0]
    if strong:
        size = tf.shape(images)[1:3]
        scale = tf.random.uniform([batch, 1], 0.7, 1.0)
        offset = tf.random.uniform([batch, 2]) * (1.0 - scale)
        boxes = tf.concat([offset, offset + scale], axis=1)
        images = tf.image.crop_and_resize(images, boxes, tf.range(batch), size)
        images = tf.image.random_flip_up_down(images)
        images = tf.image.rot90(images, tf.random.uniform([], 0, 4, dtype=tf.int32))
        grey = tf.reduce_mean(images, axis=3, keepdims=True)
        saturation = tf.random.uniform([batch, 1, 1, 1], 0.75, 1.25)
        images = grey + (images - grey) * saturation
    shape = [batch, 1, 1, 1]
    delta = tf.random.uniform(shape, -0.08 * 255, 0.08 * 255)
    contrast = tf.random.uniform(shape, 0.9, 1.1)
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return tf.clip_by_value((images - mean) * contrast + mean + delta, 0.0, 255.0)


def mix(tf: Any, images: Any, targets: Any, alpha: float) -> Any:
    """Mixup within a batch: x = l x_i + (1 - l) x_j, y likewise, l ~ Beta(alpha, alpha)."""
    batch = tf.shape(images)[0]
    a = tf.random.gamma([batch], alpha)
    b = tf.random.gamma([batch], alpha)
    weight = a / (a + b)
    order = tf.random.shuffle(tf.range(batch))
    targets = tf.cast(targets, tf.float32)
    images = weight[:, None, None, None] * images + (1 - weight[:, None, None, None]) * tf.gather(
        images, order
    )
    targets = weight[:, None] * targets + (1 - weight[:, None]) * tf.gather(targets, order)
    return images, targets


def memory_cache_limit() -> int:
    """Bytes of decoded pixels cached in memory: a quarter of physical RAM."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 2 * 1024**3


def cache_place(
    reader: ByteReader, count: int, image_size: int, memory_limit: int | None = None
) -> Path | None:
    """None: cache in memory; else the path of a file of decoded pixels (`DecodedFile`), fresh
    for this dataset (a file left by a killed run is never reused), removed when the process
    ends."""
    decoded = count * image_size * image_size * 3
    limit = memory_cache_limit() if memory_limit is None else memory_limit
    if decoded <= limit or reader.cache_dir is None:
        return None
    import atexit
    import shutil
    import tempfile

    reader.cache_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="tfdata-", dir=reader.cache_dir))
    atexit.register(shutil.rmtree, folder, True)
    return folder / "pixels.u8"


# Fixed, and tf.data's tuner off: tuned, this pipeline now and then ran at half speed until the
# tuner's next round (rounds 10 ms x 2^k apart: a 6 s epoch took 10.24 s), in 2-3 epochs of 7 at
# 100,000 images; untuned, in none.
FILE_READERS = os.cpu_count() or 2  # batches read and augmented at once
FILE_PREFETCH = 4  # batches ready ahead


def untuned_options(tf: Any) -> Any:
    """tf.data options with its tuner off (see FILE_READERS)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


class DecodedFile:
    """The decoded images of a dataset past the memory limit, in one file of uint8 pixels
    (count x size x size x 3) mapped into memory, at each image's index. An image is decoded the
    first time a batch asks for it (the first epoch) and read from the file after that, so an
    epoch stopped early keeps what it decoded. Each epoch reads whole batches in a new random
    order of the whole set (8 bytes an image for the order; a shuffle buffer holds decoded
    images, and a tf.data file cache, read a record at a time, delivered 0.6-0.7 of the
    in-memory rate at 100,000 images)."""

    def __init__(self, path: Path, count: int, image_size: int, decode: Any) -> None:
        self.pixels = np.memmap(path, np.uint8, "w+", shape=(count, image_size, image_size, 3))
        self.written = np.zeros(count, bool)
        self.decode = decode  # index -> uint8 image tensor

    def batch(self, indexes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pixels, indexes) of a batch, its indexes sorted (the file is read forwards)."""
        indexes = np.sort(indexes)
        for index in indexes[~self.written[indexes]]:
            self.pixels[index] = self.decode(index).numpy()
            self.written[index] = True  # (each index is in one batch of an epoch)
        return np.asarray(self.pixels[indexes]), indexes


def make_dataset(
    reader: ByteReader,
    urls: Sequence[str],
    image_size: int,
    batch_size: int,
    *,
    targets: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    training: bool = False,
    seed: int = 0,
    cache: bool = True,
    strong: bool = False,
    mixup: float = 0.0,
    mirror: bool = False,
    memory_limit: int | None = None,
) -> Any:
    """A tf.data.Dataset of (image float32 0..255, target[, weight]) batches in `urls` order
    (shuffled and augmented only when `training`). Decoded images are cached as uint8, so after
    the first pass an epoch costs no reading or decoding: in memory while they fit in
    `memory_limit` bytes (default: a quarter of RAM), else in a file under the reader's
    `cache_dir` (`DecodedFile`).

    `strong`: stronger augmentation (see `augment`). `mixup` (training, one-hot targets): each
    batch mixed with itself shuffled, with weights from Beta(mixup, mixup). `mirror`: every
    image flipped left-right (test-time augmentation)."""
    tf = tensorflow()
    urls = list(urls)

    def load(index: Any) -> bytes:
        try:
            return tf_decodable(reader.read(urls[int(index)]))
        except Exception as error:
            if reader.first_error is None:
                reader.first_error = error
            raise

    def read_decode(index: Any) -> Any:
        data = tf.py_function(load, [index], tf.string)
        data.set_shape([])
        return decode_resize(tf, data, image_size)

    def to_float(images: Any, *rest: Any) -> Any:
        images = tf.cast(images, tf.float32)
        if mirror:
            images = tf.image.flip_left_right(images)
        if training:
            images = augment(tf, images, strong)
            if mixup > 0 and rest:
                images, target = mix(tf, images, rest[0], mixup)
                rest = (target, *rest[1:])
        return (images, *rest)

    place = cache_place(reader, len(urls), image_size, memory_limit) if cache else None
    extras = [np.asarray(targets)] if targets is not None else []
    if weights is not None:
        extras.append(np.asarray(weights, dtype=np.float32))
    if place is not None:
        # Past the memory limit: batches of indexes (the whole set shuffled, when training),
        # each read from the file (decoded the first time) and made float in one map, with
        # fixed parallelism and the tuner off (see FILE_READERS).
        decode = tf.function(read_decode, input_signature=[tf.TensorSpec([], tf.int64)])
        decoded = DecodedFile(place, len(urls), image_size, decode)
        constants = [tf.constant(extra) for extra in extras]

        def read_batch(indexes: Any) -> Any:
            # (numpy_function: a third cheaper per batch than py_function, here)
            images, ordered = tf.numpy_function(decoded.batch, [indexes], [tf.uint8, tf.int64])
            images.set_shape([None, image_size, image_size, 3])
            return to_float(images, *(tf.gather(c, ordered) for c in constants))

        indexes = tf.data.Dataset.range(len(urls))
        if training:
            indexes = indexes.shuffle(len(urls), seed=seed, reshuffle_each_iteration=True)
        return (
            indexes.batch(batch_size)
            .map(read_batch, num_parallel_calls=FILE_READERS)
            .prefetch(FILE_PREFETCH)
            .with_options(untuned_options(tf))
        )
    images = tf.data.Dataset.from_tensor_slices(np.arange(len(urls))).map(
        read_decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    parts = [images, *(tf.data.Dataset.from_tensor_slices(extra) for extra in extras)]
    dataset = tf.data.Dataset.zip(tuple(parts)) if len(parts) > 1 else images.map(lambda x: (x,))
    if cache:
        dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(max(len(urls), 1), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    return dataset.map(to_float, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def decode_files(datas: Sequence[bytes], image_size: int) -> np.ndarray:
    """Encoded images -> float32 batch (N, size, size, 3), the exact transform of training."""
    tf = tensorflow()
    images = [decode_resize(tf, tf.constant(tf_decodable(d)), image_size) for d in datas]
    return tf.cast(tf.stack(images), tf.float32).numpy()
