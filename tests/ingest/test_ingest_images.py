"""`skinctl ingest images` end to end: real PostgreSQL, real files drawn by the tests."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from skinctl.db.models import (
    ConditionLabel,
    ImageDuplicate,
    ImageSource,
    IngestRejection,
    IngestRun,
    SubjectMetadata,
    TrainingImage,
)
from tests.ingest.helpers import draw, encode, make_bad_inputs, near_copy, write


def count(engine, model) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(model)).scalar_one()


def stored_files(home: Path) -> list[Path]:
    root = home / "images"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def make_folders(
    root: Path, classes=("spots", "stripes"), per_class: int = 4, split: str = "train"
) -> list[Path]:
    paths = []
    for name in classes:
        for number in range(per_class):
            paths.append(
                write(root / split / name / f"{name}_{number}.jpg", encode(draw(name, number)))
            )
    return paths


def test_folders_with_every_bad_input(cli, engine, home, tmp_path):
    root = tmp_path / "set"
    make_folders(root)
    expected = make_bad_inputs(root / "train" / "spots")
    report = tmp_path / "report.csv"

    result = cli(
        "ingest",
        "images",
        str(root),
        "--dataset",
        "drawn",
        "--workers",
        "2",
        "--report",
        str(report),
        "--json",
    )

    assert result.exit_code == 3, result.stderr
    summary = result.json()
    rejected = {f"train/spots/{name}": reason for name, reason in expected.items() if reason}
    assert summary["scanned"] == 8 + len(expected)
    assert summary["ingested"] == 9  # 8 drawn + the PNG named .jpg
    assert summary["rejected"] == len(rejected)
    assert summary["rejected_by_reason"] == {
        reason: list(rejected.values()).count(reason) for reason in set(rejected.values())
    }
    assert summary["labels"] == 9 and summary["unlabeled"] == 0
    with engine.connect() as connection:
        rows = dict(
            connection.execute(select(IngestRejection.local_path, IngestRejection.reason)).all()
        )
        png = connection.execute(
            select(TrainingImage.id, TrainingImage.format, TrainingImage.image_url).where(
                TrainingImage.local_path == "train/spots/really_a_png.jpg"
            )
        ).one()
        label_origin = connection.execute(
            select(
                ConditionLabel.condition_type, ConditionLabel.task, ConditionLabel.metadata_
            ).where(ConditionLabel.image_id == png.id)
        ).one()
    assert rows == rejected
    assert png.format == "PNG" and png.image_url.endswith(".png")
    assert png.image_url.startswith("file://") and Path(png.image_url[7:]).is_file()
    assert label_origin == (
        "spots",
        "condition",
        {"dataset": "drawn", "path": "train/spots/really_a_png.jpg", "folder": "train/spots"},
    )
    with report.open() as handle:
        reported = {row["path"]: row["reason"] for row in csv.DictReader(handle)}
    assert reported == rejected
    # stored objects: one per distinct image, content-addressed
    assert len(stored_files(home)) == 9
    with Session(engine) as session:
        run = session.execute(select(IngestRun)).scalar_one()
    assert run.status == "finished" and run.counts["ingested"] == 9 and run.options["workers"] == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_chmod_000_file_is_rejected_as_unreadable(cli, tmp_path):
    root = tmp_path / "set"
    make_folders(root, per_class=1)
    locked = write(root / "train" / "spots" / "locked.jpg", encode(draw("spots", 50)))
    locked.chmod(0)
    result = cli("ingest", "images", str(root), "--dataset", "perm", "--json")
    assert result.exit_code == 3
    assert result.json()["rejected_by_reason"] == {"unreadable": 1}


def test_second_run_adds_nothing_and_says_so(cli, engine, home, tmp_path):
    root = tmp_path / "set"
    make_folders(root)
    write(
        root / "train" / "spots" / "copy.jpg",
        (root / "train" / "spots" / "spots_0.jpg").read_bytes(),
    )
    first = cli("ingest", "images", str(root), "--dataset", "twice", "--json")
    assert first.exit_code == 0, first.stderr
    assert first.json()["ingested"] == 8 and first.json()["exact_duplicates"] == 1
    tables = (TrainingImage, ImageSource, ConditionLabel, SubjectMetadata, ImageDuplicate)
    before = {model.__name__: count(engine, model) for model in tables}
    files_before = stored_files(home)

    second = cli("ingest", "images", str(root), "--dataset", "twice")

    assert second.exit_code == 0
    assert "nothing new" in second.stderr
    assert {model.__name__: count(engine, model) for model in tables} == before
    assert stored_files(home) == files_before
    again = cli("ingest", "images", str(root), "--dataset", "twice", "--json").json()
    assert again["nothing_new"] and again["already_ingested"] == 9 and again["ingested"] == 0


def test_exact_duplicate_across_datasets_keeps_source_and_label(cli, engine, tmp_path):
    photo = encode(draw("spots", 7))
    write(tmp_path / "a" / "acne" / "one.jpg", photo)
    write(tmp_path / "a" / "eczema" / "two.jpg", encode(draw("rings", 1)))
    write(tmp_path / "b" / "rosacea" / "same_bytes.jpg", photo)
    write(tmp_path / "b" / "eczema" / "three.jpg", encode(draw("rings", 2)))
    assert cli("ingest", "images", str(tmp_path / "a"), "--dataset", "a").exit_code == 0

    result = cli("ingest", "images", str(tmp_path / "b"), "--dataset", "b", "--json")

    assert result.json()["ingested"] == 1 and result.json()["exact_duplicates"] == 1
    with engine.connect() as connection:
        image_ids = connection.execute(select(TrainingImage.id)).scalars().all()
        sources = connection.execute(
            select(
                ImageSource.dataset_source, ImageSource.local_path, ImageSource.image_id
            ).order_by(ImageSource.id)
        ).all()
        labels = connection.execute(
            select(ConditionLabel.condition_type, ImageSource.dataset_source)
            .join(ImageSource, ImageSource.id == ConditionLabel.image_source_id)
            .where(ConditionLabel.image_id == sources[0].image_id)
            .order_by(ConditionLabel.condition_type)
        ).all()
    assert len(image_ids) == 3
    shared = [s for s in sources if s.local_path in ("acne/one.jpg", "rosacea/same_bytes.jpg")]
    assert {s.dataset_source for s in shared} == {"a", "b"}
    assert shared[0].image_id == shared[1].image_id
    # both labels are kept against the one image: a label conflict a query can find
    assert labels == [("acne", "a"), ("rosacea", "b")]


def test_dry_run_writes_nothing(cli, engine, home, tmp_path):
    root = tmp_path / "set"
    make_folders(root)
    write(
        root / "train" / "spots" / "copy.jpg",
        (root / "train" / "spots" / "spots_1.jpg").read_bytes(),
    )
    write(root / "train" / "spots" / "bad.jpg", b"")

    result = cli("ingest", "images", str(root), "--dataset", "dry", "--dry-run", "--json")

    assert result.exit_code == 3
    summary = result.json()
    assert summary["dry_run"] and summary["ingested"] == 8 and summary["exact_duplicates"] == 1
    assert summary["rejected_by_reason"] == {"empty": 1}
    for model in (TrainingImage, ImageSource, ConditionLabel, IngestRun, IngestRejection):
        assert count(engine, model) == 0
    assert stored_files(home) == []


def test_human_output_and_json_only_on_stdout(cli, tmp_path):
    root = tmp_path / "set"
    make_folders(root, per_class=2)
    human = cli("ingest", "images", str(root), "--dataset", "h", "--workers", "1")
    assert human.exit_code == 0
    assert "ingested (new images)" in human.stdout and "class level detected: 2" in human.stderr
    machine = cli("ingest", "images", str(root), "--dataset", "h2", "--json")
    assert machine.json()["exact_duplicates"] == 4  # same bytes as dataset h
    assert machine.stdout.count("\n") == 1


def test_skin_type_classes_fill_labels_and_subject_metadata(cli, engine, tmp_path):
    root = tmp_path / "types"
    for split in ("train", "valid"):
        for kind, cls in (("spots", "dry"), ("rings", "Oily")):
            write(root / split / cls / f"{cls}_{split}.jpg", encode(draw(kind, hash(split) % 100)))
    result = cli("ingest", "images", str(root), "--dataset", "types", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["metadata_rows"] == 4
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                ConditionLabel.task,
                ConditionLabel.condition_type,
                SubjectMetadata.skin_type,
                TrainingImage.split,
            )
            .join(SubjectMetadata, SubjectMetadata.image_id == ConditionLabel.image_id)
            .join(TrainingImage, TrainingImage.id == ConditionLabel.image_id)
            .order_by(TrainingImage.local_path)
        ).all()
    assert sorted(rows) == sorted(
        [
            ("skin_type", "dry", "dry", "train"),
            ("skin_type", "oily", "oily", "train"),
            ("skin_type", "dry", "dry", "valid"),
            ("skin_type", "oily", "oily", "valid"),
        ]
    )


def test_csv_one_hot_with_spaced_header_and_severity_pattern(cli, engine, tmp_path):
    root = tmp_path / "acne"
    names = [
        "levle0_1_jpg.rf.0123456789abcdef0123456789abcdef.jpg",
        "levle3_2.jpg",
        "papular_3.jpg",
        "nolabel.jpg",
        "unlisted.jpg",
    ]
    for number, name in enumerate(names):
        write(root / "test" / name, encode(draw("spots", 100 + number)))
    (root / "test" / "_classes.csv").write_text(
        "filename, Acne, Blackhead, Papular\n"
        f"{names[0]}, 1, 1, 0\n"
        f"{names[1]}, 1, 0, 0\n"
        f"{names[2]}, 0, 0, 1\n"
        f"{names[3]}, 0, 0, 0\n"
        "gone.jpg, 1, 0, 0\n"
    )

    result = cli(
        "ingest",
        "images",
        str(root),
        "--dataset",
        "acne",
        "--filename-pattern",
        r"^levle(?P<severity>\d)_",
        "--json",
    )

    assert result.exit_code == 3  # gone.jpg is listed but missing
    summary = result.json()
    assert summary["layout"] == "csv" and summary["ingested"] == 5
    assert summary["unlabeled"] == 2 and summary["labels"] == 4
    assert summary["rejected_by_reason"] == {"missing_file": 1}
    with engine.connect() as connection:
        labels = connection.execute(
            select(
                TrainingImage.local_path,
                ConditionLabel.condition_type,
                ConditionLabel.severity_level,
                ConditionLabel.metadata_["column"].astext,
                TrainingImage.group_key,
                TrainingImage.split,
            )
            .join(TrainingImage, TrainingImage.id == ConditionLabel.image_id)
            .order_by(TrainingImage.local_path, ConditionLabel.condition_type)
        ).all()
    assert labels == [
        (f"test/{names[0]}", "Acne", "0", "Acne", "levle0_1", "test"),
        (f"test/{names[0]}", "Blackhead", "0", "Blackhead", "levle0_1", "test"),
        ("test/levle3_2.jpg", "Acne", "3", "Acne", None, "test"),
        ("test/papular_3.jpg", "Papular", None, "Papular", None, "test"),
    ]


def test_metadata_out_of_range_values_reported_per_row(cli, engine, tmp_path):
    root = tmp_path / "subjects"
    for number in range(4):
        write(root / "acne" / f"p{number}.jpg", encode(draw("spots", 200 + number)))
    metadata = tmp_path / "subjects.csv"
    metadata.write_text(
        "filename,gender,age,ethnicity,fitzpatrick_scale,skin_type,camera\n"
        "p0.jpg,F,20-29,Asian,3,oily,phone\n"
        "p1.jpg,male,34,,9,dry,\n"
        "p2.jpg,female,150,,II,purple,dslr\n"
        "p3.jpg,,,,,,\n"
        "missing.jpg,male,40,,2,,\n"
    )

    result = cli(
        "ingest",
        "images",
        str(root),
        "--dataset",
        "subjects",
        "--metadata",
        str(metadata),
        "--json",
    )

    assert result.exit_code == 3
    summary = result.json()
    assert summary["metadata_problems"] == [
        "subjects.csv:3: column 'fitzpatrick_scale' value '9': is outside the Fitzpatrick scale 1..6; left empty",
        "subjects.csv:4: column 'age' value '150': is outside 0..120; left empty",
        "subjects.csv:4: column 'skin_type' value 'purple': is not a skin type (combination, dry, normal, oily, sensitive); left empty",
    ]
    assert summary["metadata_unmatched_rows"] == 1 and summary["rejected"] == 0
    with engine.connect() as connection:
        rows = {
            row.local_path: row
            for row in connection.execute(
                select(TrainingImage.local_path, SubjectMetadata).join(
                    SubjectMetadata, SubjectMetadata.image_id == TrainingImage.id
                )
            )
        }
    assert (
        rows["acne/p0.jpg"].gender,
        rows["acne/p0.jpg"].age_range,
        rows["acne/p0.jpg"].fitzpatrick_scale,
    ) == ("female", "20-29", 3)
    assert rows["acne/p0.jpg"].additional_info["camera"] == "phone"
    assert rows["acne/p1.jpg"].fitzpatrick_scale is None and rows["acne/p1.jpg"].additional_info[
        "invalid"
    ] == {"fitzpatrick_scale": "9"}
    assert rows["acne/p2.jpg"].fitzpatrick_scale == 2 and rows["acne/p2.jpg"].age_range is None
    assert rows["acne/p3.jpg"].gender is None


def test_near_duplicate_is_linked_not_dropped(cli, engine, tmp_path):
    root = tmp_path / "near"
    picture = draw("stripes", 5)
    write(root / "acne" / "original.jpg", encode(picture))
    write(root / "acne" / "edited.jpg", near_copy(picture))
    write(root / "acne" / "other.jpg", encode(draw("rings", 6)))
    result = cli("ingest", "images", str(root), "--dataset", "near", "--json")
    assert result.json()["ingested"] == 3 and result.json()["near_duplicates"] == 1
    with engine.connect() as connection:
        pair = connection.execute(
            text(
                "SELECT a.local_path, b.local_path, d.distance, d.method FROM image_duplicates d "
                "JOIN ml_training_images a ON a.id = d.image_id_a JOIN ml_training_images b ON b.id = d.image_id_b"
            )
        ).one()
    assert (
        sorted(pair[:2]) == ["acne/edited.jpg", "acne/original.jpg"]
        and pair[3] == result.json()["near_duplicate_method"] == "orb-ransac-v3"
    )
    strict = cli(
        "ingest",
        "images",
        str(root),
        "--dataset",
        "near",
        "--near-duplicate-distance",
        "0",
        "--json",
    )
    assert strict.json()["nothing_new"]


def test_class_level_detected_and_settable(cli, engine, tmp_path):
    root = tmp_path / "nested"
    for cls in ("acne", "eczema"):
        for subject in range(60):  # many subject folders under each class
            write(root / cls / f"s{subject}" / "a.jpg", encode(draw(cls, subject, (32, 32))))
    dry = cli("ingest", "images", str(root), "--dataset", "nested", "--dry-run", "--workers", "2")
    assert "class level detected: 1" in dry.stderr
    result = cli(
        "ingest", "images", str(root), "--dataset", "nested", "--class-level", "-1", "--json"
    )
    assert result.exit_code == 0
    with engine.connect() as connection:
        classes = set(connection.execute(select(ConditionLabel.condition_type)).scalars())
    assert classes == {f"s{n}" for n in range(60)}


def test_unknown_source_is_a_clear_error(cli):
    missing = cli("ingest", "images", "/no/such/folder", "--dataset", "x")
    assert missing.exit_code == 2 and "/no/such/folder does not exist" in missing.stderr
    slug = cli("ingest", "images", "no-such-dataset-slug", "--dataset", "x")
    assert slug.exit_code == 2 and "neither a folder nor a dataset in the catalog" in slug.stderr


def test_stats_report(cli, tmp_path):
    root = tmp_path / "set"
    make_folders(root, per_class=3)
    write(
        root / "train" / "spots" / "dup.jpg",
        (root / "train" / "spots" / "spots_0.jpg").read_bytes(),
    )
    write(
        root / "train" / "stripes" / "spots_0_misfiled.jpg",
        (root / "train" / "spots" / "spots_0.jpg").read_bytes(),
    )
    write(root / "train" / "stripes" / "bad.jpg", b"nope")
    cli("ingest", "images", str(root), "--dataset", "st")

    report = cli("stats", "--dataset", "st", "--json").json()

    assert report["datasets"] == [
        {
            "dataset": "st",
            "files": 8,
            "images": 6,
            "exact_duplicate_files": 2,
            "labelled_images": 6,
            "label_coverage": 1.0,
        }
    ]
    assert {(r["class"], r["split"]): r["images"] for r in report["classes"]} == {
        ("spots", "train"): 3,
        ("stripes", "train"): 4,
    }
    assert report["label_conflicts"]["exact_duplicate_conflicts"] == 1
    assert report["rejected"] == [{"reason": "not_an_image", "files": 1}]
    assert report["sizes"]["images"] == 6 and report["sizes"]["max_width"] == 160
    assert report["formats"] == [{"format": "JPEG", "images": 6}]
    human = cli("stats")
    assert human.exit_code == 0 and "label coverage" in human.stdout
    assert cli("stats", "--dataset", "nothing-here").exit_code == 1


def test_demo_ingests_its_own_images(cli, home):
    first = cli("demo", "--json")
    assert first.exit_code == 0, first.stderr
    summary = first.json()
    assert summary["ingested"] == 25 and summary["exact_duplicates"] == 2
    assert summary["rejected_by_reason"] == {"truncated": 1}
    assert summary["near_duplicates"] >= 1 and summary["labels"] == 27
    second = cli("demo", "--json").json()
    assert second["nothing_new"]


def test_gc_finds_and_deletes_only_unreferenced_objects(cli, home, tmp_path):
    root = tmp_path / "set"
    make_folders(root, per_class=2)
    assert cli("ingest", "images", str(root), "--dataset", "gc").exit_code == 0
    orphan = write(home / "images" / "ab" / ("ab" + "0" * 62 + ".jpg"), b"left by a killed run")
    found = cli("storage", "gc", "--dry-run", "--json").json()
    assert found["scanned"] == 5 and found["orphans"] == [orphan.resolve().as_uri()]
    deleted = cli("storage", "gc", "--json").json()
    assert deleted["deleted"] == 1 and not orphan.exists() and len(stored_files(home)) == 4


def test_phone_mpo_jpeg_accepted_and_undecodable_name_rejected(cli, engine, tmp_path):
    import io

    root = tmp_path / "odd"
    buffer = io.BytesIO()
    draw("spots", 300).save(buffer, "MPO", save_all=True, append_images=[draw("spots", 301)])
    write(root / "acne" / "phone.jpg", buffer.getvalue())
    os.makedirs(root / "acne", exist_ok=True)
    with open(os.path.join(os.fsencode(root / "acne"), b"latin1-\xe9t\xe9.jpg"), "wb") as handle:
        handle.write(encode(draw("spots", 302)))

    result = cli("ingest", "images", str(root), "--dataset", "odd", "--json")

    assert result.exit_code == 3
    summary = result.json()
    assert summary["ingested"] == 1 and summary["rejected_by_reason"] == {"bad_file_name": 1}
    with engine.connect() as connection:
        image = connection.execute(select(TrainingImage.format, TrainingImage.image_url)).one()
        rejected = connection.execute(select(IngestRejection.local_path)).scalar_one()
    assert image.format == "MPO" and image.image_url.endswith(".jpg")
    assert rejected == "acne/latin1-\\xe9t\\xe9.jpg"


def test_label_file_that_is_not_utf8_is_a_clear_error(cli, tmp_path):
    root = tmp_path / "set"
    make_folders(root, per_class=1)
    labels = tmp_path / "labels.csv"
    labels.write_bytes("filename,label\nspots_0.jpg,eczéma\n".encode("latin-1"))
    result = cli("ingest", "images", str(root), "--dataset", "enc", "--labels", str(labels))
    assert (
        result.exit_code == 2
        and "is not UTF-8 text" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_catalog_slug_reads_the_fetched_folder_with_the_catalog_layout(cli, engine, tmp_path):
    root = tmp_path / "skin-types-copy"
    for split in ("train", "valid"):
        make_folders(root, classes=("dry", "oily"), per_class=2, split=split)
    not_yet = cli("ingest", "images", "skin-types", "--dataset", "skin_types")
    assert not_yet.exit_code == 2 and "skinctl fetch get skin-types" in not_yet.stderr

    fetched = cli("fetch", "get", "skin-types", "--from", str(root), "--json")
    assert fetched.exit_code == 0, fetched.stderr
    result = cli("ingest", "images", "skin-types", "--dataset", "skin_types", "--json")
    assert result.exit_code == 0, result.stderr
    assert count(engine, TrainingImage) == result.json()["ingested"] > 0
    with engine.connect() as connection:
        tasks = set(
            connection.execute(select(ConditionLabel.task, ConditionLabel.condition_type)).all()
        )
    assert tasks == {("skin_type", "dry"), ("skin_type", "oily")}


def test_no_link_defers_near_duplicates_to_dedup_scan(cli, engine, tmp_path):
    root = tmp_path / "near"
    picture = draw("stripes", 5)
    write(root / "acne" / "original.jpg", encode(picture))
    write(root / "acne" / "edited.jpg", near_copy(picture))
    deferred = cli("ingest", "images", str(root), "--dataset", "near", "--no-link", "--json")
    assert deferred.exit_code == 0, deferred.stderr
    assert deferred.json()["near_duplicates"] == 0
    assert "dedup scan" in deferred.json()["near_duplicate_method"]
    assert count(engine, ImageDuplicate) == 0
    scan = cli("dedup", "scan", "--json")
    assert scan.exit_code == 0, scan.stderr
    assert scan.json()["pairs"] == 1 == count(engine, ImageDuplicate)


def test_near_duplicate_distance_out_of_range_is_bad_usage(cli, tmp_path):
    root = tmp_path / "set"
    make_folders(root, per_class=1)
    result = cli("ingest", "images", str(root), "--dataset", "x", "--near-duplicate-distance", "16")
    assert result.exit_code == 2 and "near-duplicate-distance" in result.stderr
