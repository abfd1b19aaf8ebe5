"""Dataset readers and the metadata CSV, without a database."""

from __future__ import annotations

from pathlib import Path

import pytest

from skinctl.datasets.metadata import attach_subject_metadata, read_subject_table
from skinctl.datasets.readers import detect_class_level, scan_dataset
from skinctl.errors import InputRejected, UsageError


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


@pytest.mark.parametrize(
    ("parts", "level"),
    [
        ([("train", "dry"), ("valid", "oily"), ("test", "dry")], 2),
        ([("dry",), ("oily",)], 1),
        ([("export", "train", "dry"), ("export", "valid", "oily")], 3),
        ([("acne", f"subject{n}") for n in range(60)] + [("eczema", "subject1")], 1),
        ([("only",), ("only",)], 1),
        ([("train",), ("test",)], None),
    ],
)
def test_detect_class_level(parts, level):
    assert detect_class_level(parts) == level


def test_folders_split_level_and_roboflow_group(tmp_path):
    touch(tmp_path / "train" / "dry" / "dry_abc_jpg.rf.0123456789abcdef0123456789abcdef.jpg")
    touch(tmp_path / "val" / "Oily" / "IMG_1_JPG_jpg.rf.fedcba9876543210fedcba9876543210.jpg")
    touch(tmp_path / "README.txt")
    scan = scan_dataset(tmp_path)
    assert scan.layout == "folders" and scan.skipped_files == 1
    first, second = scan.entries
    assert (first.split, first.group_key, first.labels[0].task, first.labels[0].condition_type) == (
        "train",
        "dry_abc",
        "skin_type",
        "dry",
    )
    assert (second.split, second.group_key, second.skin_type) == ("valid", "IMG_1_JPG", "oily")


def test_manifest_with_groups_and_missing_files(tmp_path):
    touch(tmp_path / "a" / "1.jpg")
    touch(tmp_path / "a" / "2.jpg")
    touch(tmp_path / "extra.png")
    (tmp_path / "manifest.csv").write_text(
        "path,md5,split,label,source_image_id\n"
        "a/1.jpg,00,train,Acne,src1\n"
        "a/2.jpg,00,test,Acne;Milia,src1\n"
        "a/3.jpg,00,test,Acne,src2\n"
    )
    scan = scan_dataset(tmp_path)
    assert scan.layout == "manifest"
    by_path = {e.local_path: e for e in scan.entries}
    assert [lab.condition_type for lab in by_path["a/2.jpg"].labels] == ["Acne", "Milia"]
    assert by_path["a/2.jpg"].split == "test" and by_path["a/1.jpg"].group_key == "src1"
    assert by_path["a/2.jpg"].labels[1].origin == {
        "file": "manifest.csv",
        "line": 3,
        "column": "label",
    }
    assert by_path["extra.png"].labels == [] and scan.unlabeled == 1
    assert [m.local_path for m in scan.missing] == ["a/3.jpg"]


def test_csv_labels_by_basename_and_bad_tables(tmp_path):
    touch(tmp_path / "imgs" / "x.jpg")
    labels = tmp_path / "labels.csv"
    labels.write_text("image, class\nx.jpg, eczema\n")
    scan = scan_dataset(tmp_path / "imgs", "csv", labels=labels)
    assert scan.entries[0].labels[0].condition_type == "eczema"
    labels.write_text("image,comment\nx.jpg,looks red\n")
    with pytest.raises(InputRejected, match="Cannot find the labels"):
        scan_dataset(tmp_path / "imgs", "csv", labels=labels)
    with pytest.raises(UsageError, match="named groups"):
        scan_dataset(tmp_path / "imgs", filename_pattern=r"^(?P<colour>\w+)")
    with pytest.raises(UsageError, match="not a valid regular expression"):
        scan_dataset(tmp_path / "imgs", filename_pattern=r"(")


def test_filename_pattern_condition_subject_split(tmp_path):
    touch(tmp_path / "acne__s17__test.jpg")
    scan = scan_dataset(
        tmp_path,
        filename_pattern=r"^(?P<condition>[a-z]+)__(?P<subject>s\d+)__(?P<split>\w+)\.jpg$",
    )
    entry = scan.entries[0]
    assert (entry.labels[0].condition_type, entry.subject_id, entry.group_key, entry.split) == (
        "acne",
        "s17",
        "s17",
        "test",
    )


def test_metadata_keyed_by_subject(tmp_path):
    touch(tmp_path / "acne__s1.jpg")
    touch(tmp_path / "acne__s2.jpg")
    table_file = tmp_path / "subjects.csv"
    table_file.write_text(
        "subject_id, sex, fitzpatrick, ethnicity\n s1, M, VI, x\ns2,f,0,y\ns3,f,2,\n"
    )
    scan = scan_dataset(tmp_path, filename_pattern=r"__(?P<subject>s\d)")
    table = read_subject_table(table_file)
    assert table.key == "subject_id"
    assert [str(p) for p in table.problems] == [
        "subjects.csv:3: column 'fitzpatrick' value '0': is outside the Fitzpatrick scale 1..6; left empty"
    ]
    matched, unmatched = attach_subject_metadata(scan.entries, table)
    assert (matched, unmatched) == (2, 1)
    first = scan.entries[0].subject
    assert (first["gender"], first["fitzpatrick_scale"], first["ethnicity"]) == ("male", 6, "x")
