"""`skinctl ingest images --storage gs://...` with the real google-cloud-storage client against
gcp-storage-emulator: each image uploaded once, content-addressed; checks find what breaks."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from skinctl.db.models import TrainingImage
from tests.ingest.helpers import draw, encode, write


def test_ingest_to_gcs_then_check_finds_deleted_and_corrupted(cli, engine, gcs, gcs_url, tmp_path):
    root = tmp_path / "set"
    for index in range(6):
        write(
            root / ("acne" if index % 2 else "milia") / f"img_{index}.jpg",
            encode(draw("rings", index)),
        )
    write(root / "milia" / "copy_of_0.jpg", encode(draw("rings", 0)))  # an exact duplicate

    first = cli(
        "ingest",
        "images",
        str(root),
        "--dataset",
        "gcs",
        "--storage",
        gcs_url,
        "--workers",
        "2",
        "--json",
    )
    assert first.exit_code == 0, first.stderr
    assert first.json()["ingested"] == 6 and first.json()["exact_duplicates"] == 1
    with engine.connect() as connection:
        rows = connection.execute(select(TrainingImage.image_url, TrainingImage.image_hash)).all()
    assert len(rows) == 6
    for url, sha in rows:
        assert url.startswith(gcs_url + "/") and url.endswith(f"{sha[:2]}/{sha}.jpg")
        assert hashlib.sha256(gcs.get(gcs.key_for(url))).hexdigest() == sha
    assert sorted(gcs.iter_keys()) == sorted(gcs.key_for(url) for url, _ in rows)

    again = cli("ingest", "images", str(root), "--dataset", "gcs", "--storage", gcs_url, "--json")
    assert again.exit_code == 0 and again.json()["nothing_new"]
    healthy = cli("--storage", gcs_url, "storage", "check", "--json")
    assert healthy.exit_code == 0, healthy.stderr

    (deleted_url, _), (corrupted_url, _) = rows[0], rows[1]
    gcs.delete(gcs.key_for(deleted_url))
    gcs._bucket().blob(gcs._name(gcs.key_for(corrupted_url))).upload_from_string(
        b"not the image any more"
    )
    broken = cli("--storage", gcs_url, "storage", "check", "--json")
    assert broken.exit_code == 3
    report = broken.json()
    assert deleted_url in str(report["missing"]) and corrupted_url in str(report["corrupt"])
