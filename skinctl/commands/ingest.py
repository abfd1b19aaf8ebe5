"""`skinctl ingest images` and `skinctl demo`: parse, call the ingest service, render."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from skinctl.commands.common import state
from skinctl.datasets.readers import Layout
from skinctl.engines import EngineKind
from skinctl.errors import EXIT_REJECTED

if TYPE_CHECKING:
    from skinctl.ingest.summary import IngestResult

app = typer.Typer(
    help="Bring datasets into the database: images, products, reviews, CosIng.",
    no_args_is_help=True,
)

MAX_PROBLEMS_SHOWN = 20


def render_summary(result: IngestResult, json_output: bool) -> None:
    from skinctl.console import info, print_json, stderr, stdout, table, warn

    summary = result.summary
    if json_output:
        print_json(summary)
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
    title = f"ingest {summary.dataset}" + (
        " (dry run)" if summary.dry_run else f" (run {summary.run_id})"
    )
    stdout.print(table(title, ["what", "count"], rows))
    if summary.rejected_by_reason:
        from skinctl.ingest.report import reasons_table

        stdout.print(table("rejected by reason", ["reason", "count"], reasons_table(result)))
        for rejection in result.rejections[:MAX_PROBLEMS_SHOWN]:
            warn(f"{rejection.local_path}: {rejection.reason} ({rejection.detail})")
    for problem in summary.metadata_problems[:MAX_PROBLEMS_SHOWN]:
        warn(problem)
    hidden = max(0, len(result.rejections) - MAX_PROBLEMS_SHOWN) + max(
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
    path: str = typer.Argument(
        ...,
        help="Folder that holds the images, a bucket (gs://bucket/prefix), or a catalog "
        "dataset slug.",
    ),
    dataset: str | None = typer.Option(
        None,
        "--dataset",
        "-d",
        help="Dataset name recorded on every row (default for a catalog slug: the slug).",
    ),
    layout: Layout = typer.Option(Layout.AUTO, "--layout", help="How the folder is laid out."),
    labels: str | None = typer.Option(
        None,
        "--labels",
        help="Label CSV: filename + class or one-hot columns (a local file, or gs://... with a "
        "bucket source).",
    ),
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
    storage: str | None = typer.Option(
        None, "--storage", help="Image store URL (overrides the setting)."
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Worker processes (default: cores)."
    ),
    batch_size: int = typer.Option(
        500, "--batch-size", min=1, help="Rows per database transaction."
    ),
    engine_kind: EngineKind = typer.Option(
        EngineKind.local,
        "--engine",
        help="Where files are read and analysed: a local process pool, or Ray (skinctl[ray]).",
    ),
    ray_address: str | None = typer.Option(
        None,
        "--address",
        help="Ray cluster to use with --engine ray (ray://HEAD:10001); default: a local Ray.",
    ),
    near_duplicate_distance: int = typer.Option(
        8,
        "--near-duplicate-distance",
        min=0,
        max=15,
        help="Also check images whose perceptual hashes differ in <= N bits; every pair is "
        "confirmed by keypoint matching (see `skinctl dedup`).",
    ),
    link: bool = typer.Option(
        True,
        "--link/--no-link",
        help="Link near duplicates after loading (keypoint matching, the slow part); --no-link "
        "leaves it to `skinctl dedup scan`.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Scan and validate; write nothing."),
    report: Path | None = typer.Option(
        None, "--report", help="Write every rejected file and why (CSV)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print only the summary, as JSON."),
) -> None:
    """Validate, hash, deduplicate, store and load an image dataset.

    Example: the skin-type images fetched with `skinctl fetch get skin-types`

        skinctl ingest images skin-types
        skinctl ingest images ./photos --dataset clinic-2026 --labels labels.csv --report rejected.csv
    """
    from skinctl.console import progress_bar, progress_enabled
    from skinctl.ingest.images import ingest_images
    from skinctl.ingest.options import IngestOptions
    from skinctl.ingest.report import write_report
    from skinctl.ingest.source import resolve_source

    app_state = state(ctx)
    settings = app_state.settings
    source = resolve_source(path, settings)
    options = IngestOptions(
        dataset=source.dataset_name(dataset),
        storage_url=storage or settings.storage,
        layout=source.layout if layout == Layout.AUTO and source.layout else layout,
        labels=labels if labels is None or labels.startswith("gs://") else Path(labels),
        metadata=metadata,
        filename_pattern=filename_pattern,
        class_level=class_level,
        workers=workers or settings.worker_count,
        batch_size=batch_size,
        near_duplicate_distance=near_duplicate_distance,
        link_near_duplicates=link,
        dry_run=dry_run,
        started_by=settings.user,
        engine=engine_kind,
        ray_address=ray_address,
    )
    options.validate()
    engine = app_state.engine()
    with progress_bar(progress_enabled()) as reporter:
        result = ingest_images(engine, source.location, options, report=reporter)
    # the summary first: a report that cannot be written is one error after it, rows kept
    render_summary(result, json_output)
    if report is not None:
        write_report(report, result)
    if result.summary.has_rejections:
        raise typer.Exit(EXIT_REJECTED)


def demo(
    ctx: typer.Context,
    folder: Path | None = typer.Option(
        None, "--folder", help="Where to write the demo images (default: <home>/demo-images)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print only the summary, as JSON."),
) -> None:
    """Make a small labelled image set (with duplicates and a bad file) and ingest it."""
    from skinctl.console import info, progress_bar, progress_enabled
    from skinctl.ingest.demo import DEMO_DATASET, make_demo_images
    from skinctl.ingest.images import ingest_images
    from skinctl.ingest.options import IngestOptions

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
    with progress_bar(progress_enabled()) as reporter:
        result = ingest_images(engine, target, options, report=reporter)
    render_summary(result, json_output)
    if not json_output:
        info(
            "the bad file was planted to show a rejection; next: `skinctl stats --dataset demo`, "
            "or `skinctl ingest images YOUR_FOLDER --dataset NAME`"
        )
