"""Images/s the training input pipeline delivers from stored images (read from the storage
backend, decoded, resized, cached as uint8, augmented, batched) against the same images
already decoded in memory, measured in one run on this machine.

    PYTHONPATH=. python bench/train_input.py [--images N] [--size PX] [--epochs E]

Uses ../shared/data/skin_types when present (640 px JPEGs), else generated 256 px JPEGs.
The first epoch pays for reading and decoding; later epochs read the cache, in turns with the
baseline's epochs (medians compared). Target: cached epochs at >= 0.8 of the in-memory rate. Both caches are measured: in memory (what a set that
fits gets) and the file of decoded pixels on disk (what a set past the memory limit gets,
e.g. 100,000 images and more: `--images 100000 --skip-memory-cache`).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skinctl.storage import content_key
from skinctl.storage.local import LocalStorage
from skinctl.train.pipeline import (
    FILE_PREFETCH,
    FILE_READERS,
    ByteReader,
    augment,
    make_dataset,
    tensorflow,
    untuned_options,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "skin_types"


def source_images(n: int) -> tuple[Iterator[bytes], str]:
    """The images, made one at a time (100,000 of them are ~9 GB of JPEG bytes: stored as they
    are made, never held together)."""
    files = sorted(SHARED.glob("train/*/*.jpg"))[:n] if SHARED.exists() else []
    if len(files) >= n:
        return (f.read_bytes() for f in files), f"skin_types JPEGs ({SHARED})"
    from PIL import Image

    rng = np.random.default_rng(0)

    def generated() -> Iterator[bytes]:
        for _ in range(n):
            buffer = io.BytesIO()
            pixels = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(buffer, "JPEG")
            yield buffer.getvalue()

    return generated(), "generated 256 px JPEGs"


def rate(dataset, n: int) -> float:
    """Images/s up to the epoch's last image. (Asking past it for the end of the epoch can wait
    seconds more, a wait that ends 2.56 s x 2^k after the epoch began, in any tf.data pipeline
    here, the baseline's too: it is not the pipeline's delivery, and Keras, which knows the
    number of batches, does not ask.)"""
    start = time.perf_counter()
    seen = 0
    for batch in dataset:
        seen += int(batch[0].shape[0])
        if seen >= n:
            break
    assert seen == n
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=5, help="cached epochs of each")
    parser.add_argument(
        "--skip-memory-cache", action="store_true", help="measure only the disk cache"
    )
    args = parser.parse_args()
    tf = tensorflow()

    datas, what = source_images(args.images)
    with tempfile.TemporaryDirectory() as folder:
        storage = LocalStorage(folder)
        urls = []
        import hashlib

        for data in datas:
            key = content_key(hashlib.sha256(data).hexdigest(), "jpg")
            storage.put(key, data)
            urls.append(storage.url_for(key))
        targets = np.arange(len(urls)) % 3

        # First epochs (read, decode, resize, fill the cache), one pipeline after the other.
        pipelines: dict[str, object] = {}
        first: dict[str, float] = {}
        if not args.skip_memory_cache:
            pipelines["memory cache"] = make_dataset(
                ByteReader(storage), urls, args.size, args.batch, targets=targets, training=True
            )
        # the same pipeline past the memory limit: decoded pixels in a file under a cache folder
        pipelines["disk cache"] = make_dataset(
            ByteReader(storage, cache_dir=Path(folder) / "cache"),
            urls,
            args.size,
            args.batch,
            targets=targets,
            training=True,
            memory_limit=0,
        )
        for name, dataset in pipelines.items():
            first[name] = rate(dataset, len(urls))

        # Baseline: the same pixels already decoded and resized in memory, same shuffle,
        # augmentation, batching and prefetch.
        # (filled in place: a list of arrays and its stack would hold the pixels twice)
        decoded = np.empty((len(urls), args.size, args.size, 3), np.uint8)
        at = 0
        for batch in make_dataset(ByteReader(storage), urls, args.size, 256, cache=False):
            pixels = tf.cast(batch, tf.uint8).numpy().reshape(-1, args.size, args.size, 3)
            decoded[at : at + len(pixels)] = pixels
            at += len(pixels)
        assert at == len(urls)
        memory = (
            tf.data.Dataset.from_tensor_slices((decoded, targets))
            # a shuffle within 512 MB of images (cheaper than the disk cache's shuffle of the
            # whole set, which a buffer could only match by holding every image twice)
            .shuffle(
                min(len(urls), (512 << 20) // (args.size * args.size * 3)),
                seed=0,
                reshuffle_each_iteration=True,
            )
            .batch(args.batch)
            # the file cache's parallelism, prefetch and options (see pipeline.FILE_READERS)
            .map(
                lambda x, y: (augment(tf, tf.cast(x, tf.float32)), y),
                num_parallel_calls=FILE_READERS,
            )
            .prefetch(FILE_PREFETCH)
            .with_options(untuned_options(tf))
        )
        # Cached epochs, taken in turns with the baseline's, so that what else the machine
        # does at a moment weighs on both alike.
        cached_rates: dict[str, list[float]] = {name: [] for name in pipelines}
        memory_rates = []
        for _ in range(args.epochs):
            memory_rates.append(rate(memory, len(urls)))
            for name, dataset in pipelines.items():
                cached_rates[name].append(rate(dataset, len(urls)))

    in_memory = float(np.median(memory_rates))
    print(f"{len(urls)} images ({what}) at {args.size} px, batch {args.batch}")
    print(f"in memory (baseline):                         {in_memory:8.0f} images/s")
    for name, rates in cached_rates.items():
        cached = float(np.median(rates))
        print(f"{name}, first epoch (read + decode + resize): {first[name]:8.0f} images/s")
        print(
            f"{name}, cached epochs: {cached:8.0f} images/s, "
            f"ratio to in-memory {cached / in_memory:.2f} (target >= 0.8); "
            f"first epoch / in-memory: {first[name] / in_memory:.2f}"
        )
    print(
        "epoch by epoch, in turns: baseline "
        + " ".join(f"{r:.0f}" for r in memory_rates)
        + "; "
        + "; ".join(f"{n} " + " ".join(f"{r:.0f}" for r in rs) for n, rs in cached_rates.items())
    )


if __name__ == "__main__":
    main()
