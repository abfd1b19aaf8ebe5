"""Shared fixtures: a real PostgreSQL per test session, a clean database per test, a CLI runner.

The server is the embedded one skinctl itself runs (started in a temporary home), or the one
`SKINCTL_TEST_DATABASE_URL` names. Each session creates its own database on it and builds the
schema with `alembic upgrade head`; each test starts from empty tables.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

# ../shared/data next to the project; SKINCTL_SHARED_DATA points elsewhere (a git worktree).
SHARED_DATA = Path(
    os.environ.get("SKINCTL_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)


def shared_data(*parts: str) -> Path:
    """A path inside ../shared/data; the test is skipped where it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real dataset not available: {path}")
    return path


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A URL of a PostgreSQL server's maintenance database (where we may CREATE DATABASE)."""
    configured = os.environ.get("SKINCTL_TEST_DATABASE_URL")
    if configured:
        from skinctl.config import Settings

        yield Settings(database_url=configured).database_url
        return
    from skinctl.db.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg-home"))
    url = server.ensure_running(announce=lambda _message: None)
    yield str(make_url(url).set(database="postgres").render_as_string(hide_password=False))
    server.stop()


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database for this test session, at schema head."""
    name = f"skinctl_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    from skinctl.db import migrate
    from skinctl.db.engine import make_engine

    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
        )
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def session_engine(database_url: str) -> Iterator[Engine]:
    from skinctl.db.engine import make_engine

    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def truncate_all(engine: Engine) -> None:
    with engine.begin() as connection:
        tables = connection.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        ).scalars().all()
        if tables:
            quoted = ", ".join(f'"{t}"' for t in tables)
            connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))


@pytest.fixture
def engine(session_engine: Engine) -> Engine:
    """The session's database with every table emptied: tests do not see each other's rows."""
    truncate_all(session_engine)
    return session_engine


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "skinctl-home"
    path.mkdir()
    return path


@pytest.fixture
def settings(database_url: str, home: Path, engine: Engine):
    from skinctl.config import Settings

    return Settings(database_url=database_url, home=home, user="tester")


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    def json(self):
        import json

        return json.loads(self.stdout)


class Cli:
    """Runs `skinctl ...` in-process with typer's CliRunner, against the test database."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> CliResult:
        from typer.testing import CliRunner

        from skinctl.cli import app

        runner = CliRunner()
        result = runner.invoke(app, list(args), input=input, env={**self.env, **(env or {})}, catch_exceptions=True)
        exception = result.exception if not isinstance(result.exception, SystemExit) else None
        return CliResult(result.exit_code, result.stdout, result.stderr, exception)


@pytest.fixture
def cli(database_url: str, home: Path, engine: Engine, tmp_path: Path) -> Cli:
    """`cli("db", "status", "--json")` against the test database, with an isolated home."""
    return Cli(
        {
            "SKINCTL_DATABASE_URL": database_url,
            "SKINCTL_HOME": str(home),
            "SKINCTL_CONFIG": str(tmp_path / "no-config.toml"),
            "SKINCTL_USER": "tester",
            "DATABASE_URL": "",
        }
    )


@pytest.fixture
def scratch_database_url(server_url: str) -> Iterator[str]:
    """An empty database (no schema) of its own, dropped after the test."""
    name = f"skinctl_scratch_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
        )
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()
