"""Reviews at the Sephora set's real size: `ingest reviews` and `reviews score` on a million rows,
against plain COPY of the same file into a bare table, in the same run.

    PYTHONPATH=. SKINCTL_HOME=... python bench/reviews.py [--rows 1000000] [--epochs 3] [--no-score]

(from a git worktree, set SKINCTL_SHARED_DATA=/path/to/shared/data).

Makes a file of --rows reviews by resampling the real rows of ../shared/data/sephora/reviews_2023
(each copy gets its own author id, so every row is a new review), in a scratch database created
on skinctl's configured server (dropped at the end). Prints, for the same file:
- bare COPY into a table of text columns (no parsing, no indexes): rows/s, the baseline;
- `skinctl ingest reviews` (Arrow reads and checks the rows, two connections COPY them into
  `reviews` with its keys; its secondary indexes and foreign keys are built and checked at the
  end): rows/s, ratio to the baseline (target >= 0.5), and the process's resident memory before
  and during it (flat = streamed). As in the README's order (`ingest products sephora`, then
  `ingest reviews sephora`), the products and the real reviews are loaded first, so the million
  rows go into a table that is not empty and are linked to their products as they are loaded
  (`--no-products` leaves the products out: every review then waits for its product);
- `skinctl reviews score` of every review (the million and the real ones) with a sentiment run
  trained on the real reviews beforehand: reviews/s (target >= 5,000).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from skinctl.config import load_settings
from skinctl.db import migrate
from skinctl.db.engine import engine_from_settings, make_engine

DATA = Path(
    os.environ.get("SKINCTL_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


class RssSampler(threading.Thread):
    """The largest resident size seen while a step runs (sampled every 0.1 s)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.largest = rss_mb()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.1):
            self.largest = max(self.largest, rss_mb())


def checkpoint(engine) -> None:
    """Write out what earlier steps left in the server's buffers and WAL, so that a step does
    not pay for the one before it."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("CHECKPOINT"))


def make_file(path: Path, rows: int, seed: int = 7) -> list[str]:
    """--rows reviews resampled from the real files, streamed to `path`."""
    real: list[list[str]] = []
    header: list[str] = []
    for source in sorted((DATA / "sephora" / "reviews_2023").glob("*.csv")):
        with source.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            real.extend(reader)
    author = header.index("author_id")
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i in range(rows):
            row = list(rng.choice(real))
            row[author] = f"{row[author]}-{i}"
            writer.writerow(row)
        # on disk before anything is timed: the kernel writing it back meanwhile slowed the
        # step after it by up to a second
        handle.flush()
        os.fsync(handle.fileno())
    return header


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--no-score", action="store_true", help="Time the ingest only (no training, no scoring)."
    )
    parser.add_argument(
        "--no-products",
        action="store_true",
        help="Do not load the products first (every review waits for its product).",
    )
    args = parser.parse_args()

    from skinctl.products.ingest import ingest_products, ingest_reviews
    from skinctl.reviews.score import score_reviews
    from skinctl.reviews.train import SentimentOptions, train_sentiment
    from skinctl.storage import open_storage

    settings = load_settings().settings
    server = engine_from_settings(settings, check_schema=False)  # only to make a scratch database
    name = f"skinctl_bench_reviews_{os.getpid()}"
    with server.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(str(server.url.render_as_string(hide_password=False))).set(database=name)
    engine = make_engine(url.render_as_string(hide_password=False))
    folder = Path(tempfile.mkdtemp(prefix="bench-reviews-"))
    try:
        migrate.upgrade(engine)
        if not args.no_products:
            ingest_products(engine, DATA / "sephora" / "product_info.csv", "sephora", match=False)
        # a sentiment run to score with, trained on the real reviews (not timed)
        ingest_reviews(engine, sorted((DATA / "sephora" / "reviews_2023").glob("*.csv")))
        storage = open_storage(str(folder / "store"))
        run_id = (
            None
            if args.no_score
            else train_sentiment(engine, storage, SentimentOptions(epochs=args.epochs))
        )
        started = time.perf_counter()
        path = folder / "reviews_bench.csv"
        header = make_file(path, args.rows)
        size = path.stat().st_size
        print(
            f"file: {args.rows:,} rows, {size / 1e6:.0f} MB, made in {time.perf_counter() - started:.1f} s"
        )

        # baseline: plain COPY of the same file into a bare table
        with engine.begin() as connection:
            connection.execute(
                text("CREATE TABLE bare_reviews (" + ", ".join(f'"{c}" text' for c in header) + ")")
            )
        checkpoint(engine)
        started = time.perf_counter()
        with engine.begin() as connection, path.open(encoding="utf-8") as handle:
            driver = connection.connection.driver_connection
            assert driver is not None
            cursor = driver.cursor()
            cursor.copy_expert(
                "COPY bare_reviews FROM STDIN WITH (FORMAT csv, HEADER true)", handle
            )
        copy_seconds = time.perf_counter() - started
        copy_rate = args.rows / copy_seconds
        # Its rows are not needed: dropped, so that vacuuming them does not run beside the
        # ingest; each step starts from a checkpoint.
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE bare_reviews"))
        checkpoint(engine)

        before = rss_mb()
        sampler = RssSampler()
        sampler.start()
        started = time.perf_counter()
        report = ingest_reviews(engine, [path])
        ingest_seconds = time.perf_counter() - started
        sampler.stopped.set()
        loaded = sum(t.inserted for t in report.tables)
        after = sampler.largest
        ingest_rate = args.rows / ingest_seconds

        scored, score_seconds = None, 0.0
        if run_id is not None:
            started = time.perf_counter()
            scored = score_reviews(engine, storage, folder, run_id)
            score_seconds = time.perf_counter() - started

        print()
        print(f"{'step':<34}{'rows':>11}{'seconds':>10}{'rows/s':>10}{'ratio':>8}")
        print(
            f"{'bare COPY (baseline)':<34}{args.rows:>11,}{copy_seconds:>10.1f}{copy_rate:>10,.0f}{1:>8.2f}"
        )
        print(
            f"{'skinctl ingest reviews':<34}{args.rows:>11,}{ingest_seconds:>10.1f}{ingest_rate:>10,.0f}"
            f"{ingest_rate / copy_rate:>8.2f}   (target >= 0.50; {loaded:,} inserted)"
        )
        if scored is not None:
            print(
                f"{'skinctl reviews score':<34}{scored.scored:>11,}{score_seconds:>10.1f}"
                f"{scored.scored / score_seconds:>10,.0f}{'':>8}   (target >= 5,000/s, model load included)"
            )
        print(
            f"resident memory: {before:,.0f} MB before the ingest, at most {after:,.0f} MB during it "
            f"(file {size / 1e6:,.0f} MB; process peak {peak_mb():,.0f} MB, TensorFlow included)"
        )
    finally:
        engine.dispose()
        with server.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()
        for child in sorted(folder.rglob("*"), reverse=True):
            child.unlink() if child.is_file() else child.rmdir()
        folder.rmdir()


if __name__ == "__main__":
    main()
