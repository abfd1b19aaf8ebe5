"""Issue 14 and 11: the table ingests read a fetched folder through the catalog (all review files
of the Sephora set in one run, every CosIng annex found by name), Annexes IV-VI, product types
in the safety check, and bad review input."""

from __future__ import annotations

from pathlib import Path

from tests.products.conftest import REVIEWS, SEPHORA


def _sephora_folder(tmp_path: Path) -> Path:
    """The Kaggle set's layout: product_info.csv and several reviews_*.csv files."""
    folder = tmp_path / "sephora"
    folder.mkdir()
    (folder / "product_info.csv").write_text(SEPHORA, encoding="utf-8")
    header, *rows = REVIEWS.splitlines(keepends=True)
    body = "".join(rows).split("\n4,104")[0] + "\n"  # the valid rows, with the multi-line one
    (folder / "reviews_0-250.csv").write_text(header + body, encoding="utf-8")
    (folder / "reviews_250-500.csv").write_text(
        header
        + "9,200,1,0.0,,0,0,0,2023-03-18,Broke me out badly,,,,oily,,P2,Oil Control Gel,Brand A,25.0\n"
        "10,201,4,1.0,,0,0,0,2023-03-18,Nice,,,,dry,,P99,Not Yet Loaded,Brand Z,5.0\n",
        encoding="utf-8",
    )
    return folder


def test_ingest_by_slug_reads_every_file_of_the_fetched_sets(cli, tmp_path, cosing_folder):
    assert cli("fetch", "get", "cosing", "--from", str(cosing_folder)).exit_code == 0
    cosing = cli("ingest", "cosing", "cosing", "--json")
    assert cosing.exit_code == 3, cosing.stderr  # the short Annex II row of the fixture
    tables = {t["table"]: (t["total"], t["inserted"]) for t in cosing.json()["tables"]}
    assert tables == {
        "ingredients": (18, 17),
        "annex_ii": (6, 5),
        "annex_iii": (2, 2),
        "annex_iv": (1, 1),
        "annex_v": (3, 3),
        "annex_vi": (1, 1),
    }

    assert cli("fetch", "get", "sephora", "--from", str(_sephora_folder(tmp_path))).exit_code == 0
    products = cli("ingest", "products", "sephora", "--json")
    assert (
        products.exit_code == 3 and products.json()["tables"][0]["inserted"] == 5
    )  # format from the name
    reviews = cli("ingest", "reviews", "sephora", "--json")
    assert reviews.exit_code == 0, reviews.stderr
    document = reviews.json()
    assert [(Path(t["file"]).name, t["inserted"]) for t in document["tables"]] == [
        ("reviews_0-250.csv", 4),
        ("reviews_250-500.csv", 2),
    ]
    # a review of a product not loaded yet is kept and counted
    assert document["reviews_without_product"] == 1

    unknown = cli("ingest", "reviews", "no-such-set")
    assert unknown.exit_code != 0 and "no-such-set" in unknown.stderr


def test_ingest_reviews_takes_several_files_and_reports_bad_rows(cli, files, tmp_path):
    more = tmp_path / "more.csv"
    header = REVIEWS.splitlines()[0]
    more.write_text(
        header + "\n7,300,3,1.0,,0,0,0,2023-03-01,   ,,,,dry,,P1,Hydra Cream,Brand A,38.0\n"
        "8,301,0,1.0,,0,0,0,2023-03-01,Fine,,,,dry,,P1,Hydra Cream,Brand A,38.0\n"
        "9,302,3,1.0,,0,0,0,2023-03-01,!!! 555,,,,dry,,P1,Hydra Cream,Brand A,38.0\n"
    )
    result = cli("ingest", "reviews", str(files["reviews"]), str(more), "--json")
    assert result.exit_code == 3
    tables = result.json()["tables"]
    assert [t["total"] for t in tables] == [6, 3]
    reasons = [(p["line"], p["reason"]) for p in tables[1]["problems"]]
    assert reasons == [(2, "empty_text"), (3, "bad_rating"), (4, "empty_text")]

    missing = tmp_path / "no_text.csv"
    missing.write_text("author_id,rating,product_id,submission_time\n1,5,P1,2023-01-01\n")
    error = cli("ingest", "reviews", str(missing))
    assert error.exit_code == 2
    assert "has no column 'review_text'" in error.stderr


def test_check_reads_annexes_for_the_product_type(cli, cosing_folder):
    assert cli("ingest", "cosing", str(cosing_folder)).exit_code == 3
    banned = cli("ingredients", "check", "Aqua, Glycerin, Hydroquinone, Parfum", "--json")
    assert banned.exit_code == 3
    summary = banned.json()["summary"]
    assert summary["prohibited"] == ["Hydroquinone"]
    assert (
        "Annex II 1339" in summary["reasons"][0]
        and "Annex III 14: Artificial nail systems" in summary["reasons"][0]
    )
    human = cli("ingredients", "check", "Aqua, Glycerin, Hydroquinone, Parfum")
    assert human.exit_code == 3 and "does not apply to leave-on skin care" in human.stderr

    nails = cli("ingredients", "check", "Hydroquinone", "--product-type", "nail", "--json")
    assert nails.exit_code == 0 and nails.json()["summary"]["restricted"] == ["Hydroquinone"]
    bad_type = cli("ingredients", "check", "Aqua", "--product-type", "shampoo")
    assert bad_type.exit_code == 2

    listed = cli(
        "ingredients",
        "check",
        "Phenoxyethanol, Methylisothiazolinone, Homosalate, CI 77891",
        "--json",
    )
    rows = {i["name"]: i for i in listed.json()["ingredients"]}
    assert rows["Phenoxyethanol"]["status"] == "allowed"
    assert (
        rows["Phenoxyethanol"]["annex"][0]["conditions_for_type"][0]["max_concentration"] == "1,0 %"
    )
    # allowed only in rinse-off products: not on the list for a leave-on product
    assert rows["Methylisothiazolinone"]["status"] == "restricted"
    homosalate = rows["Homosalate"]["annex"][0]
    assert (homosalate["annex"], homosalate["status"], homosalate["max_concentration"]) == (
        "VI",
        "allowed",
        "7,34 %",
    )
    assert rows["CI 77891"]["annex"][0]["colour"] == "White"
    rinse = cli(
        "ingredients", "check", "Methylisothiazolinone", "--product-type", "rinse-off", "--json"
    )
    assert rinse.json()["ingredients"][0]["status"] == "allowed"

    # lettered sub-rows: the leave-on limit of the benzoates, linked by a name of " / " and "; " lists
    shown = cli("ingredients", "show", "Salicylic Acid", "--json").json()
    assert [a["annex"] for a in shown["annex"]] == ["III"]


def test_a_preservative_off_annex_v_is_flagged(engine, cosing_folder):
    from skinctl.products.check import check_ingredients
    from skinctl.products.ingest import ingest_cosing
    from skinctl.products.sources import cosing_files

    found = cosing_files(cosing_folder)
    ingest_cosing(
        engine,
        found["inventory"],
        found["annex_ii"],
        found["annex_iii"],
        annex_iv=found["annex_iv"],
        annex_v=found["annex_v"],
        annex_vi=found["annex_vi"],
    )
    result = check_ingredients(engine, text="Aqua, Salicylic Acid")
    salicylic = result.ingredients[1]
    # a PRESERVATIVE by its CosIng function, restricted by Annex III, and not on Annex V
    assert salicylic.status == "restricted"
    assert any("not on Annex V" in note for note in salicylic.notes)


def test_annex_conditions_per_product_type():
    from skinctl.products.annexes import ProductUse, conditions_for, use_of_category

    parts = conditions_for(
        "a) Rinse-off products, except oral care products\nb) Oral care products\n"
        "c) Leave-on products",
        "a) 2.5% (acid)\nb) 1.7% (acid)\nc) 0.5% (acid)\n",
        ProductUse.LEAVE_ON,
    )
    assert [(c.part, c.max_concentration, c.applies) for c in parts] == [
        ("a", "2.5% (acid)", False),
        ("b", "1.7% (acid)", False),
        ("c", "0.5% (acid)", True),
    ]
    assert [
        c.applies
        for c in conditions_for(
            "Rinse-off products, except oral care products", None, ProductUse.ORAL
        )
    ] == [False]
    assert [c.applies for c in conditions_for("Professional use", None, ProductUse.LEAVE_ON)] == [
        None
    ]
    assert (
        use_of_category("Skincare > Cleansers > Face Wash & Cleansers", None)
        == ProductUse.RINSE_OFF
    )
    assert use_of_category("Skincare > Eye Care > Eye Creams & Treatments", None) == ProductUse.EYE
    assert use_of_category("Skincare > Moisturizers > Moisturizers", None) == ProductUse.LEAVE_ON


def test_the_bulk_and_the_row_by_row_paths_load_the_same_reviews(engine, tmp_path):
    import re

    from skinctl.products.ingest import ingest_reviews

    without_index = re.sub(r"(?m)^[0-9]*,", "", REVIEWS)  # keys from the text's SHA-256 then
    clean = tmp_path / "clean.csv"
    clean.write_text(without_index, encoding="utf-8")
    broken = tmp_path / "broken.csv"  # a row COPY cannot read sends the file row by row
    broken.write_text(without_index + "1,2,3\n", encoding="utf-8")

    slow = ingest_reviews(engine, broken)
    assert [p.reason for p in slow.tables[0].problems][-1] == "column_count"
    assert slow.tables[0].inserted == 4
    preamble = tmp_path / "preamble.csv"  # a line before the header: row by row as well
    preamble.write_text("Exported 2023-03-21\n" + without_index, encoding="utf-8")
    assert ingest_reviews(engine, preamble).tables[0].unchanged == 4
    fast = ingest_reviews(engine, clean)
    assert (fast.tables[0].inserted, fast.tables[0].updated, fast.tables[0].unchanged) == (0, 0, 4)
