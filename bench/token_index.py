"""Token index benchmark: candidate lookup from the posting store in PostgreSQL against the
in-memory TokenIndex that linking built before, on the same synthetic tokens, in one run.

    PYTHONPATH=. python bench/token_index.py [--images 100000[,1000000]] [--batch 1000]
        [--seed 0] [--no-memory-index]

For each size N: N stored images' tokens go into a fresh database's store
(`skinctl.dedup.postings`, segments of 25,000 images as linking appends them, then the merge
linking would do), then a batch of new images is linked against them, each path in a fresh
process so its peak memory is its own (ru_maxrss of a child starts from the small
orchestrating process's RSS, about 100 MB; the sampled VmRSS is the child's own):

- store: append the batch's segment, then `PostingStore.candidates` for the batch;
- memory: the token lists of all N + batch images, `TokenIndex` over them, then
  `TokenIndex.candidates` per query (what `linking._candidate_pairs` did; the old path also
  read every image's descriptors from the database and derived the tokens, which is not
  timed here, so its time is a lower bound).

Printed: seconds, peak resident memory (ru_maxrss, and VmRSS sampled every 20 ms), the
process's memory before the lookup (imports), whether both paths chose the same candidates,
and the store's size (pg_total_relation_size of its two tables) per image and per posting.

Synthetic tokens resemble V2's (`features.V2`: 128 keypoints, 4 tables of 28 bits): per table
a heavy-tailed (Pareto a=1.3, scale 300) token distribution fitted to the token counts of
1,500 skin_types images (half of the postings fall on tokens held by >= 6 of them, a quarter
on tokens held by >= 50: ORB descriptors are far from uniform); 90% of images have all 128
keypoints. Batch: 30% copies of a stored image (40% of its tokens kept; half of them
mirrored, i.e. found by the mirrored query tokens), the rest new images.

`--link N`: the real `skinctl.dedup.link` instead, on N synthetic images in the database
(rows in ml_training_images and image_dedup_features whose descriptors carry the synthetic
tokens; already linked, not yet in the store), each pass in a fresh process: first a batch of
new images while the store is still empty (so the pass indexes all N), then a second batch
(the steady state). Printed: seconds and peak RSS of each pass.

Wall-clock figures depend on what else runs on the machine; both paths run in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHUNK = 25_000  # images generated (and appended as one segment) at a time
KEYPOINTS = 128
TABLES = 4
PARETO_A, PARETO_SCALE = 1.3, 300.0
TOP_K, MIN_SHARED = 6, 8  # V2's MatchParams


def _draw(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """28-bit token values: Pareto-distributed ranks, scrambled over the 28 bits."""
    u = np.maximum(rng.random(shape), 1e-12)
    rank = np.floor(PARETO_SCALE * (u ** (-1.0 / (PARETO_A - 1.0)) - 1.0))
    rank = np.minimum(rank, 2.0**62).astype(np.uint64)
    mixed = (rank * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(36)
    return (mixed & np.uint64((1 << 28) - 1)).astype(np.int64)


def _images(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    values = _draw(rng, (count, KEYPOINTS, TABLES))
    tokens = values + (np.arange(TABLES, dtype=np.int64) << 28)
    keypoints = np.where(rng.random(count) < 0.9, KEYPOINTS, rng.integers(0, KEYPOINTS, count))
    return [np.unique(tokens[i, : keypoints[i]]).astype(np.int32) for i in range(count)]


def stored_chunk(seed: int, chunk: int, images: int) -> list[np.ndarray]:
    """The tokens of stored images chunk * CHUNK + 1 ... (ids start at 1)."""
    count = min(CHUNK, images - chunk * CHUNK)
    return _images(np.random.default_rng([seed, chunk]), count)


def batch_queries(seed: int, images: int, batch: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(id, upright tokens, mirrored tokens) of the new images, ids images + 1 ..."""
    rng = np.random.default_rng([seed, 1_000_003])
    chunks = max(1, (images + CHUNK - 1) // CHUNK)
    sources = rng.choice(chunks, size=min(chunks, 4), replace=False)
    pool = [
        (int(k) * CHUNK + 1 + i, tokens)
        for k in sources
        for i, tokens in enumerate(stored_chunk(seed, int(k), images))
    ]
    upright, mirrored = _images(rng, batch), _images(rng, batch)
    queries = []
    for i in range(batch):
        up, mirror = upright[i], mirrored[i]
        if rng.random() < 0.3:
            _source_id, source = pool[int(rng.integers(0, len(pool)))]
            copied = source[rng.random(len(source)) < 0.4]
            if rng.random() < 0.5:
                mirror = np.unique(np.concatenate([copied, mirror[: len(mirror) // 2]]))
            else:
                up = np.unique(np.concatenate([copied, up[: len(up) // 2]]))
        queries.append((images + 1 + i, up.astype(np.int32), mirror.astype(np.int32)))
    return queries


def save_batch(path: str, queries: list[tuple[int, np.ndarray, np.ndarray]]) -> None:
    np.savez(
        path,
        ids=np.array([q[0] for q in queries], np.int64),
        upright=np.concatenate([q[1] for q in queries]),
        mirrored=np.concatenate([q[2] for q in queries]),
        upright_lengths=np.array([len(q[1]) for q in queries], np.int64),
        mirrored_lengths=np.array([len(q[2]) for q in queries], np.int64),
    )


def load_batch(path: str) -> list[tuple[int, np.ndarray, np.ndarray]]:
    data = np.load(path)
    upright = np.split(data["upright"], np.cumsum(data["upright_lengths"])[:-1])
    mirrored = np.split(data["mirrored"], np.cumsum(data["mirrored_lengths"])[:-1])
    return [(int(i), u, m) for i, u, m in zip(data["ids"], upright, mirrored, strict=True)]


def digest(found: dict[int, list[tuple[int, int, bool]]]) -> str:
    text = json.dumps(sorted((k, v) for k, v in found.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RssSampler:
    """Peak VmRSS of this process, read every 20 ms from /proc/self/status."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def now() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(0.02)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())
        return self.peak


# --- the two paths, each run in its own process ------------------------------------------------


def run_store(url: str, batch_file: str) -> dict:
    from skinctl.db.engine import make_engine
    from skinctl.dedup.features import V2
    from skinctl.dedup.postings import PostingStore

    queries = load_batch(batch_file)
    engine = make_engine(url)
    store = PostingStore(engine, V2.method)
    start_rss = RssSampler.now()
    sampler = RssSampler()
    started = time.perf_counter()
    with engine.begin() as connection:  # the batch's own segment, as linking appends it
        store.append(connection, [q[0] for q in queries], [q[1] for q in queries])
    appended = time.perf_counter()
    passes = []
    original = PostingStore._pass

    def counted(self, *args):
        passes.append(1)
        return original(self, *args)

    PostingStore._pass = counted  # type: ignore[method-assign]
    found = store.candidates(queries, top_k=TOP_K, min_shared=MIN_SHARED)
    finished = time.perf_counter()
    peak = sampler.stop()
    engine.dispose()
    result = {k: [(c.image_id, c.shared, c.mirrored) for c in v] for k, v in found.items()}
    return {
        "seconds": finished - started,
        "append_seconds": appended - started,
        "lookup_seconds": finished - appended,
        "passes": len(passes),
        "start_rss": start_rss,
        "vmrss_peak": peak,
        "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "candidates": sum(len(v) for v in result.values()),
        "copies_found": sum(1 for v in result.values() if v),
        "digest": digest(result),
    }


def run_memory(batch_file: str, seed: int, images: int) -> dict:
    from skinctl.dedup.matcher import TokenIndex

    queries = load_batch(batch_file)
    start_rss = RssSampler.now()
    sampler = RssSampler()
    started = time.perf_counter()
    lists: list[np.ndarray] = []
    for chunk in range((images + CHUNK - 1) // CHUNK):
        lists += stored_chunk(seed, chunk, images)
    lists += [q[1] for q in queries]
    generated = time.perf_counter()
    index = TokenIndex(lists)
    del lists
    built = time.perf_counter()
    result = {}
    for position, (image_id, upright, mirrored) in enumerate(queries):
        result[image_id] = [
            (p + 1, count, is_mirrored)  # positions are ids - 1
            for p, count, is_mirrored in index.candidates(
                upright,
                mirrored,
                top_k=TOP_K,
                min_shared=MIN_SHARED,
                exclude=images + position,
            )
        ]
    finished = time.perf_counter()
    peak = sampler.stop()
    return {
        "seconds": finished - generated,
        "generate_seconds": generated - started,
        "build_seconds": built - generated,
        "lookup_seconds": finished - built,
        "start_rss": start_rss,
        "vmrss_peak": peak,
        "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "candidates": sum(len(v) for v in result.values()),
        "copies_found": sum(1 for v in result.values() if v),
        "digest": digest(result),
    }


# --- the real linking on synthetic feature rows (--link) ----------------------------------------


def descriptors_for(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """(n, 32) ORB-like descriptors whose four 28-bit token ranges are `values` (n, 4)."""
    shifts = np.arange(27, -1, -1, dtype=np.int64)
    bits = ((values[:, :, None] >> shifts) & 1).astype(np.uint8).reshape(len(values), 112)
    head = np.packbits(bits, axis=1)  # 14 bytes
    tail = rng.integers(0, 256, (len(values), 18), dtype=np.uint8)
    return np.concatenate([head, tail], axis=1)


def feature_rows(rng: np.random.Generator, first_id: int, count: int, pool=None) -> list[dict]:
    """Feature rows (V2 layout) of images first_id...; with `pool` ((n, 128, 4) token values of
    stored images), 30% are copies keeping 40% of a stored image's keypoints."""
    from skinctl.dedup.features import V2, ImageFeatures, to_row

    values = _draw(rng, (count, KEYPOINTS, TABLES))
    mirror_values = _draw(rng, (count, KEYPOINTS, TABLES))
    rows = []
    for i in range(count):
        own = values[i]
        if pool is not None and rng.random() < 0.3:
            source = pool[int(rng.integers(0, len(pool)))]
            keep = rng.random(KEYPOINTS) < 0.4
            own = np.where(keep[:, None], source, own)
        points = (rng.random((KEYPOINTS, 2)) * 220).astype(np.float32)
        features = ImageFeatures(
            224,
            224,
            points,
            descriptors_for(rng, own),
            points,
            descriptors_for(rng, mirror_values[i]),
        )
        rows.append(to_row(first_id + i, features, V2))
    return rows


def link_fill(url: str, seed: int, images: int) -> dict:
    from sqlalchemy import func, insert, update

    from skinctl.db.engine import make_engine
    from skinctl.db.models import ImageDedupFeatures, TrainingImage

    engine = make_engine(url)
    rng = np.random.default_rng([seed, 7])
    started = time.perf_counter()
    for first in range(1, images + 1, 2_000):
        count = min(2_000, images + 1 - first)
        with engine.begin() as connection:
            connection.execute(
                insert(TrainingImage),
                [
                    {"id": first + i, "image_url": "memory://none", "dataset_source": "synthetic"}
                    for i in range(count)
                ],
            )
            connection.execute(insert(ImageDedupFeatures), feature_rows(rng, first, count))
            connection.execute(
                update(ImageDedupFeatures)
                .where(ImageDedupFeatures.image_id >= first)
                .values(linked_at=func.now())
            )
    engine.dispose()
    return {"fill_seconds": time.perf_counter() - started}


def link_batch(url: str, seed: int, images: int, batch: int, round_: int) -> dict:
    """Add a batch of new images (copies of the first stored ones among them) and link it."""
    from sqlalchemy import func, insert, select

    from skinctl.db.engine import make_engine
    from skinctl.db.models import ImageDedupFeatures, TrainingImage
    from skinctl.dedup import link

    engine = make_engine(url)
    rng = np.random.default_rng([seed, 11, round_])
    pool_rng = np.random.default_rng([seed, 7])  # the first stored images' values again
    pool = _draw(pool_rng, (2_000, KEYPOINTS, TABLES))
    with engine.connect() as connection:
        first = int(connection.execute(select(func.max(TrainingImage.id))).scalar_one()) + 1
    with engine.begin() as connection:
        connection.execute(
            insert(TrainingImage),
            [
                {"id": first + i, "image_url": "memory://none", "dataset_source": "synthetic"}
                for i in range(batch)
            ],
        )
        connection.execute(insert(ImageDedupFeatures), feature_rows(rng, first, batch, pool))
    del pool
    start_rss = RssSampler.now()
    sampler = RssSampler()
    started = time.perf_counter()
    summary = link(engine, None, image_ids=list(range(first, first + batch)), workers=1)
    seconds = time.perf_counter() - started
    peak = sampler.stop()
    engine.dispose()
    return {
        "seconds": seconds,
        "start_rss": start_rss,
        "vmrss_peak": peak,
        "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "queries": summary.images,
        "stored_images": summary.stored_images,
        "candidates": summary.candidates,
    }


def measure_link(server_url: str, images: int, batch: int, seed: int) -> dict:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from skinctl.db import migrate
    from skinctl.db.engine import make_engine

    name = f"skinctl_bench_link_{os.getpid()}_{images}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        filled = child(["link-fill", url, str(seed), str(images), "0"])
        print(f"filled {images:,}: {json.dumps(filled)}", file=sys.stderr)
        passes = []
        for round_ in (1, 2):
            figures = child([f"link-{round_}", url, str(seed), str(images), str(batch)])
            print(f"link pass {round_}: {json.dumps(figures)}", file=sys.stderr)
            passes.append(figures)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
    return {"fill": filled, "passes": passes}


def report_link(images: int, batch: int, figures: dict) -> None:
    mb = 1024 * 1024
    print(f"\nlink(): {images:,} stored images (features in the database), batches of {batch:,}")
    print(f"  fill {figures['fill']['fill_seconds']:.0f} s")
    names = ("first pass (indexes every stored image)", "second pass (store up to date)")
    for name, p in zip(names, figures["passes"], strict=True):
        print(
            f"  {name}: {p['seconds']:.1f} s, peak RSS {p['maxrss'] / mb:.0f} MB "
            f"(VmRSS {p['vmrss_peak'] / mb:.0f} MB, {p['start_rss'] / mb:.0f} MB before), "
            f"{p['queries']} queries against {p['stored_images']:,} images, "
            f"{p['candidates']} candidate pairs"
        )


# --- orchestration -----------------------------------------------------------------------------


def fill(url: str, seed: int, images: int) -> dict:
    from skinctl.db.engine import make_engine
    from skinctl.dedup.features import V2
    from skinctl.dedup.postings import PostingStore

    engine = make_engine(url)
    store = PostingStore(engine, V2.method)
    started = time.perf_counter()
    postings = 0
    for chunk in range((images + CHUNK - 1) // CHUNK):
        lists = stored_chunk(seed, chunk, images)
        postings += sum(len(t) for t in lists)
        first = chunk * CHUNK + 1
        with engine.begin() as connection:
            store.append(connection, list(range(first, first + len(lists))), lists)
    appended = time.perf_counter()
    merged = store.compact()
    compacted = time.perf_counter()
    size = store.size_bytes()
    segments = len(store.segments())
    engine.dispose()
    return {
        "append_seconds": appended - started,
        "compact_seconds": compacted - appended,
        "merged": merged,
        "segments": segments,
        "postings": postings,
        "store_bytes": size,
    }


def child(args: list[str]) -> dict:
    # a database URL (and its password) goes by the environment: a command line is visible
    # to `ps`
    urls = [a for a in args if a.startswith("postgresql")]
    output = subprocess.run(
        [sys.executable, __file__, "--child", *("env" if a in urls else a for a in args)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "SKINCTL_BENCH_URL": urls[0] if urls else ""},
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def measure(
    server_url: str, scratch: str, images: int, batch: int, seed: int, memory_index: bool
) -> dict:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from skinctl.db import migrate
    from skinctl.db.engine import make_engine

    name = f"skinctl_bench_tokens_{os.getpid()}_{images}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        filled = child(["fill", url, str(seed), str(images), "0"])
        print(f"filled {images:,}: {json.dumps(filled)}", file=sys.stderr)
        batch_file = str(Path(scratch) / f"batch-{images}.npz")
        child(["batch", batch_file, str(seed), str(images), str(batch)])
        store = child(["store", url, batch_file, "0", "0"])
        print(f"store path {images:,}: {json.dumps(store)}", file=sys.stderr)
        memory = (
            child(["memory", "-", batch_file, str(seed), str(images)]) if memory_index else None
        )
        if memory:
            print(f"memory path {images:,}: {json.dumps(memory)}", file=sys.stderr)
        engine = make_engine(url)
        from skinctl.dedup.features import V2
        from skinctl.dedup.postings import PostingStore

        filled["store_bytes"] = PostingStore(engine, V2.method).size_bytes()
        engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
    return {"fill": filled, "store": store, "memory": memory}


def report(images: int, batch: int, figures: dict) -> None:
    fill_, store, memory = figures["fill"], figures["store"], figures["memory"]
    mb = 1024 * 1024
    total = images + batch
    postings = fill_["postings"] * total / images  # the batch's, at the same rate
    print(f"\n{images:,} stored images, a batch of {batch:,} new images")
    print(
        f"  store: {fill_['store_bytes'] / total:,.0f} bytes/image, "
        f"{fill_['store_bytes'] / max(postings, 1):.2f} bytes/posting "
        f"({postings / images:.0f} postings/image), {fill_['segments']} segments; "
        f"filled in {fill_['append_seconds']:.1f} s, merged {fill_['merged']} in "
        f"{fill_['compact_seconds']:.1f} s"
    )
    print(f"  {'path':8}{'seconds':>10}{'peak RSS MB':>14}{'VmRSS MB':>11}{'start MB':>10}  detail")
    print(
        f"  {'store':8}{store['seconds']:10.2f}{store['maxrss'] / mb:14.0f}"
        f"{store['vmrss_peak'] / mb:11.0f}{store['start_rss'] / mb:10.0f}  "
        f"append {store['append_seconds']:.2f} s, lookup {store['lookup_seconds']:.2f} s "
        f"in {store['passes']} pass(es); {store['candidates']} candidates, "
        f"{store['copies_found']} queries with some"
    )
    if memory:
        print(
            f"  {'memory':8}{memory['seconds']:10.2f}{memory['maxrss'] / mb:14.0f}"
            f"{memory['vmrss_peak'] / mb:11.0f}{memory['start_rss'] / mb:10.0f}  "
            f"build {memory['build_seconds']:.2f} s, lookup {memory['lookup_seconds']:.2f} s "
            f"(+ {memory['generate_seconds']:.1f} s making the token lists, not counted); "
            f"{memory['candidates']} candidates"
        )
        same = store["digest"] == memory["digest"]
        print(f"  same candidates in both paths: {'yes' if same else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", default="100000", help="stored image counts, comma-separated")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-memory-index", action="store_true")
    parser.add_argument("--link", type=int, help="run the real linking at this many images")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        path, url, seed, images, batch = args.child
        url = os.environ["SKINCTL_BENCH_URL"] if url == "env" else url
        if path == "link-fill":
            print(json.dumps(link_fill(url, int(seed), int(images))))
        elif path.startswith("link-"):
            round_ = int(path.split("-")[1])
            print(json.dumps(link_batch(url, int(seed), int(images), int(batch), round_)))
        elif path == "fill":
            print(json.dumps(fill(url, int(seed), int(images))))
        elif path == "batch":  # url: the file the batch goes to
            save_batch(url, batch_queries(int(seed), int(images), int(batch)))
            print("{}")
        elif path == "store":  # seed: the batch file
            print(json.dumps(run_store(url, seed)))
        else:  # url "-", then the batch file, seed, images
            print(json.dumps(run_memory(seed, int(images), int(batch))))
        return
    sizes = sorted(int(s) for s in args.images.split(","))
    server_url = os.environ.get("SKINCTL_TEST_DATABASE_URL")
    with tempfile.TemporaryDirectory(prefix="skinctl-tokens-") as scratch:
        server = None
        if server_url:
            from skinctl.config import Settings

            server_url = Settings(database_url=server_url).database_url
        else:
            from sqlalchemy.engine import make_url

            from skinctl.db.embedded import EmbeddedPostgres

            server = EmbeddedPostgres(Path(scratch) / "home")
            url = server.ensure_running(announce=lambda _m: None)
            server_url = (
                make_url(url).set(database="postgres").render_as_string(hide_password=False)
            )
        results, linked = {}, {}
        try:
            if args.link:
                linked = measure_link(server_url, args.link, args.batch, args.seed)
            else:
                results = {
                    size: measure(
                        server_url, scratch, size, args.batch, args.seed, not args.no_memory_index
                    )
                    for size in sizes
                }
        finally:
            if server is not None:
                server.stop()
    if args.link:
        report_link(args.link, args.batch, linked)
        return
    for size in sizes:
        report(size, args.batch, results[size])


if __name__ == "__main__":
    main()
