"""TUI benchmark: launch-to-first-rows and keypress-to-committed verify latency on 100,000 images.

    python bench/tui.py [--images 100000] [--verifies 60]

Builds two fresh databases on the embedded PostgreSQL (or SKINCTL_TEST_DATABASE_URL's server),
bulk-loaded with COPY: the big one, and a 100-image baseline. For each it starts a new Python
process that opens the app headless (Textual's run_test) on the image browser and reports the
time from process start to the first page of rows painted; then, on the big one, it opens the
verification queue and presses Enter N times, timing each keypress until the change is
committed in PostgreSQL. The baselines measured in the same run: first paint on 100 images, and
a direct `LabelService.verify` call (no TUI) for the latency.
Targets on this machine: first paint < 1.5 s; verify p95 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

THINK_SECONDS = 0.25  # between an image appearing and the next keypress (not counted)
CLASSES = ["acne", "eczema", "rosacea", "milia", "keratosis", "carcinoma"]


def server_url(home: Path) -> tuple[str, object | None]:
    from sqlalchemy.engine import make_url

    configured = os.environ.get("SKINCTL_TEST_DATABASE_URL")
    if configured:
        from skinctl.config import Settings

        return Settings(database_url=configured).database_url, None
    from skinctl.db.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(home)
    url = server.ensure_running(announce=lambda _m: None)
    return make_url(url).set(database="postgres").render_as_string(hide_password=False), server


def fresh_database(admin_url: str, images: int, store: Path) -> str:
    """A new database at schema head with `images` images and labels, loaded with COPY."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from skinctl.db import migrate
    from skinctl.db.engine import make_engine

    name = f"skinctl_bench_{images}_{secrets.token_hex(3)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate.upgrade(engine)

    # 64 real small images, shared round-robin by the rows (previews then have bytes to draw)
    from PIL import Image

    from skinctl.storage import content_key
    from skinctl.storage.local import LocalStorage

    storage = LocalStorage(str(store))
    urls = []
    for i in range(64):
        buffer = io.BytesIO()
        Image.new("RGB", (64, 48), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)).save(
            buffer, "PNG"
        )
        key = content_key(f"{i:064x}", "png")
        storage.put(key, buffer.getvalue())
        urls.append(storage.url_for(key))

    image_rows, label_rows, duplicate_rows = io.StringIO(), io.StringIO(), io.StringIO()
    label_id = 0
    for i in range(1, images + 1):
        cls = CLASSES[i % len(CLASSES)]
        split = ("train", "valid", "test")[i % 3]
        flags = "{dark}" if i % 97 == 0 else "{}"
        image_rows.write(
            f"{i},{urls[i % 64]},{split}/{cls}/img_{i}.png,{i:064x},bench,64,48,png,{split},{flags}\n"
        )
        label_id += 1
        label_rows.write(f"{label_id},{i},{cls},condition,dataset,pending,false\n")
        if i % 50 == 0:  # 2 % carry a second, different label: the conflicts the queue shows first
            label_id += 1
            label_rows.write(
                f"{label_id},{i},{CLASSES[(i + 1) % len(CLASSES)]},condition,dataset,pending,false\n"
            )
        if i % 100 == 0 and i > 1:
            duplicate_rows.write(f"{i - 1},{i},4,phash\n")
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table, columns, buffer in (
            (
                "ml_training_images",
                "id, image_url, local_path, image_hash, dataset_source, width, height, format, split, quality_flags",
                image_rows,
            ),
            (
                "skin_condition_labels",
                "id, image_id, condition_type, task, source, status, verified",
                label_rows,
            ),
            ("image_duplicates", "image_id_a, image_id_b, distance, method", duplicate_rows),
        ):
            buffer.seek(0)
            cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
        cursor.execute(
            "SELECT setval('ml_training_images_id_seq', (SELECT max(id) FROM ml_training_images))"
        )
        cursor.execute(
            "SELECT setval('skin_condition_labels_id_seq', (SELECT max(id) FROM skin_condition_labels))"
        )
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    engine.dispose()
    return url


def child(url: str, store: str, verifies: int) -> None:
    """Runs in a fresh process: open the app, report first paint and verify latencies."""
    started = float(os.environ["BENCH_T0"])
    from skinctl.config import Settings
    from skinctl.db.engine import make_engine
    from skinctl.storage.local import LocalStorage
    from skinctl.tui.app import SkinctlApp

    imported = time.time()
    settings = Settings(database_url=url, home=Path(store).parent, user="bench")
    engine = make_engine(url)
    result: dict[str, object] = {"imports": imported - started, "connect": time.time() - imported}

    async def run() -> None:
        app = SkinctlApp(
            settings,
            engine,
            start="browser",
            storage=LocalStorage(store),
            image_renderer="halfcell",
        )
        from textual import events
        from textual.widgets import DataTable

        show = app._display

        def display(screen, renderable) -> None:
            """The first frame the compositor hands to the terminal with browser rows in it
            (headless skips only the write itself)."""
            if (
                "first_paint" not in result
                and renderable is not None
                and screen.__class__.__name__ == "BrowserScreen"
            ):
                tables = screen.query(DataTable)
                if tables and tables.first().row_count:
                    result["first_paint"] = time.time() - started
            show(screen, renderable)

        app._display = display
        async with app.run_test(size=(120, 36)):
            while "first_paint" not in result:
                await asyncio.sleep(0.002)
            if not verifies:
                return
            opened = time.perf_counter()
            app.switch_mode("queue")
            queue = app.screen
            while queue.item is None:
                await asyncio.sleep(0.005)
            result["queue_open"] = time.perf_counter() - opened
            latencies = []
            for _ in range(verifies):
                while queue.item is None or queue.busy:
                    await asyncio.sleep(0.001)
                await asyncio.sleep(THINK_SECONDS)  # a person looks at the image before the key
                shown = queue.item.label.id
                count = len(queue.commit_seconds)
                # The key arrives the way a terminal driver delivers it (Pilot.press would also
                # wait for the app to go idle, which is harness time, not the user's).
                key = events.Key("enter", "\r")
                key.set_sender(app)
                pressed = time.perf_counter()
                app._driver.send_message(key)
                while len(queue.commit_seconds) == count:
                    await asyncio.sleep(0.0005)
                latencies.append(time.perf_counter() - pressed)
                while queue.item is None or queue.item.label.id == shown:  # next image shown
                    await asyncio.sleep(0.001)
            result["verify"] = latencies
            result["breakdown"] = queue.commit_breakdown

    asyncio.run(run())
    engine.dispose()
    print(json.dumps(result))


def minimal_child() -> None:
    """The framework's floor: a bare Textual app painting a 100-row DataTable, timed the same
    way (process start to the first composed frame with rows)."""
    started = float(os.environ["BENCH_T0"])
    from textual.app import App
    from textual.widgets import DataTable, Footer, Header

    result: dict[str, float] = {}

    class Minimal(App):
        def compose(self):
            yield Header()
            yield DataTable()
            yield Footer()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("id", "dataset", "labels")
            for i in range(100):
                table.add_row(str(i), "bench", "acne")

        def _display(self, screen, renderable) -> None:
            if "first_paint" not in result and renderable is not None and self.query(DataTable):
                result["first_paint"] = time.time() - started
            super()._display(screen, renderable)

    async def run() -> None:
        async with Minimal().run_test(size=(120, 36)):
            while "first_paint" not in result:
                await asyncio.sleep(0.002)

    asyncio.run(run())
    print(json.dumps(result))


def launch_minimal() -> float:
    env = {**os.environ, "BENCH_T0": repr(time.time()), "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, __file__, "--minimal"], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["first_paint"]


def launch(url: str, store: Path, verifies: int) -> dict:
    # the URL (and its password) goes by the environment: a command line is visible to `ps`
    env = {
        **os.environ,
        "BENCH_T0": repr(time.time()),
        "PYTHONPATH": str(ROOT),
        "SKINCTL_BENCH_URL": url,
    }
    out = subprocess.run(
        [sys.executable, __file__, "--child", "env", str(store), str(verifies)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def direct_verify_baseline(url: str, count: int) -> list[float]:
    from sqlalchemy import text

    from skinctl.db.engine import make_engine
    from skinctl.labels import LabelService

    engine = make_engine(url)
    service = LabelService(engine, "baseline")
    with engine.connect() as connection:
        ids = (
            connection.execute(
                text(
                    "SELECT id FROM skin_condition_labels WHERE status = 'pending' ORDER BY id DESC LIMIT :n"
                ),
                {"n": count},
            )
            .scalars()
            .all()
        )
    times = []
    for label_id in ids:
        t = time.perf_counter()
        service.verify(label_id, 1)
        times.append(time.perf_counter() - t)
    engine.dispose()
    return times


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--verifies", type=int, default=60)
    parser.add_argument(
        "--runs", type=int, default=3, help="launches per database (median reported)"
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--minimal", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.minimal:
        minimal_child()
        return
    if args.child:
        url = os.environ["SKINCTL_BENCH_URL"] if args.child[0] == "env" else args.child[0]
        child(url, args.child[1], int(args.child[2]))
        return

    with tempfile.TemporaryDirectory(prefix="skinctl-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        admin_url, server = server_url(home)
        try:
            store = Path(tmp) / "images"
            t = time.perf_counter()
            big = fresh_database(admin_url, args.images, store)
            print(
                f"loaded {args.images:,} images + labels with COPY in {time.perf_counter() - t:.1f} s"
            )
            small = fresh_database(admin_url, 100, store)

            small_paints = [launch(small, store, 0)["first_paint"] for _ in range(args.runs)]
            floor = statistics.median(launch_minimal() for _ in range(args.runs))
            big_runs = [launch(big, store, 0) for _ in range(args.runs - 1)]
            measured = launch(big, store, args.verifies)
            big_paints = [r["first_paint"] for r in big_runs] + [measured["first_paint"]]
            baseline = direct_verify_baseline(big, args.verifies)

            paint, paint_base = statistics.median(big_paints), statistics.median(small_paints)
            print(
                f"  of which: process start + imports {measured['imports']:.3f} s, connect {measured['connect']:.3f} s, "
                f"app start to rows painted {measured['first_paint'] - measured['imports'] - measured['connect']:.3f} s"
            )
            verify = measured["verify"]
            print(
                f"first rows painted, {args.images:,} images: median {paint:.3f} s over {len(big_paints)} launches (target < 1.5 s)"
            )
            print(
                f"first rows painted, 100 images (baseline): median {paint_base:.3f} s;  ratio {paint / paint_base:.2f}x"
            )
            print(
                f"bare Textual app with a 100-row DataTable (framework floor): median {floor:.3f} s;  ratio {paint / floor:.2f}x"
            )
            print(f"queue opened on {args.images:,} images in {measured['queue_open']:.3f} s")
            print(
                f"verify keypress -> committed ({len(verify)} presses): median {statistics.median(verify) * 1000:.1f} ms, "
                f"p95 {p95(verify) * 1000:.1f} ms (target p95 < 100 ms)"
            )
            parts = list(zip(*measured["breakdown"], strict=True))
            print(
                "  of which (medians): key to action + worker start "
                f"{statistics.median([v - a - b - c for v, a, b, c in zip(verify, *parts, strict=True)]) * 1000 + statistics.median(parts[0]) * 1000:.1f} ms, "
                f"commit in the worker {statistics.median(parts[1]) * 1000:.1f} ms, back on the UI thread {statistics.median(parts[2]) * 1000:.1f} ms"
            )
            print(
                f"direct LabelService.verify (baseline): median {statistics.median(baseline) * 1000:.1f} ms, "
                f"p95 {p95(baseline) * 1000:.1f} ms;  TUI/direct median ratio {statistics.median(verify) / statistics.median(baseline):.2f}x"
            )
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
