"""Readers for the on-disk layouts of image datasets.

Every reader returns a `DatasetScan`: one `ImageEntry` per image file found (labelled or not),
in a stable order (sorted by path, so an interrupted ingest resumes in the same order), plus
the files a label table names that are not there.

Layouts:
- `folders`: the class is a folder name at some depth, with an optional split level
  (`train|valid|val|test/<class>/img.jpg` or `<class>/img.jpg`). The class level is detected
  (and said) or given with `class_level`.
- `csv`: a label table with a filename column and either a column of class names or one-hot
  columns (multi-label); header cells may carry stray spaces (`filename, Acne, Blackhead`).
- `manifest`: `manifest.csv` at the root with `path,label[,split][,source_image_id]` columns.
- `auto`: `--labels` given -> csv; `manifest.csv` at the root -> manifest; Roboflow
  `_classes.csv` files in the tree -> csv; else folders.
"""

from __future__ import annotations

import csv
import os
import posixpath
import re
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from skinctl.errors import InputRejected, UsageError


class Layout(StrEnum):
    """`--layout`: how an image dataset is laid out on disk (the layouts listed above)."""

    AUTO = "auto"
    FOLDERS = "folders"
    CSV = "csv"
    MANIFEST = "manifest"


LAYOUTS = tuple(Layout)
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
# Folder names that mean a split, and the split they mean.
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "valid": "valid",
    "val": "valid",
    "validation": "valid",
    "test": "test",
    "testing": "test",
}
# Classes that are skin types: they become task='skin_type' labels AND subject_metadata.skin_type.
SKIN_TYPES = frozenset({"dry", "normal", "oily", "combination", "sensitive"})
PATTERN_GROUPS = ("condition", "severity", "subject", "split")
# Roboflow exports name files `<source>_<ext>.rf.<32 hex>.<ext>`: the source is the group key
# the trainer's group-aware split needs (augmented copies of one photo share it).
ROBOFLOW_NAME = re.compile(
    r"^(?P<source>.+?)_(?:jpe?g|png|webp|bmp|tiff?|gif)\.rf\.[0-9a-f]{32}\.\w+$", re.IGNORECASE
)
FILENAME_COLUMNS = ("filename", "file", "file_name", "path", "image", "image_path", "img", "name")
CLASS_COLUMNS = (
    "label",
    "labels",
    "class",
    "classes",
    "condition",
    "category",
    "skin_type",
    "class_name",
)
GROUP_COLUMNS = ("source_image_id", "group", "group_key")
MANIFEST_NAME = "manifest.csv"
ROBOFLOW_LABELS_NAME = "_classes.csv"
ONE_HOT_TRUE = frozenset({"1", "1.0", "true", "yes", "y", "x"})
ONE_HOT_VALUES = ONE_HOT_TRUE | {"0", "0.0", "false", "no", "n", ""}
# A level with more distinct folder names than this is more likely subjects than classes.
MAX_CLASSES_AT_LEVEL = 50


@dataclass
class LabelSpec:
    """One label read from the dataset: it becomes a skin_condition_labels row."""

    task: str  # condition | skin_type
    condition_type: str
    severity_level: str | None = None
    origin: dict[str, Any] = field(default_factory=dict)  # file/line/column/folder it came from


@dataclass
class ImageEntry:
    path: Path  # what to read
    local_path: str  # path inside the dataset (posix, relative to the dataset root)
    split: str | None = None
    group_key: str | None = None
    subject_id: str | None = None
    labels: list[LabelSpec] = field(default_factory=list)
    subject: dict[str, Any] | None = None  # subject_metadata fields (metadata CSV, skin type)
    url: str | None = None  # where to read it when it is not a local file (a gs:// object)

    @property
    def locator(self) -> str:
        """What an ingest worker reads: the object URL, or the local file."""
        return self.url or str(self.path)

    @property
    def skin_type(self) -> str | None:
        for label in self.labels:
            if label.task == "skin_type":
                return label.condition_type
        return None


@dataclass
class MissingFile:
    """A file a label table names that is not in the dataset."""

    local_path: str
    detail: str


@dataclass
class DatasetScan:
    root: Path
    layout: str
    entries: list[ImageEntry]
    missing: list[MissingFile] = field(default_factory=list)
    skipped_files: int = 0  # files that are not images by extension (README, CSVs, ...)
    notes: list[str] = field(default_factory=list)  # what was detected, for people

    @property
    def unlabeled(self) -> int:
        return sum(1 for entry in self.entries if not entry.labels)


def label_for_class(name: str, origin: dict[str, Any], severity: str | None = None) -> LabelSpec:
    clean = name.strip()
    if clean.lower() in SKIN_TYPES:
        return LabelSpec("skin_type", clean.lower(), None, origin)
    return LabelSpec("condition", clean, severity, origin)


def split_name(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return SPLIT_NAMES.get(value.lower(), value.lower()) if value else None


# --- walking the tree ----------------------------------------------------------------------


def walk_images(root: Path, exclude: set[Path] | None = None) -> tuple[list[tuple[Path, str]], int]:
    """(absolute path, posix path inside root) of every image-named file, sorted; and the number
    of other files. Symlinked folders are not followed (no loops); symlinked files are listed
    and, if they loop or dangle, rejected when read."""
    exclude = exclude or set()
    found: list[tuple[Path, str]] = []
    skipped = 0
    excluded = {str(path) for path in exclude}
    root_text = str(root)
    for directory, dirnames, filenames in os.walk(root_text, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel_dir = os.path.relpath(directory, root_text).replace(os.sep, "/")
        prefix = "" if rel_dir == "." else rel_dir + "/"
        for name in filenames:
            full = os.path.join(directory, name)
            if full in excluded:
                continue
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append((Path(full), prefix + name))
            else:
                skipped += 1
    found.sort(key=lambda item: item[1])
    return found, skipped


# --- folders ---------------------------------------------------------------------------------


def detect_class_level(dir_parts: list[tuple[str, ...]]) -> int | None:
    """The folder level (1 = first folder under the root) that names the class, or None.

    Split folders (train/valid/test) are never the class. Among the levels every image has, the
    deepest one with 2..MAX_CLASSES_AT_LEVEL distinct names wins (a level with a single name is
    a wrapper folder; one with very many names holds subjects or sessions)."""
    if not dir_parts:
        return None
    min_depth = min(len(parts) for parts in dir_parts)
    candidates = []
    for level in range(1, min_depth + 1):
        names = {parts[level - 1] for parts in dir_parts}
        if all(name.lower() in SPLIT_NAMES for name in names):
            continue
        candidates.append((level, len(names)))
    if not candidates:
        return None
    good = [level for level, count in candidates if 2 <= count <= MAX_CLASSES_AT_LEVEL]
    if good:
        return good[-1]
    return candidates[-1][0]


# (absolute path, posix path inside root) of every image, sorted; and the count of other files
Listing = tuple[list[tuple[Path, str]], int]


def read_folders(
    root: Path, class_level: int | None = None, listing: Listing | None = None
) -> DatasetScan:
    images, skipped = listing or walk_images(root)
    dir_parts = [tuple(rel.split("/")[:-1]) for _, rel in images]
    notes = []
    if class_level is None:
        level = detect_class_level(dir_parts)
        how = "detected"
    else:
        level = class_level
        how = "set"
    example = next((parts for parts in dir_parts if parts), ())
    if level is None or level == 0:
        notes.append(f"class level {how}: none (images are not labelled by folder)")
    else:
        shown = list(example)
        index = level - 1 if level > 0 else len(shown) + level
        if 0 <= index < len(shown):
            shown[index] = f"<{shown[index]}>"
        notes.append(
            f"class level {how}: {level} (the class is the folder in <> in e.g. "
            f"{'/'.join(shown + ['img'])}); set it with --class-level"
        )
    entries = []
    for (path, rel), parts in zip(images, dir_parts, strict=True):
        split = next(
            (SPLIT_NAMES[p.lower()] for p in reversed(parts) if p.lower() in SPLIT_NAMES), None
        )
        entry = ImageEntry(path=path, local_path=rel, split=split)
        if level:
            index = level - 1 if level > 0 else len(parts) + level
            if 0 <= index < len(parts) and parts[index].lower() not in SPLIT_NAMES:
                folder = "/".join(parts[: index + 1])
                entry.labels.append(label_for_class(parts[index], {"folder": folder}))
        entries.append(entry)
    return DatasetScan(root, "folders", entries, skipped_files=skipped, notes=notes)


# --- label tables (csv, manifest) ------------------------------------------------------------


@dataclass
class TableRow:
    line: int
    labels: list[LabelSpec]
    split: str | None
    group_key: str | None


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {column.lower(): column for column in columns}
    return next((lowered[name] for name in names if name in lowered), None)


def read_label_table(table: Path, root: Path) -> tuple[dict[str, TableRow], list[str]]:
    """Rows of a label CSV keyed by the image path relative to `root`, and notes.

    Filenames in the table are relative to the table's own folder (Roboflow, manifests).
    Either one class column (several classes separated by `;` or `|`) or one-hot columns."""
    try:
        handle = table.open(newline="", encoding="utf-8-sig")
    except OSError as error:
        raise InputRejected(f"Cannot read the label file {table}: {error.strerror}.") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = [cell.strip() for cell in next(reader)]
        except StopIteration:
            raise InputRejected(f"The label file {table} is empty.") from None
        except csv.Error as error:
            raise InputRejected(f"{table} is not a CSV file: {error}.") from None
        except UnicodeDecodeError:
            raise InputRejected(
                f"{table} is not UTF-8 text.",
                hint="Save the label file as UTF-8 (CSV UTF-8 in spreadsheet programs).",
            ) from None
        try:
            rows = [
                (number, [cell.strip() for cell in row])
                for number, row in enumerate(reader, start=2)
                if row
            ]
        except csv.Error as error:
            raise InputRejected(f"{table} line {reader.line_num}: {error}.") from None
        except UnicodeDecodeError:
            raise InputRejected(
                f"{table} near line {reader.line_num + 1} is not UTF-8 text.",
                hint="Save the label file as UTF-8 (CSV UTF-8 in spreadsheet programs).",
            ) from None
    filename_column = _pick(header, FILENAME_COLUMNS) or header[0]
    split_column = _pick(header, ("split", "subset"))
    severity_column = _pick(header, ("severity", "severity_level"))
    group_column = _pick(header, GROUP_COLUMNS)
    class_column = _pick(header, CLASS_COLUMNS)
    used = {filename_column, split_column, severity_column, group_column}
    rest = [column for column in header if column not in used and column]
    indices = {column: header.index(column) for column in header if column}
    one_hot: list[str] = []
    if class_column is None:
        # one-hot when every remaining column holds only 0/1-like values
        one_hot = [
            column
            for column in rest
            if all(
                (row[indices[column]] if indices[column] < len(row) else "").lower()
                in ONE_HOT_VALUES
                for _, row in rows
            )
        ]
        if not one_hot:
            raise InputRejected(
                f"Cannot find the labels in {table}: no class column "
                f"({', '.join(CLASS_COLUMNS)}) and no one-hot (0/1) columns among {rest}.",
                hint="Name the class column `label`, or use one 0/1 column per class.",
            )
    base = os.path.relpath(table.parent, root).replace(os.sep, "/")
    notes = [
        f"labels from {table.name}: filename column {filename_column!r}, "
        + (f"class column {class_column!r}" if class_column else f"{len(one_hot)} one-hot columns")
    ]
    result: dict[str, TableRow] = {}

    def cell(row: list[str], column: str | None) -> str | None:
        if column is None or indices[column] >= len(row):
            return None
        return row[indices[column]] or None

    for number, row in rows:
        name = cell(row, filename_column)
        if not name:
            continue
        # normpath, not resolve: a symlinked image must keep its own name
        rel = posixpath.normpath(posixpath.join(base, name.replace("\\", "/")))
        origin = {"file": table.name, "line": number}
        severity = cell(row, severity_column)
        labels = []
        if class_column:
            for value in re.split(r"[;|]", cell(row, class_column) or ""):
                if value.strip():
                    labels.append(
                        label_for_class(value, {**origin, "column": class_column}, severity)
                    )
        else:
            for column in one_hot:
                if (cell(row, column) or "").lower() in ONE_HOT_TRUE:
                    labels.append(label_for_class(column, {**origin, "column": column}, severity))
        previous = result.get(rel)
        if previous:  # the same file listed twice: keep every label
            previous.labels += [
                lab
                for lab in labels
                if lab.condition_type not in {p.condition_type for p in previous.labels}
            ]
            continue
        result[rel] = TableRow(
            number, labels, split_name(cell(row, split_column)), cell(row, group_column)
        )
    return result, notes


def read_tables(
    root: Path, tables: list[Path], layout: str, listing: Listing | None = None
) -> DatasetScan:
    images, skipped = listing or walk_images(root, exclude=set(tables))
    notes: list[str] = []
    rows: dict[str, TableRow] = {}
    for table in tables:
        table_rows, table_notes = read_label_table(table, root)
        rows.update(table_rows)
        notes += table_notes
    by_basename = Counter(posixpath.basename(rel) for _, rel in images)
    basename_keys = {posixpath.basename(rel): rel for rel in rows}
    matched: set[str] = set()
    entries = []
    for path, rel in images:
        row = rows.get(rel)
        if row is not None:
            matched.add(rel)
        elif by_basename[posixpath.basename(rel)] == 1 and posixpath.basename(rel) in basename_keys:
            # the table names files by basename only; unambiguous here
            key = basename_keys[posixpath.basename(rel)]
            row = rows[key]
            matched.add(key)
        parts = rel.split("/")[:-1]
        folder_split = next(
            (SPLIT_NAMES[p.lower()] for p in reversed(parts) if p.lower() in SPLIT_NAMES), None
        )
        entry = ImageEntry(path=path, local_path=rel, split=folder_split)
        if row is not None:
            entry.labels = list(row.labels)
            entry.split = row.split or folder_split
            entry.group_key = row.group_key
        entries.append(entry)
    missing = [
        MissingFile(rel, f"listed in the label file (line {row.line}) but not found under {root}")
        for rel, row in rows.items()
        if rel not in matched
    ]
    return DatasetScan(root, layout, entries, missing=missing, skipped_files=skipped, notes=notes)


# --- filename pattern ------------------------------------------------------------------------


def compile_filename_pattern(pattern: str | None) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise UsageError(
            f"--filename-pattern {pattern!r} is not a valid regular expression: {error}."
        ) from None
    groups = set(compiled.groupindex)
    unknown = groups - set(PATTERN_GROUPS)
    if not groups or unknown:
        raise UsageError(
            f"--filename-pattern must use named groups among {', '.join(PATTERN_GROUPS)}"
            + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else "")
            + ".",
            hint=r"Example: '^levle(?P<severity>\d)_' reads ACNE04's severity from the name.",
        )
    return compiled


def apply_name_rules(entries: list[ImageEntry], pattern: re.Pattern[str] | None) -> int:
    """Fill group keys (Roboflow rule) and the pattern's groups; returns how many names matched."""
    matched = 0
    for entry in entries:
        name = posixpath.basename(entry.local_path)
        roboflow = ROBOFLOW_NAME.match(name)
        if roboflow and entry.group_key is None:
            entry.group_key = roboflow.group("source")
        if pattern is None:
            continue
        found = pattern.search(name)
        if not found:
            continue
        matched += 1
        values = {k: v for k, v in found.groupdict().items() if v}
        origin = {"file_name_pattern": pattern.pattern}
        if "condition" in values:
            label = label_for_class(values["condition"], origin)
            if label.condition_type not in {lab.condition_type for lab in entry.labels}:
                entry.labels.append(label)
        if "severity" in values:
            for label in entry.labels:
                if label.task == "condition" and label.severity_level is None:
                    label.severity_level = values["severity"]
        if "subject" in values:
            entry.subject_id = values["subject"]
            entry.group_key = values["subject"]
        if "split" in values:
            entry.split = split_name(values["split"])
    return matched


# --- entry point -----------------------------------------------------------------------------


def detect_layout(root: Path, labels: Path | None) -> tuple[str, list[Path]]:
    if labels is not None:
        return "csv", [labels]
    if (root / MANIFEST_NAME).is_file():
        return "manifest", [root / MANIFEST_NAME]
    roboflow_tables = sorted(root.glob(ROBOFLOW_LABELS_NAME)) + sorted(
        root.glob(f"*/{ROBOFLOW_LABELS_NAME}")
    )
    if roboflow_tables:
        return "csv", roboflow_tables
    return "folders", []


def scan_dataset(
    root: Path,
    layout: str = "auto",
    *,
    labels: Path | None = None,
    class_level: int | None = None,
    filename_pattern: str | None = None,
    listing: Listing | None = None,
) -> DatasetScan:
    """Every image under `root` with the labels the layout gives it. `listing`: the images as
    listed elsewhere (a bucket), in place of walking `root` (which then holds the label files)."""
    if layout not in LAYOUTS:
        raise UsageError(f"Unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}.")
    if not root.is_dir():
        raise InputRejected(
            f"{root} is not a folder.", hint="Give the folder that holds the images."
        )
    root = root.resolve()
    pattern = compile_filename_pattern(filename_pattern)
    tables: list[Path] = []
    if layout == "auto":
        layout, tables = detect_layout(root, labels)
    elif layout == "csv":
        if labels is None:
            found = detect_layout(root, None)
            if found[0] != "csv":
                raise UsageError("--layout csv needs --labels FILE.")
            tables = found[1]
        else:
            tables = [labels]
    elif layout == "manifest":
        tables = [labels or root / MANIFEST_NAME]
    for table in tables:
        if not table.is_file():
            raise InputRejected(f"Label file {table} does not exist.")
    if layout == "folders":
        scan = read_folders(root, class_level, listing)
    else:
        scan = read_tables(root, [t.resolve() for t in tables], layout, listing)
    matched = apply_name_rules(scan.entries, pattern)
    if pattern is not None:
        scan.notes.append(f"--filename-pattern matched {matched} of {len(scan.entries)} file names")
    return scan
