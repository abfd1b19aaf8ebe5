"""The real files of ../shared/data: every row is loaded or reported (loaded + reported == total),
all five CosIng annexes, the hydroquinone check, and recommendations that fit the ask."""

from __future__ import annotations

import re

import pytest

from tests.conftest import shared_data

pytestmark = pytest.mark.realdata


def accounted(table) -> int:
    return table.inserted + table.updated + table.unchanged + len(table.duplicates) + table.rejected


@pytest.fixture
def real(engine):
    from skinctl.products.ingest import ingest_cosing, ingest_products, ingest_reviews
    from skinctl.products.sources import cosing_files

    found = cosing_files(shared_data("cosing"))
    cosing = ingest_cosing(
        engine,
        found["inventory"],
        found["annex_ii"],
        found["annex_iii"],
        annex_iv=found["annex_iv"],
        annex_v=found["annex_v"],
        annex_vi=found["annex_vi"],
    )
    sephora = ingest_products(engine, shared_data("sephora", "product_info.csv"), "sephora")
    reviews = ingest_reviews(engine, sorted(shared_data("sephora", "reviews_2023").glob("*.csv")))
    return engine, cosing, sephora, reviews


def test_real_files_load_and_every_row_is_accounted_for(real):
    from skinctl.products.analysis import product_stats
    from skinctl.products.check import check_ingredients
    from skinctl.products.ingest import ingest_products, ingest_reviews

    engine, cosing, sephora, reviews = real
    totals = {t.table: (t.total, accounted(t)) for t in cosing.tables}
    assert totals == {
        "ingredients": (28710, 28710),
        "annex_ii": (1744, 1744),
        "annex_iii": (373, 373),
        "annex_iv": (154, 154),
        "annex_v": (57, 57),
        "annex_vi": (34, 34),
    }
    assert len(cosing.tables[0].duplicates) >= 7  # names repeated after trimming (README says 7)
    assert (sephora.tables[0].total, accounted(sephora.tables[0])) == (8494, 8494)

    assert sum(t.total for t in reviews.tables) == 22961
    assert sum(accounted(t) for t in reviews.tables) == 22961
    assert sum(t.rejected for t in reviews.tables) == 9  # the 9 rows with empty text
    assert reviews.reviews_without_product == 0

    clean = ingest_products(
        engine, shared_data("products", "skincare_products_clean.csv"), "skincare-clean"
    )
    assert (clean.tables[0].total, accounted(clean.tables[0])) == (1138, 1138)
    stats = product_stats(engine)
    assert stats.products == {"sephora": 8494, "skincare-clean": 1138}
    assert stats.match_rate > 0.9
    assert (
        stats.annex_ii_entries,
        stats.annex_iii_entries,
        stats.annex_iv_entries,
        stats.annex_v_entries,
        stats.annex_vi_entries,
    ) == (1744, 373, 154, 57, 34)

    # running again changes nothing
    again = ingest_reviews(engine, sorted(shared_data("sephora", "reviews_2023").glob("*.csv")))
    assert sum(t.unchanged for t in again.tables) == 22952

    lilial = check_ingredients(
        engine, text="Aqua, Glycerin, Butylphenyl Methylpropional, Salicylic Acid"
    )
    assert lilial.summary.prohibited == ["Butylphenyl Methylpropional"]
    assert "Salicylic Acid" in lilial.summary.restricted

    hydroquinone = check_ingredients(engine, text="Aqua, Glycerin, Hydroquinone, Parfum")
    assert hydroquinone.summary.prohibited == ["Hydroquinone"]
    assert "Annex II 1339" in hydroquinone.summary.reasons[0]
    assert "Annex III 14: Artificial nail systems" in hydroquinone.summary.reasons[0]
    listed = check_ingredients(engine, text="Phenoxyethanol, Homosalate, CI 77891")
    assert [i.status for i in listed.ingredients] == ["allowed", "allowed", "allowed"]
    assert [i.annex[0].annex for i in listed.ingredients] == ["V", "VI", "IV"]


def test_real_recommendations_fit_the_ask(real):
    from skinctl.products.choices import KIND_CATEGORIES, ProductKind
    from skinctl.products.recommend import recommend, variant_key

    engine = real[0]
    answer = recommend(engine, skin_type="oily", types=["moisturizer"], limit=20)
    assert len(answer.results) == 20 and answer.excluded_for_skin_type > 0
    for result in answer.results:
        # no product whose claims name only other skin types ("Best for Dry, Combo, Normal Skin"),
        # every answer in the moisturizer categories
        best_for = [c for c in result.claims if c.startswith("Best for")]
        assert not best_for or any("Oily" in c for c in best_for)
        assert result.product.category_path in KIND_CATEGORIES[ProductKind.MOISTURIZER]
    # no two sizes of one product
    with engine.connect() as connection:
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from skinctl.db.models import Product

        products = (
            Session(bind=connection)
            .scalars(select(Product).where(Product.id.in_([r.product.id for r in answer.results])))
            .all()
        )
    assert len({variant_key(p) for p in products}) == len(products)
    explained = [
        r.why for r in answer.results if r.skin_type_reviews and r.skin_type_reviews.positive_share
    ]
    assert explained and all(
        re.search(r"\d+% of \d+ reviewers with oily skin were positive \[\d+%-\d+%\]", w)
        for w in explained
    )
    few = [
        r.why
        for r in answer.results
        if not (r.skin_type_reviews and r.skin_type_reviews.positive_share)
    ]
    assert all("too few reviews from oily skin" in w for w in few)

    acne = recommend(engine, concerns=["acne"], limit=10)
    assert all("Good for: Acne/Blemishes" in r.claims for r in acne.results)
    # without --type, a mini and the full size of one product are one recommendation
    anything = recommend(engine, limit=200)
    keys = [variant_key(r.product) for r in anything.results]
    assert len(anything.results) == 200 and len(set(keys)) == len(keys)
