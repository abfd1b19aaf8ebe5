"""The `--json` shapes of the label commands are an API (scripts read them): pinned key by key,
in order. Changing one of these lists is a breaking change for someone's script."""

from __future__ import annotations

import json

import pytest

from skinctl.labels import LabelService
from tests.labels.factory import add_images

LABEL_KEYS = [
    "id",
    "image_id",
    "task",
    "condition_type",
    "severity_level",
    "confidence_score",
    "source",
    "status",
    "verified",
    "verified_by",
    "verified_at",
    "updated_at",
    "version",
    "dataset_source",
    "image_url",
    "local_path",
    "split",
]
HISTORY_KEYS = [
    "id",
    "label_id",
    "image_id",
    "action",
    "before",
    "after",
    "changed_by",
    "changed_at",
    "note",
    "operation_id",
    "undoes_operation_id",
]
SNAPSHOT_KEYS = [
    "condition_type",
    "severity_level",
    "status",
    "verified",
    "verified_by",
    "verified_at",
    "source",
    "task",
    "version",
]


@pytest.fixture
def data(engine, tmp_path):
    return add_images(
        engine, tmp_path / "store", [("derm", "acne", "train"), ("derm", "eczema", "train")]
    )


def test_list_and_history_lines(cli, data, engine):
    LabelService(engine, "tester").set_condition(data.images[0], "milia")
    rows = [json.loads(line) for line in cli("label", "list", "--json").stdout.splitlines()]
    assert rows and all(list(row) == LABEL_KEYS for row in rows)
    entries = [
        json.loads(line)
        for line in cli("label", "history", str(data.images[0]), "--json").stdout.splitlines()
    ]
    assert entries and all(list(entry) == HISTORY_KEYS for entry in entries)
    assert set(entries[-1]["after"]) == set(SNAPSHOT_KEYS)  # JSONB keeps no key order


def test_show(cli, data):
    shown = cli("label", "show", str(data.labels[0]), "--json").json()
    assert list(shown) == [*LABEL_KEYS, "history"]


def test_verify_reject_set_undo(cli, data):
    verified = cli("label", "verify", str(data.labels[0]), "999999", "--json")
    assert list(verified.json()) == ["action", "changed", "failed"]
    assert list(verified.json()["changed"][0]) == LABEL_KEYS
    assert list(verified.json()["failed"][0]) == ["id", "error"]
    rejected = cli("label", "reject", str(data.labels[1]), "--json").json()
    assert list(rejected) == ["action", "changed", "failed"] and rejected["action"] == "reject"
    result = cli(
        "label", "set", str(data.images[0]), "--condition", "milia", "--task", "condition", "--json"
    ).json()
    assert list(result) == ["label", "image_labels"]
    assert list(result["label"]) == LABEL_KEYS and list(result["image_labels"][0]) == LABEL_KEYS
    undone = cli("label", "undo", "--image", str(data.images[0]), "--json").json()
    assert list(undone) == ["operation_id", "labels"] and list(undone["labels"][0]) == LABEL_KEYS


def test_stats(cli, data):
    report = cli("label", "stats", "--json").json()
    assert list(report) == [
        "datasets",
        "classes",
        "agreement",
        "reviewed_dataset_labels",
        "model_labels",
        "model_acceptance",
    ]
    assert list(report["datasets"][0]) == [
        "dataset",
        "labels",
        "verified",
        "verified_share",
        "agreement",
        "reviewed_dataset_labels",
    ]
    assert list(report["classes"][0]) == [
        "dataset",
        "task",
        "condition",
        "labels",
        "verified",
        "rejected",
        "pending",
        "human_labels",
        "verified_share",
        "agreement",
        "reviewed_dataset_labels",
    ]


def test_import(cli, data, tmp_path):
    file = tmp_path / "v.csv"
    file.write_text(f"label_id,action\n{data.labels[0]},verify\n{data.labels[1]},explode\n")
    report = cli("label", "import", str(file), "--json").json()
    assert list(report) == [
        "file",
        "rows",
        "applied",
        "unchanged",
        "rejected",
        "committed",
        "partial",
        "errors",
    ]
    assert list(report["errors"][0]) == ["row", "error", "values"]


def test_export_summary_and_rows(cli, data, tmp_path):
    summary = cli(
        "label", "export", str(tmp_path / "e.jsonl"), "--format", "jsonl", "--json"
    ).json()
    assert list(summary)[:5] == ["format", "out", "labels", "files", "datasets"]
    row = json.loads((tmp_path / "e.jsonl").read_text().splitlines()[0])
    assert list(row) == [
        "label_id",
        "image_id",
        "image_hash",
        "image_url",
        "dataset",
        "local_path",
        "split",
        "task",
        "condition",
        "severity",
        "source",
        "status",
        "verified",
        "verified_by",
        "verified_at",
    ]
