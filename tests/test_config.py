"""Settings precedence, sources, masking and skinctl.toml errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from skinctl.config import load_settings, mask_url
from skinctl.errors import ConfigError


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in (
        "SKINCTL_DATABASE_URL",
        "SKINCTL_HOME",
        "SKINCTL_STORAGE_URL",
        "SKINCTL_STORAGE",
        "SKINCTL_USER",
        "SKINCTL_WORKERS",
        "SKINCTL_PG_BIN",
        "SKINCTL_CONFIG",
        "DATABASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    user_config = tmp_path / "user-config"
    monkeypatch.setattr("platformdirs.user_config_path", lambda _name: user_config)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def test_defaults_come_from_defaults(clean_env: Path) -> None:
    loaded = load_settings()
    assert loaded.settings.database_url is None
    assert loaded.settings.uses_embedded_database
    assert str(loaded.sources["database_url"]) == "default"
    assert loaded.settings.storage == str(loaded.settings.home / "images")


def test_precedence_flag_env_database_url_local_toml_user_toml(
    clean_env: Path, monkeypatch
) -> None:
    user_dir = clean_env / "user-config"
    user_dir.mkdir()
    (user_dir / "skinctl.toml").write_text('home = "/from/user"\nuser = "user-file"\nworkers = 3\n')
    (Path.cwd() / "skinctl.toml").write_text(
        'home = "/from/local"\ndatabase_url = "postgresql://a@toml/db"\n'
    )

    loaded = load_settings()
    assert loaded.settings.home == Path("/from/local")
    assert loaded.sources["home"].kind == "toml" and loaded.sources["home"].line == 1
    assert loaded.settings.user == "user-file"
    assert loaded.settings.workers == 3
    assert loaded.settings.database_url == "postgresql+psycopg2://a@toml/db"

    monkeypatch.setenv("DATABASE_URL", "postgres://u:pw@railway:5432/db")
    loaded = load_settings()
    assert loaded.settings.database_url == "postgresql+psycopg2://u:pw@railway:5432/db"
    assert str(loaded.sources["database_url"]) == "env DATABASE_URL"

    monkeypatch.setenv("SKINCTL_DATABASE_URL", "postgresql://u@skinctl-env/db")
    monkeypatch.setenv("SKINCTL_HOME", "/from/env")
    loaded = load_settings()
    assert loaded.settings.database_url == "postgresql+psycopg2://u@skinctl-env/db"
    assert loaded.settings.home == Path("/from/env")

    loaded = load_settings({"home": Path("/from/flag"), "database_url": "postgresql://u@flag/db"})
    assert loaded.settings.home == Path("/from/flag")
    assert str(loaded.sources["home"]) == "flag --home"
    assert loaded.settings.database_url == "postgresql+psycopg2://u@flag/db"


def test_unknown_key_names_key_file_and_line(clean_env: Path) -> None:
    path = Path.cwd() / "skinctl.toml"
    path.write_text('home = "/x"\n\n# comment\ndatabse_url = "postgresql://x/y"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = caught.value.message
    assert "'databse_url'" in message and str(path) in message and "line 4" in message


def test_bad_value_names_key_file_and_line(clean_env: Path) -> None:
    path = Path.cwd() / "skinctl.toml"
    path.write_text('user = "me"\nworkers = "many"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = caught.value.message
    assert "'workers'" in message and str(path) in message and "line 2" in message


def test_bad_database_url_value_is_masked(clean_env: Path, monkeypatch) -> None:
    monkeypatch.setenv("SKINCTL_DATABASE_URL", "mysql://root:hunter2@db/x")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "hunter2" not in caught.value.message
    assert "SKINCTL_DATABASE_URL" in caught.value.message


def test_invalid_toml_is_a_config_error(clean_env: Path) -> None:
    (Path.cwd() / "skinctl.toml").write_text("home = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings()


def test_mask_url_hides_only_the_password() -> None:
    assert mask_url("postgresql+psycopg2://user:s3cret@host:5433/db?sslmode=require") == (
        "postgresql+psycopg2://user:***@host:5433/db?sslmode=require"
    )
    assert mask_url("postgresql://host/db") == "postgresql://host/db"
    assert mask_url(None) is None


def test_config_show_json_masks_password_and_names_sources(cli) -> None:
    result = cli(
        "config",
        "show",
        "--json",
        env={"SKINCTL_DATABASE_URL": "postgresql://bob:topsecret@db.example:5432/x"},
    )
    assert result.exit_code == 0, result.stderr
    assert "topsecret" not in result.stdout
    shown = result.json()
    assert shown["database_url"] == {
        "value": "postgresql+psycopg2://bob:***@db.example:5432/x",
        "source": "env SKINCTL_DATABASE_URL",
    }
    assert shown["user"]["source"] == "env SKINCTL_USER"


def test_bad_toml_through_the_cli_is_exit_2_with_file_and_line(cli, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("workers = 0\n")
    result = cli("db", "status", env={"SKINCTL_CONFIG": str(config)})
    assert result.exit_code == 2
    assert "workers" in result.stderr and str(config) in result.stderr and "line 1" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
