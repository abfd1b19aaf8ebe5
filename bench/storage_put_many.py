"""put_many (thread pool) against one-by-one puts, on the GCS emulator and a local folder.

    PYTHONPATH=. python bench/storage_put_many.py [--count 300] [--size 60000]

Prints the time of each and the ratio against the sequential baseline measured in the same run.
The in-process emulator serves one request at a time, so the gain measured here is a floor: real
GCS latency (tens of ms per request) is what the threads hide.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import tempfile
import time

from skinctl.storage.base import content_key
from skinctl.storage.bulk import put_many


def payloads(count: int, size: int) -> list[tuple[str, bytes]]:
    items = []
    for _ in range(count):
        data = os.urandom(size)
        items.append((content_key(hashlib.sha256(data).hexdigest(), "jpg"), data))
    return items


def timed(label: str, run) -> float:
    start = time.perf_counter()
    run()
    elapsed = time.perf_counter() - start
    print(f"  {label:<34} {elapsed:7.2f} s")
    return elapsed


def bench(name: str, make_store, count: int, size: int) -> None:
    print(f"{name}: {count} objects of {size:,} bytes")
    sequential_store, pooled_store = make_store(), make_store()
    items_a, items_b = payloads(count, size), payloads(count, size)
    base = timed(
        "sequential put (baseline)", lambda: [sequential_store.put(k, d) for k, d in items_a]
    )
    pooled = timed("put_many, 8 threads", lambda: put_many(pooled_store, items_b, workers=8))
    again = timed(
        "put_many again (all skipped)", lambda: put_many(pooled_store, items_b, workers=8)
    )
    print(
        f"  ratio put_many / sequential: {pooled / base:.2f}; re-put / sequential: {again / base:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--size", type=int, default=60_000)
    args = parser.parse_args()

    from gcp_storage_emulator.server import create_server

    from skinctl.storage.gcs import GCSStorage
    from skinctl.storage.local import LocalStorage

    server = create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{server._api._httpd.server_address[1]}"
    try:

        def gcs_store() -> GCSStorage:
            store = GCSStorage(f"gs://bench-{secrets.token_hex(4)}/images")
            store.ensure_bucket()
            return store

        bench("GCS emulator", gcs_store, args.count, args.size)
        with tempfile.TemporaryDirectory() as folder:
            bench(
                "local folder",
                lambda: LocalStorage(os.path.join(folder, secrets.token_hex(4))),
                args.count,
                args.size,
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
