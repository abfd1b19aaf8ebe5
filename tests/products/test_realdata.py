"""The real files of ../shared/data: every row is loaded or reported (loaded + reported == total)."""

from __future__ import annotations

import pytest

from tests.conftest import shared_data

pytestmark = pytest.mark.realdata


def accounted(table) -> int:
    return table.inserted + table.updated + table.unchanged + len(table.duplicates) + table.rejected


def test_real_files_load_and_every_row_is_accounted_for(engine):
    from skinctl.products.analysis import check_ingredients, product_stats
    from skinctl.products.ingest import ingest_cosing, ingest_products, ingest_reviews

    cosing = shared_data("cosing")
    report = ingest_cosing(
        engine, cosing / "COSING_Ingredients-Fragrance Inventory_v2.csv",
        cosing / "COSING_Annex_II_v2.txt", cosing / "COSING_Annex_III_v2.txt",
    )
    totals = {t.name: (t.total, accounted(t)) for t in report.tables}
    assert totals == {"ingredients": (28710, 28710), "annex_ii": (1744, 1744), "annex_iii": (373, 373)}
    inventory = report.tables[0]
    assert len(inventory.duplicates) >= 7  # names repeated after trimming (README says 7)

    sephora = ingest_products(engine, shared_data("sephora", "product_info.csv"), "sephora")
    assert (sephora.tables[0].total, accounted(sephora.tables[0])) == (8494, 8494)
    clean = ingest_products(engine, shared_data("products", "skincare_products_clean.csv"), "skincare-clean")
    assert (clean.tables[0].total, accounted(clean.tables[0])) == (1138, 1138)
    reviews = ingest_reviews(engine, shared_data("sephora", "reviews_sample.csv"))
    assert (reviews.tables[0].total, accounted(reviews.tables[0])) == (1000, 1000)
    assert reviews.extra["reviews_without_product"] == 0

    stats = product_stats(engine)
    assert stats.products == {"sephora": 8494, "skincare-clean": 1138}
    assert stats.match_rate > 0.9
    assert stats.annex_ii_entries == 1744 and stats.annex_iii_entries == 373

    # running again changes nothing
    again = ingest_products(engine, shared_data("products", "skincare_products_clean.csv"), "skincare-clean")
    assert again.tables[0].unchanged == 1138 - again.tables[0].rejected - len(again.tables[0].duplicates)
    assert again.extra["matching"]["links_changed"] == 0

    lilial = check_ingredients(engine, text="Aqua, Glycerin, Butylphenyl Methylpropional, Salicylic Acid")
    assert lilial.summary.prohibited == ["Butylphenyl Methylpropional"]
    assert "Salicylic Acid" in lilial.summary.restricted
