"""Fixtures for fetch tests: the fake Kaggle/file server, kagglehub aimed at it, a CLI runner
that needs no database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.fetch.fakes import FakeServer, RunningServer

KAGGLE_VARIABLES = (
    "KAGGLE_USERNAME",
    "KAGGLE_KEY",
    "KAGGLE_API_TOKEN",
    "KAGGLE_CONFIG_DIR",
    "KAGGLE_API_ENVIRONMENT",
    "KAGGLEHUB_CACHE",
    "KAGGLE_KERNEL_RUN_TYPE",
)


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    with RunningServer(FakeServer()) as fake:
        yield fake


@pytest.fixture
def kaggle(fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeServer:
    """The real kagglehub client, aimed at the fake: KAGGLE_API_ENVIRONMENT=LOCALHOST selects the
    LOCAL entry of kagglesdk's endpoint table, which we point at the fake's port."""
    from kagglesdk import kaggle_env

    for name in KAGGLE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")
    monkeypatch.setitem(kaggle_env._env_to_endpoint, kaggle_env.KaggleEnv.LOCAL, fake_server.base)
    # Never read the real ~/.kaggle: both the config dir and HOME are temporary.
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    monkeypatch.setenv("HOME", str(user_home))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    for name in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    from skinctl.fetch import download

    monkeypatch.setattr(download, "RETRY_BASE_DELAY", 0.01)
    return fake_server


@pytest.fixture
def fetch_settings(home: Path):
    from skinctl.config import Settings

    return Settings(home=home, user="tester")


@pytest.fixture
def fetch_cli(offline_cli: Cli) -> Cli:
    """`skinctl ...` in-process, with an isolated home and no database."""
    return offline_cli
