"""The one engine factory: settings -> a checked SQLAlchemy engine."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from skinctl.config import Settings, mask_url
from skinctl.errors import DatabaseUnavailable, SchemaOutOfDate


def database_url(settings: Settings, announce: Callable[[str], None] | None = None) -> str:
    """The configured URL, or the embedded server's (started on first use)."""
    if settings.database_url:
        return settings.database_url
    from skinctl.db.embedded import EmbeddedPostgres

    return EmbeddedPostgres(settings.home, settings.pg_bin).ensure_running(announce)


def _describe_failure(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    lines = [ln.strip() for ln in str(original).strip().splitlines() if ln.strip()]
    # psycopg2 puts the useful part last ("Connection refused", "password authentication failed").
    useful = [ln for ln in lines if not ln.startswith("(Background")]
    return useful[-1].rstrip(".") if useful else type(original).__name__


def make_engine(url: str, *, application_name: str = "skinctl", pool_size: int = 5) -> Engine:
    """An engine that has connected once: an unreachable server fails here, clearly."""
    parsed = make_url(url)
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        connect_args={"connect_timeout": 10, "application_name": application_name},
        hide_parameters=True,
    )
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError) as error:
        engine.dispose()
        where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
        raise DatabaseUnavailable(
            f"Cannot connect to PostgreSQL at {where} (database {parsed.database!r}): "
            f"{_describe_failure(error)}.",
            hint=f"Check that the server is running and reachable, and that database_url "
            f"({mask_url(url)}) has the right host, port, user and password; "
            "`skinctl config show` says where it is set.",
        ) from None
    return engine


def engine_from_settings(
    settings: Settings, *, check_schema: bool = True, announce: Callable[[str], None] | None = None
) -> Engine:
    """The engine for the configured (or embedded) database; by default also demand the schema
    be at head, as every command that touches data must."""
    engine = make_engine(database_url(settings, announce))
    if settings.uses_embedded_database:
        _create_schema_if_empty(engine, announce)
    if check_schema:
        require_schema_at_head(engine)
    return engine


def _create_schema_if_empty(engine: Engine, announce: Callable[[str], None] | None) -> None:
    """The embedded database is skinctl's own: on first use give it the schema, instead of
    asking a new user to run `skinctl db upgrade` first. A configured server is never touched."""
    from sqlalchemy import inspect

    from skinctl.db import migrate

    if migrate.current_revision(engine) is not None or inspect(engine).get_table_names():
        return
    migrate.upgrade(engine)
    message = f"skinctl: created the schema (revision {migrate.head_revision()}) in the embedded database."
    if announce is not None:
        announce(message)


def require_schema_at_head(engine: Engine) -> None:
    from skinctl.db.migrate import current_revision, head_revision

    current = current_revision(engine)
    head = head_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"database schema is at {current or 'nothing (an empty database)'}, skinctl needs "
            f"{head}: run `skinctl db upgrade`."
        )
