"""`skinctl db ...` through the CLI: exit codes, JSON, and the error paths users hit."""

from __future__ import annotations

import socket

from skinctl.db import migrate
from skinctl.db.engine import make_engine


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_status_json(cli) -> None:
    result = cli("db", "status", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    # the keys scripts read, in this order
    assert list(report) == [
        "server_version",
        "location",
        "url",
        "revision",
        "head",
        "at_head",
        "tables",
    ]
    assert report["at_head"] is True and report["revision"] == migrate.head_revision()
    assert report["tables"]["ml_training_images"] == 0
    assert "***" in report["url"]
    assert report["server_version"]


def test_unreachable_server_is_one_clear_line_exit_2(cli) -> None:
    port = _closed_port()
    result = cli(
        "db", "status", env={"SKINCTL_DATABASE_URL": f"postgresql://u:pw-secret@127.0.0.1:{port}/x"}
    )
    assert result.exit_code == 2
    assert f"127.0.0.1:{port}" in result.stderr
    assert "pw-secret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: Cannot connect to PostgreSQL")


def test_schema_behind_head_stops_data_commands(cli, scratch_database_url) -> None:
    engine = make_engine(scratch_database_url)
    migrate.upgrade(engine, "0001")
    engine.dispose()
    result = cli("db", "check", env={"SKINCTL_DATABASE_URL": scratch_database_url})
    assert result.exit_code == 2
    head = migrate.head_revision()
    assert (
        f"database schema is at 0001, skinctl needs {head}: run `skinctl db upgrade`"
        in result.stderr
    )

    status = cli("db", "status", "--json", env={"SKINCTL_DATABASE_URL": scratch_database_url})
    assert status.exit_code == 0 and status.json()["at_head"] is False

    upgraded = cli("db", "upgrade", env={"SKINCTL_DATABASE_URL": scratch_database_url})
    assert upgraded.exit_code == 0, upgraded.stderr
    assert f"0001 -> {head}" in upgraded.stderr
    again = cli("db", "check", "--json", env={"SKINCTL_DATABASE_URL": scratch_database_url})
    assert again.exit_code == 0 and again.json() == {"drift": []}


def test_reset_refuses_without_yes_and_empties_with_it(cli, scratch_database_url) -> None:
    env = {"SKINCTL_DATABASE_URL": scratch_database_url}
    assert cli("db", "upgrade", env=env).exit_code == 0
    engine = make_engine(scratch_database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO ml_training_images (image_url, dataset_source) VALUES ('file:///a', 'd')"
        )
    refused = cli("db", "reset", env=env)
    assert refused.exit_code == 2
    assert "--yes" in refused.stderr
    with engine.connect() as connection:
        assert (
            connection.exec_driver_sql("SELECT count(*) FROM ml_training_images").scalar_one() == 1
        )

    done = cli("db", "reset", "--yes", env=env)
    assert done.exit_code == 0, done.stderr
    with engine.connect() as connection:
        assert (
            connection.exec_driver_sql("SELECT count(*) FROM ml_training_images").scalar_one() == 0
        )
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


def test_current_history_and_downgrade(cli, scratch_database_url) -> None:
    env = {"SKINCTL_DATABASE_URL": scratch_database_url}
    assert cli("db", "upgrade", env=env).exit_code == 0
    current = cli("db", "current", "--json", env=env)
    assert current.json() == {
        "current": migrate.head_revision(),
        "head": migrate.head_revision(),
        "at_head": True,
    }
    history = cli("db", "history", "--json").json()
    assert history[0]["revision"] == "0001" and history[0]["down_revision"] is None
    down = cli("db", "downgrade", "0001", env=env)
    assert down.exit_code == 0, down.stderr
    assert cli("db", "current", "--json", env=env).json()["current"] == "0001"


def test_url_is_masked(cli, database_url) -> None:
    result = cli("db", "url")
    assert result.exit_code == 0
    assert "***" in result.stdout or "@" not in result.stdout


def test_db_up_refuses_when_a_url_is_configured(cli) -> None:
    result = cli("db", "up")
    assert result.exit_code == 2
    assert "database_url is set" in result.stderr
