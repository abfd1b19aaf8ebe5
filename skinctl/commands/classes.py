"""`skinctl classes ...`: the class vocabulary (canonical classes, what each dataset calls
them) and changes to it that also rename existing labels. Thin: parse, call
`skinctl.classes` / `skinctl.labels.classes`, render."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from skinctl.commands.common import state
from skinctl.labels.views import LabelTask

if TYPE_CHECKING:
    from skinctl.labels.classes import ClassChangeResult, ClassVocabularyService

app = typer.Typer(
    help="One vocabulary of classes across datasets: list, map, rename, merge, revert.",
    no_args_is_help=True,
)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON on stdout.")
TASK_OPTION = typer.Option(LabelTask.condition, "--task", help="The label task of the classes.")


def _service(ctx: typer.Context) -> ClassVocabularyService:
    from skinctl.labels.classes import ClassVocabularyService

    app_state = state(ctx)
    return ClassVocabularyService(app_state.engine(), app_state.settings.user)


def _render(result: ClassChangeResult, as_json: bool) -> None:
    from skinctl.console import print_json, stdout

    if as_json:
        print_json(result)
        return
    what = {
        "create": f"created {result.task} class {result.canonical!r}",
        "map": f"{result.dataset}: {result.name!r} is now {result.canonical!r}",
        "rename": f"renamed {result.name!r} to {result.canonical!r}",
        "merge": f"merged {result.name!r} into {result.canonical!r}",
        "revert": f"reverted the change to {result.name!r}",
    }[result.action]
    retired = (
        f", {result.labels_retired} duplicate labels rejected" if result.labels_retired else ""
    )
    stdout.print(
        f"change {result.change_id}: {what}; {result.labels_changed} labels changed{retired}. "
        f"Undo with `skinctl classes revert {result.change_id}`."
        if result.action != "revert"
        else f"change {result.change_id}: {what}; {result.labels_changed} labels put back."
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    task: LabelTask | None = typer.Option(None, "--task", help="Only this label task."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Canonical classes with their image counts per dataset and their synonyms."""
    from skinctl.classes.listing import list_classes
    from skinctl.console import print_json, stdout, table, warn

    result = list_classes(state(ctx).engine(), task.value if task else None)
    if as_json:
        print_json(result)
        return
    datasets = sorted({d for row in result.classes for d in row.images})
    stdout.print(
        table(
            "classes",
            ("task", "class", *datasets, "total", "synonyms"),
            [
                (
                    row.task,
                    row.name,
                    *(row.images.get(d, 0) for d in datasets),
                    row.total_images,
                    ", ".join(f"{s.dataset}:{s.name}" for s in row.synonyms),
                )
                for row in result.classes
            ],
        )
    )
    if result.unmapped:
        warn(
            f"label names in no class: {', '.join(result.unmapped)} "
            "(`skinctl classes map DATASET NAME CANONICAL` joins them to one)"
        )


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The canonical class name."),
    description: str | None = typer.Option(None, "--description"),
    task: LabelTask = TASK_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Add a canonical class (or set its description)."""
    _render(_service(ctx).create(name, task=task.value, description=description), as_json)


@app.command("map")
def map_(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="The dataset whose name this is."),
    name: str = typer.Argument(..., help="The class as the dataset names it."),
    canonical: str = typer.Argument(..., help="The canonical class (created if new)."),
    task: LabelTask = TASK_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Say what a dataset's class name means; that dataset's labels are renamed."""
    _render(_service(ctx).map(dataset, name, canonical, task=task.value), as_json)


@app.command("rename")
def rename(
    ctx: typer.Context,
    old: str = typer.Argument(..., help="The canonical class now."),
    new: str = typer.Argument(..., help="Its new name."),
    task: LabelTask = TASK_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Respell a canonical class; its labels follow, datasets keep the old name as a synonym."""
    _render(_service(ctx).rename(old, new, task=task.value), as_json)


@app.command("merge")
def merge(
    ctx: typer.Context,
    source: str = typer.Argument(..., help="The class that goes."),
    into: str = typer.Argument(..., help="The class it joins."),
    task: LabelTask = TASK_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Join one canonical class into another; labels and synonyms follow."""
    _render(_service(ctx).merge(source, into, task=task.value), as_json)


@app.command("revert")
def revert(
    ctx: typer.Context,
    change_id: int = typer.Argument(..., help="The change to undo (`skinctl classes history`)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Undo a class change: the vocabulary and the labels it renamed go back."""
    _render(_service(ctx).revert(change_id), as_json)


@app.command("history")
def history(
    ctx: typer.Context,
    limit: int = typer.Option(50, "--limit"),
    as_json: bool = JSON_OPTION,
) -> None:
    """The latest changes to the vocabulary: who, when, what, how many labels."""
    from skinctl.classes.listing import list_changes
    from skinctl.console import print_json_lines, stdout, table

    changes = list_changes(state(ctx).engine(), limit)
    if as_json:
        print_json_lines(changes)
        return
    stdout.print(
        table(
            "class changes",
            (
                "id",
                "action",
                "task",
                "dataset",
                "name",
                "canonical",
                "labels",
                "by",
                "at",
                "reverts",
            ),
            [
                (
                    c.id,
                    c.action,
                    c.task,
                    c.dataset or "",
                    c.name,
                    c.canonical or "",
                    c.labels_changed,
                    c.changed_by,
                    c.changed_at,
                    c.reverts_change_id or "",
                )
                for c in changes
            ],
        )
    )
