"""The real shared datasets through `fetch get --from` (skipped where ../shared/data is absent)."""

from __future__ import annotations

import pytest

from skinctl.datasets.catalog import resolve_fetched
from tests.conftest import shared_data


@pytest.mark.realdata
def test_register_real_skin_types_and_cosing(fetch_cli, fetch_settings):
    skin_types = shared_data("skin_types")
    result = fetch_cli("fetch", "get", "skin-types", "--from", str(skin_types), "--json")
    assert result.exit_code == 0, result.stderr
    summary = result.json()
    assert summary["files"] >= 3152 and summary["layout"] == "folders"
    assert resolve_fetched("skin-types", fetch_settings) == (skin_types, "folders")
    assert fetch_cli("fetch", "get", "skin-types", "--from", str(skin_types), "--json").json()[
        "cached"
    ]

    cosing = shared_data("cosing", "COSING_Annex_II_v2.txt")
    result = fetch_cli("fetch", "get", "cosing", "--from", str(cosing), "--json")
    assert result.exit_code == 0, result.stderr
    path, layout = resolve_fetched("cosing", fetch_settings)
    assert layout == "cosing" and (path / cosing.name).read_bytes() == cosing.read_bytes()
