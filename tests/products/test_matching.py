from __future__ import annotations

from skinctl.products.matching import IngredientIndex
from skinctl.products.names import candidate_keys, name_key, split_ingredient_text

INVENTORY = [
    "AQUA",
    "WATER",
    "DIMETHICONE",
    "TOCOPHEROL",
    "BUTYROSPERMUM PARKII BUTTER",
    "PEG-10 DIMETHICONE",
    "PEG-100 STEARATE",
    "1,2-HEXANEDIOL",
    "CI 77891",
    "ACRYLATES/C10-30 ALKYL ACRYLATE CROSSPOLYMER",
]


def index(mappings=()):
    return IngredientIndex(
        [(n, inci, name_key(inci)) for n, inci in enumerate(INVENTORY, 1)], mappings
    )


def test_alternatives_synonyms_and_fuzzy():
    idx = index()
    aqua = idx.match("Aqua/Water/Eau")
    assert (aqua.inci_name, aqua.method, aqua.score) == ("AQUA", "exact", 1.0)
    assert idx.match("Water\\Aqua\\Eau").inci_name == "AQUA"
    water = idx.match("Water")
    assert (water.inci_name, water.method) == ("AQUA", "synonym")
    vitamin_e = idx.match("Vitamin E")
    assert (vitamin_e.inci_name, vitamin_e.method) == ("TOCOPHEROL", "synonym")
    dimethicon = idx.match("Dimethicon")
    assert dimethicon.inci_name == "DIMETHICONE" and dimethicon.method == "fuzzy"
    assert 0.9 <= dimethicon.score < 1.0
    shea = idx.match("Butyrospermum Parkii (Shea) Butter")
    assert (shea.inci_name, shea.method) == ("BUTYROSPERMUM PARKII BUTTER", "exact")


def test_normalisation_punctuation_numbers_and_none():
    idx = index()
    assert idx.match("  peg 100   Stearate* ").inci_name == "PEG-100 STEARATE"
    assert idx.match("Titanium Dioxide (CI 77891)").inci_name == "CI 77891"
    # a different number is never a fuzzy match
    assert idx.match("PEG-11 Dimethicone").method == "none"
    assert idx.match("Acrylates/C10-30 Alkyl Acrylate Crosspolymer").method == "exact"
    nothing = idx.match("Unicorn Tears")
    assert (nothing.ingredient_id, nothing.method, nothing.score) == (None, "none", None)


def test_user_mapping_wins():
    idx = index(mappings=[(name_key("Unicorn Tears"), 1)])
    found = idx.match("unicorn tears")
    assert (found.inci_name, found.method) == ("AQUA", "mapped")


def test_split_ingredient_text():
    text = (
        "Water, 1,2-Hexanediol, Iron Oxides (CI 77491, CI 77492), Octisalate 5%, Phenoxyethanol. "
        "May Contain (+/-): Mica."
    )
    assert split_ingredient_text(text) == [
        "Water",
        "1,2-Hexanediol",
        "Iron Oxides (CI 77491, CI 77492)",
        "Octisalate",
        "Phenoxyethanol",
        "Mica",
    ]
    primary, alternatives = candidate_keys("Aqua/Water/Eau")
    assert primary == ["aqua/water/eau"] and alternatives == ["aqua", "water", "eau"]
