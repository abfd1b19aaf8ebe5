"""`skinctl ingest products|reviews|cosing`: table datasets, registered onto the ingest group.

Each takes files, a folder, or a catalog slug (`sephora`, `skincare-products`, `cosing`): a slug
means the newest completed `skinctl fetch get` of that dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from skinctl.commands.common import state
from skinctl.console import progress_bar, progress_enabled
from skinctl.errors import EXIT_REJECTED
from skinctl.products.choices import ProductFormat, ReviewFormat

JSON_OPTION = typer.Option(False, "--json", help="Print JSON on stdout.")


def _render(result, as_json: bool) -> None:  # noqa: ANN001 - an IngestResult, imported lazily
    from skinctl.console import info, print_json, stdout, table

    if as_json:
        print_json(result)
    else:
        stdout.print(
            table(
                f"ingest run {result.run_id}",
                [
                    "table",
                    "file",
                    "rows",
                    "inserted",
                    "updated",
                    "unchanged",
                    "duplicate",
                    "rejected",
                ],
                [
                    (
                        t.table,
                        Path(t.file).name,
                        t.total,
                        t.inserted,
                        t.updated,
                        t.unchanged,
                        t.duplicate,
                        t.rejected,
                    )
                    for t in result.tables
                ],
            )
        )
        problems = [p for t in result.tables for p in t.problems + t.duplicates]
        if problems:
            stdout.print(
                table(
                    f"reported rows ({len(problems)}; first 20)",
                    ["file", "line", "reason", "detail"],
                    [(Path(p.file).name, p.line, p.reason, p.detail[:100]) for p in problems[:20]],
                )
            )
        matching = getattr(result, "matching", None)
        if matching:
            info(
                f"ingredient matching: {matching.distinct_names} distinct names "
                f"{matching.names_by_method}; {matching.links_changed} product ingredients changed"
            )
        links = getattr(result, "annex_links", None)
        if links:
            info(f"annex links: {links.links} ({links.added} added, {links.removed} removed)")
        if getattr(result, "reviews_without_product", 0):
            info(
                f"{result.reviews_without_product} reviews wait for their product "
                "(kept; linked when it is ingested)"
            )
    if result.rejected:
        raise typer.Exit(EXIT_REJECTED)


def ingest_products(
    ctx: typer.Context,
    source: str = typer.Argument(
        ...,
        help="The product file (CSV), its folder, or a catalog slug (sephora, skincare-products).",
    ),
    fmt: ProductFormat | None = typer.Option(
        None, "--format", help="The file's layout (default: known from the catalog's file names)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Load products and their ingredient lists (re-running changes nothing).

    Example: skinctl ingest products sephora
    """
    from skinctl.products.ingest import ingest_products as run
    from skinctl.products.sources import product_file

    app_state = state(ctx)
    path, file_format = product_file(source, fmt, app_state.settings)
    with progress_bar(progress_enabled()) as progress:
        report = run(
            app_state.engine(), path, file_format, user=app_state.settings.user, progress=progress
        )
    _render(report, as_json)


def ingest_reviews(
    ctx: typer.Context,
    sources: list[str] = typer.Argument(
        ...,
        help="Review files (CSV), a folder, or the slug sephora "
        "(every reviews_*.csv of the fetched set).",
    ),
    fmt: ReviewFormat = typer.Option(ReviewFormat.SEPHORA, "--format", help="The files' layout."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Load product reviews from one or more files in one run (re-running changes nothing).

    Example: skinctl ingest reviews sephora
    """
    from skinctl.products.ingest import ingest_reviews as run
    from skinctl.products.sources import review_files

    app_state = state(ctx)
    files = review_files(sources, app_state.settings)
    with progress_bar(progress_enabled()) as progress:
        report = run(
            app_state.engine(), files, fmt, user=app_state.settings.user, progress=progress
        )
    _render(report, as_json)


def ingest_cosing(
    ctx: typer.Context,
    source: str | None = typer.Argument(
        None,
        help="A folder of CosIng exports or the slug cosing: the inventory and every annex "
        "file found by name.",
    ),
    inventory: Path | None = typer.Option(
        None, "--inventory", help="CosIng ingredient inventory CSV."
    ),
    annex_ii: Path | None = typer.Option(None, "--annex-ii", help="CosIng Annex II (prohibited)."),
    annex_iii: Path | None = typer.Option(
        None, "--annex-iii", help="CosIng Annex III (restricted)."
    ),
    annex_iv: Path | None = typer.Option(
        None, "--annex-iv", help="CosIng Annex IV (colorants allowed)."
    ),
    annex_v: Path | None = typer.Option(
        None, "--annex-v", help="CosIng Annex V (preservatives allowed)."
    ),
    annex_vi: Path | None = typer.Option(
        None, "--annex-vi", help="CosIng Annex VI (UV filters allowed)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Load the CosIng inventory and Annexes II-VI, link them, and re-match product ingredients.

    Example: skinctl ingest cosing cosing
    """
    from skinctl.products.ingest import ingest_cosing as run
    from skinctl.products.sources import cosing_files, resolve_dataset

    app_state = state(ctx)
    files = {
        "inventory": inventory,
        "annex_ii": annex_ii,
        "annex_iii": annex_iii,
        "annex_iv": annex_iv,
        "annex_v": annex_v,
        "annex_vi": annex_vi,
    }
    if source is not None:
        found = cosing_files(resolve_dataset(source, app_state.settings))
        files = {k: v or found.get(k) for k, v in files.items()}
    with progress_bar(progress_enabled()) as progress:
        report = run(
            app_state.engine(),
            files["inventory"],
            files["annex_ii"],
            files["annex_iii"],
            annex_iv=files["annex_iv"],
            annex_v=files["annex_v"],
            annex_vi=files["annex_vi"],
            user=app_state.settings.user,
            progress=progress,
        )
    _render(report, as_json)


def register(app: typer.Typer) -> None:
    app.command("products")(ingest_products)
    app.command("reviews")(ingest_reviews)
    app.command("cosing")(ingest_cosing)
