from __future__ import annotations


def test_cli_ingest_check_recommend_json(cli, files):
    result = cli(
        "ingest",
        "cosing",
        "--inventory",
        str(files["inventory"]),
        "--annex-ii",
        str(files["annex_ii"]),
        "--annex-iii",
        str(files["annex_iii"]),
        "--json",
    )
    assert result.exit_code == 3, result.stderr  # the short Annex II row is rejected
    document = result.json()
    assert [t["rejected"] for t in document["tables"]] == [0, 1, 0]
    assert document["tables"][1]["problems"][0]["line"] == 10

    result = cli("ingest", "products", str(files["sephora"]), "--format", "sephora", "--json")
    assert result.exit_code == 3 and result.json()["tables"][0]["inserted"] == 5
    result = cli("ingest", "reviews", str(files["reviews"]), "--format", "sephora", "--json")
    assert result.json()["tables"][0]["inserted"] == 4

    ok = cli("ingredients", "check", "Aqua/Water/Eau, Glycerin, Dimethicon", "--json")
    assert ok.exit_code == 0
    assert [i["match"]["inci_name"] for i in ok.json()["ingredients"]] == [
        "AQUA",
        "GLYCERIN",
        "DIMETHICONE",
    ]
    banned = cli("ingredients", "check", "Aqua, Butylphenyl Methylpropional")
    assert banned.exit_code == 3 and "prohibited" in banned.stdout

    product = cli("ingredients", "check", "--product", "P1", "--json")
    assert product.exit_code == 0 and product.json()["product"]["external_id"] == "P1"

    rec = cli("products", "recommend", "--like", "P3", "--limit", "2", "--json")
    assert rec.exit_code == 0 and len(rec.json()["results"]) == 2
    human = cli("products", "recommend", "--skin-type", "oily", "--type", "moisturizer")
    assert human.exit_code == 0 and "Oil Control Gel" in human.stdout

    stats = cli("products", "stats", "--json").json()
    assert stats["products_total"] == 5 and stats["annex_ii_entries"] == 4
    assert cli("stats", "--products", "--json").json() == stats
    conditional = cli("ingredients", "check", "Petrolatum, Aqua")
    assert (
        conditional.exit_code == 0 and "conditionally prohibited: Petrolatum" in conditional.stdout
    )

    unmatched = cli("ingredients", "unmatched", "--json")
    assert unmatched.exit_code == 0
    mapped = cli("ingredients", "map", "Hydra Essence", "GLYCERIN", "--json")
    assert mapped.exit_code == 0 and mapped.json()["inci_name"] == "GLYCERIN"
    missing = cli("ingredients", "map", "Hydra Essence", "NOT AN INCI")
    assert missing.exit_code == 1 and "not an INCI name" in missing.stderr
    bad = cli("ingredients", "check", "x", "--product", "P1")
    assert bad.exit_code == 2


def test_cli_human_output(cli, files):
    assert (
        cli(
            "ingest",
            "cosing",
            "--inventory",
            str(files["inventory"]),
            "--annex-iii",
            str(files["annex_iii"]),
        ).exit_code
        == 0
    )
    first = cli("ingest", "products", str(files["skincare"]), "--format", "skincare-clean")
    assert first.exit_code == 3
    assert (
        "bad_list" in first.stdout
        and "bad_price" in first.stdout
        and "skincare.csv" in first.stdout
    )
    listed = cli("products", "list", "--search", "gentle", "--json").json()
    assert [p["name"] for p in listed] == ["Gentle Cream 50ml", "Gentle Cream 100ml"]
    shown = cli("products", "show", str(listed[0]["id"]))
    assert shown.exit_code == 0 and "DIMETHICONE" in shown.stdout and "fuzzy" in shown.stdout
    show = cli("ingredients", "show", "Salicylic Acid")
    assert show.exit_code == 0 and "Annex III / 98: restricted" in show.stdout
    unknown = cli("ingredients", "show", "Dimethiconol Unicorn")
    assert unknown.exit_code == 1 and "No CosIng ingredient matches" in unknown.stderr
    stats = cli("products", "stats")
    assert stats.exit_code == 0 and "match_rate" in stats.stdout
