"""`skinctl label ...`: list, show, verify, reject, set, import, export, history, stats, review,
prelabel.

Thin: parse, call `skinctl.labels` (the one label service), render. `--json` on `list` and
`history` writes JSON Lines (one label or change per line, so it pipes into `jq` and back into
`skinctl label verify -`); `show`, `stats` and the change commands write one JSON document.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from skinctl.commands.common import read_ids, state
from skinctl.labels.views import (
    ExportFormat,
    HistoryEntry,
    LabelSource,
    LabelStatus,
    LabelTask,
    LabelView,
    QueueOrder,
)

if TYPE_CHECKING:
    from rich.table import Table

    from skinctl.labels.service import LabelService

app = typer.Typer(help="Verify, correct, import and export labels.", no_args_is_help=True)


def _service(ctx: typer.Context) -> LabelService:
    from skinctl.labels import LabelService

    app_state = state(ctx)
    return LabelService(app_state.engine(), app_state.settings.user)


def _label_rows(labels: Iterable[LabelView]) -> list[tuple[Any, ...]]:
    return [
        (
            lb.id,
            lb.image_id,
            lb.dataset_source,
            lb.task,
            lb.condition_type,
            lb.severity_level or "",
            lb.source,
            lb.status,
            lb.verified_by or "",
            lb.version,
        )
        for lb in labels
    ]


LABEL_COLUMNS = (
    "id",
    "image",
    "dataset",
    "task",
    "condition",
    "severity",
    "source",
    "status",
    "by",
    "version",
)


@app.command("list")
def list_labels(
    ctx: typer.Context,
    dataset: str | None = typer.Option(None, "--dataset", help="Only this dataset."),
    condition: str | None = typer.Option(None, "--condition", help="Only this class."),
    verified: bool | None = typer.Option(
        None,
        "--verified/--unverified",
        help="Only verified, or only pending (unreviewed), labels.",
        show_default=False,
    ),
    source: LabelSource | None = typer.Option(
        None, "--source", help="Only labels from this source."
    ),
    task: LabelTask | None = typer.Option(None, "--task", help="Only labels of this task."),
    order: QueueOrder = typer.Option(
        QueueOrder.id, "--order", help="id, or suspect: likely mislabeled first."
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many."),
    as_json: bool = typer.Option(False, "--json", help="JSON Lines on stdout, one label per line."),
) -> None:
    """List labels with their image and review state."""
    from skinctl.console import print_json_lines, stdout, table
    from skinctl.labels import LabelFilter

    status = None if verified is None else LabelStatus.verified if verified else LabelStatus.pending
    labels = _service(ctx).list_labels(
        LabelFilter(dataset=dataset, condition=condition, status=status, source=source, task=task),
        order=order,
        limit=limit,
    )
    if as_json:
        print_json_lines(labels)
        return
    stdout.print(table(f"{len(labels)} labels", LABEL_COLUMNS, _label_rows(labels)))


@app.command("show")
def show(
    ctx: typer.Context,
    label_id: int = typer.Argument(..., help="The label id."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """One label, its image, and its history."""
    from skinctl.console import print_json, stdout, table

    service = _service(ctx)
    label = service.get(label_id)
    history = service.history(label_id=label_id)
    if as_json:
        print_json({**dataclasses.asdict(label), "history": history})
        return
    stdout.print(table(f"label {label_id}", ("field", "value"), dataclasses.asdict(label).items()))
    stdout.print(_history_table(history))


def _history_table(history: Iterable[HistoryEntry]) -> Table:
    from skinctl.console import table

    def brief(state: dict[str, Any] | None) -> str:
        if not state:
            return "-"
        return f"{state['condition_type']} {state['status']} v{state['version']}"

    return table(
        "history",
        ("when", "who", "label", "action", "before", "after", "note"),
        [
            (
                h.changed_at.strftime("%Y-%m-%d %H:%M:%S"),
                h.changed_by,
                h.label_id,
                h.action,
                brief(h.before),
                brief(h.after),
                h.note or "",
            )
            for h in history
        ],
    )


def _verdict(
    ctx: typer.Context,
    ids: list[str],
    action: str,
    reason: str | None,
    version: int | None,
    as_json: bool,
) -> None:
    from skinctl.console import print_json, stderr, stdout, table
    from skinctl.errors import EXIT_FAILURE, EXIT_REJECTED, SkinctlError

    label_ids = read_ids(ids)
    if version is not None and len(label_ids) != 1:
        from skinctl.errors import UsageError

        raise UsageError("--version applies to one label id only.")
    service = _service(ctx)
    done, failed = [], []
    for label_id in label_ids:
        try:
            if action == "verify":
                result = service.verify(label_id, version, note=reason)
            else:
                result = service.reject(label_id, version, reason=reason)
            done.append(result.label)
        except SkinctlError as error:  # one bad id must not stop the others
            failed.append({"id": label_id, "error": error.message})
    if as_json:
        print_json({"action": action, "changed": done, "failed": failed})
    else:
        if done:
            stdout.print(table(f"{action}: {len(done)} labels", LABEL_COLUMNS, _label_rows(done)))
        for failure in failed:
            stderr.print(
                f"[bold red]error:[/] label {failure['id']}: {failure['error']}", highlight=False
            )
    if failed:
        raise typer.Exit(EXIT_REJECTED if done else EXIT_FAILURE)


@app.command("verify")
def verify(
    ctx: typer.Context,
    label_ids: list[str] = typer.Argument(..., help="Label ids, or - to read them from stdin."),
    version: int | None = typer.Option(
        None, "--version", help="The version you saw (one id only): conflict if it changed."
    ),
    note: str | None = typer.Option(None, "--note", help="A note for the history."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Mark labels correct.

    Exit 3 when some ids failed (the others are saved)."""
    _verdict(ctx, label_ids, "verify", note, version, as_json)


@app.command("reject")
def reject(
    ctx: typer.Context,
    label_ids: list[str] = typer.Argument(..., help="Label ids, or - to read them from stdin."),
    reason: str | None = typer.Option(None, "--reason", help="Why: recorded in the history."),
    version: int | None = typer.Option(
        None, "--version", help="The version you saw (one id only)."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Mark labels wrong.

    Exit 3 when some ids failed (the others are saved)."""
    _verdict(ctx, label_ids, "reject", reason, version, as_json)


@app.command("set")
def set_label(
    ctx: typer.Context,
    image_id: int = typer.Argument(..., help="The image id."),
    condition: str = typer.Option(..., "--condition", help="The right class."),
    severity: str | None = typer.Option(None, "--severity", help="Its severity."),
    task: LabelTask | None = typer.Option(
        None,
        "--task",
        help="The label's task. Default: the task the class belongs to, else the image's labels' task.",
        show_default=False,
    ),
    note: str | None = typer.Option(None, "--note", help="A note for the history."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """A person's class for an image (the dataset's label is kept).

    The dataset's row becomes rejected (superseded) and the person's class a verified human
    label, in one operation that `skinctl label undo` reverts; `skinctl label history` shows
    both. Without --task, `oily` on a skin-type image is a skin_type label: the task comes from
    the class (skin types, classes in use) or the image's labels; if both tasks fit, say which.

    Example: image 42 is oily skin, not dry

        skinctl label set 42 --condition oily
    """
    from skinctl.console import print_json, stdout, table

    service = _service(ctx)
    task = task or service.infer_task(image_id, condition.strip())
    result = service.set_condition(image_id, condition, severity, task=task, note=note)
    labels = service.labels_of_image(image_id)
    if as_json:
        print_json({"label": result.label, "image_labels": labels})
        return
    stdout.print(table(f"image {image_id}", LABEL_COLUMNS, _label_rows(labels)))


@app.command("undo")
def undo(
    ctx: typer.Context,
    image_id: int | None = typer.Option(
        None, "--image", help="Undo your last change on this image."
    ),
    label_id: int | None = typer.Option(
        None, "--label", help="Undo your last change on this label."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Revert your most recent change on an image or label.

    The undo is itself recorded in the history; it refuses if someone changed the label since."""
    from skinctl.console import print_json, stdout, table

    result = _service(ctx).undo(label_id=label_id, image_id=image_id)
    if as_json:
        print_json(result)
        return
    stdout.print(table("undone", LABEL_COLUMNS, _label_rows(result.labels)))


@app.command("import")
def import_file(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV or JSON Lines of verdicts and corrections."),
    partial: bool = typer.Option(
        False, "--partial", help="Save the good rows even if some are bad."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Apply verdicts and corrections from a CSV or JSON Lines file.

    Columns: action (verify, reject, set, severity), label_id, image_id or image_hash,
    condition, severity, reason, version. All-or-nothing unless --partial. Exit 1 when nothing
    was saved because of bad rows, 3 when --partial saved the good rows and rejected others."""
    from skinctl.console import print_json, stderr, stdout, table
    from skinctl.errors import EXIT_FAILURE, EXIT_REJECTED
    from skinctl.labels.transfer import import_labels

    report = import_labels(_service(ctx), file, partial=partial)
    if as_json:
        print_json(report)
    else:
        stdout.print(
            table(
                f"import {file}",
                ("rows", "applied", "unchanged", "rejected", "saved"),
                [
                    (
                        report.rows,
                        report.applied,
                        report.unchanged,
                        report.rejected,
                        "yes" if report.committed else "no",
                    )
                ],
            )
        )
        for error in report.errors:
            stderr.print(f"[bold red]row {error.row}:[/] {error.error}", highlight=False)
        if report.errors and not report.committed:
            stderr.print(
                "nothing was saved; fix the rows above, or pass --partial to save the good ones.",
                highlight=False,
            )
    if report.errors:
        raise typer.Exit(EXIT_REJECTED if report.committed else EXIT_FAILURE)


@app.command("export")
def export(
    ctx: typer.Context,
    out: Path = typer.Argument(..., help="Output file (csv, jsonl) or folder (folders)."),
    format: ExportFormat = typer.Option(
        ExportFormat.csv, "--format", help="csv, jsonl, or folders (a class-folder tree)."
    ),
    verified_only: bool = typer.Option(
        False,
        "--verified-only",
        help="Only verified labels (a conflict a reviewer decided is one class).",
    ),
    dataset: str | None = typer.Option(None, "--dataset", help="Only this dataset."),
    task: LabelTask | None = typer.Option(None, "--task", help="Only this task."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Export live labels as csv, jsonl, or a class-folder tree.

    Rejected labels are left out. `folders` writes OUT/<dataset>/[<split>/]<class>/<file>,
    which `skinctl ingest images OUT/<dataset> --layout folders` reads back: one file per image
    and class, so an image whose labels disagree is written into each of its class folders."""
    from skinctl.console import info, print_json
    from skinctl.labels import LabelFilter
    from skinctl.labels.transfer import export_labels

    app_state = state(ctx)
    storage = app_state.storage() if format is ExportFormat.folders else None
    report = export_labels(
        _service(ctx),
        out,
        format=format,
        verified_only=verified_only,
        filters=LabelFilter(dataset=dataset, task=task),
        storage=storage,
    )
    if as_json:
        print_json(report)
    else:
        conflicts = (
            f"; {report.conflicts:,} images in conflict"
            + (
                " (written into each of their class folders)"
                if format is ExportFormat.folders
                else ""
            )
            if report.conflicts
            else ""
        )
        info(
            f"wrote {report.files:,} {'file' if report.files == 1 else 'files'} to {out}: "
            f"{report.images:,} images, {report.labels:,} labels{conflicts}"
        )


@app.command("history")
def history(
    ctx: typer.Context,
    image_id: int = typer.Argument(..., help="The image id."),
    as_json: bool = typer.Option(
        False, "--json", help="JSON Lines on stdout, one change per line."
    ),
) -> None:
    """Every change to the image's labels: who, when, before and after."""
    from skinctl.console import print_json_lines, stdout

    entries = _service(ctx).history(image_id=image_id)
    if as_json:
        print_json_lines(entries)
        return
    stdout.print(_history_table(entries))


@app.command("stats")
def stats(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Verified share per dataset and class, and agreement with human verdicts."""
    from skinctl.console import print_json, stdout, table

    report = _service(ctx).stats()
    if as_json:
        print_json(report)
        return

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    stdout.print(
        table(
            "per dataset",
            ("dataset", "labels", "verified", "verified share", "agreement", "reviewed"),
            [
                (
                    d.dataset,
                    d.labels,
                    d.verified,
                    pct(d.verified_share),
                    pct(d.agreement),
                    d.reviewed_dataset_labels,
                )
                for d in report.datasets
            ],
        )
    )
    stdout.print(
        table(
            "per class",
            (
                "dataset",
                "task",
                "condition",
                "labels",
                "verified",
                "rejected",
                "pending",
                "verified share",
                "agreement",
            ),
            [
                (
                    c.dataset,
                    c.task,
                    c.condition,
                    c.labels,
                    c.verified,
                    c.rejected,
                    c.pending,
                    pct(c.verified_share),
                    pct(c.agreement),
                )
                for c in report.classes
            ],
        )
    )
    stdout.print(
        f"agreement of dataset labels with human verdicts: {pct(report.agreement)} of {report.reviewed_dataset_labels} reviewed"
    )
    if report.model_labels:
        stdout.print(
            table(
                "model labels (accepted = verified with the model's class)",
                ("run", "labels", "accepted", "rejected or changed", "pending", "acceptance"),
                [
                    (m.run or "-", m.labels, m.accepted, m.rejected, m.pending, pct(m.acceptance))
                    for m in report.model_labels
                ],
            )
        )
        stdout.print(f"people accept the model's label: {pct(report.model_acceptance)}")


@app.command("prelabel")
def prelabel(
    ctx: typer.Context,
    run_ref: str = typer.Option(
        ..., "--run", help="The condition or skin-type run (id or 'latest')."
    ),
    dataset: list[str] = typer.Option(
        ..., "--dataset", help="The images to pre-label (repeatable)."
    ),
    severity_run: str | None = typer.Option(
        None,
        "--severity-run",
        help="The severity run for the graded condition (default: the promoted severity model, "
        "else the newest that fits).",
    ),
    limit: int | None = typer.Option(None, "--limit", help="At most this many images."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Write a model's answers for unlabelled images as pending labels for people to verify
    (`skinctl label review` shows the most uncertain first)."""
    from skinctl.console import print_json, progress_bar, progress_enabled, stdout
    from skinctl.train.prelabel import prelabel as prelabel_images

    app_state = state(ctx)
    engine = app_state.engine()
    promoted = None
    if severity_run is None:
        from skinctl.registry.service import live_promotions
        from skinctl.registry.tasks import Task as ServedTask

        promoted = next(
            (p.run_id for p in live_promotions(engine) if p.task == ServedTask.severity), None
        )
    with progress_bar(progress_enabled()) as report:
        result = prelabel_images(
            engine,
            app_state.storage(),
            run_ref,
            dataset,
            home=app_state.settings.home,
            user=app_state.settings.user,
            severity_run=severity_run,
            promoted_severity_run=promoted,
            limit=limit,
            report=report,
        )
    if as_json:
        print_json(result)
        return
    mean = "-" if result.mean_confidence is None else f"{result.mean_confidence:.2f}"
    severity = (
        f"; {result.with_severity} with a severity level from run {result.severity_run}"
        if result.severity_run
        else ""
    )
    stdout.print(
        f"run {result.run}: {result.labelled} pending model labels for {result.unlabelled} "
        f"unlabelled images of {', '.join(result.datasets)} (mean confidence {mean}){severity}; "
        f"classes: {', '.join(f'{c} {n}' for c, n in result.classes.items()) or '-'}",
        highlight=False,
    )


@app.command("review")
def review(
    ctx: typer.Context,
    dataset: str | None = typer.Option(None, "--dataset", help="Only this dataset."),
    condition: str | None = typer.Option(None, "--condition", help="Only this class."),
    order: QueueOrder = typer.Option(
        QueueOrder.suspect, "--order", help="suspect (likely mislabeled first) or id."
    ),
) -> None:
    """Open the verification queue in the terminal dashboard."""
    from skinctl.tui.app import run_tui

    app_state = state(ctx)
    run_tui(
        app_state.settings,
        app_state.engine(),
        start="queue",
        dataset=dataset,
        condition=condition,
        order=order,
    )
