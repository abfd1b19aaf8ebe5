"""`skinctl serve` over HTTP against the same images through the model in process, in one run.

    PYTHONPATH=. python bench/serve.py [--images N] [--requests N] [--size PX]

Sets up a throw-away embedded PostgreSQL (or SKINCTL_TEST_DATABASE_URL's server) in a temporary
home, registers a 128 px small-cnn (untrained weights: the same computation as a trained one)
and promotes it, then measures:

- in process: the served model's own batch call (decode + resize + model, one compiled graph)
  on batches of 32, and the `skinctl predict` path (decode_files + model.predict) for reference;
- over HTTP: a real `skinctl serve` process on loopback (no keys), requests/s and p50/p95/p99
  latency at concurrency 1, 8 and 32. Every request is fully handled: ingest's validation and
  analysis, batching, the model, the JSON answer. The client runs on the same machine, so it
  sends pre-encoded HTTP/1.1 requests over keep-alive connections to cost as little as it can.

Uses ../shared/data/skin_types JPEGs (640 px) when present, else generated 640 px JPEGs.
Targets (issue 12): throughput at concurrency 32 >= 0.6 of the in-process batch rate; p95 at
concurrency 8 under 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# ../shared/data from the main checkout; worktrees sit one level deeper
SHARED = next(
    (
        p / "shared" / "data" / "skin_types"
        for p in (ROOT.parent, ROOT.parents[1])
        if (p / "shared" / "data" / "skin_types").exists()
    ),
    ROOT.parent / "shared",
)
CLASSES = ["acne", "eczema", "rosacea"]


def source_images(n: int) -> tuple[list[bytes], str]:
    files = sorted(SHARED.glob("train/*/*.jpg"))[:n] if SHARED.exists() else []
    if len(files) >= n:
        return [f.read_bytes() for f in files], f"skin_types JPEGs ({SHARED})"
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        buffer = io.BytesIO()
        smooth = rng.integers(60, 200, (20, 20, 3), dtype=np.uint8)
        Image.fromarray(smooth).resize((640, 640), Image.Resampling.BICUBIC).save(buffer, "JPEG")
        out.append(buffer.getvalue())
    return out, "generated 640 px JPEGs"


def database(home: Path) -> tuple[str, object]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    configured = os.environ.get("SKINCTL_TEST_DATABASE_URL")
    server = None
    if configured:
        admin_url = configured
    else:
        from skinctl.db.embedded import EmbeddedPostgres

        server = EmbeddedPostgres(home / "pg")
        url = server.ensure_running(announce=lambda _m: None)
        admin_url = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    name = f"skinctl_bench_serve_{secrets.token_hex(3)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), server


def register_model(url: str, home: Path, size: int):
    """A 128 px small-cnn saved to the image store, recorded as a run and promoted."""
    from sqlalchemy.orm import Session

    from skinctl.db import migrate
    from skinctl.db.engine import make_engine
    from skinctl.db.models import TrainingRun
    from skinctl.registry.service import promote
    from skinctl.registry.tasks import Task
    from skinctl.storage.local import LocalStorage
    from skinctl.train.architectures import build_model
    from skinctl.train.pipeline import tensorflow

    tensorflow()
    engine = make_engine(url)
    migrate.upgrade(engine)
    storage = LocalStorage(str(home / "images"))
    model = build_model("small-cnn", size, len(CLASSES))
    path = home / "bench.keras"
    model.save(path)
    storage.put("models/run-1.keras", path.read_bytes())
    with Session(engine) as session, session.begin():
        run = TrainingRun(
            model_name="bench-small-cnn",
            version="1",
            task="condition",
            architecture="small-cnn",
            status="finished",
            accuracy=0.5,
            majority_rate=0.34,
            hyperparameters={"classes": CLASSES, "image_size": size, "task": "condition"},
            metrics={"test": {"accuracy_ci95": [0.4, 0.6]}},
            model_uri=storage.url_for("models/run-1.keras"),
        )
        session.add(run)
    promotion = promote(engine, storage, 1, Task.condition, user="bench", force=True).promotion
    return engine, storage, promotion


def in_process(engine, storage, promotion, home: Path, images: list[bytes], batch: int):
    """Images/s through the served model's own batch call, and through the `skinctl predict`
    path; returns a function that measures the first again (the machine is shared: the
    baseline is taken before and after the HTTP levels, and the higher one is used)."""
    from skinctl.serve.models import load_served_model, tf_ready
    from skinctl.train.pipeline import decode_files

    served = load_served_model(engine, storage, promotion, home)
    ready = [tf_ready(d) for d in images]
    served.predict(ready[:batch])

    def served_rate() -> float:
        start = time.perf_counter()
        for i in range(0, len(ready), batch):
            served.predict(ready[i : i + batch])
        return len(ready) / (time.perf_counter() - start)

    model, size = served.predictor.model, served.facts.image_size
    model.predict(decode_files(images[:batch], size), verbose=0)
    start = time.perf_counter()
    for i in range(0, len(images), batch):
        model.predict(decode_files(images[i : i + batch], size), verbose=0)
    predict_rate = len(images) / (time.perf_counter() - start)
    return served_rate, predict_rate


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(url: str, home: Path, port: int) -> subprocess.Popen:
    import httpx

    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SKINCTL_DATABASE_URL": url,
        "SKINCTL_HOME": str(home),
        "SKINCTL_CONFIG": str(home / "none.toml"),
        "DATABASE_URL": "",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    log = (home / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "skinctl", "serve", "--no-auth", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"skinctl serve exited:\n{(home / 'serve.log').read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("skinctl serve did not become ready")


def multipart_request(port: int, data: bytes) -> bytes:
    """One complete HTTP/1.1 request (headers and multipart body), encoded once up front so the
    load generator, which shares the machine with the server, spends next to no CPU."""
    boundary = b"skinctlbench" + secrets.token_hex(8).encode()
    body = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="image"; '
        b'filename="face.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        + data
        + b"\r\n--"
        + boundary
        + b"--\r\n"
    )
    head = (
        f"POST /api/v1/ml/analyze-condition HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary.decode()}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    return status


async def http_level(
    port: int, requests_: list[bytes], concurrency: int, requests: int
) -> tuple[float, np.ndarray]:
    """`requests` requests over `concurrency` keep-alive connections; every answer must be 200."""
    latencies: list[float] = []
    counter = iter(range(requests))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await _exchange(reader, writer, requests_[0])  # warm the connection
            await ready.wait()
            for i in counter:
                start = time.perf_counter()
                status = await _exchange(reader, writer, requests_[i % len(requests_)])
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    raise SystemExit(f"HTTP {status} at concurrency {concurrency}")
        finally:
            writer.close()

    ready = asyncio.Event()
    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(0.5)
    start = time.perf_counter()
    ready.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    return requests / elapsed, np.asarray(latencies) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--requests", type=int, default=400, help="per concurrency level")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()

    images, what = source_images(args.images)
    with tempfile.TemporaryDirectory(prefix="skinctl-bench-serve-") as tmp:
        home = Path(tmp)
        url, server = database(home)
        process = None
        try:
            engine, storage, promotion = register_model(url, home, args.size)
            measure, predict_rate = in_process(engine, storage, promotion, home, images, args.batch)
            before = measure()
            port = free_port()
            process = start_server(url, home, port)
            encoded = [multipart_request(port, data) for data in images]
            rows, server_side = [], []
            for concurrency in (1, 8, 32):
                requests = max(args.requests // 4, 50) if concurrency == 1 else args.requests
                rate, latency = asyncio.run(http_level(port, encoded, concurrency, requests))
                rows.append((concurrency, requests, rate, *np.percentile(latency, [50, 95, 99])))
                server_side.append(_server_latency(port))
            batches = _batch_sizes(port)
            process.terminate()  # the server idles, but leave the cores to the last baseline
            process.wait(20)
            process = None
            after = measure()
            served_rate = max(before, after)
        finally:
            if process is not None:
                process.terminate()
                process.wait(20)
            if "engine" in locals():
                engine.dispose()
            if server is not None:
                server.stop()

    cores = os.cpu_count()
    print(
        f"images: {len(images)} {what}; model: small-cnn {args.size} px, {len(CLASSES)} classes; "
        f"{cores} cores (shared with other work while measured)"
    )
    print(
        f"in process, served batch call (decode+resize+model, batch {args.batch}): "
        f"{before:8.1f} before, {after:8.1f} after the HTTP levels images/s; baseline = the higher"
    )
    print(
        f"in process, skinctl predict path (decode_files + model.predict, batch {args.batch}): "
        f"{predict_rate:8.1f} images/s"
    )
    print()
    print(
        f"{'concurrency':>11} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8} {'vs in-process':>14}"
    )
    for concurrency, requests, rate, p50, p95, p99 in rows:
        print(
            f"{concurrency:>11} {requests:>8} {rate:>8.1f} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f} "
            f"{rate / served_rate:>14.2f}"
        )
    print()
    print(
        "server-side mean time per analyze request (its own histogram, cumulative by level): "
        + ", ".join(f"{ms:.1f} ms" for ms in server_side)
    )
    print(f"server batches (images per model call): {batches}")
    c32 = rows[-1][2] / served_rate
    p95_8 = rows[1][4]
    print(
        f"targets: c=32 throughput {c32:.2f} of in-process (>= 0.6: {'met' if c32 >= 0.6 else 'NOT met'}); "
        f"p95 at c=8 {p95_8:.0f} ms (< 150: {'met' if p95_8 < 150 else 'NOT met'})"
    )


_seen = [0.0, 0.0]


def _server_latency(port: int) -> float:
    """Mean seconds the server itself spent per analyze request since the last call, in ms."""
    import httpx

    count = total = 0.0
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics").text.splitlines():
        if "analyze-condition" not in line:
            continue
        if line.startswith("skinctl_http_request_duration_seconds_count"):
            count = float(line.split()[-1])
        elif line.startswith("skinctl_http_request_duration_seconds_sum"):
            total = float(line.split()[-1])
    delta_count, delta_total = count - _seen[0], total - _seen[1]
    _seen[:] = [count, total]
    return 1000 * delta_total / delta_count if delta_count else 0.0


def _batch_sizes(port: int) -> str:
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    count = total = 0.0
    for line in text.splitlines():
        if line.startswith("skinctl_model_batch_size_count"):
            count = float(line.split()[-1])
        elif line.startswith("skinctl_model_batch_size_sum"):
            total = float(line.split()[-1])
    return (
        f"{count:.0f} model calls, {total / count if count else 0:.1f} images per call on average"
    )


if __name__ == "__main__":
    main()
