"""The fast reader of `ingest reviews`: a review file read by Arrow's CSV parser (C++, a block of
rows at a time) and checked column-wise, for files whose first line is the header and which are
UTF-8 (the Sephora exports). `review_bulk.PythonReader` reads every other file; both give the
same chunks of typed rows.

Each row is either answered here, where its cells are the common ones (the same test as
`review_bulk._fast_review`: ratings '1'..'5', flags '1.0', ISO dates, text with two ASCII
letters in a row), or handed to the one rule (`readers._sephora_review`) in Python, which types
it or says why not. Reported rows are numbered in file order here; their physical lines come at
the end of the file (`lines_of`), from the line breaks inside the cells when the file has no
blank or malformed lines (checked), else from a second, Python, pass over the file.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as _compute
import pyarrow.csv as pa_csv
from pgpq import ArrowToPostgresBinaryEncoder

from skinctl.errors import InputRejected
from skinctl.products.readers import REVIEW_COLUMNS, REVIEW_LENGTHS, RowProblem

# Arrow makes its compute functions at import time: type checkers cannot see them.
pc: Any = _compute

# A parsed block (~9,000 Sephora reviews). Arrow parses several blocks ahead: larger blocks
# cost memory (24 MB ones held ~500 MB), not speed.
BLOCK_BYTES = 4 << 20

_NUMBER = r"^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$"
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def readable(path: Path, encoding: str) -> list[str] | None:
    """The header, when this reader can read the file (UTF-8, the header on the first line,
    every review column, distinct names); None: use the Python reader."""
    if encoding != "utf-8-sig":
        return None
    with path.open(encoding=encoding, errors="replace", newline="") as handle:
        first = next(csv.reader(handle), [])
    header = [cell.strip() for cell in first]
    if any(c not in header for c in REVIEW_COLUMNS) or len(set(header)) != len(header):
        return None
    return header


class ArrowBlocks:
    """The blocks of a file, each with its rows' positions in the file (1 = the first row)."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path = path
        self.header = header
        self.rows = 0
        self.invalid = 0  # rows with another number of cells than the header (skipped)
        self.blank = 0  # blank lines (skipped)
        self.line_breaks = 0  # inside the cells of the rows read so far
        # per block, the line breaks inside the cells of the rows before each row
        self.breaks_before: list[np.ndarray] = []

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        def skip(row: Any) -> str:
            if row.actual_columns == 1 and not (row.text or "").strip():
                self.blank += 1
            else:
                self.invalid += 1
            return "skip"

        reader = pa_csv.open_csv(
            self.path,
            read_options=pa_csv.ReadOptions(
                block_size=BLOCK_BYTES, column_names=self.header, skip_rows=1, use_threads=False
            ),
            # (blank lines come to `skip` too: counted, a file without them and without
            # malformed rows needs no second pass for its line numbers, see `lines_of`)
            parse_options=pa_csv.ParseOptions(
                newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=skip
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={c: pa.string() for c in self.header}, strings_can_be_null=False
            ),
        )
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as error:
                raise InputRejected(
                    f"{self.path}: cannot read the CSV after row {self.rows}: {error}.",
                    hint="The rows before it are loaded. A row longer than a parsed block "
                    f"({BLOCK_BYTES >> 20} MB) or a stray quote stops this reader: fix the file and "
                    "run the ingest again (what is loaded stays unchanged).",
                ) from None
            per_row = np.zeros(batch.num_rows, np.int64)
            for column in batch.columns:
                per_row += breaks_per_row(column)
            before = self.line_breaks + np.cumsum(per_row) - per_row
            self.breaks_before.append(before)
            self.line_breaks += int(per_row.sum())
            self.rows += batch.num_rows
            yield batch


def breaks_per_row(column: pa.Array) -> np.ndarray:
    """The line breaks in each cell of a string column, counted in its value bytes (a scan of
    the buffer, several times faster than Arrow's count_substring per cell)."""
    _validity, offsets_buffer, data = column.buffers()
    if data is None or offsets_buffer is None or not len(column):
        return np.zeros(len(column), np.int64)
    offsets = np.frombuffer(offsets_buffer, np.int32)[
        column.offset : column.offset + len(column) + 1
    ]
    values = np.frombuffer(data, np.uint8)[offsets[0] : offsets[-1]]
    at = np.flatnonzero(values == 10) + offsets[0]
    rows = np.searchsorted(offsets, at, side="right") - 1
    return np.bincount(rows, minlength=len(column)).astype(np.int64)


def _trimmed(batch: pa.RecordBatch, column: str) -> pa.Array:
    if column not in batch.schema.names:
        return pa.array([""] * batch.num_rows, pa.string())
    return pc.utf8_trim_whitespace(batch.column(column))


def repeated(value: Any, n: int, kind: pa.DataType) -> pa.Array:
    """`n` copies of `value` (taken by Arrow, not listed by Python)."""
    return pc.take(pa.array([value], kind), pa.array(np.zeros(n, np.int32)))


def _null_if_blank(values: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def typed_block(
    batch: pa.RecordBatch, source: str, products: tuple[pa.Array, pa.Array]
) -> tuple[pa.Table, pa.Array]:
    """(the block's rows answered here, as a table of WRITTEN columns without provenance;
    a mask of those rows). `products`: (external ids, ids) of the source's products."""
    cell = {c: _trimmed(batch, c) for c in _USED}
    product, author = cell["product_id"], cell["author_id"]
    rating, recommended = cell["rating"], cell["is_recommended"]
    day, title, body = cell["submission_time"], cell["review_title"], cell["review_text"]
    helpful, feedback = cell["helpfulness"], cell["total_feedback_count"]
    fast = pc.and_(
        pc.and_(pc.not_equal(product, ""), pc.not_equal(author, "")),
        pc.and_(
            pc.is_in(rating, pa.array(["", "1", "2", "3", "4", "5"])),
            pc.is_in(recommended, pa.array(["", "1.0", "0.0", "1", "0"])),
        ),
    )
    # a real calendar day, written as ISO; tested once per distinct value (a block holds a few
    # hundred days)
    days = pc.unique(day)
    real_days = pc.filter(
        days,
        pc.and_(
            pc.match_substring_regex(days, _ISO_DATE),
            pc.is_valid(pc.strptime(days, format="%Y-%m-%d", unit="s", error_is_null=True)),
        ),
    )
    fast = pc.and_(fast, pc.or_(pc.equal(day, ""), pc.is_in(day, value_set=real_days)))
    fast = pc.and_(
        fast,
        pc.or_(
            pc.match_substring_regex(title, "[A-Za-z]{2}"),
            pc.match_substring_regex(body, "[A-Za-z]{2}"),
        ),
    )
    fast = pc.and_(fast, pc.or_(pc.equal(helpful, ""), pc.match_substring_regex(helpful, _NUMBER)))
    fast = pc.and_(
        fast,
        pc.or_(pc.equal(feedback, ""), pc.match_substring_regex(feedback, "^[0-9]{1,9}$")),
    )
    skin_type = pc.utf8_lower(cell["skin_type"])
    for column, length in REVIEW_LENGTHS.items():
        value = skin_type if column == "skin_type" else cell[column]
        fast = pc.and_(fast, pc.less_equal(pc.utf8_length(value), length))
    fast = pc.fill_null(fast, False)
    every = pc.all(fast).as_py()  # nearly always: then nothing is copied to leave rows out
    cell["skin_type"] = skin_type
    keep = cell if every else {name: pc.filter(values, fast) for name, values in cell.items()}
    # The unnamed first column numbers the rows of the original file; without it (the 2023
    # extracts) the first 12 hex digits of the SHA-256 of title and text tell reviews apart.
    numbered = "" in batch.schema.names
    index = _trimmed(batch, "") if numbered else None
    if index is not None and not every:
        index = pc.filter(index, fast)
    unnumbered = pc.equal(index, "") if index is not None else None
    if unnumbered is None or pc.any(unnumbered).as_py():
        texts = pc.binary_join_element_wise(keep["review_title"], keep["review_text"], "\n")
        hashes = pa.array(
            [hashlib.sha256(text).hexdigest()[:12] for text in texts.cast(pa.binary()).to_pylist()],
            pa.string(),
        )
        index = hashes if unnumbered is None else pc.if_else(unnumbered, hashes, index)
    n = len(keep["product_id"])
    external_id = pc.binary_join_element_wise(
        keep["product_id"], keep["author_id"], keep["submission_time"], index, ":"
    )
    ids, values = products
    product_id = pc.take(values, pc.index_in(keep["product_id"], value_set=ids))
    table = pa.table(
        {
            "source": repeated(source, n, pa.string()),
            "external_id": external_id,
            "product_external_id": keep["product_id"],
            "author_id": keep["author_id"],
            "rating": pc.cast(_null_if_blank(keep["rating"]), pa.int16()),
            "is_recommended": pc.cast(
                pc.cast(_null_if_blank(keep["is_recommended"]), pa.float64()), pa.bool_()
            ),
            "helpfulness": pc.cast(_null_if_blank(keep["helpfulness"]), pa.float64()),
            "total_feedback_count": pc.cast(
                _null_if_blank(keep["total_feedback_count"]), pa.int32()
            ),
            "skin_type": _null_if_blank(keep["skin_type"]),
            "skin_tone": _null_if_blank(keep["skin_tone"]),
            "eye_color": _null_if_blank(keep["eye_color"]),
            "hair_color": _null_if_blank(keep["hair_color"]),
            "title": _null_if_blank(keep["review_title"]),
            "review_text": _null_if_blank(keep["review_text"]),
            "submitted_on": pc.cast(_null_if_blank(keep["submission_time"]), pa.date32()),
            "product_id": pc.cast(product_id, pa.int32()),
        }
    )
    return table, fast


_USED = (
    "product_id",
    "author_id",
    "rating",
    "is_recommended",
    "helpfulness",
    "total_feedback_count",
    "submission_time",
    "review_text",
    "review_title",
    "skin_type",
    "skin_tone",
    "eye_color",
    "hair_color",
)


# The rows as COPY's binary format takes them: the types of the columns of `reviews` that a load
# writes, in its order (review_bulk.WRITTEN, then the run). Binary, the server reads each value
# as it is (CSV cost it a third more: parsing text, quotes and numbers).
SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("external_id", pa.string()),
        ("product_external_id", pa.string()),
        ("author_id", pa.string()),
        ("rating", pa.int16()),
        ("is_recommended", pa.bool_()),
        ("helpfulness", pa.float64()),
        ("total_feedback_count", pa.int32()),
        ("skin_type", pa.string()),
        ("skin_tone", pa.string()),
        ("eye_color", pa.string()),
        ("hair_color", pa.string()),
        ("title", pa.string()),
        ("review_text", pa.string()),
        ("submitted_on", pa.date32()),
        ("product_id", pa.int32()),
        ("source_file", pa.string()),
        ("source_row", pa.int32()),
        ("ingest_run_id", pa.int32()),
    ]
)
# COPY's binary file: its signature, no flags, no header extension; then rows; then -1.
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
COPY_TRAILER = b"\xff\xff"


def copy_rows(table: pa.Table) -> bytes:
    """The table's rows (SCHEMA's columns) in COPY's binary format, without the file's header
    and trailer (a chunk's blocks are written as one file)."""
    encoder = ArrowToPostgresBinaryEncoder(SCHEMA)
    encoder.write_header()
    parts = [encoder.write_batch(batch) for batch in table.cast(SCHEMA).to_batches()]
    parts.append(encoder.finish()[: -len(COPY_TRAILER)])
    return b"".join(parts)


def table_of(rows: list[tuple]) -> pa.Table:
    """Rows typed in Python (SCHEMA's values; the day as ISO text) as a table of SCHEMA."""
    if not rows:
        return SCHEMA.empty_table()
    values = list(zip(*rows, strict=True))
    arrays = [
        pa.array(column, pa.string()).cast(pa.date32())
        if field.type == pa.date32()
        else pa.array(column, field.type)
        for field, column in zip(SCHEMA, values, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def header_lines(path: Path) -> int:
    """The physical lines the header takes (one, unless a name holds a line break)."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        return reader.line_num


def lines_of(
    path: Path, header: list[str], blocks: ArrowBlocks, wanted: set[int]
) -> tuple[dict[int, int], list[RowProblem]]:
    """The physical line each wanted row (numbered from 1 in file order) starts on, and the
    rows with another number of cells than the header (which Arrow skipped), with their lines.

    When Arrow skipped no line (no blank line, no malformed row), each row starts on a line of
    its own after the header's and the breaks inside the cells of the rows before it: row n
    starts on line header + n + those breaks. Otherwise the file is read again by Python's csv
    module, counting rows as Arrow does."""
    if not wanted and not blocks.invalid:
        return {}, []
    if blocks.invalid == 0 and blocks.blank == 0:
        before = np.concatenate(blocks.breaks_before) if blocks.breaks_before else np.zeros(0)
        lines = header_lines(path)
        return {row: lines + row + int(before[row - 1]) for row in wanted}, []
    return _lines_by_python(path, header, wanted)


def _lines_by_python(
    path: Path, header: list[str], wanted: set[int]
) -> tuple[dict[int, int], list[RowProblem]]:
    lines: dict[int, int] = {}
    skipped: list[RowProblem] = []
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        previous, row = reader.line_num, 0
        for cells in reader:
            start, previous = previous + 1, reader.line_num
            if not cells:
                continue  # an empty line: Arrow skips it too
            if len(cells) != len(header):
                skipped.append(
                    RowProblem(
                        str(path),
                        start,
                        "column_count",
                        f"expected {len(header)} columns, found {len(cells)}",
                    )
                )
                continue
            row += 1
            if row in wanted:
                lines[row] = start
    return lines, skipped


def rows_as_cells(batch: pa.RecordBatch, rows: list[int]) -> list[list[str]]:
    """Some rows of a block as lists of cells (as written), for the Python rule."""
    taken = batch.take(pa.array(rows, pa.int64()))
    columns = [taken.column(i).to_pylist() for i in range(taken.num_columns)]
    return [list(cells) for cells in zip(*columns, strict=True)]
