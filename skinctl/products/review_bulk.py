"""The bulk path of `ingest reviews`: a review file is COPYed as it is into a session-local
staging table (text columns, in file order), and PostgreSQL checks, converts and upserts the rows
in chunks, each committed on its own. Python never parses the rows: a million-row file loads at
a good part of plain COPY's rate, and memory stays flat.

The rules are those of `readers.read_reviews` (which the per-row path uses when COPY cannot read
a file, e.g. a row with the wrong number of columns): blank ids and empty or non-text reviews
are reported, a rating outside 1-5 is a row error, the review key is
product:author:date:(index column, or the first 12 hex digits of the SHA-256 of title and text).
Reported rows name the file and the physical line they start on.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateIndex, DropIndex

from skinctl.db.models import Base
from skinctl.products.readers import REVIEW_COLUMNS, RowProblem, _encoding_of

CHUNK = 100_000
# The file's columns the rows use; the others (product_name, price_usd ...) are the product
# file's and are not kept.
OPTIONAL = (
    "is_recommended",
    "helpfulness",
    "total_feedback_count",
    "skin_type",
    "skin_tone",
    "eye_color",
    "hair_color",
    "review_title",
)


class NotCopyable(Exception):
    """COPY could not read the file as CSV: use the per-row path, which reports the bad rows."""


def _q(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _header(path: Path, encoding: str) -> list[str]:
    with path.open(encoding=encoding, errors="replace", newline="") as handle:
        first = next(csv.reader(handle), [])
    header = [c.strip().lstrip("\ufeff") or "_index" for c in first]
    if any(c not in header for c in REVIEW_COLUMNS) or len(set(header)) != len(header):
        # Preamble lines before the header, or a header COPY cannot name: the per-row path
        # finds the header (or says which column is missing).
        raise NotCopyable("the first row is not a header with every review column")
    return header


def _clean(column: str, header: list[str], dash_is_empty: bool = False) -> str:
    """The SQL of a trimmed cell, NULL when blank (or '-')."""
    if column not in header:
        return "NULL::text"
    value = f"nullif(btrim(f.{_q(column)}, E' \\t\\r\\n'), '')"
    return f"nullif({value}, '-')" if dash_is_empty else value


NUMBER = "'^[-+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]+)?$'"
DATE = "'^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$'"


def _chunk_sql(header: list[str]) -> str:
    """One pass over a chunk of staged rows: each row's typed values and key, or the reason it
    is reported (and the detail that says so)."""
    c = {
        name: _clean(name, header)
        for name in (
            "product_id",
            "author_id",
            "rating",
            "review_text",
            "review_title",
            "is_recommended",
            "helpfulness",
            "total_feedback_count",
            "skin_type",
            "skin_tone",
            "eye_color",
            "hair_color",
            "_index",
        )
    }
    c["submission_time"] = _clean("submission_time", header, dash_is_empty=True)
    # Each check starts with the cheap answer the real files give (rating '5', flag '1.0') and
    # only falls back on the regular expressions for the rest.
    return f"""
    WITH cells AS (
        SELECT f.seq, {c["product_id"]} AS product, {c["author_id"]} AS author,
               {c["rating"]} AS rating, {c["submission_time"]} AS submitted,
               {c["review_title"]} AS title, {c["review_text"]} AS body,
               {c["is_recommended"]} AS recommended, {c["helpfulness"]} AS helpfulness,
               {c["total_feedback_count"]} AS feedback, lower({c["skin_type"]}) AS skin_type,
               {c["skin_tone"]} AS skin_tone, {c["eye_color"]} AS eye_color,
               {c["hair_color"]} AS hair_color, {c["_index"]} AS index
        FROM review_file f WHERE f.seq BETWEEN :first AND :last
        OFFSET 0  -- a fence: each cell is trimmed once, not once per use below
    ), judged AS (
        SELECT checked.*, coalesce(rating_reason, text_reason, number_reason) AS reason
        FROM (SELECT cells.*, CASE
            WHEN product IS NULL THEN 'missing_id'
            WHEN author IS NULL THEN 'missing_id'
            WHEN rating IS NULL OR rating IN ('1', '2', '3', '4', '5') THEN NULL
            WHEN rating !~ {NUMBER} THEN 'bad_number'
            WHEN rating::numeric <> trunc(rating::numeric) THEN 'bad_number'
            WHEN rating::numeric NOT BETWEEN 1 AND 5 THEN 'bad_rating'
        END AS rating_reason, CASE
            WHEN submitted IS NOT NULL AND (submitted !~ {DATE} OR split_part(submitted, '-', 3)::int >
                 extract(day FROM date_trunc('month', (left(submitted, 7) || '-01')::date)
                                  + interval '1 month - 1 day')) THEN 'bad_date'
            WHEN coalesce(title, '') !~ '[[:alpha:]]{{2,}}' AND coalesce(body, '') !~ '[[:alpha:]]{{2,}}'
                 THEN 'empty_text'
            WHEN recommended IS NULL OR recommended IN ('0', '1', '0.0', '1.0') THEN NULL
            WHEN recommended !~ {NUMBER} OR recommended::float NOT IN (0, 1) THEN 'bad_flag'
        END AS text_reason, CASE
            WHEN helpfulness IS NOT NULL AND helpfulness !~ {NUMBER} THEN 'bad_number'
            WHEN feedback IS NOT NULL AND (feedback !~ {NUMBER}
                 OR feedback::numeric <> trunc(feedback::numeric)) THEN 'bad_number'
        END AS number_reason,
        product || ':' || author || ':' || coalesce(submitted, '') || ':' || coalesce(index,
            left(encode(sha256(convert_to(coalesce(title, '') || E'\\n' || coalesce(body, ''), 'UTF8')), 'hex'), 12))
            AS external_id
        FROM cells) checked
        OFFSET 0  -- the reasons once per row, not once per use below
    )
    SELECT seq, reason, CASE reason
            WHEN 'missing_id' THEN (CASE WHEN product IS NULL THEN 'product_id is blank' ELSE 'author_id is blank' END)
            WHEN 'bad_rating' THEN format('rating=%s is outside 1..5', rating::numeric::int)
            WHEN 'bad_date' THEN format('submission_time=%L is not a date', submitted)
            WHEN 'empty_text' THEN format('review of %s by %s is %s', product, author,
                 CASE WHEN title IS NULL AND body IS NULL THEN 'empty'
                      ELSE format('not text (%L)', left(coalesce(body, title), 40)) END)
            WHEN 'bad_flag' THEN format('is_recommended=%L is neither 0 nor 1', recommended)
            WHEN 'bad_number' THEN 'a number cell is not a (whole) number: ' || concat_ws(', ',
                 'rating=' || rating, 'helpfulness=' || helpfulness, 'total_feedback_count=' || feedback)
        END AS detail,
        external_id, product AS product_external_id, author AS author_id,
        CASE WHEN reason IS NULL THEN rating::numeric::smallint END AS rating,
        CASE WHEN reason IS NULL THEN recommended::float = 1 END AS is_recommended,
        CASE WHEN reason IS NULL THEN helpfulness::float END AS helpfulness,
        CASE WHEN reason IS NULL THEN feedback::numeric::int END AS total_feedback_count,
        skin_type, skin_tone, eye_color, hair_color, title, body AS review_text,
        CASE WHEN reason IS NULL THEN submitted::date END AS submitted_on
    FROM judged
    """


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


_TYPED = ", ".join("c." + c for c in COMPARED)

# A chunk's rows whose key this file and row claimed (a duplicate's key was claimed by another).
_CLAIMED = "c.reason IS NULL"
_CLAIMED_AMONG_DUPLICATES = (
    "c.reason IS NULL AND EXISTS (SELECT 1 FROM run_review_keys k "
    "WHERE k.external_id = c.external_id AND k.file = :file AND k.seq = c.seq)"
)


def _update_sql(claimed: str) -> str:
    """Write the claimed rows whose review exists and differs (a re-run writes nothing)."""
    return f"""
    UPDATE reviews r SET {", ".join(f"{c} = c.{c}" for c in COMPARED)},
        product_id = coalesce(p.id, r.product_id), source_file = :name, source_row = c.seq,
        ingest_run_id = :run_id, updated_at = now()
    FROM review_chunk c LEFT JOIN products p ON p.source = :source AND p.external_id = c.product_external_id
    WHERE {claimed} AND r.source = :source AND r.external_id = c.external_id
      AND ({", ".join("r." + c for c in COMPARED)}) IS DISTINCT FROM ({_TYPED})
    """


def _insert_sql(claimed: str, fresh: bool) -> str:
    """Insert the claimed rows whose review does not exist: a plain INSERT, no conflict check
    per row (the run's keys are unique, and an anti-join on the natural key finds the old ones;
    `fresh`: there are none)."""
    new = (
        ""
        if fresh
        else (
            " AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.source = :source AND r.external_id = c.external_id)"
        )
    )
    return f"""
    INSERT INTO reviews (source, external_id, {", ".join(COMPARED)}, product_id, source_file,
                         source_row, ingest_run_id)
    SELECT :source, c.external_id, {_TYPED}, p.id, :name, c.seq, :run_id
    FROM review_chunk c LEFT JOIN products p ON p.source = :source AND p.external_id = c.product_external_id
    WHERE {claimed}{new}
    """


# The indexes of `reviews` besides its keys: a load large against the table builds them once at
# the end of the file, which is cheaper than keeping them up to date row by row.
SECONDARY_INDEXES = [i for i in Base.metadata.tables["reviews"].indexes if not i.unique]


def start_run(connection: Connection, source: str) -> bool:
    """Make the table of the keys this run has loaded (on the one connection that loads all
    its files), build the secondary indexes if a killed run left them dropped, and say whether
    the run is a first load of this source (no review of it yet)."""
    # The staged file, the run's keys and a chunk are temporary tables, held in the session's
    # own buffers (8 MB by default: a million keys would go to disk and back). Only a session
    # that has not used temporary tables yet takes the setting; another refuses it and keeps
    # its buffers.
    try:
        with connection.begin_nested():
            connection.execute(text("SET temp_buffers = '256MB'"))
    except DBAPIError:
        pass
    connection.execute(text("DROP TABLE IF EXISTS run_review_keys"))
    connection.execute(
        text(
            "CREATE TEMP TABLE run_review_keys (external_id text PRIMARY KEY, file text, seq bigint)"
        )
    )
    _build_secondary_indexes(connection)
    fresh = not connection.execute(
        text("SELECT EXISTS (SELECT 1 FROM reviews WHERE source = :source)"), {"source": source}
    ).scalar_one()
    connection.commit()
    return fresh


def _build_secondary_indexes(connection: Connection) -> None:
    for index in SECONDARY_INDEXES:
        connection.execute(CreateIndex(index, if_not_exists=True))


def load_review_file(
    connection: Connection,
    path: Path,
    run_id: int,
    source: str,
    report: Any,
    progress: Callable[[int], None],
    fresh: bool = False,
) -> None:
    """Load one file through COPY; raises NotCopyable (nothing written) when COPY cannot read it.
    `fresh`: as `start_run` answered (no review of the source existed before this run)."""
    encoding = _encoding_of(path)
    header = _header(path, encoding)
    _stage(connection, path, header, encoding)
    total = connection.execute(text("SELECT count(*) FROM review_file")).scalar_one()
    report.total += total
    existing = connection.execute(
        text("SELECT count(*) FROM (SELECT 1 FROM reviews LIMIT :total) r"), {"total": total}
    ).scalar_one()
    defer_indexes = total > existing
    if defer_indexes:
        for index in SECONDARY_INDEXES:
            connection.execute(DropIndex(index, if_exists=True))
        connection.commit()
    try:
        problems = _load_chunks(
            connection, path, header, total, run_id, source, report, progress, fresh
        )
    finally:
        if defer_indexes:
            connection.rollback()
            _build_secondary_indexes(connection)
            connection.commit()
    connection.execute(text("DROP TABLE review_file"))
    connection.commit()
    lines = _physical_lines(path, encoding, {seq for seq, _, _ in problems})
    for seq, reason, detail in sorted(problems):
        problem = RowProblem(str(path), lines.get(seq, seq), reason, detail)
        (report.duplicates if reason == "duplicate" else report.problems).append(problem)


def _load_chunks(
    connection: Connection,
    path: Path,
    header: list[str],
    total: int,
    run_id: int,
    source: str,
    report: Any,
    progress: Callable[[int], None],
    fresh: bool,
) -> list[tuple[int, str, str]]:
    """Check, claim and write the staged rows chunk by chunk, each chunk committed on its own
    (an interrupted load resumes where it stopped: the written rows are unchanged then)."""
    problems: list[tuple[int, str, str]] = []
    chunk = _chunk_sql(header)
    params = {"run_id": run_id, "source": source, "name": path.name, "file": str(path)}
    for first in range(1, total + 1, CHUNK):
        last = min(first + CHUNK - 1, total)
        connection.execute(text("DROP TABLE IF EXISTS review_chunk"))
        # Sorting a chunk's keys by row (first read wins) in memory, not in temporary files.
        connection.execute(text("SET LOCAL work_mem = '128MB'"))
        connection.execute(
            text("CREATE TEMP TABLE review_chunk AS " + chunk), {"first": first, "last": last}
        )
        reported = connection.execute(
            text("SELECT seq, reason, detail FROM review_chunk WHERE reason IS NOT NULL")
        ).all()
        problems += [(seq, reason, detail) for seq, reason, detail in reported]
        checked = last - first + 1 - len(reported)
        claimed = connection.execute(
            text(
                "INSERT INTO run_review_keys SELECT c.external_id, :file, c.seq FROM review_chunk c "
                "WHERE c.reason IS NULL ORDER BY c.seq ON CONFLICT DO NOTHING"
            ),
            params,
        ).rowcount
        among = _CLAIMED if claimed == checked else _CLAIMED_AMONG_DUPLICATES
        if claimed < checked:
            duplicates = connection.execute(
                text(
                    "SELECT c.seq, c.external_id || ' already read at ' || k.file || ', row ' || k.seq "
                    "FROM review_chunk c JOIN run_review_keys k ON k.external_id = c.external_id "
                    "WHERE c.reason IS NULL AND NOT (k.file = :file AND k.seq = c.seq)"
                ),
                params,
            ).all()
            problems += [(seq, "duplicate", detail) for seq, detail in duplicates]
        updated = 0 if fresh else connection.execute(text(_update_sql(among)), params).rowcount
        inserted = connection.execute(text(_insert_sql(among, fresh)), params).rowcount
        report.inserted += inserted
        report.updated += updated
        report.unchanged += claimed - inserted - updated
        connection.commit()
        progress(last - first + 1)
    connection.execute(text("DROP TABLE IF EXISTS review_chunk"))
    return problems


def _stage(connection: Connection, path: Path, header: list[str], encoding: str) -> None:
    columns = ", ".join(f"{_q(h)} text" for h in header)
    connection.execute(text("DROP TABLE IF EXISTS review_file"))
    connection.execute(
        text(f"CREATE TEMP TABLE review_file (seq bigint GENERATED ALWAYS AS IDENTITY, {columns})")
    )
    driver = connection.connection.driver_connection
    assert driver is not None  # a checked-out connection has its psycopg2 connection
    cursor = driver.cursor()
    pg_encoding = "UTF8" if encoding == "utf-8-sig" else "WIN1252"
    try:
        with path.open("rb") as handle:
            if encoding == "utf-8-sig" and handle.read(3) != b"\xef\xbb\xbf":
                handle.seek(0)
            cursor.copy_expert(
                f"COPY review_file ({', '.join(_q(h) for h in header)}) FROM STDIN "
                # an empty cell is NULL, as blank as '' is to the checks (`_clean`)
                f"WITH (FORMAT csv, HEADER true, ENCODING '{pg_encoding}')",
                handle,
            )
    except Exception as error:  # psycopg2.DataError and friends: a row COPY cannot read
        connection.rollback()
        raise NotCopyable(str(error).splitlines()[0]) from error
    finally:
        cursor.close()
    # the chunks are ranges of seq
    connection.execute(text("CREATE INDEX ON review_file (seq)"))
    connection.commit()


def _physical_lines(path: Path, encoding: str, rows: set[int]) -> dict[int, int]:
    """The line each reported row starts on (rows are numbered in file order from 1)."""
    if not rows:
        return {}
    lines: dict[int, int] = {}
    last = max(rows)
    with path.open(encoding=encoding, errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        previous = 0
        seq = -1  # the header is row 0
        for cells in reader:
            start, previous = previous + 1, reader.line_num
            if not any(cell.strip() for cell in cells) and seq >= 0:
                continue
            seq += 1
            if seq in rows:
                lines[seq] = start
            if seq >= last:
                break
    return lines
