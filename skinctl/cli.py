"""The root command: global options, one place that renders errors, the command groups.

Importing this module must stay cheap (`skinctl --help` is measured by bench/startup.py):
command modules import heavy libraries (TensorFlow, Textual, kagglehub, GCS) inside functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from skinctl import __version__
from skinctl.commands import config as config_commands
from skinctl.commands import db as db_commands
from skinctl.commands import dedup as dedup_commands
from skinctl.commands import fetch as fetch_commands
from skinctl.commands import ingest as ingest_commands
from skinctl.commands import ingest_tables
from skinctl.commands import ingredients as ingredients_commands
from skinctl.commands import label as label_commands
from skinctl.commands import products as products_commands
from skinctl.commands import reviews as reviews_commands
from skinctl.commands import stats as stats_commands
from skinctl.commands import storage as storage_commands
from skinctl.commands import train as train_commands
from skinctl.commands import tui as tui_commands
from skinctl.commands.common import AppState, state
from skinctl.errors import EXIT_FAILURE, EXIT_INTERRUPTED, SkinctlError


def render_error(error: SkinctlError, verbose: bool) -> None:
    from skinctl.console import stderr

    if verbose and error.__cause__ is not None:
        import traceback

        stderr.print("".join(traceback.format_exception(error.__cause__)), highlight=False, markup=False)
    stderr.print(f"[bold red]error:[/] {error.message}", highlight=False)
    if error.hint:
        stderr.print(f"[dim]hint:[/] {error.hint}", highlight=False)


class SkinctlGroup(TyperGroup):
    """Renders SkinctlError once, on stderr, and exits with its code; same under CliRunner."""

    def invoke(self, ctx):  # noqa: ANN001, ANN201 - Click's signature
        try:
            return super().invoke(ctx)
        except SkinctlError as error:
            render_error(error, verbose=isinstance(ctx.obj, AppState) and ctx.obj.verbose)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            from skinctl.console import stderr

            stderr.print(
                "interrupted: work committed so far is kept; run the same command again to resume.",
                highlight=False,
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
        finally:
            if isinstance(ctx.obj, AppState):
                ctx.obj.close()


app = typer.Typer(
    cls=SkinctlGroup,
    name="skinctl",
    help="Admin console of the skincare-analysis ML data platform: fetch datasets, ingest them "
    "into PostgreSQL, verify labels, train and compare models.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"skinctl {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    database_url: str | None = typer.Option(
        None, "--database-url", help="PostgreSQL URL (default: the embedded server).",
        show_default=False,
    ),
    home: Path | None = typer.Option(None, "--home", help="skinctl's home folder."),
    storage: str | None = typer.Option(
        None, "--storage", help="Image store: a folder, file:///... or gs://bucket/prefix."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks of errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    app_state = state(ctx)
    flags: dict[str, Any] = {"database_url": database_url, "home": home, "storage_url": storage}
    app_state.flags = {k: v for k, v in flags.items() if v is not None}
    app_state.verbose = verbose


app.add_typer(config_commands.app, name="config")
app.add_typer(db_commands.app, name="db")
app.add_typer(fetch_commands.app, name="fetch")
app.add_typer(storage_commands.app, name="storage")
ingest_tables.register(ingest_commands.app)
app.add_typer(ingest_commands.app, name="ingest")
app.add_typer(ingredients_commands.app, name="ingredients")
app.add_typer(products_commands.app, name="products")
app.add_typer(reviews_commands.app, name="reviews")
app.add_typer(label_commands.app, name="label")
app.command("tui")(tui_commands.tui)
app.command("demo")(ingest_commands.demo)
app.command("stats")(stats_commands.stats)
app.add_typer(dedup_commands.app, name="dedup")
app.add_typer(train_commands.app, name="train")
app.command("predict")(train_commands.predict)

__all__ = ["app", "EXIT_FAILURE"]
