"""Facts about a database for `skinctl db status`, and the reset."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url

from skinctl.config import Settings, mask_url


def database_status(engine: Engine, settings: Settings) -> dict[str, Any]:
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
    return {
        "server_version": version,
        "location": location,
        "url": mask_url(url),
        "revision": revision,
        "head": head,
        "at_head": revision == head,
        "tables": counts,
    }


def drop_everything(engine: Engine) -> None:
    """Drop and recreate the public schema: every table, type, function and row."""
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
