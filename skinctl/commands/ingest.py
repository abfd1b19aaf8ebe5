"""`skinctl ingest images` and `skinctl demo`: parse, call the ingest service, render."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from skinctl.commands.common import state
from skinctl.errors import EXIT_REJECTED

if TYPE_CHECKING:
    from skinctl.ingest.images import IngestSummary

app = typer.Typer(
    help="Bring datasets into the database: images, products, reviews, CosIng.", no_args_is_help=True
)

MAX_PROBLEMS_SHOWN = 20


@contextmanager
def _progress(enabled: bool, label: str):
    """(on_start, on_progress, on_stage) callbacks driving Rich bars on stderr, or no-ops:
    one bar for the files, then one per near-duplicate linking stage (one live display)."""
    if not enabled:
        yield None, None, None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    from skinctl.console import stderr

    class RateColumn(ProgressColumn):
        def render(self, task):  # noqa: ANN001, ANN201 - Rich's signature
            speed = task.finished_speed or task.speed
            unit = task.fields.get("unit", "images")
            return Text(f"{speed:,.0f} {unit}/s" if speed else f"- {unit}/s", style="cyan")

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=stderr,
        transient=False,
    )
    task_id = None

    def on_start(total: int) -> None:
        nonlocal task_id
        task_id = progress.add_task(label, total=total)

    def on_progress(count: int) -> None:
        if task_id is not None:
            progress.advance(task_id, count)

    stages: dict[str, int] = {}

    def on_stage(stage: str, done: int, total: int) -> None:
        if stage not in stages:
            unit = "pairs" if stage == "verify" else "images"
            stages[stage] = progress.add_task(f"near duplicates: {stage}", total=total, unit=unit)
        progress.update(stages[stage], completed=done, total=total)

    with progress:
        yield on_start, on_progress, on_stage


def render_summary(summary: IngestSummary, json_output: bool) -> None:
    from skinctl.console import info, print_json, stderr, stdout, table, warn

    if json_output:
        print_json(summary.as_json())
        return
    for note in summary.notes:
        info(f"[dim]{note}[/]")
    rows = [
        ("scanned", summary.scanned),
        ("ingested (new images)", summary.ingested),
        ("exact duplicates (source recorded)", summary.exact_duplicates),
        ("already ingested (skipped)", summary.already_ingested),
        (f"near-duplicate pairs ({summary.near_duplicate_method or '-'})", summary.near_duplicates),
        ("rejected", summary.rejected),
        ("labels added", summary.labels),
        ("images without a label", summary.unlabeled),
        ("metadata rows added", summary.metadata_rows),
        ("metadata values rejected", len(summary.metadata_problems)),
        ("non-image files skipped", summary.skipped_non_image_files),
        ("new stored objects", summary.stored_objects),
    ]
    title = f"ingest {summary.dataset}" + (" (dry run)" if summary.dry_run else f" (run {summary.run_id})")
    stdout.print(table(title, ["what", "count"], rows))
    if summary.rejected_by_reason:
        from skinctl.ingest.images import reasons_table

        stdout.print(table("rejected by reason", ["reason", "count"], reasons_table(summary)))
        for rejection in summary.rejections[:MAX_PROBLEMS_SHOWN]:
            warn(f"{rejection.local_path}: {rejection.reason} ({rejection.detail})")
    for problem in summary.metadata_problems[:MAX_PROBLEMS_SHOWN]:
        warn(problem)
    hidden = max(0, len(summary.rejections) - MAX_PROBLEMS_SHOWN) + max(
        0, len(summary.metadata_problems) - MAX_PROBLEMS_SHOWN
    )
    if hidden:
        warn(f"... and {hidden} more; --report FILE lists them all")
    stderr.print(
        f"{summary.seconds:.1f} s, {summary.images_per_second:,.0f} images/s", highlight=False
    )
    if summary.nothing_new and not summary.dry_run:
        info("nothing new: every image, label and metadata row was already in the database")


@app.command("images")
def images(
    ctx: typer.Context,
    path: str = typer.Argument(..., help="Folder that holds the images (or a catalog dataset slug)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name recorded on every row."),
    layout: str = typer.Option("auto", "--layout", help="auto | folders | csv | manifest."),
    labels: Path | None = typer.Option(None, "--labels", help="Label CSV: filename + class or one-hot columns."),
    metadata: Path | None = typer.Option(
        None, "--metadata", help="Subject metadata CSV keyed by filename or subject_id."
    ),
    filename_pattern: str | None = typer.Option(
        None,
        "--filename-pattern",
        help="Regex with named groups condition, severity, subject, split, read from file names.",
    ),
    class_level: int | None = typer.Option(
        None,
        "--class-level",
        help="Folder level that names the class (1 = first folder under PATH, -1 = the image's "
        "folder, 0 = none). Default: detected.",
    ),
    storage: str | None = typer.Option(None, "--storage", help="Image store URL (overrides the setting)."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Worker processes (default: cores)."),
    batch_size: int = typer.Option(500, "--batch-size", min=1, help="Rows per database transaction."),
    near_duplicate_distance: int = typer.Option(
        8, "--near-duplicate-distance", min=0, max=15,
        help="Also check images whose perceptual hashes differ in <= N bits; every pair is "
        "confirmed by keypoint matching (see `skinctl dedup`).",
    ),
    link: bool = typer.Option(
        True, "--link/--no-link",
        help="Link near duplicates after loading (keypoint matching, the slow part); --no-link "
        "leaves it to `skinctl dedup scan`.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Scan and validate; write nothing."),
    report: Path | None = typer.Option(None, "--report", help="Write every rejected file and why (CSV)."),
    json_output: bool = typer.Option(False, "--json", help="Print only the summary, as JSON."),
) -> None:
    """Validate, hash, deduplicate, store and load an image dataset."""
    from skinctl.console import progress_enabled
    from skinctl.ingest.images import IngestOptions, ingest_images, resolve_source, write_report

    app_state = state(ctx)
    settings = app_state.settings
    folder, catalog_layout = resolve_source(path, settings)
    options = IngestOptions(
        dataset=dataset,
        storage_url=storage or settings.storage,
        layout=catalog_layout if layout == "auto" and catalog_layout else layout,
        labels=labels,
        metadata=metadata,
        filename_pattern=filename_pattern,
        class_level=class_level,
        workers=workers or settings.worker_count,
        batch_size=batch_size,
        near_duplicate_distance=near_duplicate_distance,
        link_near_duplicates=link,
        dry_run=dry_run,
        started_by=settings.user,
    )
    options.validate()
    engine = app_state.engine()
    with _progress(progress_enabled(), f"ingest {dataset}") as (on_start, on_progress, on_link_progress):
        summary = ingest_images(
            engine, folder, options,
            on_start=on_start, on_progress=on_progress, on_link_progress=on_link_progress,
        )
    if report is not None:
        write_report(report, summary)
    render_summary(summary, json_output)
    if summary.has_rejections:
        raise typer.Exit(EXIT_REJECTED)


def demo(
    ctx: typer.Context,
    folder: Path | None = typer.Option(
        None, "--folder", help="Where to write the demo images (default: <home>/demo-images)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print only the summary, as JSON."),
) -> None:
    """Make a small labelled image set (with duplicates and a bad file) and ingest it."""
    from skinctl.console import info, progress_enabled
    from skinctl.ingest.demo import DEMO_DATASET, make_demo_images
    from skinctl.ingest.images import IngestOptions, ingest_images

    app_state = state(ctx)
    settings = app_state.settings
    target = folder or settings.home / "demo-images"
    made = make_demo_images(target)
    info(
        f"demo images in {target}: {made.images} files in classes {', '.join(made.classes)}, "
        f"{made.exact_copies} exact copies, {made.near_copies} near copy, {made.bad_files} bad file"
    )
    options = IngestOptions(
        dataset=DEMO_DATASET,
        storage_url=settings.storage,
        workers=min(2, settings.worker_count),
        started_by=settings.user,
    )
    engine = app_state.engine()
    with _progress(progress_enabled(), "ingest demo") as (on_start, on_progress, on_link_progress):
        summary = ingest_images(
            engine, target, options,
            on_start=on_start, on_progress=on_progress, on_link_progress=on_link_progress,
        )
    render_summary(summary, json_output)
    if not json_output:
        info(
            "the bad file was planted to show a rejection; next: `skinctl stats --dataset demo`, "
            "or `skinctl ingest images YOUR_FOLDER --dataset NAME`"
        )
