"""`skinctl model ...`: promote a training run to serve a task, demote it, list and history.

Thin: parse, call `skinctl.registry.service`, render."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import typer

from skinctl.commands.common import state
from skinctl.registry.tasks import Task

if TYPE_CHECKING:
    from skinctl.registry.service import Promotion

app = typer.Typer(
    help="The model registry: which training run `skinctl serve` serves per task.",
    no_args_is_help=True,
)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON on stdout.")
ALIAS_OPTION = typer.Option("production", "--alias", help="The promotion's alias.")
COLUMNS = ("task", "alias", "run", "model", "accuracy (95% CI)", "majority", "beats", "promoted")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _rows(promotions: Iterable[Promotion], *, with_demoted: bool = False) -> Iterator[list[Any]]:
    for p in promotions:
        ci = f" ({p.accuracy_ci95[0]:.3f}-{p.accuracy_ci95[1]:.3f})" if p.accuracy_ci95 else ""
        row = [
            p.task.value,
            p.alias,
            p.run_id,
            f"{p.model_name} {p.version or ''}".strip(),
            _fmt(p.accuracy) + ci,
            _fmt(p.majority_rate),
            "yes" if p.beats_majority else "NO",
            f"{p.promoted_at:%Y-%m-%d %H:%M} {p.promoted_by}",
        ]
        if with_demoted:
            row.append(
                p.demoted_at.strftime("%Y-%m-%d %H:%M") + f" by {p.demoted_by}"
                if p.demoted_at
                else "live"
            )
        yield row


@app.command("promote")
def promote(
    ctx: typer.Context,
    run: str = typer.Argument(..., help="A run id from `skinctl train list`, or `latest`."),
    task: Task = typer.Option(..., "--task", help="The task the run serves."),
    alias: str = ALIAS_OPTION,
    force: bool = typer.Option(
        False, "--force", help="Promote a run that does not beat its majority-class rate."
    ),
    note: str | None = typer.Option(None, "--note", help="Why (kept with the promotion)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Make RUN the model `skinctl serve` uses for TASK (running servers pick it up by themselves)."""
    from skinctl.console import print_json, stdout, warn
    from skinctl.registry.service import promote as promote_run

    app_state = state(ctx)
    result = promote_run(
        app_state.engine(),
        app_state.storage(),
        run,
        task,
        user=app_state.settings.user,
        alias=alias,
        force=force,
        note=note,
    )
    p = result.promotion
    if p.forced and not result.unchanged:
        warn(f"run {p.run_id} does not beat its majority-class rate; promoted because of --force.")
    if as_json:
        print_json(result)
        return
    if result.unchanged:
        stdout.print(
            f"run {p.run_id} already serves {p.task.value} ({p.alias}); nothing changed.",
            highlight=False,
        )
        return
    replaced = f" (replacing run {result.replaced.run_id})" if result.replaced else ""
    stdout.print(
        f"run {p.run_id} ({p.model_name} {p.version or ''}) now serves {p.task.value} as "
        f"{p.alias}{replaced}; model SHA-256 {p.model_sha256[:12]}... from {p.checksum_source}.",
        highlight=False,
    )


@app.command("demote")
def demote(
    ctx: typer.Context,
    task: Task = typer.Option(..., "--task", help="The task to stop serving."),
    alias: str = ALIAS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Stop serving TASK under ALIAS (the promotion stays in the history)."""
    from skinctl.console import print_json, stdout
    from skinctl.registry.service import demote as demote_task

    app_state = state(ctx)
    p = demote_task(app_state.engine(), task, user=app_state.settings.user, alias=alias)
    if as_json:
        print_json(p)
        return
    stdout.print(f"run {p.run_id} no longer serves {p.task.value} ({p.alias}).", highlight=False)


@app.command("list")
def list_models(
    ctx: typer.Context,
    alias: str | None = typer.Option(None, "--alias", help="Only this alias."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Each task's promoted run with its test accuracy, 95% CI and majority-class rate."""
    from skinctl.console import print_json, stdout, table
    from skinctl.registry.service import live_promotions

    promotions = live_promotions(state(ctx).engine(), alias=alias)
    if as_json:
        print_json(promotions)
        return
    if not promotions:
        stdout.print(
            "No run is promoted. `skinctl model promote RUN --task ...` promotes one.",
            highlight=False,
        )
        return
    stdout.print(table("promoted models", COLUMNS, _rows(promotions)))


@app.command("history")
def history(
    ctx: typer.Context,
    task: Task | None = typer.Option(None, "--task", help="Only this task."),
    alias: str | None = typer.Option(None, "--alias", help="Only this alias."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Every promotion, newest first, with who promoted and demoted it and when."""
    from skinctl.console import print_json, stdout, table
    from skinctl.registry.service import history as promotion_history

    promotions = promotion_history(state(ctx).engine(), task=task, alias=alias)
    if as_json:
        print_json(promotions)
        return
    stdout.print(
        table(
            f"{len(promotions)} promotions",
            (*COLUMNS, "demoted"),
            _rows(promotions, with_demoted=True),
        )
    )
