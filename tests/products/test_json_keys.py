"""The --json shape of every product command, pinned (scripts depend on it). Each list is the
keys as they were before the results became dataclasses, then the keys issue 14 added."""

from __future__ import annotations

PRODUCT = [
    "id",
    "source",
    "external_id",
    "name",
    "brand",
    "product_type",
    "category_path",
    "price",
    "currency",
    "size",
    "rating",
    "review_count",
    "url",
]
MATCH = ["ingredient_id", "inci_name", "method", "score"]
ANNEX = [
    "annex",
    "reference",
    "status",
    "substance",
    "product_type",
    "max_concentration",
    "other_limitations",
    "conditions",
    "regulation",
    "linked_by",
] + ["colour", "conditions_for_type", "note"]
TABLE = [
    "table",
    "file",
    "total",
    "inserted",
    "updated",
    "unchanged",
    "duplicate",
    "rejected",
    "problems",
    "duplicates",
]
PROBLEM = ["file", "line", "reason", "detail"]


def keys(document: dict) -> list[str]:
    return list(document)


def test_ingest_json_keys(cli, files, cosing_folder):
    cosing = cli("ingest", "cosing", str(cosing_folder), "--json").json()
    assert keys(cosing) == ["run_id", "tables", "rejected", "annex_links", "matching"]
    assert (
        keys(cosing["tables"][0]) == TABLE and keys(cosing["tables"][1]["problems"][0]) == PROBLEM
    )
    assert keys(cosing["annex_links"]) == ["links", "added", "removed"]
    assert keys(cosing["matching"]) == [
        "distinct_names",
        "names_by_method",
        "links_changed",
        "inventory_size",
    ]
    products = cli(
        "ingest", "products", str(files["sephora"]), "--format", "sephora", "--json"
    ).json()
    assert keys(products) == ["run_id", "tables", "rejected", "reviews_linked", "matching"]
    assert keys(products["tables"][0]) == TABLE
    reviews = cli("ingest", "reviews", str(files["reviews"]), "--json").json()
    assert keys(reviews) == [
        "run_id",
        "tables",
        "rejected",
        "reviews_linked",
        "reviews_without_product",
    ]
    assert keys(reviews["tables"][0]) == TABLE


def test_ingredient_and_product_json_keys(cli, files, cosing_folder, tmp_path):
    cli("ingest", "cosing", str(cosing_folder))
    cli("ingest", "products", str(files["sephora"]), "--format", "sephora")
    odd = tmp_path / "odd.csv"
    odd.write_text(
        "product_name,product_url,product_type,clean_ingreds,price\n"
        "Moon Cream,https://example.test/moon.html,Moisturiser,\"['aqua', 'moon dust']\",£5.00\n"
    )
    assert cli("ingest", "products", str(odd), "--format", "skincare-clean").exit_code == 0
    cli("ingest", "reviews", str(files["reviews"]))

    check = cli("ingredients", "check", "Aqua, Salicylic Acid, Unicorn Tears", "--json").json()
    assert keys(check) == ["product", "ingredients", "summary"] + ["product_type"]
    assert keys(check["ingredients"][1]) == [
        "position",
        "name",
        "match",
        "functions",
        "annex",
        "status",
    ] + ["notes"]
    assert keys(check["ingredients"][1]["match"]) == MATCH
    assert keys(check["ingredients"][1]["annex"][0]) == ANNEX
    assert keys(check["ingredients"][1]["annex"][0]["conditions_for_type"][0]) == [
        "part",
        "product_type",
        "max_concentration",
        "applies",
    ]
    assert keys(check["summary"]) == [
        "count",
        "matched",
        "prohibited",
        "conditionally_prohibited",
        "restricted",
        "unmatched",
    ] + ["allowed", "unlisted", "reasons"]
    product = cli("ingredients", "check", "--product", "P1", "--json").json()
    assert keys(product["product"]) == PRODUCT

    show = cli("ingredients", "show", "Salicylic Acid", "--json").json()
    assert keys(show) == [
        "query",
        "match",
        "ingredient",
        "status",
        "annex",
        "product_count",
        "products",
        "written_as",
    ] + ["product_type"]
    assert keys(show["ingredient"]) == [
        "id",
        "inci_name",
        "cosing_ref_no",
        "inn_name",
        "cas_no",
        "ec_no",
        "functions",
        "restriction",
        "description",
        "update_date",
    ]
    assert keys(show["products"][0]) == ["id", "name", "brand", "source", "position"]
    assert keys(show["written_as"][0]) == ["name", "count"]

    unmatched = cli("ingredients", "unmatched", "--json").json()
    assert keys(unmatched) == ["total_distinct", "names"] and keys(unmatched["names"][0]) == [
        "name",
        "name_key",
        "products",
    ]
    mapped = cli("ingredients", "map", "Hydra Essence", "GLYCERIN", "--json").json()
    assert keys(mapped) == [
        "name",
        "name_key",
        "inci_name",
        "ingredient_id",
        "previous_ingredient_id",
        "product_ingredients_updated",
    ]

    recommend = cli("products", "recommend", "--skin-type", "oily", "--like", "P3", "--json").json()
    assert keys(recommend) == [
        "method",
        "like",
        "filters",
        "excluded_for_avoided_ingredients",
        "results",
    ] + ["excluded_for_skin_type", "candidates"]
    assert keys(recommend["like"]) == PRODUCT
    assert keys(recommend["filters"]) == [
        "skin_type",
        "avoid",
        "avoided_inci",
        "type",
        "max_price",
        "currency",
        "limit",
    ] + ["concern"]
    result = recommend["results"][0]
    assert keys(result) == [
        "rank",
        "score",
        "similarity",
        "rating_used",
        "skin_type_reviews",
        "shared_ingredients",
        "product",
        "why",
    ] + ["sizes", "claims"]
    assert keys(result["product"]) == PRODUCT
    listed = cli("products", "list", "--json").json()
    assert keys(listed[0]) == PRODUCT

    stats = cli("products", "stats", "--json").json()
    assert keys(stats) == [
        "products",
        "products_total",
        "products_with_ingredients",
        "products_fully_matched",
        "products_with_prohibited_ingredient",
        "products_with_conditionally_prohibited_ingredient",
        "products_with_restricted_ingredient",
        "ingredient_links",
        "ingredient_links_matched",
        "match_rate",
        "links_by_method",
        "distinct_names",
        "distinct_names_matched",
        "distinct_match_rate",
        "reviews",
        "cosing_ingredients",
        "annex_ii_entries",
        "annex_iii_entries",
        "user_mappings",
    ] + ["annex_iv_entries", "annex_v_entries", "annex_vi_entries", "reviews_scored"]
    assert keys(stats["links_by_method"]) == ["exact", "synonym", "mapped", "fuzzy", "none"]
