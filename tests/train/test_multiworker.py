"""Two TensorFlow workers on 127.0.0.1 (TF_CONFIG, MultiWorkerMirroredStrategy, CPU) train one
model together, and only the chief (worker 0) records it: one run row, one set of epochs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skinctl.db.models import TrainingEpoch, TrainingRun, TrainingRunSplit
from skinctl.storage.local import LocalStorage
from skinctl.train.recorder import is_chief
from tests.conftest import truncate_all
from tests.train.factory import generated_set

pytestmark = [pytest.mark.multiworker, pytest.mark.slow]

WORKER_TIMEOUT = 240


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def test_chief_is_worker_zero_or_the_chief_task():
    cluster = {"worker": ["a:1", "b:2"]}
    assert is_chief({})
    assert is_chief({"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"index": 0}})})
    assert not is_chief(
        {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})}
    )
    with_chief = {"chief": ["c:3"], **cluster}
    assert not is_chief(
        {"TF_CONFIG": json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}})}
    )
    assert is_chief(
        {"TF_CONFIG": json.dumps({"cluster": with_chief, "task": {"type": "chief", "index": 0}})}
    )


def test_two_workers_train_one_model_and_record_one_run(
    session_engine, database_url, tmp_path: Path
):
    truncate_all(session_engine)
    home = tmp_path / "home"
    storage = LocalStorage(str(home / "images"))
    with Session(session_engine) as session, session.begin():
        generated_set(session, storage, per_class=12, seed=3, size=32)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    base_env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "SKINCTL_DATABASE_URL": database_url,
        "SKINCTL_HOME": str(home),
        "SKINCTL_CONFIG": str(tmp_path / "no-config.toml"),
        "SKINCTL_USER": "tester",
        "DATABASE_URL": "",
        "CUDA_VISIBLE_DEVICES": "",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    args = [
        sys.executable,
        "-m",
        "skinctl",
        "-v",
        "train",
        "run",
        "--task",
        "condition",
        "--image-size",
        "32",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--seed",
        "5",
        "--name",
        "together",
        "--json",
    ]
    workers = [
        subprocess.Popen(
            args,
            env={
                **base_env,
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": i}}
                ),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=WORKER_TIMEOUT)
            outputs.append((worker.returncode, out, err))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for index, (code, out, err) in enumerate(outputs):
        (tmp_path / f"worker-{index}.log").write_text(err)
        assert code == 0, f"worker failed ({code}): {out}\n{err[-3000:]}"

    chief = json.loads(outputs[0][1])
    assert outputs[1][1].strip() == ""  # the other worker prints no run: it has none
    assert "the chief (worker 0) records the run" in outputs[1][2]
    with Session(session_engine) as session:
        runs = session.scalars(select(TrainingRun)).all()
        assert [run.id for run in runs] == [chief["id"]]
        assert runs[0].status == "finished"
        assert runs[0].model_uri and runs[0].model_name == "together"
        epochs = session.scalar(select(func.count()).select_from(TrainingEpoch))
        assert epochs == runs[0].epochs_run
        splits = session.scalar(select(func.count()).select_from(TrainingRunSplit))
        assert splits == 12 * 3
    assert not list((home / "runs").glob("worker-*"))  # the worker's scratch model is gone
