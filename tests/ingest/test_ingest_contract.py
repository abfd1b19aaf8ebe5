"""What scripts and other layers rely on: the `--json` keys of `ingest images`, `demo` and
`stats`, the errors at the edges, the slug default, progress and the run lifecycle."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from skinctl.db.models import ConditionLabel, ImageSource, IngestRejection, IngestRun, TrainingImage
from tests.ingest.helpers import draw, encode, write
from tests.ingest.test_ingest_images import count, make_folders

SUMMARY_KEYS = [
    "dataset",
    "source",
    "layout",
    "dry_run",
    "run_id",
    "status",
    "notes",
    "scanned",
    "ingested",
    "exact_duplicates",
    "already_ingested",
    "near_duplicates",
    "near_duplicate_method",
    "rejected",
    "rejected_by_reason",
    "labels",
    "unlabeled",
    "metadata_rows",
    "metadata_problems",
    "metadata_unmatched_rows",
    "skipped_non_image_files",
    "stored_objects",
    "seconds",
    "images_per_second",
    "nothing_new",
]
RUN_COUNTS_KEYS = set(SUMMARY_KEYS) - {
    "dataset",
    "source",
    "layout",
    "dry_run",
    "run_id",
    "status",
    "notes",
}


def a_set_with_a_bad_file(root: Path) -> Path:
    make_folders(root, per_class=2)
    write(root / "train" / "spots" / "bad.jpg", b"not a picture")
    return root


def test_ingest_images_json_keys(cli, engine, tmp_path):
    root = a_set_with_a_bad_file(tmp_path / "set")
    result = cli("ingest", "images", str(root), "--dataset", "keys", "--json")
    assert result.exit_code == 3, result.stderr
    summary = result.json()
    assert list(summary) == SUMMARY_KEYS
    assert summary["status"] == "finished" and summary["layout"] == "folders"
    assert summary["rejected_by_reason"] == {"not_an_image": 1}
    assert isinstance(summary["notes"], list) and summary["metadata_problems"] == []
    with Session(engine) as session:
        run = session.execute(select(IngestRun)).scalar_one()
    assert set(run.counts) == RUN_COUNTS_KEYS and run.counts["metadata_problems"] == 0
    assert run.options["layout"] == "auto"

    dry = cli("ingest", "images", str(root), "--dataset", "keys", "--dry-run", "--json")
    assert list(dry.json()) == SUMMARY_KEYS and dry.json()["status"] == "dry_run"


def test_demo_json_keys(cli, home):
    result = cli("demo", "--json")
    assert result.exit_code == 0, result.stderr
    assert list(result.json()) == SUMMARY_KEYS


def test_stats_json_keys(cli, tmp_path):
    root = a_set_with_a_bad_file(tmp_path / "set")
    cli("ingest", "images", str(root), "--dataset", "st")
    report = cli("stats", "--json").json()
    assert list(report) == [
        "dataset",
        "datasets",
        "classes",
        "near_duplicates",
        "label_conflicts",
        "rejected",
        "sizes",
        "aspect",
        "formats",
        "quality_flags",
        "skin_tones",
    ]
    assert list(report["datasets"][0]) == [
        "dataset",
        "files",
        "images",
        "exact_duplicate_files",
        "labelled_images",
        "label_coverage",
    ]
    assert list(report["classes"][0]) == ["dataset", "task", "class", "split", "images"]
    assert list(report["near_duplicates"]) == ["pairs", "images", "max_distance"]
    assert list(report["label_conflicts"]) == [
        "exact_duplicate_conflicts",
        "near_duplicate_conflicts",
    ]
    assert report["rejected"] == [{"reason": "not_an_image", "files": 1}]
    assert list(report["sizes"]) == [
        "images",
        "min_width",
        "max_width",
        "min_height",
        "max_height",
        "median_width",
        "median_height",
        "min_bytes",
        "max_bytes",
        "median_bytes",
        "total_bytes",
    ]
    assert list(report["aspect"][0]) == ["aspect", "images"]
    assert report["formats"] == [{"format": "JPEG", "images": 4}]
    # no quality flag on these drawings: pin the row shape on an empty selection's siblings
    assert report["quality_flags"] == [] or list(report["quality_flags"][0]) == ["flag", "images"]


@pytest.mark.parametrize("json_output", [False, True])
def test_unwritable_report_shows_the_summary_keeps_the_rows_and_ends_with_one_error(
    cli, engine, tmp_path, json_output
):
    root = a_set_with_a_bad_file(tmp_path / "set")
    unwritable = "/etc/hostname/x.csv"  # under a file: no one can write it, root included
    args = ["ingest", "images", str(root), "--dataset", "rep", "--report", unwritable]
    result = cli(*args, *(["--json"] if json_output else []))

    assert result.exit_code == 1
    assert result.exception is None and "Traceback" not in result.stderr
    if json_output:
        assert result.json()["ingested"] == 4
    else:
        assert "ingest rep (run" in result.stdout and "rejected by reason" in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: Cannot write the report {unwritable}: /etc/hostname is not a folder."
    ]
    assert count(engine, TrainingImage) == 4 and count(engine, IngestRejection) == 1
    with Session(engine) as session:
        assert session.execute(select(IngestRun.status)).scalar_one() == "finished"


def test_report_in_a_folder_that_cannot_be_created_is_one_error(cli, tmp_path):
    root = a_set_with_a_bad_file(tmp_path / "set")
    blocker = write(tmp_path / "file", b"")
    result = cli(
        "ingest",
        "images",
        str(root),
        "--dataset",
        "rep",
        "--report",
        str(blocker / "sub" / "x.csv"),
    )
    assert result.exit_code == 1 and result.exception is None
    assert f"Cannot write the report {blocker / 'sub' / 'x.csv'}" in result.stderr
    assert "Traceback" not in result.stderr


def test_catalog_slug_without_dataset_uses_the_slug(cli, engine, tmp_path):
    root = tmp_path / "skin-types-copy"
    make_folders(root, classes=("dry", "oily"), per_class=2)
    assert cli("fetch", "get", "skin-types", "--from", str(root), "--json").exit_code == 0

    result = cli("ingest", "images", "skin-types", "--json")

    assert result.exit_code == 0, result.stderr
    assert result.json()["dataset"] == "skin-types" and result.json()["ingested"] == 4
    with engine.connect() as connection:
        datasets = set(connection.execute(select(ImageSource.dataset_source)).scalars())
    assert datasets == {"skin-types"}


def test_folder_without_dataset_is_bad_usage(cli, tmp_path):
    root = tmp_path / "set"
    make_folders(root, per_class=1)
    result = cli("ingest", "images", str(root))
    assert result.exit_code == 2 and "--dataset is needed" in result.stderr


def test_unknown_layout_is_bad_usage_listing_the_layouts(cli, tmp_path):
    root = tmp_path / "set"
    make_folders(root, per_class=1)
    result = cli("ingest", "images", str(root), "--dataset", "x", "--layout", "zip")
    assert result.exit_code == 2
    for layout in ("auto", "folders", "csv", "manifest"):
        assert layout in result.stderr


def test_progress_is_cumulative_and_ctrl_c_ends_the_run_interrupted(engine, home, tmp_path):
    from skinctl.ingest.images import ingest_images
    from skinctl.ingest.options import IngestOptions

    root = tmp_path / "set"
    make_folders(root, per_class=5)
    options = IngestOptions(
        dataset="prog", storage_url=str(home / "images"), batch_size=3, workers=1
    )
    reports: list[tuple[str, int, int | None]] = []

    def interrupt_after_seven(stage: str, completed: int, total: int | None) -> None:
        reports.append((stage, completed, total))
        if completed == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest_images(engine, root, options, report=interrupt_after_seven)
    completed = [completed for _, completed, _ in reports]
    assert completed == sorted(completed) and sorted(set(completed)) == list(
        range(8)
    )  # never a delta
    assert {(stage, total) for stage, _, total in reports} == {("images", 10)}
    with Session(engine) as session:
        run = session.execute(select(IngestRun)).scalar_one()
    assert run.status == "interrupted" and run.finished_at is not None
    assert run.counts["ingested"] == 6 == count(engine, TrainingImage)  # two whole batches kept

    reports.clear()
    result = ingest_images(engine, root, options, report=lambda *report: reports.append(report))
    summary = result.summary
    assert summary.status == "finished" and summary.already_ingested == 6 and summary.ingested == 4
    images = [completed for stage, completed, _ in reports if stage == "images"]
    assert images == sorted(images) and images[-1] == 10
    assert any(stage.startswith("near duplicates: ") for stage, _, _ in reports)


def test_a_database_error_ends_the_run_failed(engine, home, tmp_path, monkeypatch):
    from skinctl.ingest import writer
    from skinctl.ingest.images import ingest_images
    from skinctl.ingest.options import IngestOptions

    root = tmp_path / "set"
    write(root / "acne" / "a.jpg", encode(draw("spots", 1)))
    broken = writer.MultiRowInsert(
        writer.INSERT_IMAGES.sql.replace("ml_training_images", "no_such_table"),
        writer.INSERT_IMAGES.columns,
    )
    monkeypatch.setattr(writer, "INSERT_IMAGES", broken)
    import psycopg2

    with pytest.raises(psycopg2.errors.UndefinedTable):
        ingest_images(engine, root, IngestOptions(dataset="fail", storage_url=str(home / "images")))
    with Session(engine) as session:
        assert session.execute(select(IngestRun.status)).scalar_one() == "failed"


def test_skin_conditions_catalog_entry_reads_its_upstream_layout(cli, engine, tmp_path):
    """The Kaggle set unpacks to `Skin_Conditions/<Class>/<file>`: six condition classes."""
    root = tmp_path / "download"
    classes = ("Acne", "Carcinoma", "Eczema", "Keratosis", "Milia", "Rosacea")
    for number, name in enumerate(classes):
        write(root / "Skin_Conditions" / name / f"{name}_1.jpg", encode(draw("spots", number)))
    info = cli("fetch", "info", "skin-conditions", "--json")
    assert info.exit_code == 0, info.stderr
    assert info.json()["reference"] == "syedalinaqvi/augmented-skin-conditions-image-dataset"
    assert cli("fetch", "get", "skin-conditions", "--from", str(root)).exit_code == 0

    result = cli("ingest", "images", "skin-conditions", "--json")

    assert result.exit_code == 0, result.stderr
    assert result.json()["ingested"] == 6 and result.json()["labels"] == 6
    with engine.connect() as connection:
        labels = set(
            connection.execute(select(ConditionLabel.task, ConditionLabel.condition_type)).all()
        )
    assert labels == {("condition", name) for name in classes}


def test_the_batch_writer_fills_every_required_column_of_its_models():
    """The fast path's column lists come from the models: a new NOT NULL column without a
    server default must be added to the writer too (caught here, not mid-ingest)."""
    from skinctl.db.models import ConditionLabel, SubjectMetadata
    from skinctl.ingest import writer

    for statement, model in [
        (writer.INSERT_IMAGES, TrainingImage),
        (writer.INSERT_SOURCES, ImageSource),
        (writer.INSERT_LABELS, ConditionLabel),
        (writer.INSERT_SUBJECTS, SubjectMetadata),
        (writer.INSERT_REJECTIONS, IngestRejection),
    ]:
        table = model.__table__
        assert statement.sql.startswith(f"INSERT INTO {table.name} (")
        required = {
            c.name
            for c in table.c
            if not c.nullable and c.server_default is None and not c.primary_key
        }
        assert required <= set(statement.columns), (table.name, required - set(statement.columns))
