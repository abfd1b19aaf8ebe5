"""The bulk path of `ingest reviews` (`review_bulk`) in chunks: duplicates within and across
chunks, provenance, the secondary indexes of a large first load, re-runs and an interrupted
load."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from skinctl.products import readers, review_arrow, review_bulk
from skinctl.products.ingest import ingest_reviews
from tests.conftest import SHARED_DATA

HEADER = (
    ",author_id,rating,is_recommended,helpfulness,total_feedback_count,submission_time,"
    "review_text,review_title,skin_type,product_id\n"
)


def review(index: int, author: str, body: str = "Lovely cream", rating: str = "5") -> str:
    return f"{index},{author},{rating},1.0,,0,2023-03-{10 + index % 10:02d},{body},,oily,P1\n"


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(review_bulk, "CHUNK", 3)  # rows, for the Python reader
    monkeypatch.setattr(review_arrow, "BLOCK_BYTES", 200)  # two or three rows, for Arrow


def secondary_indexes(engine) -> set[str]:
    with engine.connect() as connection:
        names = connection.execute(
            text("SELECT indexname FROM pg_indexes WHERE tablename = 'reviews'")
        ).scalars()
        return {n for n in names if n.startswith("ix_")}


def constraint_names(engine, where: str) -> set[str]:
    with engine.connect() as connection:
        return set(
            connection.execute(text(f"SELECT conname FROM pg_constraint WHERE {where}")).scalars()
        )


def foreign_keys(engine) -> set[str]:
    return constraint_names(engine, "conrelid = 'reviews'::regclass AND contype = 'f'")


def load_product_p1(engine, tmp_path) -> None:
    """The product every `review()` is of."""
    from skinctl.products.ingest import ingest_products

    products = tmp_path / "products.csv"
    products.write_text(
        "product_id,product_name,brand_name,primary_category,ingredients,price_usd\n"
        "P1,Cream,Brand,Skincare,\"['Water']\",20\n",
        encoding="utf-8",
    )
    ingest_products(engine, products, "sephora")


def table_options(engine) -> list[str] | None:
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT reloptions FROM pg_class WHERE oid = 'reviews'::regclass")
        ).scalar_one()


FOREIGN_KEYS = {"fk_reviews_product_id_products", "fk_reviews_ingest_run_id_ingest_runs"}


def test_duplicates_across_chunks_are_reported_and_provenance_kept(engine, tmp_path, small_chunks):
    rows = [review(i, f"a{i}") for i in range(7)]
    rows.insert(2, review(0, "a0"))  # a duplicate of row 1 in the same chunk (row 3)
    rows.append(review(4, "a4", body="Another text"))  # of row 6, two chunks later (row 9)
    path = tmp_path / "reviews.csv"
    path.write_text(HEADER + "".join(rows), encoding="utf-8")

    first = ingest_reviews(engine, path).tables[0]
    assert (first.total, first.inserted, first.duplicate, first.rejected) == (9, 7, 2, 0)
    assert [(p.line, p.reason) for p in first.duplicates] == [(4, "duplicate"), (10, "duplicate")]
    assert "already read at" in first.duplicates[1].detail and "row 6" in first.duplicates[1].detail
    assert secondary_indexes(engine) == {
        "ix_reviews_product_id_skin_type",
        "ix_reviews_unlinked",
    }
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT source_file, source_row, review_text FROM reviews WHERE author_id = 'a4'")
        ).one()
    assert tuple(stored) == ("reviews.csv", 6, "Lovely cream")  # the first one read wins

    again = ingest_reviews(engine, path).tables[0]
    assert (again.inserted, again.updated, again.unchanged, again.duplicate) == (0, 0, 7, 2)

    path.write_text(path.read_text().replace("5,a5,5,", "5,a5,4,"), encoding="utf-8")
    changed = ingest_reviews(engine, path).tables[0]
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 6)


@pytest.mark.parametrize("reader", ["arrow", "python"])
def test_an_interrupted_first_load_keeps_its_chunks_and_its_indexes(
    engine, tmp_path, small_chunks, monkeypatch, reader
):
    path = tmp_path / "reviews.csv"
    # a line before the header sends the file to the Python reader
    preamble = "Exported 2023-03-21\n" if reader == "python" else ""
    path.write_text(
        preamble + HEADER + "".join(review(i, f"a{i}") for i in range(8)), encoding="utf-8"
    )
    patched = (review_arrow, "typed_block") if reader == "arrow" else (review_bulk, "_fast_review")
    real = getattr(*patched)
    calls = []

    def ctrl_c_on_the_third_block_or_fifth_row(*args):
        calls.append(1)
        if len(calls) == (3 if reader == "arrow" else 5):
            raise KeyboardInterrupt  # while the first chunk is written
        return real(*args)

    monkeypatch.setattr(*patched, ctrl_c_on_the_third_block_or_fifth_row)
    with pytest.raises(KeyboardInterrupt):
        ingest_reviews(engine, path)
    monkeypatch.setattr(*patched, real)
    # the load deferred the secondary indexes and foreign keys (8 rows into an empty table)
    # and put them back
    assert len(secondary_indexes(engine)) == 2
    assert foreign_keys(engine) == FOREIGN_KEYS
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT count(*) FROM reviews")).scalar_one()
    # what was read before Ctrl-C is written: the first chunk (three rows) or block
    assert 0 < kept < 8 and (reader == "arrow" or kept == 3)

    resumed = ingest_reviews(engine, path).tables[0]
    assert (resumed.inserted, resumed.unchanged, resumed.duplicate) == (8 - kept, kept, 0)


def test_a_review_read_before_from_another_file_is_compared_not_copied(engine, tmp_path):
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(HEADER + review(1, "a1") + review(2, "a2"), encoding="utf-8")
    ingest_reviews(engine, first)
    # the second file holds a1 unchanged, a2 with another rating, and a new review
    second.write_text(
        HEADER + review(1, "a1") + review(2, "a2", rating="3") + review(3, "a3"), encoding="utf-8"
    )
    report = ingest_reviews(engine, second).tables[0]
    assert (report.inserted, report.updated, report.unchanged) == (1, 1, 1)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT author_id, rating, source_file FROM reviews ORDER BY author_id")
        ).all()
    assert [tuple(r) for r in rows] == [
        ("a1", 5, "first.csv"),  # unchanged: keeps where it was read
        ("a2", 3, "second.csv"),
        ("a3", 5, "second.csv"),
    ]


EDGE_CELLS = [
    # (rating, is_recommended, helpfulness, total_feedback_count, submission_time, text, title)
    ("5", "1.0", "0.5", "3", "2023-03-10", "Lovely cream", ""),
    ("5.0", "1", "", "3.0", "2023-3-1", "Lovely", "Good"),
    ("6", "2", "x", "-1", "2023-02-30", "ok", ""),
    ("", "", "nan", "", "-", "", "Nice title"),
    (" 4 ", " 0.0 ", " 1e-3 ", " 12 ", " 2023-03-10 ", "  spaced  ", ""),
    ("3", "true", "", "１２", "10/03/2023", "!!! 555", ""),
    ("2", "0.0", "inf", "٣", "2023-03-10", "", ""),
]


def test_the_fast_path_types_rows_as_the_one_rule_does():
    """`_fast_review` either declines a row or answers exactly what `_sephora_review` does:
    on every row of the real files (where present) and on cells built to differ."""
    from skinctl.products.readers import BadRow, CsvCells

    header = [
        "",
        "author_id",
        "rating",
        "is_recommended",
        "helpfulness",
        "total_feedback_count",
        "submission_time",
        "review_text",
        "review_title",
        "skin_type",
        "product_id",
    ]
    rows = [
        ["7", "a1", rating, flag, helpful, feedback, day, body, title, "Oily ", "P1"]
        for rating, flag, helpful, feedback, day, body, title in EDGE_CELLS
    ]
    cases = [(header, rows), (header[1:], [row[1:] for row in rows])]
    for path in sorted((SHARED_DATA / "sephora").glob("**/*review*.csv")):
        cells = CsvCells(path, readers.REVIEW_COLUMNS)
        real = [item[1] for item in cells if not isinstance(item, readers.RowProblem)]
        assert cells.header is not None
        cases.append((cells.header, real))
    fast, typed = [0, 0], [0, 0]  # (built cells, real rows)
    for case, (header, rows) in enumerate(cases):
        at = review_bulk._Layout(header)
        dates: dict[str, str] = {}
        for cells in rows:
            day = cells[at.submitted].strip() if at.submitted is not None else ""
            try:
                parsed = readers.date_cell(day, "submission_time", ("%Y-%m-%d",))
                if parsed:
                    dates[day] = parsed.isoformat()
            except BadRow:
                pass
            quick = review_bulk._fast_review(cells, at, dates)
            try:
                ruled = review_bulk._review(cells, at)
            except BadRow:
                assert quick is None, cells
                continue
            typed[min(case, 2) // 2] += 1
            if quick is not None:
                fast[min(case, 2) // 2] += 1
                assert quick == ruled, cells
    # typed by the rule: rows 1, 2, 4 and 5 of each case; the fast path declines row 2 ('5.0',
    # '2023-3-1') and row 4 ('nan', '-')
    assert (fast[0], typed[0]) == (4, 8)
    # the real rows nearly all take the fast path (what makes the load fast)
    assert fast[1] >= 0.99 * typed[1]

    # Arrow's block test (`review_arrow.typed_block`): the same answers, column-wise.
    import pyarrow as pa

    products = (pa.array(["P1"], pa.string()), pa.array([41], pa.int64()))
    answered = [0, 0]
    for case, (header, rows) in enumerate(cases):
        at = review_bulk._Layout(header)
        batch = pa.RecordBatch.from_arrays(
            [pa.array([row[i] for row in rows], pa.string()) for i in range(len(header))],
            names=header,
        )
        table, mask = review_arrow.typed_block(batch, "sephora", products)
        chosen = [i for i, yes in enumerate(mask.to_pylist()) if yes]
        for i, stored in zip(chosen, table.to_pylist(), strict=True):
            ruled = review_bulk._review(rows[i], at)  # raises BadRow if Arrow took a bad row
            day = stored["submitted_on"]  # a date in the table, ISO text from the rule
            stored["submitted_on"] = day.isoformat() if day else None
            as_typed = (stored["external_id"], *(stored[c] for c in review_bulk.COMPARED))
            assert as_typed == ruled, rows[i]
            assert stored["source"] == "sephora"
            assert stored["product_id"] == (41 if stored["product_external_id"] == "P1" else None)
        answered[min(case, 2) // 2] += len(chosen)
    assert answered[0] == 4
    assert answered[1] >= 0.99 * typed[1]


def constraints_to_reviews(engine) -> set[str]:
    """The primary key of reviews and the foreign keys to it."""
    return constraint_names(
        engine,
        "(conrelid = 'reviews'::regclass AND contype = 'p') OR confrelid = 'reviews'::regclass",
    )


def id_cache(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT cache_size FROM pg_sequences WHERE sequencename = 'reviews_id_seq'")
        ).scalar_one()


def test_a_killed_load_leaves_its_deferred_checks_to_the_next_run(engine, tmp_path):
    """A load killed while its indexes and foreign keys are deferred: the next run puts them
    back; a review whose product was deleted meanwhile loses its product_id (as ON DELETE SET
    NULL does). The primary key stays, and with it the sentiments' key to it."""
    load_product_p1(engine, tmp_path)
    path = tmp_path / "reviews.csv"
    path.write_text(HEADER + review(1, "a1") + review(3, "a3"), encoding="utf-8")
    ingest_reviews(engine, path)
    with engine.begin() as connection:
        run = connection.execute(
            text(
                "INSERT INTO model_training_metrics (model_name, task) "
                "VALUES ('sentiment', 'sentiment') RETURNING id"
            )
        ).scalar_one()
        connection.execute(
            text(
                "INSERT INTO review_sentiments (review_id, run_id, sentiment, p_negative, "
                "p_neutral, p_positive) SELECT id, :run, 'positive', 0, 0, 1 FROM reviews"
            ),
            {"run": run},
        )
    assert constraints_to_reviews(engine) == {
        "pk_reviews",
        "fk_review_sentiments_review_id_reviews",
    }
    review_bulk._defer(engine, "sephora")  # as a load killed in its middle leaves the table
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM products WHERE external_id = 'P1'"))
        connection.execute(text("DELETE FROM reviews WHERE author_id = 'a3'"))
    assert foreign_keys(engine) == set() and secondary_indexes(engine) == set()
    # the primary key and the keys to it stay (a sentiment of a review deleted meanwhile goes)
    assert len(constraints_to_reviews(engine)) == 2 and id_cache(engine) > 1
    assert table_options(engine) == ["autovacuum_enabled=false"]

    path.write_text(HEADER + review(1, "a1") + review(2, "a2"), encoding="utf-8")
    report = ingest_reviews(engine, path).tables[0]
    assert (report.inserted, report.unchanged) == (1, 1)
    assert foreign_keys(engine) == FOREIGN_KEYS and table_options(engine) is None
    assert len(secondary_indexes(engine)) == 2
    assert constraints_to_reviews(engine) == {
        "pk_reviews",
        "fk_review_sentiments_review_id_reviews",
    }
    assert id_cache(engine) == 1
    with engine.connect() as connection:
        assert (
            connection.execute(
                text("SELECT count(*) FROM reviews WHERE product_id IS NOT NULL")
            ).scalar_one()
            == 0
        )
        sentiments = connection.execute(
            text("SELECT r.author_id FROM review_sentiments s JOIN reviews r ON r.id = s.review_id")
        ).scalars()
        assert list(sentiments) == ["a1"]


def test_a_restore_killed_after_the_key_index_makes_it_the_key_next_run(engine, tmp_path):
    """The key's index is built as a plain unique index, then made the constraint: a run that
    finds the index without the constraint (killed in between) makes it the key."""
    path = tmp_path / "reviews.csv"
    path.write_text(HEADER + review(1, "a1"), encoding="utf-8")
    ingest_reviews(engine, path)
    review_bulk._defer(engine, "sephora")
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE UNIQUE INDEX uq_reviews_source_external_id ON reviews (external_id, source)"
            )
        )

    path.write_text(HEADER + review(1, "a1") + review(2, "a2"), encoding="utf-8")
    report = ingest_reviews(engine, path).tables[0]
    assert (report.inserted, report.unchanged) == (1, 1)
    with engine.connect() as connection:
        kind = connection.execute(
            text(
                "SELECT contype FROM pg_constraint WHERE conname = 'uq_reviews_source_external_id'"
            )
        ).scalar_one()
    assert kind == "u" and foreign_keys(engine) == FOREIGN_KEYS


def test_only_reviews_waiting_for_their_product_are_in_the_link_index(engine, tmp_path):

    path = tmp_path / "reviews.csv"
    path.write_text(HEADER + review(1, "a1") + review(2, "a2"), encoding="utf-8")
    assert ingest_reviews(engine, path).reviews_without_product == 2

    def definition() -> str:
        with engine.connect() as connection:
            return connection.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_reviews_unlinked'")
            ).scalar_one()

    assert "WHERE (product_id IS NULL)" in definition()
    load_product_p1(engine, tmp_path)
    with engine.connect() as connection:
        linked = connection.execute(
            text("SELECT count(*) FROM reviews WHERE product_id IS NOT NULL")
        ).scalar_one()
    assert linked == 2


def test_a_large_load_compares_the_stored_reviews_once_its_key_index_is_back(
    engine, tmp_path, monkeypatch
):
    """A load large against the table drops the key index; the rows whose key was stored
    before wait aside and are compared at the end, as a small load compares them."""
    path = tmp_path / "reviews.csv"
    path.write_text(HEADER + review(1, "a1") + review(2, "a2"), encoding="utf-8")
    ingest_reviews(engine, path)
    monkeypatch.setattr(review_bulk, "ROW_BYTES", 1)  # every load is large against the table
    deferred = []
    real_defer = review_bulk._defer
    monkeypatch.setattr(
        review_bulk, "_defer", lambda *a, **k: deferred.append(1) or real_defer(*a, **k)
    )
    rows = [review(1, "a1"), review(2, "a2", rating="2")] + [review(i, f"a{i}") for i in (3, 4)]
    path.write_text(HEADER + "".join(rows) + review(3, "a3"), encoding="utf-8")

    report = ingest_reviews(engine, path).tables[0]
    assert deferred == [1]
    assert (report.inserted, report.updated, report.unchanged, report.duplicate) == (2, 1, 1, 1)
    assert foreign_keys(engine) == FOREIGN_KEYS and len(secondary_indexes(engine)) == 2
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT author_id, rating FROM reviews ORDER BY author_id")
        ).all()
        keys = connection.execute(
            text(
                "SELECT count(*) FROM pg_constraint WHERE conname = 'uq_reviews_source_external_id'"
            )
        ).scalar_one()
        pending = connection.execute(text("SELECT to_regclass('review_pending')")).scalar_one()
    assert [tuple(r) for r in stored] == [("a1", 5), ("a2", 2), ("a3", 5), ("a4", 5)]
    assert keys == 1 and pending is None
    # again: nothing changes
    again = ingest_reviews(engine, path).tables[0]
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)


def test_a_row_arrow_cannot_read_stops_the_file_with_the_rows_before_it_loaded(
    engine, tmp_path, monkeypatch
):
    """A row longer than Arrow's parsed block: one clear error naming the file and the row it
    stopped after; what was read before it is committed, and a fixed file loads the rest."""
    from skinctl.errors import InputRejected

    monkeypatch.setattr(review_arrow, "BLOCK_BYTES", 300)
    monkeypatch.setattr(review_bulk, "CHUNK", 2)
    path = tmp_path / "reviews.csv"
    rows = [review(i, f"a{i}") for i in range(40)]
    long = review(40, "a40", body="Lovely " * 200)  # ~1.4 KB: more than a block
    path.write_text(HEADER + "".join(rows) + long, encoding="utf-8")
    with pytest.raises(InputRejected) as caught:
        ingest_reviews(engine, path)
    message = caught.value.message
    assert str(path) in message and "cannot read the CSV after row" in message
    read = int(message.split("after row ")[1].split(":")[0])
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT count(*) FROM reviews")).scalar_one()
    assert 0 < kept <= read < 41  # what was read before the error is committed

    path.write_text(HEADER + "".join(rows) + review(40, "a40"), encoding="utf-8")
    resumed = ingest_reviews(engine, path).tables[0]
    assert (resumed.inserted, resumed.unchanged) == (41 - kept, kept)


def test_claimed_keys_find_every_earlier_read_across_merged_runs():
    """Against a dict: keys claimed over many chunks (runs merged along the way), with
    repeats inside a chunk and across chunks, each answered with where it was first read."""
    import random

    rng = random.Random(3)
    claimed, first_read = review_bulk.ClaimedKeys(), {}
    row = 0
    for chunk in range(60):
        keys = [f"k{rng.randrange(2_000)}" for _ in range(rng.randrange(1, 80))]
        rows = list(range(row + 1, row + 1 + len(keys)))
        row += len(keys)
        file = f"f{chunk % 3}.csv"
        expected = {}
        for i, (key, at) in enumerate(zip(keys, rows, strict=True)):
            if key in first_read:
                expected[i] = first_read[key]
            else:
                first_read[key] = f"{file}, row {at}"
        assert claimed.claim(file, review_bulk.key_hashes(keys), rows) == expected
    assert len(claimed.runs) < 12  # merged: O(log n) runs, not one per chunk


def test_line_breaks_per_cell_are_counted_in_sliced_columns_too():
    import pyarrow as pa
    import pyarrow.compute as pc

    column = pa.array(["a\nb", "", None, "\n\r\n", "x", "y\n"])
    for part in (column, column.slice(1), column.slice(2, 3), column.slice(0, 0)):
        expected = pc.fill_null(pc.count_substring(part, "\n"), 0).to_pylist()
        assert review_arrow.breaks_per_row(part).tolist() == expected


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
@pytest.mark.parametrize("shape", ["plain", "blank lines", "malformed row", "broken header"])
def test_reported_rows_name_the_physical_line_they_start_on(engine, tmp_path, ending, shape):
    """The Arrow reader numbers reported rows by arithmetic when it skipped no line, else by a
    second pass: either way the line is the one Python's csv module counts."""
    rows = [
        review(1, "a1", body='"Lovely,\nreally"'),  # a line break inside a cell
        review(2, "a2", rating="9"),  # bad_rating
        review(3, "a3", body='"One\n\ntwo"'),
        review(4, "a4", body=""),  # no text
        review(1, "a1", body='"Lovely,\nreally"'),  # a duplicate of the first
    ]
    header = HEADER
    if shape == "blank lines":
        rows.insert(2, "\n")
        rows.append("\n")
    elif shape == "malformed row":
        rows.insert(3, "5,a5,5\n")
    elif shape == "broken header":  # a column name holding a line break
        header = HEADER.replace("product_id\n", 'product_id,"more\nnotes"\n')
        rows = [row.replace("P1\n", "P1,\n") for row in rows]
    text_ = (header + "".join(rows)).replace("\n", ending)
    path = tmp_path / "reviews.csv"
    path.write_bytes(text_.encode())
    report = ingest_reviews(engine, path).tables[0]

    import csv as csv_module

    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv_module.reader(handle)
        next(reader)
        starts, previous = {}, reader.line_num
        for cells in reader:
            if cells and len(cells) > 1:
                starts[cells[1]] = previous + 1
            previous = reader.line_num
    reported = {(p.line, p.reason) for p in report.problems + report.duplicates}
    expected = {
        (starts["a2"], "bad_rating"),
        (starts["a4"], "empty_text"),
        (starts["a1"], "duplicate"),  # the line of the last row of a1: the duplicate
    }
    if shape == "malformed row":
        expected.add((starts["a5"], "column_count"))
    assert reported == expected
    assert report.inserted == 2  # a1 and a3


def test_binary_rows_are_the_columns_a_load_writes():
    """The binary COPY takes the columns in WRITTEN order with the table's own types: the
    schema says so, and the file header is the one the encoder writes."""
    from pgpq import ArrowToPostgresBinaryEncoder

    from skinctl.db.models import Review

    assert tuple(review_arrow.SCHEMA.names) == (*review_bulk.WRITTEN, "ingest_run_id")
    assert ArrowToPostgresBinaryEncoder(review_arrow.SCHEMA).write_header() == (
        review_arrow.COPY_HEADER
    )
    for column, length in readers.REVIEW_LENGTHS.items():
        assert Review.__table__.c[column].type.length == length  # type: ignore[attr-defined]


def test_cells_beyond_their_column_are_reported_rows(engine, tmp_path):
    """A cell longer than its column, or a count beyond INTEGER, is a reported row with its
    line (the rest loads), whichever reader reads the file."""
    long_author = "x" * 65
    rows = [
        review(1, "a1"),
        review(2, long_author),
        review(3, "a3").replace(",0,2023", ",99999999999,2023"),  # total_feedback_count
        review(4, "a4").replace(",oily,", ",very very oily indeed skin,"),  # skin_type > 20
        review(5, "a5"),
    ]
    for preamble in ("", "Exported 2023-03-21\n"):  # Arrow, then the Python reader
        path = tmp_path / f"reviews{len(preamble)}.csv"
        path.write_text(preamble + HEADER + "".join(rows), encoding="utf-8")
        report = ingest_reviews(engine, path).tables[0]
        first = 2 + (1 if preamble else 0)
        assert {(p.line, p.reason) for p in report.problems} == {
            (first + 1, "too_long"),
            (first + 2, "bad_number"),
            (first + 3, "too_long"),
        }
        assert report.rejected == 3


def test_a_large_load_of_known_products_keeps_the_link_index_up(engine, tmp_path, monkeypatch):
    """With the source's products loaded, a large load leaves the index of reviews waiting for
    their product in place (few enter it) and drops the others; a review of an unknown product
    still waits in it."""
    load_product_p1(engine, tmp_path)
    monkeypatch.setattr(review_bulk, "ROW_BYTES", 1)  # every load is large against the table
    during: list[set[str]] = []
    real_defer = review_bulk._defer

    def defer(*args, **kwargs):
        known = real_defer(*args, **kwargs)
        during.append(secondary_indexes(engine))
        return known

    monkeypatch.setattr(review_bulk, "_defer", defer)
    path = tmp_path / "reviews.csv"
    unknown = review(2, "a2").replace(",P1\n", ",P9\n")
    path.write_text(HEADER + review(1, "a1") + unknown, encoding="utf-8")
    result = ingest_reviews(engine, path)
    assert during == [{"ix_reviews_unlinked"}]
    assert result.reviews_without_product == 1
    assert len(secondary_indexes(engine)) == 2 and foreign_keys(engine) == FOREIGN_KEYS
