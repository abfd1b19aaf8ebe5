"""A real `skinctl serve` process on 127.0.0.1 and a free port, and the tiny trained models it
serves (trained once per module on generated shapes, as the train tests do)."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from sqlalchemy.orm import Session

from skinctl.db.models import TrainingRun
from skinctl.storage.local import LocalStorage
from skinctl.train.runner import TrainOptions, run_training
from tests.conftest import truncate_all
from tests.train.factory import CLASS_STYLE, draw_image, generated_set

ROOT = Path(__file__).resolve().parents[2]
SMALL = {
    "image_size": 32,
    "batch_size": 16,
    "learning_rate": 0.003,
    "test_fraction": 0.25,
    "val_fraction": 0.2,
    "patience": 3,
}
SEVERITY_LEVELS = ["mild", "moderate", "severe"]
SKIN_TYPES = ["dry", "normal", "oily"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_server(database_url: str, home: Path, *args: str, log_name: str = "serve.log") -> Server:
    port = free_port()
    log = home / log_name
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SKINCTL_DATABASE_URL": database_url,
        "SKINCTL_HOME": str(home),
        "SKINCTL_CONFIG": str(home / "no-config.toml"),
        "SKINCTL_USER": "serve-tester",
        "DATABASE_URL": "",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "skinctl",
                "serve",
                "--port",
                str(port),
                "--poll-seconds",
                "0.3",
                *args,
            ],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=home,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not server.alive():
            raise AssertionError(f"skinctl serve exited:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise AssertionError(f"skinctl serve did not come up:\n{server.output()}")


def clone_run(engine, run_id: int, **changes) -> int:
    """A run row sharing another run's model file (a registry entry without training again)."""
    with Session(engine) as session, session.begin():
        source = session.get_one(TrainingRun, run_id)
        columns = {
            c.key: getattr(source, c.key)
            for c in TrainingRun.__mapper__.column_attrs
            if c.key != "id"
        }
        clone = TrainingRun(**{**columns, **changes})
        session.add(clone)
        session.flush()
        return clone.id


def jpeg(label: str = "acne", seed: int = 0, size: int = 96) -> bytes:
    return draw_image(label, np.random.default_rng(seed), size)


def encoded(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


@pytest.fixture(scope="module")
def serve_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve-home")


@pytest.fixture(scope="module")
def runs(session_engine, serve_home):
    """Two condition runs (A learns, B is a different model) and a severity run, in the
    module's home; the tests of a module share these rows and must not truncate."""
    truncate_all(session_engine)
    storage = LocalStorage(str(serve_home / "images"))
    with Session(session_engine) as session, session.begin():
        generated_set(session, storage, per_class=20, seed=1, fitzpatrick=False)
    a = run_training(
        session_engine,
        storage,
        TrainOptions(task="condition", epochs=6, seed=7, **SMALL),
        home=serve_home,
    )
    b = run_training(
        session_engine,
        storage,
        TrainOptions(task="condition", epochs=1, seed=3, **SMALL),
        home=serve_home,
    )
    assert a.model_uri and b.model_uri
    # Severity and skin-type models: run A's network registered as 3-class runs of those tasks.
    severity = clone_run(
        session_engine,
        a.id,
        task="severity",
        model_name="severity-small-cnn",
        hyperparameters={
            **(a.hyperparameters or {}),
            "task": "severity",
            "classes": SEVERITY_LEVELS,
        },
    )
    skin_type = clone_run(
        session_engine,
        a.id,
        task="skin-type",
        model_name="skin-type-small-cnn",
        hyperparameters={**(a.hyperparameters or {}), "task": "skin-type", "classes": SKIN_TYPES},
    )
    yield {
        "a": a.id,
        "b": b.id,
        "severity": severity,
        "skin_type": skin_type,
        "storage": storage,
        "classes": sorted(CLASS_STYLE),
    }
    truncate_all(session_engine)
