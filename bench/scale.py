"""Measured at scale: ingest and near-duplicate linking throughput, peak resident memory, database
size per image, `skinctl stats` and TUI first-paint time, near-duplicate lookup time and the
training input rate, at several sizes; extrapolated to a million from the measured growth.

    PYTHONPATH=. python bench/scale.py [--sizes 10000,100000] [--workers 2] [--seed 0]

For each size N it generates N photo-like images (seeded: smooth textured scenes of shapes and
gradients, no faces, about 5% planted near copies: cropped, brightened, re-encoded) in three
class folders, ingests them into a fresh database (embedded PostgreSQL, or the server
SKINCTL_TEST_DATABASE_URL names) and a fresh local store, then links near duplicates. Each
stage runs in a child process, so its peak RSS (the largest of the process and its workers) is
its own. The table ends with the growth between the two largest sizes and a million-image
figure extrapolated from that growth (a power law through the two points): an extrapolation,
not a measurement.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import math
import multiprocessing
import os
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLASSES = ("dry", "normal", "oily")
NEAR_COPY_EVERY = 20  # one planted near copy per 20 images (5%)
LOOKUPS = 50
TRAIN_SIZE = 128


# --- generating ------------------------------------------------------------------------------


def photo(seed: int) -> bytes:
    """A 320x240 textured scene: smooth colour field, shapes with soft edges, fine grain."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    field = noise.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(field).resize((320, 240), Image.Resampling.BICUBIC)
    pen = ImageDraw.Draw(image)
    for _ in range(rng.randint(6, 14)):
        x, y = rng.randrange(320), rng.randrange(240)
        w, h = rng.randint(10, 90), rng.randint(10, 90)
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            pen.ellipse((x, y, x + w, y + h), fill=colour)
        else:
            pen.polygon(
                [
                    (x + rng.randint(-w, w), y + rng.randint(-h, h))
                    for _ in range(rng.randint(3, 6))
                ],
                fill=colour,
            )
    image = image.filter(ImageFilter.SMOOTH)
    grain = noise.integers(-8, 9, (240, 320, 3), dtype=np.int16)
    pixels = np.clip(np.asarray(image, dtype=np.int16) + grain, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=88)
    return out.getvalue()


def near_copy(data: bytes, seed: int) -> bytes:
    from PIL import Image, ImageEnhance

    rng = random.Random(seed)
    image = Image.open(io.BytesIO(data)).convert("RGB")
    dx, dy = rng.randint(4, 16), rng.randint(4, 12)
    image = image.crop((dx, dy, 320 - dx, 240 - dy)).resize((320, 240))
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.9, 1.1))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=rng.randint(70, 85))
    return out.getvalue()


def _write_one(task: tuple[str, int, int]) -> int:
    folder, index, seed = task
    data = photo(seed * 10_000_019 + index)
    target = Path(folder) / CLASSES[index % 3] / f"img_{index:07d}.jpg"
    target.write_bytes(data)
    if index % NEAR_COPY_EVERY == 0:
        (target.parent / f"near_{index:07d}.jpg").write_bytes(near_copy(data, index))
        return 2
    return 1


def generate(folder: Path, count: int, seed: int, workers: int) -> int:
    """About `count` files (originals plus planted near copies); returns how many."""
    for name in CLASSES:
        (folder / name).mkdir(parents=True, exist_ok=True)
    originals = math.ceil(count / (1 + 1 / NEAR_COPY_EVERY))
    tasks = [(str(folder), index, seed) for index in range(originals)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return sum(pool.imap_unordered(_write_one, tasks, chunksize=64))


# --- stages (each in a child process: `--stage NAME URL STORE FOLDER WORKERS`) -----------------


def stage(name: str, url: str, store: str, folder: str, workers: int) -> dict:
    from skinctl.db.engine import make_engine

    engine = make_engine(url)
    started = time.perf_counter()
    out: dict = {}
    if name == "ingest":
        from skinctl.ingest.images import ingest_images
        from skinctl.ingest.options import IngestOptions

        options = IngestOptions(
            dataset="scale", storage_url=store, workers=workers, link_near_duplicates=False
        )
        summary = ingest_images(engine, Path(folder), options).summary
        out = {"images": summary.ingested, "scanned": summary.scanned}
    elif name == "link":
        from skinctl.dedup import link
        from skinctl.storage import open_storage

        linked = link(engine, open_storage(store), workers=workers, full=False)
        out = {"pairs": linked.pairs}
    elif name == "lookup":
        from sqlalchemy import text

        from skinctl.dedup.reports import image_duplicates

        with engine.connect() as connection:
            ids = [
                row[0]
                for row in connection.execute(
                    text("SELECT id FROM ml_training_images ORDER BY random() LIMIT :n"),
                    {"n": LOOKUPS},
                )
            ]
        started = time.perf_counter()
        times = []
        for image_id in ids:
            begun = time.perf_counter()
            image_duplicates(engine, image_id)
            times.append(time.perf_counter() - begun)
        times.sort()
        out = {"median_ms": 1000 * times[len(times) // 2]}
    elif name == "train_input":
        from sqlalchemy import text

        from skinctl.storage import open_storage
        from skinctl.train.pipeline import ByteReader, make_dataset

        with engine.connect() as connection:
            urls = [
                r[0] for r in connection.execute(text("SELECT image_url FROM ml_training_images"))
            ]
        reader = ByteReader(open_storage(store), cache_dir=Path(folder).parent / "tfdata")
        dataset = make_dataset(reader, urls, TRAIN_SIZE, 64, targets=None, training=True)
        rates = []
        for _ in range(2):
            begun = time.perf_counter()
            seen = sum(int(batch[0].shape[0]) for batch in dataset)
            rates.append(seen / (time.perf_counter() - begun))
        out = {"first_epoch": rates[0], "cached_epoch": rates[1]}
    engine.dispose()
    out["seconds"] = time.perf_counter() - started
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out["peak_rss_mb"] = max(self_rss, children_rss) / 1024
    return out


def run_stage(name: str, url: str, store: str, folder: Path, workers: int) -> dict:
    # the URL (and its password) goes by the environment: a command line is visible to `ps`
    result = subprocess.run(
        [sys.executable, __file__, "--stage", name, "env", store, str(folder), str(workers)],
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "SKINCTL_BENCH_URL": url,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"stage {name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- the database -----------------------------------------------------------------------------


def fresh_database(server_url: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from skinctl.db import migrate
    from skinctl.db.engine import make_engine

    name = f"skinctl_scale_{secrets.token_hex(4)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def database_bytes(url: str) -> tuple[int, int]:
    """(whole database, near-duplicate features table) in bytes."""
    from sqlalchemy import text

    from skinctl.db.engine import make_engine

    engine = make_engine(url)
    with engine.connect() as connection:
        total = connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
        features = connection.execute(
            text(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "WHERE c.relname = 'image_dedup_features'"
            )
        ).scalar_one()
    engine.dispose()
    return int(total), int(features)


def timed_cli(url: str, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "skinctl", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), "SKINCTL_DATABASE_URL": url},
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - started


def tui_first_paint(url: str, store: Path) -> float:
    spec = importlib.util.spec_from_file_location("bench_tui", ROOT / "bench" / "tui.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return float(module.launch(url, store, 0)["first_paint"])


def measure(server_url: str, size: int, seed: int, workers: int, scratch: Path) -> dict:
    folder = scratch / f"set-{size}" / "images"
    store = scratch / f"set-{size}" / "store"
    started = time.perf_counter()
    files = generate(folder, size, seed, workers)
    generated = time.perf_counter() - started
    url = fresh_database(server_url)
    store_url = f"file://{store}"
    ingest = run_stage("ingest", url, store_url, folder, workers)
    linking = run_stage("link", url, store_url, folder, workers)
    total, features = database_bytes(url)
    lookup = run_stage("lookup", url, store_url, folder, workers)
    train = run_stage("train_input", url, store_url, folder, workers)
    return {
        "files": files,
        "generate_s": generated,
        "ingest_images_per_s": ingest["scanned"] / ingest["seconds"],
        "ingest_peak_rss_mb": ingest["peak_rss_mb"],
        "link_images_per_s": ingest["images"] / linking["seconds"],
        "link_peak_rss_mb": linking["peak_rss_mb"],
        "near_duplicate_pairs": linking["pairs"],
        "db_bytes_per_image": total / max(1, ingest["images"]),
        "features_bytes_per_image": features / max(1, ingest["images"]),
        "stats_s": timed_cli(url, "stats", "--json"),
        "tui_first_paint_s": tui_first_paint(url, store),
        "lookup_ms": lookup["median_ms"],
        "train_first_epoch_images_per_s": train["first_epoch"],
        "train_cached_epoch_images_per_s": train["cached_epoch"],
        "train_peak_rss_mb": train["peak_rss_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000", help="image counts, comma-separated")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scratch", type=Path, default=None, help="where the sets go")
    parser.add_argument(
        "--from-log", type=Path, help="print the table again from the 'measured' lines of a log"
    )
    parser.add_argument("--stage", nargs=5, metavar=("NAME", "URL", "STORE", "FOLDER", "N"))
    args = parser.parse_args()
    if args.stage:
        name, url, store, folder, workers = args.stage
        url = os.environ["SKINCTL_BENCH_URL"] if url == "env" else url
        print(json.dumps(stage(name, url, store, folder, int(workers))))
        return
    if args.from_log:
        results = {}
        for line in args.from_log.read_text().splitlines():
            if line.startswith("measured "):
                size, _, figures = line[len("measured ") :].partition(": ")
                results[int(size.replace(",", ""))] = json.loads(figures)
        report(results)
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="skinctl-scale-", dir=args.scratch) as scratch:
        scratch_path = Path(scratch)
        server_url = os.environ.get("SKINCTL_TEST_DATABASE_URL")
        server = None
        if server_url:
            from skinctl.config import Settings

            server_url = Settings(database_url=server_url).database_url
        else:
            from sqlalchemy.engine import make_url

            from skinctl.db.embedded import EmbeddedPostgres

            server = EmbeddedPostgres(scratch_path / "home")
            url = server.ensure_running(announce=lambda _m: None)
            server_url = (
                make_url(url).set(database="postgres").render_as_string(hide_password=False)
            )
        try:
            results = {}
            for size in sizes:
                results[size] = measure(server_url, size, args.seed, args.workers, scratch_path)
                print(f"measured {size:,}: {json.dumps(results[size])}", file=sys.stderr)
        finally:
            if server is not None:
                server.stop()
    report(results)


def report(results: dict[int, dict]) -> None:
    sizes = sorted(results)
    keys = list(results[sizes[0]])
    header = f"{'figure':34}" + "".join(f"{n:>14,}" for n in sizes)
    if len(sizes) >= 2:
        header += f"{'growth':>10}{'1M (extrap.)':>16}"
    print(header)
    for key in keys:
        values = [float(results[n][key]) for n in sizes]
        line = f"{key:34}" + "".join(f"{v:14.1f}" for v in values)
        if len(sizes) >= 2:
            (n1, v1), (n2, v2) = (sizes[-2], values[-2]), (sizes[-1], values[-1])
            growth = v2 / v1 if v1 else float("nan")
            if v1 > 0 and v2 > 0:
                exponent = math.log(v2 / v1) / math.log(n2 / n1)
                million = v2 * (1_000_000 / n2) ** exponent
                # never better than measured: a rate that rose or a cost that fell between
                # the two sizes is warm-up or load from other processes, not a trend
                better = min if key.endswith("_per_s") else max
                million = better(million, v2)
            else:
                million = float("nan")
            line += f"{growth:10.2f}{million:16.1f}"
        print(line)
    if len(sizes) >= 2:
        print(
            f"growth = value at {sizes[-1]:,} / value at {sizes[-2]:,}; the 1M column is "
            "extrapolated from that growth (a power law through the two points), not measured; "
            "no figure is extrapolated to be better than its value at the largest size."
        )


if __name__ == "__main__":
    main()
