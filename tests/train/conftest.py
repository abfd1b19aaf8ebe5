"""Fixtures for training tests: a trained run on a generated image set, shared by a module."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli


def cli_for(database_url: str, home: Path) -> Cli:
    return Cli(
        {
            "SKINCTL_DATABASE_URL": database_url,
            "SKINCTL_HOME": str(home),
            "SKINCTL_CONFIG": str(home / "no-config.toml"),
            "SKINCTL_USER": "tester",
            "DATABASE_URL": "",
        }
    )


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("train-home")
