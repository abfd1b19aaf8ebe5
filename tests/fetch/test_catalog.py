"""The dataset catalog: built-in entries, user entries from skinctl.toml, fetch list/info."""

from __future__ import annotations

import pytest

from skinctl.config import Settings
from skinctl.datasets.catalog import BUILTIN, catalog, get_entry, resolve_fetched
from skinctl.errors import ConfigError, NotFound, UsageError


def test_builtin_catalog_has_the_six_datasets(fetch_settings):
    entries = catalog(fetch_settings)
    assert list(entries) == [
        "skin-types",
        "skin-conditions",
        "skincare-products",
        "sephora",
        "facial-skin-condition",
        "cosing",
    ]
    assert (
        entries["skin-conditions"].reference
        == "syedalinaqvi/augmented-skin-conditions-image-dataset"
    )
    assert (
        entries["skin-types"].reference
        == "shakyadissanayake/oily-dry-and-normal-skin-types-dataset"
    )
    assert entries["skincare-products"].reference == "eward96/skincare-products-clean-dataset"
    assert entries["sephora"].reference == "nadyinky/sephora-products-and-skincare-reviews"
    assert {e.kind for e in BUILTIN} == {"images", "products", "reviews", "ingredients"}
    assert (
        entries["skin-types"].layout == "folders" and entries["skincare-products"].layout == "csv"
    )


def test_user_entry_from_skinctl_toml(fetch_cli, tmp_path):
    (tmp_path / "skinctl.toml").write_text(
        '[datasets.clinic-acne]\ntitle = "Clinic acne photos"\nsource = "url"\n'
        'url = "https://example.org/acne.zip"\nkind = "images"\nlayout = "folders"\n'
    )
    listed = fetch_cli("fetch", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    rows = {row["slug"]: row for row in listed.json()}
    assert rows["clinic-acne"]["title"] == "Clinic acne photos"
    assert rows["clinic-acne"]["builtin"] is False and rows["clinic-acne"]["fetched"] is False
    info = fetch_cli("fetch", "info", "clinic-acne", "--json")
    assert info.json()["url"] == "https://example.org/acne.zip" and info.json()["copies"] == []
    human = fetch_cli("fetch", "info", "clinic-acne")
    assert "Clinic acne photos" in human.stdout and "skinctl fetch get clinic-acne" in human.stdout


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"source": "kaggle", "kind": "images"}, "missing 'layout'"),
        (
            {"source": "ftp", "kind": "images", "layout": "folders"},
            "source = 'ftp' is not one of kaggle, url, local",
        ),
        (
            {"source": "kaggle", "reference": "no-slash", "kind": "images", "layout": "folders"},
            "not a Kaggle dataset",
        ),
        ({"source": "url", "kind": "pictures", "layout": "folders"}, "kind = 'pictures'"),
        (
            {"source": "url", "kind": "images", "layout": "folders", "colour": "red"},
            "Unknown key 'colour'",
        ),
        (
            {"source": "url", "kind": "images", "layout": "folders", "url": "ftp://x"},
            "must start with http",
        ),
    ],
)
def test_bad_user_entries_are_clear_config_errors(home, raw, message):
    settings = Settings(home=home, datasets={"my-set": raw})
    with pytest.raises(ConfigError, match=message) as error:
        catalog(settings)
    assert "[datasets.my-set]" in error.value.message


def test_bad_slug_and_bad_toml_via_cli(fetch_cli, tmp_path):
    (tmp_path / "skinctl.toml").write_text(
        '[datasets."Bad Slug"]\nsource = "url"\nkind = "images"\nlayout = "csv"\n'
    )
    result = fetch_cli("fetch", "list")
    assert result.exit_code == 2
    assert "'Bad Slug'" in result.stderr


def test_unknown_slug_and_not_fetched(fetch_settings, fetch_cli):
    with pytest.raises(NotFound, match="Unknown dataset 'nope'"):
        get_entry("nope", fetch_settings)
    with pytest.raises(UsageError) as error:
        resolve_fetched("skin-types", fetch_settings)
    assert "not fetched yet: run `skinctl fetch get skin-types`" in error.value.message
    with pytest.raises(UsageError, match=r"skinctl fetch get facial-skin-condition --from PATH"):
        resolve_fetched("facial-skin-condition", fetch_settings)
    result = fetch_cli("fetch", "info", "nope")
    assert result.exit_code == 1 and "Unknown dataset 'nope'" in result.stderr


def test_interrupted_extraction_leaves_no_marker(fetch_settings, tmp_path):
    # A staging folder and a published folder without marker do not count as fetched.
    root = fetch_settings.home / "datasets" / "skin-types"
    (root / ".staging-v3" / "train").mkdir(parents=True)
    (root / "v3" / "train").mkdir(parents=True)
    with pytest.raises(UsageError, match="not fetched yet"):
        resolve_fetched("skin-types", fetch_settings)
    (root / "v3.complete.json").write_text("{truncated")
    with pytest.raises(UsageError, match="not fetched yet"):
        resolve_fetched("skin-types", fetch_settings)
