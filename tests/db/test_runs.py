"""One run lifecycle for every ingest: a run ends finished, interrupted (Ctrl-C) or failed (a
database error), never `running`; the work committed before the stop is kept."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from skinctl.db.locks import IngestAlreadyRunning, held_ingest_lock
from skinctl.db.models import IngestRun, Product, RunStatus
from skinctl.db.runs import recorded_ingest_run
from skinctl.products import ingest as product_ingest
from tests.products.conftest import files  # noqa: F401 - the fixture the product tests use


def _runs(engine) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        return [
            tuple(r)
            for r in connection.execute(
                select(IngestRun.dataset_source, IngestRun.status).order_by(IngestRun.id)
            )
        ]


def test_product_ingest_interrupted_by_ctrl_c_ends_interrupted(engine, files, monkeypatch):  # noqa: F811
    monkeypatch.setattr(product_ingest, "BATCH", 2)
    calls = []

    def ctrl_c_after_first_batch(stage: str, completed: int, total: int | None) -> None:
        calls.append(completed)
        if len(calls) == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        product_ingest.ingest_products(
            engine, files["sephora"], "sephora", progress=ctrl_c_after_first_batch
        )
    assert _runs(engine) == [("products:sephora", "interrupted")]
    with engine.connect() as connection:  # the first batch was committed and is kept
        assert connection.execute(select(func.count()).select_from(Product)).scalar_one() == 2
    # run again: resumes, and this run finishes
    product_ingest.ingest_products(engine, files["sephora"], "sephora")
    assert _runs(engine)[-1] == ("products:sephora", "finished")


def test_product_ingest_failing_on_a_database_error_ends_failed(engine, files, monkeypatch):  # noqa: F811
    monkeypatch.setattr(product_ingest, "BATCH", 2)
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE FUNCTION refuse_night_serum() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.name = 'Night Serum' THEN RAISE EXCEPTION 'no serums today'; END IF; RETURN NEW; END $$"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER refuse_night_serum BEFORE INSERT ON products "
                "FOR EACH ROW EXECUTE FUNCTION refuse_night_serum()"
            )
        )
    try:
        with pytest.raises(Exception, match="no serums today"):
            product_ingest.ingest_products(engine, files["sephora"], "sephora")
        assert _runs(engine) == [("products:sephora", "failed")]
        with engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(Product)).scalar_one() == 2
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP TRIGGER refuse_night_serum ON products"))
            connection.execute(text("DROP FUNCTION refuse_night_serum()"))


def test_a_killed_run_is_marked_interrupted_by_the_next_one(engine):
    with engine.begin() as connection:  # what kill -9 leaves behind
        connection.execute(
            IngestRun.__table__.insert().values(dataset_source="reviews:sephora", status="running")
        )
    with recorded_ingest_run(
        engine, source="reviews:sephora", path=None, options=None, user="t"
    ) as run:
        run.counts = {"reviews": 1}
    assert _runs(engine) == [("reviews:sephora", "interrupted"), ("reviews:sephora", "finished")]
    assert run.status == RunStatus.finished


def test_two_runs_of_one_source_are_kept_apart(engine):
    with held_ingest_lock(engine, "cosing"):
        with pytest.raises(IngestAlreadyRunning, match="cosing"):
            with recorded_ingest_run(engine, source="cosing", path=None, options=None, user="t"):
                pass
    assert _runs(engine) == []
