"""`skinctl db`: the embedded server, the schema, its migrations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from skinctl.commands.common import state

if TYPE_CHECKING:
    from skinctl.db.embedded import EmbeddedPostgres
from skinctl.errors import EXIT_FAILURE, UsageError

app = typer.Typer(
    help="Manage the database: embedded server, schema migrations, status.", no_args_is_help=True
)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON on stdout.")


def _embedded(ctx: typer.Context) -> EmbeddedPostgres:
    from skinctl.db.embedded import EmbeddedPostgres

    settings = state(ctx).settings
    if not settings.uses_embedded_database:
        raise UsageError(
            "database_url is set, so skinctl does not manage the server.",
            hint="Unset database_url (see `skinctl config show`) to use the embedded database.",
        )
    return EmbeddedPostgres(settings.home, settings.pg_bin)


@app.command("up")
def up(ctx: typer.Context) -> None:
    """Start the embedded PostgreSQL (created on first use)."""
    from skinctl.console import info

    server = _embedded(ctx)
    was_running = server.status().running
    server.ensure_running(announce=info)
    status = server.status()
    info(
        f"embedded PostgreSQL {status.version} {'was already' if was_running else 'is now'} running "
        f"on 127.0.0.1:{status.port} (data in {status.data_dir})"
    )


@app.command("down")
def down(ctx: typer.Context) -> None:
    """Stop the embedded PostgreSQL."""
    from skinctl.console import info

    stopped = _embedded(ctx).stop()
    info("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")


@app.command("upgrade")
def upgrade(ctx: typer.Context, revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from skinctl.console import info
    from skinctl.db import migrate

    engine = state(ctx).engine(check_schema=False)
    before = migrate.current_revision(engine)
    migrate.upgrade(engine, revision)
    after = migrate.current_revision(engine)
    info(
        f"schema: {before or 'empty'} -> {after}"
        if before != after
        else f"schema already at {after}"
    )


@app.command("downgrade")
def downgrade(
    ctx: typer.Context, revision: str = typer.Argument(..., help="Target, e.g. 0001 or base.")
) -> None:
    """Revert migrations down to REVISION."""
    from skinctl.console import info
    from skinctl.db import migrate

    engine = state(ctx).engine(check_schema=False)
    before = migrate.current_revision(engine)
    migrate.downgrade(engine, revision)
    info(f"schema: {before} -> {migrate.current_revision(engine) or 'empty'}")


@app.command("current")
def current(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
    """The schema revision of the database, and the head this skinctl needs."""
    from skinctl.console import print_json, stdout
    from skinctl.db import migrate

    revision = migrate.current_revision(state(ctx).engine(check_schema=False))
    head = migrate.head_revision()
    if json_output:
        print_json({"current": revision, "head": head, "at_head": revision == head})
    else:
        stdout.print(f"{revision or 'empty'} (head {head}{'' if revision == head else ', behind'})")


@app.command("history")
def history(json_output: bool = JSON_OPTION) -> None:
    """The migrations, oldest first."""
    from skinctl.console import print_json, stdout, table
    from skinctl.db import migrate

    rows = migrate.history()
    if json_output:
        print_json([{"revision": r, "down_revision": d, "message": m} for r, d, m in rows])
    else:
        stdout.print(table("migrations", ["revision", "after", "message"], rows))


@app.command("check")
def check(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
    """Compare the live schema with skinctl's models (Alembic's compare); exit 1 on drift."""
    from skinctl.console import print_json, stdout
    from skinctl.db import migrate

    drift = migrate.schema_drift(state(ctx).engine())
    if json_output:
        print_json({"drift": drift})
    elif drift:
        for line in drift:
            stdout.print(line, highlight=False)
    else:
        stdout.print("no drift: the schema matches the models")
    if drift:
        raise typer.Exit(EXIT_FAILURE)


@app.command("status")
def status(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
    """Server version, where it is, schema revision against head, rows per table."""
    from skinctl.console import print_json, stdout, table
    from skinctl.db.status import database_status

    app_state = state(ctx)
    report = database_status(app_state.engine(check_schema=False), app_state.settings)
    if json_output:
        print_json(report)
        return
    stdout.print(f"server    {report.server_version} ({report.location})", highlight=False)
    stdout.print(f"database  {report.url}", highlight=False)
    behind = "" if report.at_head else "  [yellow]behind: run `skinctl db upgrade`[/]"
    stdout.print(
        f"schema    {report.revision or 'empty'} (head {report.head}){behind}",
        highlight=False,
    )
    if report.tables:
        stdout.print(table(None, ["table", "rows"], sorted(report.tables.items())))


@app.command("reset")
def reset(
    ctx: typer.Context,
    yes: bool = typer.Option(False, "--yes", help="Really drop every table and row."),
) -> None:
    """Drop everything in the database and upgrade to head again. Refuses without --yes."""
    from skinctl.console import info
    from skinctl.db import migrate
    from skinctl.db.status import drop_everything

    if not yes:
        raise UsageError(
            "`skinctl db reset` deletes every table and row in the database; refusing without --yes.",
            hint="Run `skinctl db reset --yes` if that is what you want.",
        )
    engine = state(ctx).engine(check_schema=False)
    drop_everything(engine)
    migrate.upgrade(engine)
    info(f"database reset: schema at {migrate.current_revision(engine)}, no rows")


@app.command("url")
def url(ctx: typer.Context) -> None:
    """The database URL in use, password masked."""
    from skinctl.config import mask_url
    from skinctl.console import info
    from skinctl.db.engine import database_url

    typer.echo(mask_url(database_url(state(ctx).settings, announce=info)))
