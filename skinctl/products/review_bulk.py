"""The bulk path of `ingest reviews`: files read and checked into chunks of typed rows, which
two connections COPY straight into `reviews`, each chunk committed on its own.

Why this shape: the server writes one chunk (heap, key index, WAL) while Python reads and checks
the next ones; memory stays flat (a few chunks, and 16 bytes per review key of the run).

- Readers: `ArrowReader` (`review_arrow`: UTF-8 files whose first line is the header, parsed and
  checked a block at a time) and `PythonReader` (any other file: a preamble, cp1252, blank or
  malformed lines). The rules are those of `readers._sephora_review`, the one definition: the
  fast tests (`_fast_review`, `review_arrow.typed_block`) answer only the cells real files hold
  (ratings '1'..'5', flags '1.0', ISO dates) and hand every other row to it.
- A review key read twice in one run (any of its files) is a reported duplicate: the first row
  read wins (`ClaimedKeys`).
- A chunk meeting keys stored already (a re-run, a review loaded by an earlier run) is refused
  by the key index and goes through a temporary table instead: its new rows are inserted and its
  changed ones updated (a re-run writes nothing).
- A load large against the table defers its key and other indexes and its foreign keys to its
  end; the rows whose key may be stored wait in `review_pending` until then (see `_defer`).
- Reported rows name the file and the physical line they start on.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg2.errors
import pyarrow as pa
import sqlalchemy.exc
from sqlalchemy import Connection, Engine, UniqueConstraint, text
from sqlalchemy.schema import AddConstraint, CreateIndex, DropIndex

from skinctl.db.models import Base
from skinctl.products import review_arrow
from skinctl.products.readers import (
    _WORD,
    REVIEW_COLUMNS,
    REVIEW_LENGTHS,
    BadRow,
    CsvCells,
    RowProblem,
    _encoding_of,
    _sephora_review,
    columns,
    date_cell,
)

CHUNK = 50_000  # rows of a file per transaction (the Python reader; Arrow's are its blocks)
WRITERS = 2  # connections writing chunks at once
BUILDERS = 2  # connections building the deferred indexes at once (one a core)

# The review columns whose change makes a review `updated` (row-by-row ingest compares these too).
COMPARED = (
    "product_external_id",
    "author_id",
    "rating",
    "is_recommended",
    "helpfulness",
    "total_feedback_count",
    "skin_type",
    "skin_tone",
    "eye_color",
    "hair_color",
    "title",
    "review_text",
    "submitted_on",
)
# What a chunk writes, in COPY order.
WRITTEN = ("source", "external_id", *COMPARED, "product_id", "source_file", "source_row")
_TYPED = ", ".join("c." + c for c in COMPARED)


class ClaimedKeys:
    """The review keys read so far in a run and where each was first read, as 64-bit hashes
    in sorted arrays (16 bytes a key with its place, not a set of strings). Two different keys
    share a hash with a probability of about n^2 / 2^65 (3e-8 for a million keys in one run).

    The arrays are runs of a log-structured merge: each chunk's new keys are one sorted run,
    and a run is merged into the one before it once that is no more than twice its size, so a
    key is copied O(log n) times (inserting into one sorted array copied it once per chunk).
    A byte per slot of the hashes' low bits (`SLOTS`, 16 MB, touched as used) marks the slots
    taken: only a key whose slot is taken is looked up in the runs (6% of them at a million
    keys; looking up every key was most of the cost of reading a block)."""

    SLOTS = 1 << 24

    def __init__(self) -> None:
        self.runs: list[tuple[np.ndarray, np.ndarray]] = []  # (hashes, places), each sorted
        self.files: list[str] = []
        self.taken = np.zeros(self.SLOTS, bool)

    def claim(self, file: str, hashes: np.ndarray, rows: np.ndarray) -> dict[int, str]:
        """Claim a chunk's keys (their `key_hashes`, in file order, read at `rows` of `file`):
        {position in `hashes`: where it was read first ("FILE, row N")} for the keys read before
        (duplicates)."""
        if file not in self.files:
            self.files.append(file)
        places = np.int64(self.files.index(file) << 40) | np.asarray(rows, np.int64)
        hashes = np.asarray(hashes, np.int64)
        slots = hashes & (self.SLOTS - 1)
        earlier = np.full(len(hashes), -1, np.int64)
        maybe = np.flatnonzero(self.taken[slots])
        if len(maybe) and self.runs:
            wanted = maybe[np.argsort(hashes[maybe])]
            ordered = hashes[wanted]  # sorted lookups are several times faster
            for run_hashes, run_places in self.runs:
                at = np.minimum(np.searchsorted(run_hashes, ordered), len(run_hashes) - 1)
                stored = run_hashes[at] == ordered
                earlier[wanted[stored]] = run_places[at[stored]]
        # Within the chunk, the first of equal keys (in file order) claims it.
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        repeat = np.concatenate(([False], ordered[1:] == ordered[:-1]))
        if repeat.any():
            run_first = order[np.maximum.accumulate(np.where(repeat, 0, np.arange(len(order))))]
            again = order[repeat]
            earlier[again] = np.where(
                earlier[again] >= 0, earlier[again], places[run_first[repeat]]
            )
        new = order[earlier[order] < 0]  # in the order of their hashes
        if len(new):
            self._add(hashes[new], places[new])
            self.taken[slots[new]] = True
        return {int(i): self._where(int(earlier[i])) for i in np.flatnonzero(earlier >= 0)}

    def _add(self, hashes: np.ndarray, places: np.ndarray) -> None:
        self.runs.append((hashes, places))
        while len(self.runs) > 1 and len(self.runs[-2][0]) <= 2 * len(self.runs[-1][0]):
            (a, a_places), (b, b_places) = self.runs[-2], self.runs.pop()
            merged = np.concatenate([a, b])
            order = np.argsort(merged, kind="stable")  # two sorted runs: a merge
            self.runs[-1] = (merged[order], np.concatenate([a_places, b_places])[order])

    def _where(self, place: int) -> str:
        return f"{self.files[place >> 40]}, row {place & ((1 << 40) - 1)}"


class _Layout:
    """Where a file's columns are (None: the file has no such column)."""

    def __init__(self, header: list[str]) -> None:
        def at(column: str) -> int | None:
            return header.index(column) if column in header else None

        self.header = header
        self.product, self.author = header.index("product_id"), header.index("author_id")
        self.rating, self.submitted = at("rating"), at("submission_time")
        self.title, self.body = at("review_title"), at("review_text")
        self.recommended, self.helpfulness = at("is_recommended"), at("helpfulness")
        self.feedback, self.skin_type = at("total_feedback_count"), at("skin_type")
        self.skin_tone, self.eye_color = at("skin_tone"), at("eye_color")
        self.hair_color, self.index = at("hair_color"), at("")
        # (where each column whose length the table limits is, with its limit)
        self.limited = [(at(column), length) for column, length in REVIEW_LENGTHS.items()]


_RATINGS = {"": None, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5}
_FLAGS = {"": None, "1.0": True, "0.0": False, "1": True, "0": False}


def _fast_review(cells: list[str], at: _Layout, dates: dict[str, str]) -> tuple | None:
    """(external_id, *COMPARED) of a row whose cells are the common ones, exactly as
    `_sephora_review` types them; None: let `_sephora_review` decide."""

    def cell(position: int | None) -> str:
        return cells[position].strip() if position is not None else ""

    product, author = cells[at.product].strip(), cells[at.author].strip()
    rating, recommended = cell(at.rating), cell(at.recommended)
    submitted = cell(at.submitted)
    if (
        not product
        or not author
        or rating not in _RATINGS
        or recommended not in _FLAGS
        or (submitted and submitted not in dates)
    ):
        return None
    title, body = cell(at.title), cell(at.body)
    if not (title and _WORD.search(title)) and not (body and _WORD.search(body)):
        return None
    helpful, feedback = cell(at.helpfulness), cell(at.feedback)
    try:
        helpfulness = float(helpful) if helpful else None
    except ValueError:
        return None
    if feedback and not (feedback.isascii() and feedback.isdigit() and len(feedback) <= 9):
        return None
    if any(len(cell(position)) > length for position, length in at.limited):
        return None
    index = cell(at.index) or hashlib.sha256(f"{title}\n{body}".encode()).hexdigest()[:12]
    day = dates[submitted] if submitted else None
    return (
        f"{product}:{author}:{day or ''}:{index}",
        product,
        author,
        _RATINGS[rating],
        _FLAGS[recommended],
        helpfulness,
        int(feedback) if feedback else None,
        cell(at.skin_type).lower() or None,
        cell(at.skin_tone) or None,
        cell(at.eye_color) or None,
        cell(at.hair_color) or None,
        title or None,
        body or None,
        day,
    )


def _review(cells: list[str], at: _Layout) -> tuple:
    """(external_id, *COMPARED) by the one rule (`_sephora_review`); raises BadRow."""
    record = _sephora_review(dict(zip(at.header, cells, strict=True)))
    values = columns(record)
    day = values["submitted_on"]
    values["submitted_on"] = day.isoformat() if day else None
    return (record.external_id, *(values[c] for c in COMPARED))


@dataclass(frozen=True)
class Chunk:
    """Typed rows of a file as COPY's binary rows (WRITTEN columns, then the run), in pieces,
    and how many rows of the file they stand for (reported ones included). While a load defers
    the key index, the rows whose key may be stored already are apart (`maybe`)."""

    data: tuple[bytes, ...]
    rows: int
    read: int
    maybe: tuple[bytes, ...] = ()
    maybe_rows: int = 0


def _joined(chunks: list[Chunk]) -> Chunk:
    return Chunk(
        tuple(piece for c in chunks for piece in c.data),
        sum(c.rows for c in chunks),
        sum(c.read for c in chunks),
        tuple(piece for c in chunks for piece in c.maybe),
        sum(c.maybe_rows for c in chunks),
    )


def _encoded(rows: list[tuple]) -> bytes:
    """Rows typed in Python as COPY's binary rows (`review_arrow.copy_rows`)."""
    return review_arrow.copy_rows(review_arrow.table_of(rows)) if rows else b""


def key_hashes(keys: list[str]) -> np.ndarray:
    """The 64-bit hashes by which review keys are told apart in a run (Python's own hash of a
    string: the same within one process)."""
    return np.fromiter(map(hash, keys), np.int64, len(keys))


def _maybe_stored(known: np.ndarray | None, hashes: np.ndarray) -> np.ndarray:
    """Which keys (their `key_hashes`) may be among `known` (sorted hashes of the keys stored
    before the load): a hash match, decided exactly later."""
    if known is None or not len(known):
        return np.zeros(len(hashes), bool)
    at = np.minimum(np.searchsorted(known, hashes), len(known) - 1)
    return known[at] == hashes


class PythonReader:
    """Any review file, read by Python's csv module (`readers.CsvCells`: a preamble before the
    header, blank lines, cp1252, malformed rows), CHUNK rows at a time."""

    def __init__(
        self,
        path: Path,
        source: str,
        run_id: int,
        claimed: ClaimedKeys,
        products: dict[str, int],
        report: Any,
    ) -> None:
        self.path, self.source, self.run_id = path, source, run_id
        self.claimed, self.products, self.report = claimed, products, report
        self.cells = CsvCells(path, REVIEW_COLUMNS)
        self.known: np.ndarray | None = None  # see `_maybe_stored`
        self.dates: dict[str, str] = {}  # submission_time as written -> ISO date, when valid
        self.row = 0  # data rows read, reported ones included

    def chunks(self) -> Iterator[Chunk]:
        batch: list[tuple[tuple, int]] = []  # (typed row, line)
        read = 0
        layout: _Layout | None = None
        for item in self.cells:
            self.row += 1
            read += 1
            if isinstance(item, RowProblem):
                self.report.problems.append(item)
            else:
                line, cells = item
                if layout is None:
                    assert self.cells.header is not None  # set before the first row
                    layout = _Layout(self.cells.header)
                typed = self._typed(cells, layout, line)
                if typed is not None:
                    batch.append((typed, line))
            if read >= CHUNK:
                yield self._chunk(batch, read)
                batch, read = [], 0
        if read:
            yield self._chunk(batch, read)

    def _chunk(self, batch: list[tuple[tuple, int]], read: int) -> Chunk:
        """The chunk's rows whose key is new to the run; the others are reported duplicates."""
        hashes = key_hashes([row[1] for row, _line in batch])
        earlier = self.claimed.claim(
            self.path.name, hashes, np.array([row[-2] for row, _line in batch], np.int64)
        )
        for i, first in earlier.items():
            row, line = batch[i]
            self.report.duplicates.append(
                RowProblem(str(self.path), line, "duplicate", f"{row[1]} already read at {first}")
            )
        rows = [row for i, (row, _line) in enumerate(batch) if i not in earlier]
        kept = np.ones(len(batch), bool)
        kept[list(earlier)] = False
        maybe = _maybe_stored(self.known, hashes[kept]).tolist()
        new = [row for row, stored in zip(rows, maybe, strict=True) if not stored]
        old = [row for row, stored in zip(rows, maybe, strict=True) if stored]
        return Chunk((_encoded(new),), len(rows), read, (_encoded(old),), len(old))

    def _typed(self, cells: list[str], at: _Layout, line: int) -> tuple | None:
        """(source, external_id, *COMPARED, product_id, source_file, source_row, run), or None
        when the row is reported."""
        submitted = cells[at.submitted].strip() if at.submitted is not None else ""
        if submitted and submitted not in self.dates:
            try:
                day = date_cell(submitted, "submission_time", ("%Y-%m-%d",))
                if day is not None:
                    self.dates[submitted] = day.isoformat()
            except BadRow:
                pass  # _sephora_review reports it
        typed = _fast_review(cells, at, self.dates)
        if typed is None:
            try:
                typed = _review(cells, at)
            except BadRow as bad:
                self.report.problems.append(
                    RowProblem(str(self.path), line, bad.reason, bad.detail)
                )
                return None
        return (
            self.source,
            *typed,
            self.products.get(typed[1]),
            self.path.name,
            self.row,
            self.run_id,
        )


class ArrowReader:
    """A UTF-8 review file whose first line is its header, read by Arrow (`review_arrow`) a
    block at a time: what the block test answers is typed column-wise, the other rows by the
    one rule in Python. Reported rows get their lines once the file is read."""

    def __init__(
        self,
        path: Path,
        header: list[str],
        source: str,
        run_id: int,
        claimed: ClaimedKeys,
        products: dict[str, int],
        report: Any,
    ) -> None:
        self.path, self.header, self.source, self.run_id = path, header, source, run_id
        self.claimed, self.report = claimed, report
        self.product_ids = products  # for the rows the rule types in Python
        self.products = (
            pa.array(list(products), pa.string()),
            pa.array(list(products.values()), pa.int64()),
        )
        self.layout = _Layout(header)
        self.known: np.ndarray | None = None  # see `_maybe_stored`

    def chunks(self) -> Iterator[Chunk]:
        blocks = review_arrow.ArrowBlocks(self.path, self.header)
        reported: list[tuple[int, str, str]] = []  # (row, reason, detail)
        pending: list[Chunk] = []  # blocks, joined into a chunk of about CHUNK rows
        for batch, first, (table, fast, table_hashes) in self._typed_blocks(blocks):
            answered = np.flatnonzero(fast.to_numpy(zero_copy_only=False))
            others = np.flatnonzero(~fast.to_numpy(zero_copy_only=False))
            ruled: list[tuple[int, tuple]] = []
            for i, cells in zip(
                others.tolist(), review_arrow.rows_as_cells(batch, others.tolist()), strict=True
            ):
                if not any(cell.strip() for cell in cells):
                    continue  # a row of blank cells is no review (as readers.CsvCells)
                try:
                    ruled.append((i, _review(cells, self.layout)))
                except BadRow as bad:
                    reported.append((first + i + 1, bad.reason, bad.detail))
            # Claim the block's keys in file order: the first row read wins.
            positions = np.concatenate(
                [answered, np.array([i for i, _typed in ruled], np.int64)]
            ).astype(np.int64)
            hashes = np.concatenate([table_hashes, key_hashes([typed[0] for _i, typed in ruled])])
            order = np.argsort(positions, kind="stable")
            earlier = self.claimed.claim(
                self.path.name, hashes[order], positions[order] + first + 1
            )
            duplicate = {int(order[j]) for j in earlier}
            for j, seen in earlier.items():
                k = int(order[j])
                key = (
                    table.column("external_id")[k].as_py()
                    if k < len(answered)
                    else ruled[k - len(answered)][1][0]
                )
                reported.append(
                    (first + int(positions[k]) + 1, "duplicate", f"{key} already read at {seen}")
                )
            keep = np.ones(len(answered), bool)
            keep[[k for k in duplicate if k < len(answered)]] = False
            maybe = _maybe_stored(self.known, hashes[: len(answered)])
            n = table.num_rows
            table = (
                table.append_column(
                    "source_file", review_arrow.repeated(self.path.name, n, pa.string())
                )
                .append_column("source_row", pa.array(answered + first + 1, pa.int32()))
                .append_column("ingest_run_id", review_arrow.repeated(self.run_id, n, pa.int32()))
            )
            extra_kept = [len(answered) + k not in duplicate for k in range(len(ruled))]
            extra = [
                (
                    self.source,
                    *typed,
                    self.product_ids.get(typed[1]),
                    self.path.name,
                    first + i + 1,
                    self.run_id,
                )
                for (i, typed), kept in zip(ruled, extra_kept, strict=True)
                if kept
            ]
            extra_maybe = _maybe_stored(
                self.known, hashes[len(answered) :][np.array(extra_kept, bool)]
            ).tolist()
            new, old = keep & ~maybe, keep & maybe
            pending.append(
                Chunk(
                    (
                        # (nearly always every row: then the table is written as it is)
                        review_arrow.copy_rows(table if new.all() else table.filter(pa.array(new))),
                        _encoded([row for row, m in zip(extra, extra_maybe, strict=True) if not m]),
                    ),
                    int(keep.sum()) + len(extra),
                    batch.num_rows,
                    (
                        review_arrow.copy_rows(table.filter(pa.array(old))) if old.any() else b"",
                        _encoded([row for row, m in zip(extra, extra_maybe, strict=True) if m]),
                    ),
                    int(old.sum()) + sum(extra_maybe),
                )
            )
            if sum(chunk.read for chunk in pending) >= CHUNK:
                yield _joined(pending)
                pending = []
        if pending:
            yield _joined(pending)
        self.report.total += blocks.invalid
        wanted = {row for row, _reason, _detail in reported}
        lines, skipped = review_arrow.lines_of(self.path, self.header, blocks, wanted)
        problems = [
            RowProblem(str(self.path), lines[row], reason, detail)
            for row, reason, detail in reported
        ]
        self.report.problems += sorted(
            skipped + [p for p in problems if p.reason != "duplicate"], key=lambda p: p.line
        )
        self.report.duplicates += sorted(
            (p for p in problems if p.reason == "duplicate"), key=lambda p: p.line
        )

    def _typed_blocks(
        self, blocks: review_arrow.ArrowBlocks
    ) -> Iterator[tuple[Any, int, tuple[Any, Any, np.ndarray]]]:
        """(block, rows before it, its `_typed`) in file order; two blocks are typed at once on
        two threads (Arrow's compute functions let go of the GIL)."""
        typing: deque[tuple[Any, int, Future]] = deque()
        with ThreadPoolExecutor(2) as pool:
            for batch in blocks:
                first = blocks.rows - batch.num_rows
                typing.append((batch, first, pool.submit(self._typed, batch)))
                if len(typing) > 2:
                    batch, first, future = typing.popleft()
                    yield batch, first, future.result()
            while typing:
                batch, first, future = typing.popleft()
                yield batch, first, future.result()

    def _typed(self, batch: Any) -> tuple[Any, Any, np.ndarray]:
        """`review_arrow.typed_block` of a block, and the `key_hashes` of its rows."""
        table, fast = review_arrow.typed_block(batch, self.source, self.products)
        return table, fast, key_hashes(table.column("external_id").to_pylist())


# What a load large against the table checks and builds once at its end instead of row by row
# (PostgreSQL's advice for populating a table, "Populating a Database" in its manual): the key
# index (external_id, source), the other indexes besides the primary key, and the foreign keys
# (each checked by a query per row otherwise), with autovacuum of the table off. (The primary
# key stays: kept up, it costs the COPY about what building it costs the end, and the COPY runs
# beside Python's reading, the end alone.) Meanwhile the rows whose key may be stored already
# wait in `review_pending` and are compared once the key index is back. The load holds the
# ingest lock; a killed load leaves this to the next run's `start_run`.
REVIEWS = Base.metadata.tables["reviews"]
SECONDARY_INDEXES = [i for i in REVIEWS.indexes if not i.unique]
KEY = next(
    c
    for c in REVIEWS.constraints
    if isinstance(c, UniqueConstraint) and c.name == "uq_reviews_source_external_id"
)
FOREIGN_KEYS = sorted(REVIEWS.foreign_key_constraints, key=lambda fk: str(fk.name))
UNLINKED = "ix_reviews_unlinked"  # reviews waiting for their product
# A review row's size in a file, to judge from a file's size whether its load is large.
ROW_BYTES = 300
# Review ids a writer takes from the sequence at once during a large load (one at a time, the
# sequence cost the COPY an eighth more); what a writer leaves unused is a gap in the ids.
ID_CACHE = 1000


def start_run(engine: Engine, source: str) -> dict[str, int]:
    """Put back what a killed load left deferred, and read the products a review can be
    linked to (external id -> id)."""
    _restore(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS review_pending"))
        products = connection.execute(
            text("SELECT external_id, id FROM products WHERE source = :source"),
            {"source": source},
        ).all()
    return {str(k): int(v) for k, v in products}


def _defer(engine: Engine, source: str, products_loaded: bool = False) -> np.ndarray:
    """Drop what a large load builds at its end; returns the sorted hashes of the source's
    stored review keys (see `_maybe_stored`). With the source's products loaded, the index of
    reviews waiting for their product stays: nearly no review of the load enters it, and its
    build would scan the whole table for them."""
    with engine.begin() as connection:
        # (vacuuming a table whose indexes are being rebuilt is work done twice, and it holds
        # off the builds a second before it yields)
        connection.execute(text("ALTER TABLE reviews SET (autovacuum_enabled = false)"))
        connection.execute(text(f"ALTER SEQUENCE reviews_id_seq CACHE {ID_CACHE}"))
        for index in SECONDARY_INDEXES:
            if not (products_loaded and index.name == UNLINKED):
                connection.execute(DropIndex(index, if_exists=True))
        for constraint in (*FOREIGN_KEYS, KEY):
            connection.execute(
                text(f"ALTER TABLE reviews DROP CONSTRAINT IF EXISTS {constraint.name}")
            )
        # (the key's index alone, when a killed restore built it but did not make it the key)
        connection.execute(text(f"DROP INDEX IF EXISTS {KEY.name}"))
        connection.execute(
            text(
                "CREATE UNLOGGED TABLE IF NOT EXISTS review_pending AS SELECT "
                f"{', '.join(WRITTEN)}, ingest_run_id FROM reviews WITH NO DATA"
            )
        )
        keys = connection.execute(
            text("SELECT external_id FROM reviews WHERE source = :source"), {"source": source}
        ).scalars()
        return np.sort(np.fromiter(map(hash, keys), np.int64))


def _restore(engine: Engine) -> None:
    """Build what is missing: the key and other indexes (the largest first, one per core: the
    cores stay busy to the end, where builds all at once left one core waiting for the key's),
    then the foreign keys. A review whose product was deleted meanwhile loses its product_id,
    as ON DELETE SET NULL would have done."""
    with engine.connect() as connection:
        indexes = set(
            connection.execute(
                text("SELECT indexname FROM pg_indexes WHERE tablename = 'reviews'")
            ).scalars()
        )
        constraints = set(
            connection.execute(
                text("SELECT conname FROM pg_constraint WHERE conrelid = 'reviews'::regclass")
            ).scalars()
        )
        vacuum_off = connection.execute(
            text(
                "SELECT 'autovacuum_enabled=false' = ANY(coalesce(reloptions, '{}')) "
                "FROM pg_class WHERE oid = 'reviews'::regclass"
            )
        ).scalar_one()
        ids_cached = connection.execute(
            text("SELECT cache_size > 1 FROM pg_sequences WHERE sequencename = 'reviews_id_seq'")
        ).scalar_one()
    builds: list[Any] = [CreateIndex(i) for i in SECONDARY_INDEXES if i.name not in indexes]
    if KEY.name not in indexes:
        # The key's index is built as a plain unique index (ALTER TABLE ADD UNIQUE would lock
        # the table against the other builds), then becomes the constraint. Its build is the
        # longest: first.
        columns = ", ".join(column.name for column in KEY.columns)
        builds.insert(0, text(f"CREATE UNIQUE INDEX {KEY.name} ON reviews ({columns})"))

    def build(statement: Any) -> None:
        with engine.begin() as connection:
            # the builds share the cores already: one process each, but for the key's (the
            # longest), which takes a parallel worker once a core is free
            workers = 1 if statement is builds[0] else 0
            connection.execute(text(f"SET LOCAL max_parallel_maintenance_workers = {workers}"))
            connection.execute(statement)

    if builds:
        with ThreadPoolExecutor(min(BUILDERS, len(builds))) as pool:
            list(pool.map(build, builds))
    with engine.begin() as connection:
        if KEY.name not in constraints:
            connection.execute(
                text(f"ALTER TABLE reviews ADD CONSTRAINT {KEY.name} UNIQUE USING INDEX {KEY.name}")
            )
    for key in FOREIGN_KEYS:
        if key.name not in constraints:
            _add_foreign_key(engine, key)
    with engine.begin() as connection:
        if vacuum_off:
            connection.execute(text("ALTER TABLE reviews RESET (autovacuum_enabled)"))
        if ids_cached:
            connection.execute(text("ALTER SEQUENCE reviews_id_seq CACHE 1"))


def _add_foreign_key(engine: Engine, key: Any) -> None:
    """Add a foreign key of `reviews` back. When it does not hold (rarely: a product was deleted
    while it was away), its ON DELETE is done first, as it would have been: a review whose
    product is gone loses its product_id. (Checked only then: it costs a scan of the table.)"""
    with engine.begin() as connection:
        try:
            with connection.begin_nested():
                connection.execute(AddConstraint(key))
            return
        except sqlalchemy.exc.IntegrityError:
            if key.referred_table.name != "products":
                raise
        connection.execute(
            text(
                "UPDATE reviews r SET product_id = NULL WHERE product_id IS NOT NULL "
                "AND NOT EXISTS (SELECT 1 FROM products p WHERE p.id = r.product_id)"
            )
        )
        connection.execute(AddConstraint(key))


def load_review_file(
    engine: Engine,
    path: Path,
    source: str,
    run_id: int,
    claimed: ClaimedKeys,
    products: dict[str, int],
    report: Any,
    progress: Callable[[int], None],
) -> None:
    """Load one file: its chunks are read here and written by WRITERS connections, each chunk
    committed on its own (an interrupted load resumes where it stopped: the committed rows are
    unchanged then)."""
    header = review_arrow.readable(path, _encoding_of(path))
    reader = (
        ArrowReader(path, header, source, run_id, claimed, products, report)
        if header is not None
        else PythonReader(path, source, run_id, claimed, products, report)
    )
    estimate = path.stat().st_size // ROW_BYTES
    with engine.connect() as connection:
        existing = connection.execute(
            text("SELECT count(*) FROM (SELECT 1 FROM reviews LIMIT :estimate) r"),
            {"estimate": estimate},
        ).scalar_one()
    deferred = estimate > existing
    if deferred:
        reader.known = _defer(engine, source, products_loaded=bool(products))
    try:
        with _Writers(engine, report, progress, deferred) as writers:
            for chunk in reader.chunks():
                writers.put(chunk)
    finally:
        if deferred:
            _restore(engine)
    if deferred:
        with engine.begin() as connection:
            inserted, updated = _settle(connection, "review_pending")
            connection.execute(text("DROP TABLE review_pending"))
        report.inserted += inserted
        report.updated += updated
        report.unchanged -= inserted + updated  # the writers counted them unchanged


class _Writers:
    """WRITERS threads, each with its own connection, COPYing chunks while the caller reads
    the next ones (psycopg2 lets go of the GIL while the server works)."""

    def __init__(
        self, engine: Engine, report: Any, progress: Callable[[int], None], deferred: bool
    ) -> None:
        self.engine, self.report, self.progress = engine, report, progress
        self.deferred = deferred
        self.queue: queue.Queue[Chunk | None] = queue.Queue(maxsize=WRITERS)
        self.lock = threading.Lock()
        self.error: BaseException | None = None
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(WRITERS)]

    def __enter__(self) -> _Writers:
        for thread in self.threads:
            thread.start()
        return self

    def put(self, chunk: Chunk) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.queue.put(chunk, timeout=0.2)
                return
            except queue.Full:
                continue

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        # The chunks read are written, on Ctrl-C too (a few at most: the queue is short); after
        # a writer's error the others stop.
        for _thread in self.threads:
            while self.error is None:
                try:
                    self.queue.put(None, timeout=0.2)
                    break
                except queue.Full:
                    continue
        if self.error is not None:
            self._drain()
            for _thread in self.threads:
                self.queue.put_nowait(None)
        for thread in self.threads:
            thread.join()
        if kind is None and self.error is not None:
            raise self.error

    def _drain(self) -> None:
        try:
            while True:
                self.queue.get_nowait()
        except queue.Empty:
            pass

    def _run(self) -> None:
        try:
            with self.engine.connect() as connection:
                try:
                    self._write(connection)
                except BaseException:
                    connection.invalidate()  # closed, not pooled: with it go the ids it took
                    raise
                # The ids this connection took and did not use are dropped (a gap): given out
                # later, they would be lower than ids given out meanwhile.
                connection.execute(text("DISCARD SEQUENCES"))
        except BaseException as error:  # noqa: BLE001 - raised in the reading thread
            self.error = error
            self._drain()

    def _write(self, connection: Connection) -> None:
        while (chunk := self.queue.get()) is not None:
            if self.error is not None:
                continue
            # its own transaction: COPY runs on the driver's cursor, which SQLAlchemy does not
            # see begin one
            with connection.begin():
                inserted, updated = _write_chunk(connection, chunk, self.deferred)
            with self.lock:
                self.report.total += chunk.read
                self.report.inserted += inserted
                self.report.updated += updated
                self.report.unchanged += chunk.rows - inserted - updated
                self.progress(chunk.read)


class _Pieces:
    """Byte strings read as one file, a whole piece a read (psycopg2's COPY sends what `read`
    returns, of any size: no piece is copied again)."""

    def __init__(self, pieces: tuple[bytes, ...]) -> None:
        self.pieces = iter([piece for piece in pieces if piece])  # b"" would end the file

    def read(self, _size: int = -1) -> bytes:
        return next(self.pieces, b"")


def _copy(connection: Connection, table: str, data: tuple[bytes, ...]) -> None:
    """COPY `data` (binary rows of WRITTEN and the run, in pieces) into `table`."""
    driver = connection.connection.driver_connection
    assert driver is not None  # a checked-out connection has its psycopg2 connection
    with driver.cursor() as cursor:
        cursor.copy_expert(
            f"COPY {table} ({', '.join(WRITTEN)}, ingest_run_id) FROM STDIN WITH (FORMAT binary)",
            _Pieces((review_arrow.COPY_HEADER, *data, review_arrow.COPY_TRAILER)),
        )


def _write_chunk(connection: Connection, chunk: Chunk, deferred: bool) -> tuple[int, int]:
    """Write a chunk; returns (inserted, updated). While the key index is deferred, the rows
    that may be stored already go to `review_pending` (counted unchanged until compared)."""
    if deferred:
        _copy(connection, "reviews", chunk.data)
        if chunk.maybe_rows:
            _copy(connection, "review_pending", chunk.maybe)
        return chunk.rows - chunk.maybe_rows, 0
    try:
        with connection.begin_nested():
            _copy(connection, "reviews", chunk.data)
        return chunk.rows, 0
    except psycopg2.errors.UniqueViolation:
        pass
    # Some of the chunk's reviews are stored: write the new and the changed ones only.
    connection.execute(text("DROP TABLE IF EXISTS review_chunk"))
    connection.execute(
        text(
            "CREATE TEMP TABLE review_chunk AS SELECT "
            f"{', '.join(WRITTEN)}, ingest_run_id FROM reviews WITH NO DATA"
        )
    )
    _copy(connection, "review_chunk", chunk.data)
    inserted, updated = _settle(connection, "review_chunk")
    connection.execute(text("DROP TABLE review_chunk"))
    return inserted, updated


def _settle(connection: Connection, table: str) -> tuple[int, int]:
    """Update the stored reviews that `table`'s rows change, insert the others: (inserted,
    updated)."""
    updated = connection.execute(text(_UPDATE.format(table=table))).rowcount
    inserted = connection.execute(text(_INSERT.format(table=table))).rowcount
    return inserted, updated


# A changed review takes the chunk's values (and provenance); an unchanged one keeps its own.
_UPDATE = f"""
    UPDATE reviews r SET {", ".join(f"{c} = c.{c}" for c in COMPARED)},
        product_id = coalesce(c.product_id, r.product_id), source_file = c.source_file,
        source_row = c.source_row, ingest_run_id = c.ingest_run_id, updated_at = now()
    FROM {{table}} c
    WHERE r.source = c.source AND r.external_id = c.external_id
      AND ({", ".join("r." + c for c in COMPARED)}) IS DISTINCT FROM ({_TYPED})
"""
_INSERT = f"""
    INSERT INTO reviews ({", ".join(WRITTEN)}, ingest_run_id)
    SELECT {", ".join("c." + c for c in WRITTEN)}, c.ingest_run_id FROM {{table}} c
    WHERE NOT EXISTS (SELECT 1 FROM reviews r WHERE r.source = c.source AND r.external_id = c.external_id)
"""
