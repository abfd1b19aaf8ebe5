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

from skinctl.products.readers import REVIEW_COLUMNS, RowProblem, _encoding_of

CHUNK = 100_000
# The file's columns the rows use; others (product_name, price_usd ...) are kept in `raw` only.
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


def _checked_rows_sql(header: list[str], source: str) -> str:
    """One row per staged row: the converted values, or the reason it is reported."""
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
    raw_columns = ", ".join(f"'{h}', f.{_q(h)}" for h in header)
    return f"""
    WITH cells AS MATERIALIZED (
        SELECT f.seq, jsonb_build_object({raw_columns}) AS raw,
               {c["product_id"]} AS product, {c["author_id"]} AS author, {c["rating"]} AS rating,
               {c["submission_time"]} AS submitted, {c["review_title"]} AS title, {c["review_text"]} AS body,
               {c["is_recommended"]} AS recommended, {c["helpfulness"]} AS helpfulness,
               {c["total_feedback_count"]} AS feedback, lower({c["skin_type"]}) AS skin_type,
               {c["skin_tone"]} AS skin_tone, {c["eye_color"]} AS eye_color, {c["hair_color"]} AS hair_color,
               {c["_index"]} AS index
        FROM review_file f WHERE f.seq BETWEEN :first AND :last
    ), checked AS (
        SELECT cells.*, CASE
            WHEN product IS NULL THEN 'missing_id'
            WHEN author IS NULL THEN 'missing_id'
            WHEN rating IS NOT NULL AND rating !~ {NUMBER} THEN 'bad_number'
            WHEN rating IS NOT NULL AND rating::numeric <> trunc(rating::numeric) THEN 'bad_number'
            WHEN rating IS NOT NULL AND rating::numeric NOT BETWEEN 1 AND 5 THEN 'bad_rating'
            WHEN submitted IS NOT NULL AND (submitted !~ {DATE} OR split_part(submitted, '-', 3)::int >
                 extract(day FROM date_trunc('month', (left(submitted, 7) || '-01')::date)
                                  + interval '1 month - 1 day')) THEN 'bad_date'
            WHEN coalesce(title, '') !~ '[[:alpha:]]{{2,}}' AND coalesce(body, '') !~ '[[:alpha:]]{{2,}}'
                 THEN 'empty_text'
            WHEN recommended IS NOT NULL AND (recommended !~ {NUMBER} OR recommended::float NOT IN (0, 1))
                 THEN 'bad_flag'
            WHEN helpfulness IS NOT NULL AND helpfulness !~ {NUMBER} THEN 'bad_number'
            WHEN feedback IS NOT NULL AND (feedback !~ {NUMBER}
                 OR feedback::numeric <> trunc(feedback::numeric)) THEN 'bad_number'
        END AS reason
        FROM cells
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
        '{source}' AS source,
        product || ':' || author || ':' || coalesce(submitted, '') || ':' || coalesce(index,
            left(encode(sha256(convert_to(coalesce(title, '') || E'\\n' || coalesce(body, ''), 'UTF8')), 'hex'), 12))
            AS external_id,
        product AS product_external_id, author AS author_id,
        CASE WHEN reason IS NULL THEN rating::numeric::smallint END AS rating,
        CASE WHEN reason IS NULL THEN recommended::float = 1 END AS is_recommended,
        CASE WHEN reason IS NULL THEN helpfulness::float END AS helpfulness,
        CASE WHEN reason IS NULL THEN feedback::numeric::int END AS total_feedback_count,
        skin_type, skin_tone, eye_color, hair_color, title, body AS review_text,
        CASE WHEN reason IS NULL THEN submitted::date END AS submitted_on, raw
    FROM checked
    """


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
    "raw",
)

UPSERT = f"""
WITH fresh AS (
    SELECT c.* FROM checked_rows c
    WHERE c.reason IS NULL AND c.first_seq = c.seq AND NOT EXISTS (
        SELECT 1 FROM run_review_keys k WHERE k.external_id = c.external_id)
), written AS (
    INSERT INTO reviews (source, external_id, {", ".join(COMPARED)}, product_id, ingest_run_id)
    SELECT fresh.source, fresh.external_id, {", ".join("fresh." + c for c in COMPARED)}, p.id, :run_id FROM fresh
    LEFT JOIN products p ON p.source = fresh.source AND p.external_id = fresh.product_external_id
    ON CONFLICT (source, external_id) DO UPDATE SET
        {", ".join(f"{c} = excluded.{c}" for c in COMPARED)},
        product_id = coalesce(excluded.product_id, reviews.product_id),
        ingest_run_id = excluded.ingest_run_id, updated_at = now()
    WHERE ({", ".join("reviews." + c for c in COMPARED)}) IS DISTINCT FROM
          ({", ".join("excluded." + c for c in COMPARED)})
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted), (SELECT count(*) FROM fresh)
FROM written
"""


def start_run(connection: Connection) -> None:
    """The keys this run has loaded, on the one connection that loads all its files."""
    connection.execute(text("DROP TABLE IF EXISTS run_review_keys"))
    connection.execute(
        text("CREATE TEMP TABLE run_review_keys (external_id text PRIMARY KEY, where_read text)")
    )
    connection.commit()


def load_review_file(
    connection: Connection,
    path: Path,
    run_id: int,
    source: str,
    report: Any,
    progress: Callable[[int], None],
) -> None:
    """Load one file through COPY; raises NotCopyable (nothing written) when COPY cannot read it."""
    encoding = _encoding_of(path)
    header = _header(path, encoding)
    _stage(connection, path, header, encoding)
    total = connection.execute(text("SELECT count(*) FROM review_file")).scalar_one()
    report.total += total
    problems: list[tuple[int, str, str]] = []
    for first in range(1, total + 1, CHUNK):
        last = min(first + CHUNK - 1, total)
        connection.execute(text("TRUNCATE checked_rows"))
        connection.execute(
            text(
                "INSERT INTO checked_rows SELECT r.*, min(r.seq) FILTER (WHERE r.reason IS NULL) "
                "OVER (PARTITION BY r.external_id) FROM ("
                + _checked_rows_sql(header, source)
                + ") r"
            ),
            {"first": first, "last": last},
        )
        inserted, updated, fresh = connection.execute(text(UPSERT), {"run_id": run_id}).one()
        report.inserted += inserted
        report.updated += updated
        report.unchanged += fresh - inserted - updated
        problems += connection.execute(
            text("SELECT seq, reason, detail FROM checked_rows WHERE reason IS NOT NULL")
        ).all()
        duplicates = connection.execute(
            text(
                "SELECT c.seq, c.external_id, coalesce(k.where_read, 'row ' || c.first_seq) FROM checked_rows c "
                "LEFT JOIN run_review_keys k ON k.external_id = c.external_id "
                "WHERE c.reason IS NULL AND (c.first_seq <> c.seq OR k.external_id IS NOT NULL)"
            )
        ).all()
        problems += [
            (seq, "duplicate", f"{key} already read at {where}") for seq, key, where in duplicates
        ]
        connection.execute(
            text(
                "INSERT INTO run_review_keys SELECT external_id, :name || ', row ' || seq "
                "FROM checked_rows WHERE reason IS NULL AND first_seq = seq ON CONFLICT DO NOTHING"
            ),
            {"name": path.name},
        )
        connection.commit()
        progress(last - first + 1)
    connection.execute(text("DROP TABLE review_file"))
    connection.commit()
    lines = _physical_lines(path, encoding, {seq for seq, _, _ in problems})
    for seq, reason, detail in sorted(problems):
        problem = RowProblem(str(path), lines.get(seq, seq), reason, detail)
        (report.duplicates if reason == "duplicate" else report.problems).append(problem)


def _stage(connection: Connection, path: Path, header: list[str], encoding: str) -> None:
    columns = ", ".join(f"{_q(h)} text" for h in header)
    connection.execute(text("DROP TABLE IF EXISTS review_file"))
    connection.execute(
        text(f"CREATE TEMP TABLE review_file (seq bigint GENERATED ALWAYS AS IDENTITY, {columns})")
    )
    connection.execute(
        text(
            "CREATE TEMP TABLE IF NOT EXISTS checked_rows (seq bigint, reason text, detail text, source text, "
            "external_id text, product_external_id text, author_id text, rating smallint, is_recommended boolean, "
            "helpfulness float, total_feedback_count int, skin_type text, skin_tone text, eye_color text, "
            "hair_color text, title text, review_text text, submitted_on date, raw jsonb, first_seq bigint)"
        )
    )
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None  # a checked-out connection has its psycopg2 one
    cursor = driver_connection.cursor()
    pg_encoding = "UTF8" if encoding == "utf-8-sig" else "WIN1252"
    try:
        with path.open("rb") as handle:
            if encoding == "utf-8-sig" and handle.read(3) != b"\xef\xbb\xbf":
                handle.seek(0)
            cursor.copy_expert(
                f"COPY review_file ({', '.join(_q(h) for h in header)}) FROM STDIN "
                # FORCE_NOT_NULL: an empty cell is '' as the per-row path reads it (raw keeps it so)
                f"WITH (FORMAT csv, HEADER true, ENCODING '{pg_encoding}', "
                f"FORCE_NOT_NULL ({', '.join(_q(h) for h in header)}))",
                handle,
            )
    except Exception as error:  # psycopg2.DataError and friends: a row COPY cannot read
        connection.rollback()
        raise NotCopyable(str(error).splitlines()[0]) from error
    finally:
        cursor.close()
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
