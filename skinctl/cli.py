"""The root command: global options, one place that renders errors, the command groups.

Importing this module must stay cheap (`skinctl --help` is measured by bench/startup.py):
command modules import heavy libraries (TensorFlow, Textual, kagglehub, GCS) inside functions.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

from skinctl import __version__
from skinctl.commands import api_key as api_key_commands
from skinctl.commands import classes as classes_commands
from skinctl.commands import config as config_commands
from skinctl.commands import db as db_commands
from skinctl.commands import dedup as dedup_commands
from skinctl.commands import fetch as fetch_commands
from skinctl.commands import images as images_commands
from skinctl.commands import ingest as ingest_commands
from skinctl.commands import ingest_tables
from skinctl.commands import ingredients as ingredients_commands
from skinctl.commands import label as label_commands
from skinctl.commands import model as model_commands
from skinctl.commands import products as products_commands
from skinctl.commands import reviews as reviews_commands
from skinctl.commands import serve as serve_commands
from skinctl.commands import stats as stats_commands
from skinctl.commands import storage as storage_commands
from skinctl.commands import train as train_commands
from skinctl.commands import tui as tui_commands
from skinctl.commands.common import AppState, state
from skinctl.errors import EXIT_FAILURE, EXIT_INTERRUPTED, FileAccessError, SkinctlError

if TYPE_CHECKING:
    # Typer's own copy of Click: the type its command classes are declared with.
    from typer._click.core import Context


def render_error(error: SkinctlError, verbose: bool, secrets: Iterable[str] = ()) -> None:
    """The one place errors are drawn: one sentence and a hint on stderr; with `-v` first the
    whole traceback, including what a service raised `from None` (its context is kept)."""
    from rich.markup import escape

    from skinctl.console import stderr

    if verbose:
        stderr.print(_traceback_text(error, secrets), highlight=False, markup=False, end="")
    stderr.print(f"[bold red]error:[/] {escape(error.message)}", highlight=False)
    if error.hint:
        stderr.print(f"[dim]hint:[/] {escape(error.hint)}", highlight=False)


def _traceback_text(error: BaseException, secrets: Iterable[str]) -> str:
    import traceback

    # `raise X from None` only hides the original exception from the default report; -v is
    # for finding the cause, so show it. Secrets known to the run are masked all the same.
    error.__suppress_context__ = False
    text = "".join(traceback.format_exception(error))
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _as_skinctl_error(error: OSError) -> SkinctlError:
    """An OSError nobody caught (an unwritable --report path, a full disk) as one typed error
    naming the path; the original stays attached for `-v`."""
    failure = FileAccessError.from_os_error(error)
    if error.filename is None and error.filename2 is None:
        failure.hint = "Run with -v to see where it happened."
    failure.__cause__ = error
    return failure


def _quiet_broken_pipe() -> None:
    # `skinctl ... --json | head -1`: the reader went away; that is not an error to report.
    # Point stdout at /dev/null so the interpreter's final flush does not fail again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file descriptor (a test runner's buffer)
        pass


def reflow_help(text: str | None) -> str | None:
    """A docstring as `--help` shows it: each paragraph one line that the terminal wraps, so no
    sentence breaks where the source line did. Lines that start indented, with `- ` or with
    `$ ` (lists, example commands) keep their own line, and a paragraph opened by `\\b`
    (Click's "do not rewrap" mark) is kept as written."""
    if not text:
        return text
    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        if paragraph.startswith("\b\n"):
            paragraphs.append(paragraph.removeprefix("\b\n"))
            continue
        lines: list[str] = []
        for line in paragraph.splitlines():
            if lines and not line.startswith((" ", "\t", "- ", "* ", "$ ")):
                lines[-1] = f"{lines[-1]} {line.strip()}"
            else:
                lines.append(line.rstrip())
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def _polish_help(command: TyperCommand | TyperGroup, ctx: Context) -> None:
    """Help that reads like Typer's docs, for every command in the tree, in one place: docstrings
    reflowed into paragraphs, and no `<bool>` metavar after flags (a flag takes no value)."""
    command.help = reflow_help(command.help)
    for param in command.get_params(ctx):  # includes the lazily made --help option
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""  # shown as nothing; Typer prints the metavar instead of the type
    for child in getattr(command, "commands", {}).values():
        _polish_help(child, ctx)


class SkinctlGroup(TyperGroup):
    """The root group: polishes every command's help once, renders SkinctlError (and an
    escaping OSError) once on stderr and exits with its code; same under CliRunner."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        # Before the root parses anything (its eager --help included), polish every command's
        # help; subcommands' --help is parsed later, below this root.
        _polish_help(self, ctx)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except SkinctlError as error:
            self._fail(error, ctx)
        except BrokenPipeError:
            _quiet_broken_pipe()
            raise typer.Exit(EXIT_FAILURE) from None
        except OSError as error:
            self._fail(_as_skinctl_error(error), ctx)
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

    @staticmethod
    def _fail(error: SkinctlError, ctx: Context) -> NoReturn:
        # ctx.obj is set by the root callback, which runs inside invoke().
        app_state = ctx.obj if isinstance(ctx.obj, AppState) else AppState()
        render_error(error, verbose=app_state.verbose, secrets=app_state.secrets())
        raise typer.Exit(error.exit_code) from None


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
        None,
        "--database-url",
        help="PostgreSQL URL (default: the embedded server).",
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
app.add_typer(classes_commands.app, name="classes")
app.command("tui")(tui_commands.tui)
app.command("demo")(ingest_commands.demo)
app.command("stats")(stats_commands.stats)
app.add_typer(dedup_commands.app, name="dedup")
app.add_typer(images_commands.app, name="images")
app.add_typer(train_commands.app, name="train")
app.command("predict")(train_commands.predict)
app.add_typer(model_commands.app, name="model")
app.add_typer(api_key_commands.app, name="api-key")
app.command("serve")(serve_commands.serve)

__all__ = ["app", "EXIT_FAILURE"]
