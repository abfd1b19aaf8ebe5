"""Migration 0008 upgrades and downgrades cleanly (on a private database)."""

from __future__ import annotations

import secrets

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from skinctl.db import migrate
from skinctl.db.engine import make_engine


def test_upgrade_downgrade_upgrade(server_url):
    name = f"skinctl_dedup_mig_{secrets.token_hex(3)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(
        make_url(server_url).set(database=name).render_as_string(hide_password=False)
    )
    try:
        migrate.upgrade(engine)
        assert "image_dedup_features" in inspect(engine).get_table_names()
        migrate.downgrade(engine, "0002")
        inspector = inspect(engine)
        assert "image_dedup_features" not in inspector.get_table_names()
        assert "image_duplicates" in inspector.get_table_names()  # 0002's tables stay
        migrate.upgrade(engine)
        assert "image_dedup_features" in inspect(engine).get_table_names()
        assert migrate.schema_drift(engine) == []
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
