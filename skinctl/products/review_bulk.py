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
    """One statement per chunk of staged rows, one pass over them: check and convert each row,
    claim its key for this run (`run_review_keys`; a key claimed before is a duplicate), upsert
    the claimed rows into `reviews`, and answer the counts with the reported rows."""
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
    ), checked AS MATERIALIZED (
        SELECT cells.*, CASE
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
        FROM cells
    ), judged AS (
        SELECT checked.*, coalesce(rating_reason, text_reason, number_reason) AS reason FROM checked
    ), kept AS (
        INSERT INTO run_review_keys (external_id, file, seq)
        SELECT external_id, :name, seq FROM judged WHERE reason IS NULL
        ON CONFLICT DO NOTHING
        RETURNING external_id, seq
    ), written AS (
        INSERT INTO reviews (source, external_id, {", ".join(COMPARED)}, product_id,
                             source_file, source_row, ingest_run_id)
        SELECT :source, j.external_id, j.product, j.author, j.rating::numeric::smallint,
               j.recommended::float = 1, j.helpfulness::float, j.feedback::numeric::int,
               j.skin_type, j.skin_tone, j.eye_color, j.hair_color, j.title, j.body,
               j.submitted::date, p.id, :name, j.seq, :run_id
        FROM judged j JOIN kept USING (seq)
        LEFT JOIN products p ON p.source = :source AND p.external_id = j.product
        ON CONFLICT (source, external_id) DO UPDATE SET
            {", ".join(f"{c} = excluded.{c}" for c in COMPARED)},
            product_id = coalesce(excluded.product_id, reviews.product_id),
            source_file = excluded.source_file, source_row = excluded.source_row,
            ingest_run_id = excluded.ingest_run_id, updated_at = now()
        WHERE ({", ".join("reviews." + c for c in COMPARED)}) IS DISTINCT FROM
              ({", ".join("excluded." + c for c in COMPARED)})
        RETURNING (xmax = 0) AS inserted
    ), reported AS (
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
        END AS detail
        FROM judged WHERE reason IS NOT NULL
        UNION ALL
        -- a key this run claimed before (an earlier chunk or file, or earlier in this chunk)
        SELECT j.seq, 'duplicate', j.external_id || ' already read at ' || coalesce(
            k.file || ', row ' || k.seq,
            :name || ', row ' || (SELECT min(kept.seq) FROM kept WHERE kept.external_id = j.external_id))
        FROM judged j LEFT JOIN run_review_keys k ON k.external_id = j.external_id
        WHERE j.reason IS NULL AND NOT EXISTS (SELECT 1 FROM kept WHERE kept.seq = j.seq)
    )
    SELECT counts.inserted, counts.updated, counts.claimed, reported.seq, reported.reason, reported.detail
    FROM (SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated,
                 (SELECT count(*) FROM kept) AS claimed FROM written) counts
    LEFT JOIN reported ON true
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
)


def start_run(connection: Connection) -> None:
    """The keys this run has loaded, on the one connection that loads all its files."""
    connection.execute(text("DROP TABLE IF EXISTS run_review_keys"))
    connection.execute(
        text("CREATE TEMP TABLE run_review_keys (external_id text PRIMARY KEY, file text, seq bigint)")
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
    statement = text(_chunk_sql(header))
    for first in range(1, total + 1, CHUNK):
        last = min(first + CHUNK - 1, total)
        # The planner cannot estimate the CTEs' sizes and would join them by nested loops.
        connection.execute(text("SET LOCAL enable_nestloop = off"))
        rows = connection.execute(
            statement,
            {"first": first, "last": last, "run_id": run_id, "source": source, "name": path.name},
        ).all()
        inserted, updated, claimed = rows[0][:3]
        report.inserted += inserted
        report.updated += updated
        report.unchanged += claimed - inserted - updated
        problems += [(seq, reason, detail) for *_, seq, reason, detail in rows if seq is not None]
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
    cursor = connection.connection.driver_connection.cursor()
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
