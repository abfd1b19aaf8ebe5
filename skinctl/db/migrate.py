"""Alembic, driven from code. Works from a checkout (top-level `migrations/`) and from an
installed wheel (the same folder shipped as `skinctl/_migrations`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from skinctl.errors import SkinctlError


def migrations_dir() -> Path:
    package = Path(__file__).resolve().parent.parent  # skinctl/
    for candidate in (package.parent / "migrations", package / "_migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise SkinctlError(
        "The database migrations are missing from this installation of skinctl.",
        hint="Reinstall skinctl.",
    )


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


@lru_cache(maxsize=1)
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    heads = _script().get_heads()
    if len(heads) != 1:
        raise SkinctlError(f"The migrations have {len(heads)} heads ({', '.join(heads)}), not one.")
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def history() -> list[tuple[str, str | None, str]]:
    """(revision, down_revision, message), oldest first."""
    revisions = list(_script().walk_revisions())
    revisions.reverse()
    return [
        (r.revision, r.down_revision if isinstance(r.down_revision, str) else None, r.doc or "")
        for r in revisions
    ]


def schema_drift(engine: Engine) -> list[str]:
    """Differences between the live schema and the models, in Alembic's compare terms."""
    from alembic.autogenerate import compare_metadata

    from skinctl.db.models import Base

    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": False}
        )
        diffs = compare_metadata(context, Base.metadata)
    return [_describe_diff(diff) for diff in diffs]


def _describe_diff(diff: tuple[Any, ...] | list[tuple[Any, ...]]) -> str:
    # Alembic's diffs: ("add_table", Table) or, for column changes, a list of such tuples.
    if isinstance(diff, list):
        return "; ".join(_describe_diff(d) for d in diff)
    kind, *rest = diff
    names = []
    for item in rest:
        name = getattr(item, "name", None)
        if name:
            names.append(str(name))
        elif isinstance(item, str):
            names.append(item)
    return f"{kind}: {' '.join(names)}".strip()
