"""A two-node Ray cluster on 127.0.0.1 for the engine tests: `ray start --head` and a second
`ray start --address`, one CPU each, with a temp dir of their own; stopped by process group
(never `ray stop`, which would stop every Ray on the machine)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT = 90


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ray_binary() -> str:
    import sys

    candidate = Path(sys.executable).with_name("ray")
    return str(candidate) if candidate.exists() else "ray"


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """The address (127.0.0.1:PORT) of a running two-node cluster with 2 CPUs in all."""
    pytest.importorskip("ray")
    import ray

    temp_dir = tempfile.mkdtemp(prefix="skr")  # short: Ray's unix socket paths have a limit
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    common = ["--block", "--num-cpus", "1", "--disable-usage-stats"]
    head = subprocess.Popen(
        [
            _ray_binary(),
            "start",
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--ray-client-server-port",
            str(_free_port()),
            "--include-dashboard",
            "false",
            "--temp-dir",
            temp_dir,
            *common,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    nodes = [head]
    address = f"127.0.0.1:{port}"
    try:
        _wait_for(lambda: _gcs_up(port), "the Ray head")
        nodes.append(
            subprocess.Popen(
                [
                    _ray_binary(),
                    "start",
                    "--address",
                    address,
                    "--node-ip-address",
                    "127.0.0.1",
                    *common,
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
        try:
            _wait_for(lambda: len([n for n in ray.nodes() if n["Alive"]]) == 2, "two Ray nodes")
        finally:
            ray.shutdown()
        yield address
    finally:
        for node in reversed(nodes):
            _stop(node)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _gcs_up(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for(check, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not come up in {START_TIMEOUT} s")
        time.sleep(0.5)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the node's process group (the `ray start --block` we started and its
    children), then SIGKILL what is left."""
    try:
        group = os.getpgid(process.pid)
    except ProcessLookupError:
        return
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            time.sleep(1)  # its children leave the group shortly after
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass
