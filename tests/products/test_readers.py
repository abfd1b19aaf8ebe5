from __future__ import annotations

from decimal import Decimal

import pytest

from skinctl.products.readers import (
    ReadRow,
    RowProblem,
    read_annex,
    read_cosing_inventory,
    read_products,
    read_reviews,
)


def split(items):
    items = list(items)
    return [i for i in items if isinstance(i, ReadRow)], [
        i for i in items if isinstance(i, RowProblem)
    ]


def test_cosing_inventory_preamble_crlf_bom_quoted_newline_padding(files):
    rows, problems = split(read_cosing_inventory(files["inventory"]))
    assert problems == []
    assert len(rows) == 13
    aqua = rows[0]
    assert aqua.line == 8  # physical line after the 7-line preamble and header
    assert aqua.record.inci_name == "AQUA" and aqua.record.cas_no == "7732-18-5"
    glycerin = rows[2]
    assert glycerin.record.description == "Glycerol. A humectant."
    assert glycerin.record.functions == ["HUMECTANT", "SKIN CONDITIONING"]
    assert glycerin.record.update_date.isoformat() == "2012-02-02"
    # the row after the quoted line break starts two physical lines later
    assert rows[3].line == glycerin.line + 2
    assert rows[-1].record.inci_name == "PETROLATUM"  # no trailing newline


def test_annexes_dash_multiline_and_short_row_reported_with_line(files):
    rows, problems = split(read_annex(files["annex_ii"], "II"))
    assert [r.record.reference_number for r in rows] == ["1666", "38", "38", "904"]
    assert [r.record.entry_no for r in rows] == [1, 1, 2, 1]
    assert [r.record.conditional for r in rows] == [False, False, False, True]
    assert rows[1].record.ec_no is None  # '-' means empty
    assert rows[0].record.identified_ingredients == ["BUTYLPHENYL METHYLPROPIONAL"]
    assert len(problems) == 1
    assert problems[0].line == 10 and problems[0].reason == "column_count"
    assert problems[0].file.endswith("annex_ii.txt")
    rows, problems = split(read_annex(files["annex_iii"], "III"))
    assert problems == [] and len(rows) == 1
    entry = rows[0].record
    assert entry.glossary_name == "SALICYLIC ACID"
    assert "(b) 2,0 %" in entry.max_concentration
    assert entry.conditions == "Not to be used for children under 3"


def test_skincare_clean_list_literals_prices_and_bad_rows(files):
    rows, problems = split(read_products(files["skincare"], "skincare-clean"))
    assert len(rows) == 4
    first = rows[0].record
    assert first.price == Decimal("5.20") and first.currency == "GBP"
    assert first.ingredients == ["aqua", "glycerin", "dimethicon", "vitamin e"]
    # the same URL for two sizes: two products
    assert rows[0].record.external_id != rows[1].record.external_id
    assert rows[3].record.name == "Padded Serum"
    reasons = {(p.line, p.reason) for p in problems}
    assert reasons == {(5, "bad_list"), (6, "bad_price")}


def test_sephora_crlf_notes_sections_and_blank_cells(files):
    rows, problems = split(read_products(files["sephora"], "sephora"))
    assert [p.reason for p in problems] == ["bad_rating"]
    assert problems[0].line == 7
    by_id = {r.record.external_id: r.record for r in rows}
    hydra = by_id["P1"]
    # the '-Glycerin: hydrates.' note is not an ingredient; the final dot is dropped
    assert hydra.ingredients == [
        "Aqua/Water/Eau",
        "Glycerin",
        "Dimethicone",
        "Butyrospermum Parkii (Shea) Butter",
        "Tocopherol",
    ]
    assert hydra.category_path == "Skincare > Moisturizers > Moisturizers"
    assert (
        hydra.price == Decimal("38.00")
        and hydra.currency == "USD"
        and hydra.size == "1.7 oz/ 50 mL"
    )
    # section headings skipped, repeated names kept once
    assert by_id["P4"].ingredients == ["Aqua", "Glycerin", "Retinol"]
    assert by_id["P5"].ingredients == [] and by_id["P5"].rating == 5.0
    assert by_id["P4"].rating is None


def test_list_literal_with_invalid_escape_is_read_without_warning(tmp_path):
    import warnings

    path = tmp_path / "escape.csv"
    path.write_text(
        "product_name,product_url,product_type,clean_ingreds,price\n"
        "Odd,https://example.test/odd,Serum,\"['aqua \\Aqua', 'glycerin']\",£1.00\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows, problems = split(read_products(path, "skincare-clean"))
    assert problems == [] and rows[0].record.ingredients == ["aqua \\Aqua", "glycerin"]


def test_reviews_index_column_quoted_newline_and_bad_rows(files):
    rows, problems = split(read_reviews(files["reviews"]))
    assert len(rows) == 4
    assert rows[0].record.review_text == "Lovely,\nreally"
    assert rows[0].record.is_recommended is True and rows[0].record.skin_type == "oily"
    assert rows[1].line == 4  # the quoted line break moved it one line down
    assert {(p.line, p.reason) for p in problems} == {(7, "bad_rating"), (8, "bad_date")}


@pytest.mark.parametrize("block", [1, 2, 3, 5, 7, 1 << 20])
def test_the_encoding_is_found_whatever_block_splits_a_character(tmp_path, monkeypatch, block):
    """UTF-8 is checked a block at a time: a character of 2, 3 or 4 bytes across two blocks is
    still UTF-8; cp1252, or a file ending inside a character, is not."""
    from skinctl.products import readers

    monkeypatch.setattr(readers, "ENCODING_BLOCK", block)
    text = "author_id,review_text\na1,Très bien € 😀 ok\na2,Naïve\n"
    utf8, windows, cut = tmp_path / "utf8.csv", tmp_path / "cp1252.csv", tmp_path / "cut.csv"
    utf8.write_bytes(text.encode("utf-8"))
    windows.write_bytes(text.replace("😀 ", "").encode("cp1252"))
    cut.write_bytes(text.encode("utf-8")[: text.encode("utf-8").index("😀".encode()) + 2])
    assert readers._encoding_of(utf8) == "utf-8-sig"
    assert readers._encoding_of(windows) == "cp1252"
    assert readers._encoding_of(cut) == "cp1252"
