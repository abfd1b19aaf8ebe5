"""Facts about a database for `skinctl db status`, and the reset."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url

from skinctl.config import Settings, mask_url


@dataclass(frozen=True)
class DatabaseStatus:
    """`skinctl db status`; its `--json` has these keys, in this order."""

    server_version: str
    location: str  # "embedded, data in <folder>" or host:port
    url: str  # password masked
    revision: str | None  # None: an empty database
    head: str
    at_head: bool
    tables: dict[str, int]  # rows per table


def database_status(engine: Engine, settings: Settings) -> DatabaseStatus:
    from skinctl.db import migrate

    url = engine.url.render_as_string(hide_password=False)
    parsed = make_url(url)
    with engine.connect() as connection:
        version = connection.execute(text("SHOW server_version")).scalar_one()
        tables = sorted(inspect(connection).get_table_names())
        counts = {
            name: connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
            for name in tables
            if name != "alembic_version"
        }
    revision = migrate.current_revision(engine)
    head = migrate.head_revision()
    location = (
        f"embedded, data in {settings.home / 'postgres' / 'data'}"
        if settings.uses_embedded_database
        else f"{parsed.host}:{parsed.port or 5432}"
    )
    return DatabaseStatus(
        server_version=version,
        location=location,
        url=mask_url(url) or "",
        revision=revision,
        head=head,
        at_head=revision == head,
        tables=counts,
    )


def drop_everything(engine: Engine) -> None:
    """Drop and recreate the public schema: every table, type, function and row."""
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
