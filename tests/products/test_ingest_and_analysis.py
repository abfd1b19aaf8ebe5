from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skinctl.db.models import IngestRejection, Product, ProductIngredient, Review
from skinctl.products.ingest import ingest_cosing, ingest_products, ingest_reviews


def table_counts(report):
    return {
        t.table: (t.total, t.inserted, t.updated, t.unchanged, len(t.duplicates), t.rejected)
        for t in report.tables
    }


def test_ingest_is_idempotent_and_accounts_for_every_row(engine, files):
    first = ingest_cosing(engine, files["inventory"], files["annex_ii"], files["annex_iii"])
    assert table_counts(first) == {
        "ingredients": (13, 12, 0, 0, 1, 0),
        "annex_ii": (5, 4, 0, 0, 0, 1),
        "annex_iii": (1, 1, 0, 0, 0, 0),
    }
    again = ingest_cosing(engine, files["inventory"], files["annex_ii"], files["annex_iii"])
    assert table_counts(again) == {
        "ingredients": (13, 0, 0, 12, 1, 0),
        "annex_ii": (5, 0, 0, 4, 0, 1),
        "annex_iii": (1, 0, 0, 1, 0, 0),
    }
    assert again.annex_links.added == 0

    products = ingest_products(engine, files["skincare"], "skincare-clean")
    assert table_counts(products) == {"products": (6, 4, 0, 0, 0, 2)}
    assert products.matching.links_changed == 0  # matched while loading
    again = ingest_products(engine, files["skincare"], "skincare-clean")
    assert table_counts(again) == {"products": (6, 0, 0, 4, 0, 2)}
    assert again.matching.links_changed == 0

    # a changed row is updated and its ingredient list replaced
    changed = (
        files["skincare"]
        .read_text()
        .replace("£20.00", "£21.00")
        .replace("'retinol'", "'tocopherol'")
    )
    files["skincare"].write_text(changed)
    third = ingest_products(engine, files["skincare"], "skincare-clean")
    assert table_counts(third) == {"products": (6, 0, 1, 3, 0, 2)}
    with engine.connect() as connection:
        serum = (
            Session(bind=connection)
            .scalars(select(Product).where(Product.name == "Padded Serum"))
            .one()
        )
        assert float(serum.price) == 21.0 and serum.raw["price"] == "£21.00"
        names = (
            connection.execute(
                select(ProductIngredient.name_as_written)
                .where(ProductIngredient.product_id == serum.id)
                .order_by(ProductIngredient.position)
            )
            .scalars()
            .all()
        )
        assert names == ["aqua", "niacinamide", "tocopherol"]
        rejections = connection.execute(
            select(IngestRejection.local_path, IngestRejection.reason).where(
                IngestRejection.ingest_run_id == third.run_id
            )
        ).all()
        assert sorted(r.reason for r in rejections) == ["bad_list", "bad_price"]
        assert any(r.local_path.endswith("skincare.csv:5") for r in rejections)


def test_reviews_link_to_products_in_either_order(engine, files):
    reviews = ingest_reviews(engine, files["reviews"])
    assert table_counts(reviews) == {"reviews": (6, 4, 0, 0, 0, 2)}
    assert reviews.reviews_without_product == 4
    ingest_products(engine, files["sephora"], "sephora", match=False)
    with engine.connect() as connection:
        assert (
            connection.execute(
                select(func.count()).select_from(Review).where(Review.product_id.is_not(None))
            ).scalar_one()
            == 4
        )
    assert table_counts(ingest_reviews(engine, files["reviews"])) == {"reviews": (6, 0, 0, 4, 0, 2)}


def test_check_text_and_product(loaded):
    from skinctl.products.check import check_ingredients

    result = check_ingredients(
        loaded, text="Aqua, Salicylic Acid, Vitamin E, Unicorn Tears, Petrolatum"
    )
    statuses = {i.name: i.status for i in result.ingredients}
    assert statuses == {
        "Aqua": "ok",
        "Salicylic Acid": "restricted",
        "Vitamin E": "ok",
        "Unicorn Tears": "unmatched",
        "Petrolatum": "conditionally_prohibited",
    }
    petrolatum = result.ingredients[4].annex
    # linked both by the annex's own ingredient list and by the inventory's II/904 reference
    assert [(a.annex, a.reference, a.linked_by) for a in petrolatum] == [
        ("II", "904", "identified_name")
    ]
    assert result.summary.conditionally_prohibited == ["Petrolatum"]
    salicylic = result.ingredients[1]
    assert salicylic.annex[0].annex == "III" and "2,0 %" in salicylic.annex[0].max_concentration
    assert salicylic.functions == ["PRESERVATIVE"]
    assert result.summary.prohibited == []

    with loaded.connect() as connection:
        scented = connection.execute(
            select(Product.id).where(Product.name == "Scented Cream")
        ).scalar_one()
    result = check_ingredients(loaded, product_ref=str(scented))
    assert result.summary.prohibited == ["butylphenyl methylpropional"]
    lilial = result.ingredients[2]
    assert {a.linked_by for a in lilial.annex} == {"identified_name"}


def test_map_show_unmatched_and_stats(loaded):
    from skinctl.products.analysis import (
        map_ingredient,
        product_stats,
        show_ingredient,
        unmatched_names,
    )

    before = product_stats(loaded)
    assert before.products_total == 9 and before.reviews == 4
    assert 0 < before.match_rate <= 1
    mapped = map_ingredient(loaded, "Unicorn Tears", "aqua")
    assert mapped.product_ingredients_updated == 0 and mapped.inci_name == "AQUA"
    assert (
        unmatched_names(loaded).total_distinct
        == before.distinct_names - before.distinct_names_matched
    )

    shown = show_ingredient(loaded, "Vitamin E")
    assert shown.ingredient.inci_name == "TOCOPHEROL" and shown.match.method == "synonym"
    assert shown.product_count == 4  # Hydra Cream, Night Serum, both Gentle Cream sizes
    assert show_ingredient(loaded, "Butylphenyl Methylpropional").status == "prohibited"


def test_recommend_like_with_filters_and_skin_type(loaded):
    from skinctl.products.recommend import recommend

    with loaded.connect() as connection:
        night = connection.execute(
            select(Product.id).where(Product.external_id == "P3")
        ).scalar_one()
    result = recommend(loaded, like=str(night), limit=5)
    names = [r.product.name for r in result.results]
    # Padded Serum shares the rare RETINOL and NIACINAMIDE-free aqua; the gift set shares retinol too
    assert names[0] in {"Gift Set", "Padded Serum"}
    assert all(r.similarity > 0 for r in result.results)
    assert "TF-IDF cosine" in result.results[0].why
    assert "RETINOL" in result.results[0].shared_ingredients

    avoided = recommend(loaded, like=str(night), avoid=["retinol"], limit=10)
    assert all("RETINOL" not in r.shared_ingredients for r in avoided.results)
    assert avoided.excluded_for_avoided_ingredients >= 2

    oily = recommend(loaded, skin_type="oily", types=["moisturizer"], max_price=40, limit=10)
    ranked = [r.product.external_id for r in oily.results]
    # P2 has two 5-star oily reviews, P1 one 2-star oily review
    assert ranked.index("P2") < ranked.index("P1")
    p2 = oily.results[ranked.index("P2")]
    assert (
        p2.skin_type_reviews.reviews,
        p2.skin_type_reviews.mean_rating,
        p2.skin_type_reviews.positive,
    ) == (2, 5.0, 2)
    assert "too few reviews from oily skin for a share (2; 10 needed)" in p2.why
    assert all(r.product.price is not None and float(r.product.price) <= 40 for r in oily.results)
