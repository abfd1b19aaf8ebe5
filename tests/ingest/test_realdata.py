"""Acceptance on the real datasets in ../shared/data (skipped where absent)."""

from __future__ import annotations

import csv
from collections import Counter

import pytest
from sqlalchemy import text

from tests.conftest import shared_data

pytestmark = pytest.mark.realdata


def rows(engine, sql: str) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


def manifest(path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return [{k.strip(): v.strip() for k, v in row.items()} for row in csv.DictReader(handle)]


def test_skin_types(cli, engine):
    root = shared_data("skin_types")
    listed = manifest(root / "manifest.csv")

    result = cli(
        "ingest", "images", str(root), "--dataset", "skin_types", "--workers", "2", "--json"
    )

    assert result.exit_code == 0, result.stderr
    summary = result.json()
    assert summary["scanned"] == len(listed) == 3152
    assert summary["ingested"] + summary["exact_duplicates"] + summary["rejected"] == 3152
    assert summary["rejected"] == 0
    assert rows(engine, "SELECT count(*) FROM ml_training_images")[0][0] == len(
        {r["md5"] for r in listed}
    )
    assert rows(engine, "SELECT count(*) FROM image_sources")[0][0] == 3152
    # every label preserved, against the path it was filed under
    labels = rows(
        engine,
        "SELECT s.local_path, l.task, l.condition_type, s.split FROM skin_condition_labels l "
        "JOIN image_sources s ON s.id = l.image_source_id",
    )
    assert sorted(labels) == sorted(
        (r["path"], "skin_type", r["label"], r["split"]) for r in listed
    )
    # group keys from the Roboflow names equal the manifest's source_image_id
    groups = dict(rows(engine, "SELECT image_hash, group_key FROM ml_training_images"))
    assert len(groups) == 2728 and all(groups.values())
    # near-duplicate pairs found among augmented copies of one photo
    same_source = rows(
        engine,
        "SELECT count(*) FROM image_duplicates d JOIN ml_training_images a ON a.id = d.image_id_a "
        "JOIN ml_training_images b ON b.id = d.image_id_b WHERE a.group_key = b.group_key",
    )[0][0]
    assert summary["near_duplicates"] > 0 and same_source > 0
    # label conflicts are a query away: here, byte-identical files never carry two classes
    by_md5: dict[str, set[str]] = {}
    for r in listed:
        by_md5.setdefault(r["md5"], set()).add(r["label"])
    stats = cli("stats", "--dataset", "skin_types", "--json").json()
    assert stats["label_conflicts"]["exact_duplicate_conflicts"] == sum(
        len(v) > 1 for v in by_md5.values()
    )
    assert stats["datasets"][0]["exact_duplicate_files"] == 3152 - 2728
    assert rows(engine, "SELECT count(*) FROM subject_metadata WHERE skin_type IS NULL")[0][0] == 0

    again = cli(
        "ingest", "images", str(root), "--dataset", "skin_types", "--workers", "2", "--json"
    ).json()
    assert again["nothing_new"] and again["already_ingested"] == 3152


def test_skin_conditions_folders(cli, engine):
    root = shared_data("skin_conditions")
    listed = manifest(root / "manifest.csv")

    result = cli(
        "ingest",
        "images",
        str(root),
        "--dataset",
        "skin_conditions",
        "--layout",
        "folders",
        "--workers",
        "2",
        "--json",
    )

    assert result.exit_code == 0, result.stderr
    summary = result.json()
    assert summary["scanned"] == len(listed) == 360 and summary["rejected"] == 0
    assert summary["ingested"] == len({r["md5"] for r in listed})
    per_class = dict(
        rows(engine, "SELECT condition_type, count(*) FROM skin_condition_labels GROUP BY 1")
    )
    assert per_class == dict(Counter(r["label"] for r in listed))


def test_acne_multilabel(cli, engine):
    root = shared_data("acne_multilabel")
    listed = manifest(root / "test_manifest.csv")
    with (root / "test" / "_classes.csv").open(newline="") as handle:
        table = [{k.strip(): v.strip() for k, v in row.items()} for row in csv.DictReader(handle)]
    expected_labels = sum(
        1 for row in table for k, v in row.items() if k != "filename" and v == "1"
    )

    result = cli(
        "ingest",
        "images",
        str(root),
        "--dataset",
        "acne",
        "--workers",
        "2",
        "--filename-pattern",
        r"^levle(?P<severity>\d)_",
        "--json",
    )

    assert result.exit_code == 0, result.stderr
    summary = result.json()
    assert summary["layout"] == "csv"
    assert summary["scanned"] == len(listed) == 901 and summary["rejected"] == 0
    assert summary["ingested"] == len({r["md5"] for r in listed})
    assert summary["unlabeled"] == 6
    assert summary["labels"] == expected_labels
    severities = dict(
        rows(
            engine,
            "SELECT severity_level, count(DISTINCT image_source_id) FROM skin_condition_labels "
            "WHERE severity_level IS NOT NULL GROUP BY 1",
        )
    )
    prefixes = Counter(r["path"][5] for r in listed if r["path"].startswith("levle"))
    labelled = {
        row["filename"] for row in table if any(v == "1" for k, v in row.items() if k != "filename")
    }
    prefixes = Counter(
        r["path"][5] for r in listed if r["path"].startswith("levle") and r["path"] in labelled
    )
    assert severities == dict(prefixes)
