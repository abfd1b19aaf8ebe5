"""Alembic environment. skinctl passes its engine in `config.attributes["engine"]`; the bare
`alembic` CLI gets one from skinctl's settings (or the embedded server)."""

from __future__ import annotations

from alembic import context

from skinctl.db.models import Base

target_metadata = Base.metadata


def _engine():
    engine = context.config.attributes.get("engine")
    if engine is not None:
        return engine
    from skinctl.config import load_settings
    from skinctl.db.engine import engine_from_settings

    return engine_from_settings(load_settings().settings, check_schema=False)


def run_migrations_online() -> None:
    with _engine().connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("skinctl migrations run online only (skinctl db upgrade).")
run_migrations_online()
