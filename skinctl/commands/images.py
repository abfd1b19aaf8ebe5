"""`skinctl images`: per-image facts computed from the stored pixels (the estimated skin tone)."""

from __future__ import annotations

import typer

from skinctl.commands.common import state

app = typer.Typer(help="Facts computed from stored images' pixels.", no_args_is_help=True)


@app.command("tone")
def tone(
    ctx: typer.Context,
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Only this dataset."),
    recompute: bool = typer.Option(
        False, "--recompute", help="Estimate every image again, not only those without a tone."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Backfill the estimated skin tone (ITA°) of stored images that have none. Resumable:
    each batch commits, so an interrupted run continues where it stopped when run again."""
    from skinctl.console import info, print_json, progress_bar, progress_enabled, stdout, table
    from skinctl.errors import EXIT_REJECTED
    from skinctl.ingest.tone_backfill import backfill_tones

    app_state = state(ctx)
    with progress_bar(progress_enabled()) as report:
        summary = backfill_tones(
            app_state.engine(),
            app_state.storage(),
            dataset=dataset,
            recompute=recompute,
            report=report,
        )
    if json_output:
        print_json(summary)
    else:
        stdout.print(
            table(
                f"skin tone backfill ({summary.method})",
                ["what", "count"],
                [
                    ("images to estimate", summary.images),
                    ("tone estimated", summary.estimated),
                    ("no skin found (tone left empty)", summary.no_skin),
                    ("unreadable images", len(summary.unreadable)),
                    ("seconds", summary.seconds),
                ],
            )
        )
        for item in summary.unreadable[:20]:
            info(f"image {item.image_id}: {item.reason}")
    if summary.unreadable:
        raise typer.Exit(EXIT_REJECTED)
