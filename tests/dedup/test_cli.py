"""`skinctl dedup scan|list|show`: exit codes, JSON on stdout, tables for people."""

from __future__ import annotations

from tests.dedup.imagegen import augmented, drawn_image, jpeg_bytes


def fill(filer):
    original = filer.add(
        jpeg_bytes(drawn_image(1)), "dry/1.jpg", dataset="faces", label="dry", task="skin_type"
    )
    copy = filer.add(
        jpeg_bytes(augmented(drawn_image(1), 2, mirror=True, angle=-6)),
        "oily/1b.jpg",
        dataset="faces",
        label="oily",
        task="skin_type",
    )
    other = filer.add(
        jpeg_bytes(drawn_image(3)), "dry/3.jpg", dataset="faces", label="dry", task="skin_type"
    )
    filer.add_source(other, "dry/3 - Copy.jpg", dataset="faces", label="dry", task="skin_type")
    return original, copy, other


def test_scan_list_show_json(cli, filer, store):
    original, copy, other = fill(filer)
    storage = ["--storage", str(store.root)]
    scan = cli(*storage, "dedup", "scan", "--json")
    assert scan.exit_code == 0, scan.stderr
    summary = scan.json()
    assert summary["pairs"] == 1 and summary["images"] == 3 and summary["method"] == "orb-ransac-v3"

    again = cli(*storage, "dedup", "scan", "--json", "--dataset", "faces")
    assert again.exit_code == 0
    assert (again.json()["images"], again.json()["pairs"]) == (0, 0)  # everything is linked already
    full = cli(*storage, "dedup", "scan", "--json", "--full")
    assert full.exit_code == 0
    assert (full.json()["images"], full.json()["pairs"], full.json()["already_linked"]) == (3, 0, 1)
    late = filer.add(
        jpeg_bytes(augmented(drawn_image(3), 9, angle=4)), "dry/3c.jpg", dataset="faces"
    )
    incremental = cli(*storage, "dedup", "scan", "--json").json()
    assert (incremental["images"], incremental["pairs"]) == (1, 1)  # only the new image looked up

    listed = cli("dedup", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    groups = listed.json()["groups"]
    assert [(g["group_id"], g["images"], g["files"]) for g in groups] == [
        (other, 2, 3),
        (original, 2, 2),
    ]
    assert late in [m["id"] for m in groups[0]["members"]]

    conflicts = cli("dedup", "list", "--conflicts", "--json").json()
    assert conflicts["count"] == 1
    assert conflicts["conflicts"][0]["image_ids"] == [original, copy]
    assert conflicts["conflicts"][0]["labels"] == ["dry", "oily"]

    shown = cli("dedup", "show", str(copy), "--json")
    assert shown.exit_code == 0
    assert [d["id"] for d in shown.json()["duplicates"]] == [original]

    assert cli("dedup", "list", "--json", "--dataset", "nothing-here").json()["count"] == 0


SCAN_KEYS = [
    "method",
    "feature_method",
    "max_distance",
    "images",
    "stored_images",
    "pairs",
    "candidates",
    "verified",
    "features_computed",
    "unreadable",
    "already_linked",
    "seconds",
]
IMAGE_KEYS = ["id", "dataset", "local_path", "image_url", "split", "sources", "labels"]
TONE_KEYS = ["skin_tone", "skin_tone_ita"]  # appended by issue 13 (estimated skin tone)


def test_json_shapes_of_scan_list_and_show(cli, filer, store):
    """The keys (and their order) scripts read from `dedup scan|list|show --json`."""
    original, copy, other = fill(filer)
    scan = cli("--storage", str(store.root), "dedup", "scan", "--json").json()
    assert list(scan) == SCAN_KEYS
    again = cli(
        "--storage", str(store.root), "dedup", "scan", "--json"
    ).json()  # nothing to look up
    assert list(again) == SCAN_KEYS and again["images"] == 0

    listed = cli("dedup", "list", "--json").json()
    assert list(listed) == ["groups", "count"]
    group = listed["groups"][0]
    assert list(group) == [
        "group_id",
        "images",
        "files",
        "exact_duplicates",
        "near_pairs",
        "labels",
        "members",
        "pairs",
    ]
    member = next(m for g in listed["groups"] for m in g["members"] if m["id"] == other)
    assert list(member) == [*IMAGE_KEYS, *TONE_KEYS]
    assert list(member["sources"][0]) == ["source_id", "dataset", "local_path", "split"]
    assert list(member["labels"][0]) == ["task", "condition_type", "source_id", "status"]
    pair = next(p for g in listed["groups"] for p in g["pairs"])
    assert list(pair) == ["image_id_a", "image_id_b", "distance", "method"]

    conflicts = cli("dedup", "list", "--conflicts", "--json").json()
    assert list(conflicts) == ["conflicts", "count"]
    conflict = conflicts["conflicts"][0]
    assert list(conflict) == [
        "kind",
        "task",
        "image_ids",
        "labels",
        "by_image",
        "distance",
        "method",
    ]
    assert conflict["kind"] == "near"
    assert [list(entry) for entries in conflict["by_image"].values() for entry in entries] == [
        ["local_path", "labels"],
        ["local_path", "labels"],
    ]

    shown = cli("dedup", "show", str(copy), "--json").json()
    assert list(shown) == [*IMAGE_KEYS, "exact_duplicates", "duplicates", "group", *TONE_KEYS]
    assert list(shown["duplicates"][0]) == [*IMAGE_KEYS, "distance", "method", *TONE_KEYS]
    assert list(shown["group"]) == ["group_id", "images", "member_ids"]


def test_human_output_and_errors(cli, filer, store):
    original, copy, _other = fill(filer)
    storage = ["--storage", str(store.root)]
    scan = cli(*storage, "dedup", "scan")
    assert scan.exit_code == 0 and "new pairs recorded" in scan.stdout
    listed = cli("dedup", "list")
    assert listed.exit_code == 0 and "2 duplicate groups" in listed.stdout
    conflicts = cli("dedup", "list", "--conflicts")
    assert "1 label conflicts" in conflicts.stdout and "dry vs oily" in conflicts.stdout
    shown = cli("dedup", "show", str(original))
    assert shown.exit_code == 0 and "1 near duplicates" in shown.stdout

    missing = cli("dedup", "show", "424242")
    assert missing.exit_code == 1 and "424242" in missing.stderr
    assert cli("dedup", "scan", "--max-distance", "40").exit_code == 2  # out of range: usage
    assert cli("dedup", "show", "not-a-number").exit_code == 2


def test_scan_exits_3_when_an_image_cannot_be_read(cli, filer, store):
    fill(filer)
    for key in list(store.iter_keys())[:1]:
        store.delete(key)
    scan = cli("--storage", str(store.root), "dedup", "scan", "--json")
    assert scan.exit_code == 3
    assert len(scan.json()["unreadable"]) == 1
    assert list(scan.json()["unreadable"][0]) == ["image_id", "reason"]
