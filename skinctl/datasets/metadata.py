"""`--metadata FILE`: a CSV of per-subject facts keyed by file name or subject id.

Known columns fill `subject_metadata` (gender, age_range, ethnicity, skin_type,
fitzpatrick_scale 1..6); every other non-empty column goes into `additional_info`. A value out
of range is reported with its file, line and column (never silently dropped): the field stays
empty and the raw value is kept in `additional_info["invalid"]`.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skinctl.datasets.readers import FILENAME_COLUMNS, SKIN_TYPES, ImageEntry
from skinctl.errors import InputRejected

SUBJECT_COLUMNS = ("subject_id", "subject", "participant", "patient_id", "person_id")
ALIASES = {
    "sex": "gender",
    "age": "age_range",
    "age_group": "age_range",
    "race": "ethnicity",
    "fitzpatrick": "fitzpatrick_scale",
    "fitzpatrick_type": "fitzpatrick_scale",
    "fitzpatrick_skin_type": "fitzpatrick_scale",
    "skintype": "skin_type",
}
GENDERS = {
    "f": "female",
    "m": "male",
    "female": "female",
    "male": "male",
    "woman": "female",
    "man": "male",
}
ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6}
MAX_AGE = 120
# Column widths of subject_metadata: a longer value would fail the whole batch.
MAX_LENGTH = {"gender": 20, "age_range": 20, "ethnicity": 50, "skin_type": 50}


@dataclass(frozen=True)
class MetadataProblem:
    file: str
    line: int
    column: str
    value: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}: column {self.column!r} value {self.value!r}: {self.message}"
        )


@dataclass
class SubjectTable:
    by_filename: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_subject: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[MetadataProblem] = field(default_factory=list)
    key: str = "filename"
    rows: int = 0


def _age_range(value: str) -> tuple[str | None, str | None]:
    """(normalised value, problem)."""
    text = value.strip().replace("–", "-").replace(" ", "")
    numbers = [int(n) for n in re.findall(r"\d+", text)]
    if not numbers or not re.fullmatch(r"(<|>|<=|>=)?\d+(-\d+|\+)?", text):
        return None, "is not an age or an age range like 20-29 or 60+"
    if any(n > MAX_AGE for n in numbers):
        return None, f"is outside 0..{MAX_AGE}"
    if len(numbers) == 2 and numbers[0] > numbers[1]:
        return None, "is a range whose start is after its end"
    return text, None


def _fitzpatrick(value: str) -> tuple[int | None, str | None]:
    text = value.strip().lower().removeprefix("type").strip()
    if text in ROMAN:
        return ROMAN[text], None
    try:
        number = float(text)
    except ValueError:
        return None, "is not a Fitzpatrick type (1..6 or I..VI)"
    if number != int(number) or not 1 <= number <= 6:
        return None, "is outside the Fitzpatrick scale 1..6"
    return int(number), None


def _validate(column: str, value: str) -> tuple[Any, str | None]:
    if column == "fitzpatrick_scale":
        return _fitzpatrick(value)
    if column == "age_range":
        return _age_range(value)
    if column == "skin_type":
        lowered = value.strip().lower()
        if lowered not in SKIN_TYPES:
            return None, f"is not a skin type ({', '.join(sorted(SKIN_TYPES))})"
        return lowered, None
    if column == "gender":
        value = GENDERS.get(value.strip().lower(), value.strip())
    if len(value) > MAX_LENGTH[column]:
        return None, f"is longer than {MAX_LENGTH[column]} characters"
    return value, None


def read_subject_table(path: Path) -> SubjectTable:
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as error:
        raise InputRejected(f"Cannot read the metadata file {path}: {error.strerror}.") from None
    try:
        return _read_subject_rows(path, handle)
    except UnicodeDecodeError:
        raise InputRejected(
            f"The metadata file {path} is not UTF-8 text.", hint="Save it as UTF-8 (CSV UTF-8)."
        ) from None
    except csv.Error as error:
        raise InputRejected(
            f"The metadata file {path} is not a readable CSV file: {error}."
        ) from None


def _read_subject_rows(path: Path, handle) -> SubjectTable:  # noqa: ANN001 - a text file
    table = SubjectTable()
    with handle:
        reader = csv.reader(handle)
        try:
            raw_header = next(reader)
        except StopIteration:
            raise InputRejected(f"The metadata file {path} is empty.") from None
        header = [cell.strip() for cell in raw_header]
        normalised = [ALIASES.get(h.lower(), h.lower()) for h in header]
        file_index = next((i for i, h in enumerate(normalised) if h in FILENAME_COLUMNS), None)
        subject_index = next((i for i, h in enumerate(normalised) if h in SUBJECT_COLUMNS), None)
        if file_index is None and subject_index is None:
            raise InputRejected(
                f"The metadata file {path} has neither a file name column nor a subject id column "
                f"(header: {', '.join(header)}).",
                hint="Add a `filename` or `subject_id` column.",
            )
        table.key = "filename" if file_index is not None else "subject_id"
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            line = reader.line_num
            table.rows += 1
            values: dict[str, Any] = {}
            extra: dict[str, Any] = {}
            invalid: dict[str, str] = {}
            for index, cell in enumerate(row):
                cell = cell.strip()
                if index >= len(header) or not cell or index in (file_index,):
                    continue
                column = normalised[index]
                if index == subject_index:
                    values["subject_id"] = cell[:100]
                elif column in MAX_LENGTH or column == "fitzpatrick_scale":
                    value, problem = _validate(column, cell)
                    if problem:
                        table.problems.append(
                            MetadataProblem(
                                path.name, line, header[index], cell, problem + "; left empty"
                            )
                        )
                        invalid[column] = cell
                    else:
                        values[column] = value
                else:
                    extra[header[index]] = cell
            if invalid:
                extra["invalid"] = invalid
            values["additional_info"] = {**extra, "metadata_file": path.name, "metadata_line": line}
            if file_index is not None:
                name = row[file_index].strip() if file_index < len(row) else ""
                if name:
                    table.by_filename[name] = values
            else:
                table.by_subject[values["subject_id"]] = values
    return table


def attach_subject_metadata(entries: list[ImageEntry], table: SubjectTable) -> tuple[int, int]:
    """Give each entry its row; returns (entries matched, table rows that matched no image)."""
    used: set[str] = set()
    matched = 0
    for entry in entries:
        row = None
        if table.key == "filename":
            for key in (entry.local_path, Path(entry.local_path).name):
                if key in table.by_filename:
                    row = table.by_filename[key]
                    used.add(key)
                    break
        elif entry.subject_id is not None and entry.subject_id in table.by_subject:
            row = table.by_subject[entry.subject_id]
            used.add(entry.subject_id)
        if row is not None:
            matched += 1
            entry.subject = dict(row)
            if entry.subject_id is None and row.get("subject_id"):
                entry.subject_id = row["subject_id"]
    rows = table.by_filename if table.key == "filename" else table.by_subject
    return matched, len(set(rows) - used)
