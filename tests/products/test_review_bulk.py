"""The bulk path of `ingest reviews` (`review_bulk`) in chunks: duplicates within and across
chunks, provenance, the secondary indexes of a large first load, re-runs and an interrupted
load."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from skinctl.products import review_bulk
from skinctl.products.ingest import ingest_reviews

HEADER = (
    ",author_id,rating,is_recommended,helpfulness,total_feedback_count,submission_time,"
    "review_text,review_title,skin_type,product_id\n"
)


def review(index: int, author: str, body: str = "Lovely cream", rating: str = "5") -> str:
    return f"{index},{author},{rating},1.0,,0,2023-03-{10 + index % 10:02d},{body},,oily,P1\n"


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(review_bulk, "CHUNK", 3)


def secondary_indexes(engine) -> set[str]:
    with engine.connect() as connection:
        names = connection.execute(
            text("SELECT indexname FROM pg_indexes WHERE tablename = 'reviews'")
        ).scalars()
        return {n for n in names if n.startswith("ix_")}


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
        "ix_reviews_product_external_id",
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


def test_an_interrupted_first_load_keeps_its_chunks_and_its_indexes(
    engine, tmp_path, small_chunks, monkeypatch
):
    path = tmp_path / "reviews.csv"
    path.write_text(HEADER + "".join(review(i, f"a{i}") for i in range(8)), encoding="utf-8")
    real_insert = review_bulk._insert_sql
    calls = []

    def insert_then_fail(claimed: str, fresh: bool) -> str:
        calls.append(fresh)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the second chunk never writes
        return real_insert(claimed, fresh)

    monkeypatch.setattr(review_bulk, "_insert_sql", insert_then_fail)
    with pytest.raises(KeyboardInterrupt):
        ingest_reviews(engine, path)
    monkeypatch.setattr(review_bulk, "_insert_sql", real_insert)
    # the load dropped the secondary indexes (8 rows into an empty table) and built them again
    assert len(secondary_indexes(engine)) == 2
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM reviews")).scalar_one() == 3

    resumed = ingest_reviews(engine, path).tables[0]
    assert (resumed.inserted, resumed.unchanged, resumed.duplicate) == (5, 3, 0)
