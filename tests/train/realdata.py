"""Load the real datasets in ../shared/data into the database the way ingest would, for the
training tests and benchmarks (the product's `skinctl ingest` lands separately; this is a
stand-in kept out of the product): bytes under content keys, one row per distinct image
(byte-identical copies collapse onto the first), labels, and near-duplicate pairs by pHash."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
from sqlalchemy import insert
from sqlalchemy.orm import Session

from skinctl.db.models import ConditionLabel, ImageDuplicate, TrainingImage
from skinctl.ingest.imageproc import PHASH_METHOD, analyse_bytes, to_unsigned64
from skinctl.storage import content_key

NEAR_DUPLICATE_DISTANCE = 6


def _store(
    session: Session,
    storage,
    data: bytes,
    *,
    dataset: str,
    local_path: str,
    split: str | None,
    group_key: str | None,
    seen: dict[str, int],
) -> int | None:
    """The image id of these bytes; None if the bytes were already loaded (exact copy)."""
    facts = analyse_bytes(data)
    if facts.sha256 in seen:
        return None
    key = content_key(facts.sha256, facts.ext)
    storage.put(key, data)
    image = TrainingImage(
        image_url=storage.url_for(key),
        image_hash=facts.sha256,
        dataset_source=dataset,
        local_path=local_path,
        width=facts.width,
        height=facts.height,
        format=facts.format,
        byte_size=facts.byte_size,
        phash=facts.phash,
        phash_method=PHASH_METHOD,
        quality_flags=facts.quality_flags,
        split=split,
        group_key=group_key,
    )
    session.add(image)
    session.flush()
    seen[facts.sha256] = image.id
    return image.id


def record_near_duplicates(session: Session, ids: list[int], hashes: list[int]) -> int:
    """ImageDuplicate rows for pairs within NEAR_DUPLICATE_DISTANCE (numpy, all pairs)."""
    if len(ids) < 2:
        return 0
    values = np.array([to_unsigned64(h) for h in hashes], dtype=np.uint64)
    bits = np.unpackbits(values.view(np.uint8).reshape(-1, 8), axis=1).astype(np.uint8)
    rows = []
    for i in range(len(ids) - 1):
        distance = (bits[i + 1 :] != bits[i]).sum(axis=1)
        for j in np.nonzero(distance <= NEAR_DUPLICATE_DISTANCE)[0]:
            a, b = sorted((ids[i], ids[i + 1 + int(j)]))
            rows.append(
                {"image_id_a": a, "image_id_b": b, "distance": int(distance[j]), "method": "phash"}
            )
    if rows:
        session.execute(insert(ImageDuplicate), rows)
    return len(rows)


def load_skin_conditions(
    session: Session, storage, root: Path, limit_per_class: int | None = None
) -> dict:
    """skin_conditions/{Class}/*.jpg -> condition labels (no subjects, no own split)."""
    seen: dict[str, int] = {}
    ids, hashes, per_class = [], [], {}
    with open(root / "manifest.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            label = row["label"]
            if limit_per_class and per_class.get(label, 0) >= limit_per_class:
                continue
            data = (root / row["path"]).read_bytes()
            image_id = _store(
                session,
                storage,
                data,
                dataset="skin_conditions",
                local_path=row["path"],
                split=None,
                group_key=None,
                seen=seen,
            )
            if image_id is None:
                continue
            per_class[label] = per_class.get(label, 0) + 1
            session.add(ConditionLabel(image_id=image_id, condition_type=label, task="condition"))
            ids.append(image_id)
            hashes.append(session.get(TrainingImage, image_id).phash)
    pairs = record_near_duplicates(session, ids, hashes)
    return {"images": len(ids), "near_duplicate_pairs": pairs, "per_class": per_class}


def load_skin_types(session: Session, storage, root: Path) -> dict:
    """skin_types/{train,valid,test}/{dry,normal,oily}: the Roboflow source photo id is the
    group key; the folder is the image's own split (the first folder an identical file was in)."""
    seen: dict[str, int] = {}
    ids, hashes, copies = [], [], 0
    with open(root / "manifest.csv", newline="") as handle:
        rows = sorted(
            csv.DictReader(handle),
            key=lambda r: ({"train": 0, "valid": 1, "test": 2}[r["split"]], r["path"]),
        )
    for row in rows:
        data = (root / row["path"]).read_bytes()
        image_id = _store(
            session,
            storage,
            data,
            dataset="skin_types",
            local_path=row["path"],
            split=row["split"],
            group_key=f"skin_types:{row['source_image_id']}",
            seen=seen,
        )
        if image_id is None:
            copies += 1
            continue
        session.add(
            ConditionLabel(image_id=image_id, condition_type=row["label"], task="skin_type")
        )
        ids.append(image_id)
        hashes.append(session.get(TrainingImage, image_id).phash)
    pairs = record_near_duplicates(session, ids, hashes)
    return {"images": len(ids), "identical_copies_collapsed": copies, "near_duplicate_pairs": pairs}


def load_acne_severity(session: Session, storage, root: Path) -> dict:
    """acne_multilabel/test: ACNE04 severity from the `levle0..3` file-name prefix (acne
    condition labels with severity_level), and the multi-label one-hot classes."""
    seen: dict[str, int] = {}
    count = 0
    with open(root / "test" / "_classes.csv", newline="") as handle:
        reader = csv.reader(handle, skipinitialspace=True)  # header has a space after commas
        header = next(reader)
        for row in reader:
            name, flags = row[0], row[1:]
            match = re.match(r"levle(\d)_", name)
            labels = [c for c, f in zip(header[1:], flags, strict=True) if f.strip() == "1"]
            if not labels:
                continue
            data = (root / "test" / name).read_bytes()
            image_id = _store(
                session,
                storage,
                data,
                dataset="acne_multilabel",
                local_path=f"test/{name}",
                split="test",
                group_key=None,
                seen=seen,
            )
            if image_id is None:
                continue
            for label in labels:
                session.add(
                    ConditionLabel(
                        image_id=image_id,
                        condition_type=label,
                        task="condition",
                        severity_level=match.group(1) if match else None,
                    )
                )
            count += 1
    return {"images": count}
