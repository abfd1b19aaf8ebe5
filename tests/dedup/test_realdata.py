"""Near-duplicate quality on real skin_types files (a slice of its source photos), through the
database service: copies linked, measured against the manifest's source_image_id."""

from __future__ import annotations

import csv
import hashlib
import itertools
import time
from collections import defaultdict

import pytest
from sqlalchemy import select

from skinctl.db.models import ImageDuplicate, ImageSource
from skinctl.dedup import link
from tests.conftest import shared_data

pytestmark = pytest.mark.realdata


def test_skin_types_copies_are_linked(engine, filer, store):
    root = shared_data("skin_types")
    rows = list(csv.DictReader((root / "manifest.csv").open()))
    # Every file of the source photos whose id (after the class) starts with 0 or 1: ~1/8 of
    # the set, whole groups, so each copy's siblings are present.
    chosen = [r for r in rows if r["source_image_id"].split("_", 1)[1][0] in "01"]
    assert len(chosen) > 250
    image_of_sha: dict[str, int] = {}
    image_of_path: dict[str, int] = {}
    for row in chosen:
        data = (root / row["path"]).read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if sha in image_of_sha:
            filer.add_source(
                image_of_sha[sha],
                row["path"],
                dataset="skin_types",
                label=row["label"],
                task="skin_type",
            )
        else:
            image_of_sha[sha] = filer.add(
                data, row["path"], dataset="skin_types", label=row["label"], task="skin_type"
            )
        image_of_path[row["path"]] = image_of_sha[sha]

    started = time.perf_counter()
    summary = link(engine, store)
    seconds = time.perf_counter() - started
    with engine.connect() as connection:
        linked = {
            (a, b)
            for a, b in connection.execute(
                select(ImageDuplicate.image_id_a, ImageDuplicate.image_id_b)
            )
        }
        assert connection.execute(select(ImageSource.id)).all().__len__() == len(
            chosen
        )  # every file kept

    source_of_image = defaultdict(set)
    for row in chosen:
        source_of_image[image_of_path[row["path"]]].add(row["source_image_id"])
    truth_near = {
        (
            min(image_of_path[a["path"]], image_of_path[b["path"]]),
            max(image_of_path[a["path"]], image_of_path[b["path"]]),
        )
        for a, b in itertools.combinations(chosen, 2)
        if a["source_image_id"] == b["source_image_id"]
        and image_of_path[a["path"]] != image_of_path[b["path"]]
    }
    correct = {pair for pair in linked if source_of_image[pair[0]] & source_of_image[pair[1]]}
    recall = len(truth_near & linked) / len(truth_near)
    precision = len(correct) / len(linked)
    print(
        f"\n{len(chosen)} files, {len(image_of_sha)} images, {len(truth_near)} same-source image pairs; "
        f"linked {len(linked)}; recall {recall:.3f}, precision vs source id {precision:.3f}; {seconds:.1f} s"
    )
    assert summary.pairs == len(linked)
    assert recall >= 0.97
    # Links across source ids are mostly the same photo uploaded twice (the set's own
    # duplicates); they count as wrong here, so this bound is conservative.
    assert precision >= 0.9
