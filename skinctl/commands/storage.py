"""`skinctl storage`: check, migrate and clean the image store."""

from __future__ import annotations

import typer

from skinctl.commands.common import state
from skinctl.errors import EXIT_REJECTED

app = typer.Typer(
    help="Check the stored images, move them to another store, remove orphans.",
    no_args_is_help=True,
)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON on stdout.")
WORKERS_OPTION = typer.Option(8, "--workers", min=1, max=64, help="Parallel reads/uploads.")


@app.command("check")
def check(
    ctx: typer.Context,
    dataset: str | None = typer.Option(None, "--dataset", help="Only rows of this dataset_source."),
    workers: int = WORKERS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Verify that every image_url exists and its bytes hash to image_hash (exit 3 if not)."""
    from skinctl.console import print_json, progress_bar, progress_enabled, stderr, stdout
    from skinctl.storage.maintenance import check_images

    engine = state(ctx).engine()
    with progress_bar(progress_enabled()) as progress:
        report = check_images(engine, dataset=dataset, workers=workers, report=progress)
    if as_json:
        print_json(report)
    else:
        stdout.print(
            f"checked {report.checked:,} images: {report.ok:,} ok, {len(report.missing):,} missing, "
            f"{len(report.corrupt):,} corrupt",
            highlight=False,
        )
        # One line per problem, on stderr like every per-item failure; URLs stay whole, so they
        # can be copied or grepped.
        for problem in report.problems:
            stderr.print(
                f"  {problem.problem:8} id={problem.id} {problem.image_url}  ({problem.detail})",
                highlight=False,
                markup=False,
            )
    if report.problems:
        raise typer.Exit(EXIT_REJECTED)


@app.command("migrate")
def migrate(
    ctx: typer.Context,
    to: str = typer.Option(
        ..., "--to", help="Target store: a folder, file:///... or gs://bucket/prefix."
    ),
    batch_size: int = typer.Option(
        500, "--batch-size", min=1, help="Rows per database transaction."
    ),
    workers: int = WORKERS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Copy every stored image to another store, verify it, then repoint image_url (resumable)."""
    from skinctl.console import info, print_json, progress_bar, progress_enabled, stderr, stdout
    from skinctl.storage import open_storage
    from skinctl.storage.maintenance import migrate_images

    app_state = state(ctx)
    engine = app_state.engine()
    target = open_storage(to)
    with progress_bar(progress_enabled()) as progress:
        report = migrate_images(
            engine, target, batch_size=batch_size, workers=workers, report=progress
        )
    if as_json:
        print_json(report)
    else:
        stdout.print(
            f"{report.moved:,} of {report.to_move:,} images now in {report.target} "
            f"({report.uploaded:,} uploaded, the rest were already stored; "
            f"{report.already_there:,} were there before)",
            highlight=False,
        )
        for problem in report.failed:
            stderr.print(
                f"  not migrated: {problem.problem} id={problem.id} {problem.image_url}  "
                f"({problem.detail})",
                highlight=False,
                markup=False,
            )
    if report.moved and app_state.settings.storage.rstrip("/") != target.base_url and not as_json:
        info(f'hint: set storage_url = "{target.base_url}" so new images go there too.')
    if report.failed:
        raise typer.Exit(EXIT_REJECTED)


@app.command("gc")
def gc(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be deleted."),
    force: bool = typer.Option(
        False, "--force", help="Run even while an ingest run is marked running."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete stored objects that no ml_training_images row references (the --storage store)."""
    from skinctl.console import print_json, stdout
    from skinctl.storage.maintenance import collect_garbage

    app_state = state(ctx)
    engine = app_state.engine()
    storage = app_state.storage()
    report = collect_garbage(engine, storage, dry_run=dry_run, force=force)
    if as_json:
        print_json(report)
        return
    verb = "would delete" if dry_run else "deleted"
    count = len(report.orphans) if dry_run else report.deleted
    stdout.print(
        f"{report.store}: {report.scanned:,} objects, {report.referenced:,} referenced, {verb} {count:,}",
        highlight=False,
    )
    for url in report.orphans[:50] if dry_run else []:
        stdout.print(f"  {url}", highlight=False)
    if dry_run and len(report.orphans) > 50:
        stdout.print(
            f"  ... and {len(report.orphans) - 50:,} more (use --json for all)", highlight=False
        )
