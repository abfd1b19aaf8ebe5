"""Label import (corrections and verdicts from CSV or JSON Lines) and export (csv, jsonl, or a
class-folder tree that `skinctl ingest images --layout folders` reads back).

Import file columns (CSV header or JSON keys; extra columns are ignored):
    action      verify | reject | set | severity   (default: `set` when `condition` is given,
                                                    `verify` when only `label_id` is)
    label_id    the label for verify / reject / severity
    image_id    or image_hash: the image for set
    condition   the class for set;  task: condition | skin_type (default: as `label set`
                infers it, from the class or the image's labels)
    severity    for set and severity
    reason      a note recorded in history (the reason of a reject)
    version     optional: the label version the author saw (conflict if it changed since)
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skinctl.db.models import ConditionLabel, TrainingImage
from skinctl.errors import InputRejected, SkinctlError, UsageError
from skinctl.labels.read import infer_task
from skinctl.labels.service import LabelService
from skinctl.labels.views import ExportFormat, ExportRow, LabelFilter
from skinctl.storage import Storage

ACTIONS = ("verify", "reject", "set", "severity")
EXPORT_COLUMNS = tuple(f.name for f in dataclasses.fields(ExportRow))


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based data row (CSV: the line is row + 1)
    error: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportReport:
    """What an import did. `applied`/`unchanged` count saved rows: 0 when nothing was saved."""

    file: str
    rows: int
    applied: int
    unchanged: int
    rejected: int
    committed: bool
    partial: bool
    errors: list[RowError]


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV or JSON Lines file (by extension, else by its first character)."""
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputRejected(f"{path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputRejected(f"Cannot read {path}: {error}.") from None
    is_jsonl = path.suffix.lower() in (".jsonl", ".ndjson", ".json") or raw.lstrip().startswith("{")
    rows: list[dict[str, Any]] = []
    if is_jsonl:
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError as error:
                raise InputRejected(f"{path} line {number} is not JSON: {error}.") from None
            if not isinstance(value, dict):
                raise InputRejected(f"{path} line {number} is not a JSON object.")
            rows.append(value)
        return rows
    reader = csv.DictReader(raw.splitlines())
    if not reader.fieldnames:
        raise InputRejected(f"{path} is empty: expected a header row.")
    reader.fieldnames = [name.strip().lower() for name in reader.fieldnames]
    for row in reader:
        rows.append({k: (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k})
    return rows


def _int(row: dict[str, Any], key: str) -> int | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{key} {value!r} is not a whole number") from None


def _text(row: dict[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _apply_row(
    service: LabelService, session: Session, row: dict[str, Any], note_prefix: str
) -> bool:
    """Apply one row inside the caller's transaction; True if it changed something."""
    action = (_text(row, "action") or "").lower()
    label_id = _int(row, "label_id")
    condition = _text(row, "condition") or _text(row, "condition_type")
    if not action:
        action = "set" if condition else "verify" if label_id is not None else ""
    if action not in ACTIONS:
        raise UsageError(f"action {row.get('action')!r} is not one of {', '.join(ACTIONS)}")
    version = _int(row, "version")
    reason = _text(row, "reason") or _text(row, "note")
    note = f"{note_prefix}: {reason}" if reason else note_prefix
    op = str(uuid.uuid4())
    if action in ("verify", "reject", "severity"):
        if label_id is None:
            raise UsageError(f"{action} needs label_id")
        label = session.get(ConditionLabel, label_id)
        before = label.version if label is not None else None
        if action == "severity":
            label = service._set_severity(
                session, op, label_id, _text(row, "severity"), version, note
            )
        else:
            status = "verified" if action == "verify" else "rejected"
            label = service._change_status(session, op, label_id, status, version, note)
        return label.version != before
    image_id = _int(row, "image_id")
    image_hash = _text(row, "image_hash")
    if image_id is None and image_hash:
        image_id = session.scalar(
            select(TrainingImage.id).where(TrainingImage.image_hash == image_hash.lower())
        )
        if image_id is None:
            raise UsageError(f"no image has image_hash {image_hash}")
    if image_id is None:
        raise UsageError("set needs image_id or image_hash")
    if not condition:
        raise UsageError("set needs condition")
    seen = {label_id: version} if label_id is not None and version is not None else None
    task = _text(row, "task") or infer_task(session, image_id, condition)  # as `label set` does
    count_before = session.scalar(
        select(func.count()).select_from(ConditionLabel).where(ConditionLabel.image_id == image_id)
    )
    versions_before = session.scalar(
        select(func.coalesce(func.sum(ConditionLabel.version), 0)).where(
            ConditionLabel.image_id == image_id
        )
    )
    service._set_condition(
        session, op, image_id, condition, _text(row, "severity"), task, seen, note
    )
    session.flush()
    count_after = session.scalar(
        select(func.count()).select_from(ConditionLabel).where(ConditionLabel.image_id == image_id)
    )
    versions_after = session.scalar(
        select(func.coalesce(func.sum(ConditionLabel.version), 0)).where(
            ConditionLabel.image_id == image_id
        )
    )
    return (count_after, versions_after) != (count_before, versions_before)


def import_labels(service: LabelService, path: Path, *, partial: bool = False) -> ImportReport:
    """Validate and apply every row. All-or-nothing by default: one bad row and nothing is
    saved (every bad row is still reported); with `partial`, good rows are saved."""
    rows = read_rows(path)
    applied = unchanged = 0
    errors: list[RowError] = []
    note_prefix = f"import {path.name}"
    with service._session() as session:
        for number, row in enumerate(rows, start=1):
            try:
                with session.begin_nested():  # a savepoint: a bad row leaves no trace
                    changed = _apply_row(service, session, row, note_prefix)
            except SkinctlError as error:
                errors.append(RowError(number, error.message.rstrip("."), row))
                continue
            if changed:
                applied += 1
            else:
                unchanged += 1
        committed = not errors or partial
        if committed:
            session.commit()
        else:
            session.rollback()
            applied = unchanged = 0
    return ImportReport(
        str(path), len(rows), applied, unchanged, len(errors), committed, partial, errors
    )


# -- export ---------------------------------------------------------------------------------


def read_image_bytes(url: str, storage: Storage | None) -> bytes:
    """The bytes behind an image_url: through the configured store when it owns the URL,
    else straight from a file:// path or the gs:// bucket it names."""
    if storage is not None:
        try:
            return storage.get(storage.key_for(url))
        except ValueError:
            pass
    if url.startswith("file://"):
        return Path(unquote(urlparse(url).path)).read_bytes()
    if url.startswith("gs://"):
        from skinctl.storage import open_storage

        bucket, _, key = url[len("gs://") :].partition("/")
        other = open_storage(f"gs://{bucket}")
        return other.get(key)
    return Path(url).read_bytes()


def _safe(name: str) -> str:
    cleaned = "".join("_" if ch in "/\\:\0" else ch for ch in name).strip().strip(".")
    return cleaned or "_"


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote: `files` written (csv/jsonl: the one file), `images` and `labels`
    in them, and `conflicts`: images whose live labels of the task name several classes (in a
    folder tree such an image is written into each of its class folders)."""

    format: ExportFormat
    out: str
    labels: int
    files: int
    datasets: list[str]
    images: int
    conflicts: int


def _conflicts(rows: list[ExportRow]) -> int:
    classes: dict[tuple[int, str], set[str]] = {}
    for row in rows:
        classes.setdefault((row.image_id, row.task), set()).add(row.condition)
    return sum(1 for names in classes.values() if len(names) > 1)


def export_labels(
    service: LabelService,
    out: Path,
    *,
    format: ExportFormat = ExportFormat.csv,
    verified_only: bool = False,
    filters: LabelFilter = LabelFilter(),
    storage: Storage | None = None,
) -> ExportReport:
    """Write live labels (rejected ones are left out; `verified_only` keeps only verified).

    `folders` writes `OUT/<dataset>/[<split>/]<class>/<file name>`: the split level appears
    when every exported image of that dataset has a split, which is the layout the ingest
    folders reader expects (`train|valid|val|test/<class>/img` or `<class>/img`). One file per
    image and class: labels that agree (exact copies filed under one class) are one file; an
    image in conflict (labels of several classes) is written into each of its class folders,
    so ingest reads every label back. `verified_only` resolves a conflict a reviewer decided."""
    format = ExportFormat(format)
    rows = list(service.iter_export(filters, verified_only=verified_only))
    datasets = list(dict.fromkeys(row.dataset for row in rows))
    images = len({row.image_id for row in rows})
    if format in (ExportFormat.csv, ExportFormat.jsonl):
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            writer = (
                csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
                if format is ExportFormat.csv
                else None
            )
            if writer:
                writer.writeheader()
            for row in rows:
                data = dataclasses.asdict(row)
                data["verified_at"] = row.verified_at.isoformat() if row.verified_at else None
                if writer:
                    writer.writerow(data)
                else:
                    handle.write(json.dumps(data, ensure_ascii=False) + "\n")
        os.replace(tmp, out)  # a reader never sees half a file
        return ExportReport(format, str(out), len(rows), 1, datasets, images, _conflicts(rows))

    tasks = {row.task for row in rows}
    if len(tasks) > 1:
        raise UsageError(
            f"The labels to export belong to several tasks ({', '.join(sorted(tasks))}); a class-folder "
            "tree holds one.",
            hint="Pass --task condition or --task skin_type.",
        )
    with_split: dict[str, bool] = {}
    for row in rows:
        with_split[row.dataset] = with_split.get(row.dataset, True) and bool(row.split)
    used: dict[Path, str] = {}
    written: set[Path] = set()
    for row in rows:
        parts = [_safe(row.dataset)]
        if with_split[row.dataset]:
            parts.append(_safe(row.split or ""))
        parts.append(_safe(row.condition))
        folder = out.joinpath(*parts)
        name = _safe(Path(row.local_path).name) if row.local_path else ""
        if not name:
            ext = Path(urlparse(row.image_url).path).suffix
            name = f"{row.image_hash or row.image_id}{ext}"
        key = row.image_hash or str(row.image_id)
        target = folder / name
        if used.get(target, key) != key:
            target = folder / f"{key[:12]}_{name}"
        used[target] = key
        if target in written:
            continue  # another label of the same image and class (an exact copy): one file
        data = read_image_bytes(row.image_url, storage)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (target.exists() and target.stat().st_size == len(data)):
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        written.add(target)
    return ExportReport(
        format, str(out), len(rows), len(written), datasets, images, _conflicts(rows)
    )
