"""`train score --engine ray` scores the held-out images as Ray Data map_batches on the two-node
cluster and stores the same predictions as the local scoring."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from skinctl.db.models import ImagePrediction
from skinctl.storage.local import LocalStorage
from tests.train.factory import generated_set

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def predictions(engine) -> dict[int, tuple[str, dict[str, float]]]:
    with engine.connect() as connection:
        return {
            image_id: (origin, probabilities)
            for image_id, origin, probabilities in connection.execute(
                select(
                    ImagePrediction.image_id, ImagePrediction.origin, ImagePrediction.probabilities
                )
            ).all()
        }


def test_ray_scoring_matches_local_scoring(cli, engine, home, ray_cluster):
    with Session(engine) as session, session.begin():
        generated_set(session, LocalStorage(str(home / "images")), per_class=10, seed=2, size=32)
    trained = cli(
        "train", "run", "--task", "condition", "--image-size", "32", "--epochs", "1",
        "--batch-size", "8", "--seed", "3", "--json",
    )  # fmt: skip
    assert trained.exit_code == 0, trained.stderr
    local = cli("train", "score", "--json")
    assert local.exit_code == 0, local.stderr
    expected = predictions(engine)
    assert expected

    distributed = cli("train", "score", "--engine", "ray", "--address", ray_cluster, "--json")
    assert distributed.exit_code == 0, distributed.stderr
    got = predictions(engine)
    assert distributed.json()["scored"] == local.json()["scored"] == len(expected)
    assert got.keys() == expected.keys()
    for image_id, (origin, probabilities) in expected.items():
        assert got[image_id][0] == origin
        np.testing.assert_allclose(
            [got[image_id][1][c] for c in probabilities], list(probabilities.values()), atol=1e-5
        )
