"""`skinctl ingest products|reviews|cosing`: table datasets, registered onto the ingest group."""

from __future__ import annotations

from pathlib import Path

import typer

from skinctl.commands.common import state
from skinctl.console import progress_bar, progress_enabled

JSON_OPTION = typer.Option(False, "--json", help="Print JSON on stdout.")


def _render(report, as_json: bool) -> None:  # noqa: ANN001 - IngestReport, imported lazily
    from skinctl.console import info, print_json, stdout, table

    document = report.as_dict()
    if as_json:
        print_json(document)
    else:
        stdout.print(table(
            f"ingest run {report.run_id}",
            ["table", "file", "rows", "inserted", "updated", "unchanged", "duplicate", "rejected"],
            [(t["table"], Path(t["file"]).name, t["total"], t["inserted"], t["updated"], t["unchanged"],
              t["duplicate"], t["rejected"]) for t in document["tables"]],
        ))
        problems = [p for t in document["tables"] for p in t["problems"] + t["duplicates"]]
        if problems:
            stdout.print(table(
                f"reported rows ({len(problems)}; first 20)", ["file", "line", "reason", "detail"],
                [(Path(p["file"]).name, p["line"], p["reason"], p["detail"][:100]) for p in problems[:20]],
            ))
        matching = document.get("matching")
        if matching:
            info(f"ingredient matching: {matching['distinct_names']} distinct names "
                 f"{matching['names_by_method']}; {matching['links_changed']} product ingredients changed")
        if "annex_links" in document:
            info(f"annex links: {document['annex_links']}")
    if report.rejected:
        raise typer.Exit(3)


def ingest_products(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="The product file (CSV)."),
    fmt: str = typer.Option(..., "--format", help="sephora | skincare-clean"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Load products and their ingredient lists (re-running changes nothing)."""
    from skinctl.products.ingest import ingest_products as run

    app_state = state(ctx)
    with progress_bar(progress_enabled()) as progress:
        report = run(app_state.engine(), file, fmt, user=app_state.settings.user, progress=progress)
    _render(report, as_json)


def ingest_reviews(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="The review file (CSV)."),
    fmt: str = typer.Option("sephora", "--format", help="sephora"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Load product reviews (re-running changes nothing)."""
    from skinctl.products.ingest import ingest_reviews as run

    app_state = state(ctx)
    with progress_bar(progress_enabled()) as progress:
        report = run(app_state.engine(), file, fmt, user=app_state.settings.user, progress=progress)
    _render(report, as_json)


def ingest_cosing(
    ctx: typer.Context,
    inventory: Path | None = typer.Option(None, "--inventory", help="CosIng ingredient inventory CSV."),
    annex_ii: Path | None = typer.Option(None, "--annex-ii", help="CosIng Annex II (prohibited)."),
    annex_iii: Path | None = typer.Option(None, "--annex-iii", help="CosIng Annex III (restricted)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Load the CosIng inventory and annexes, link them, and re-match product ingredients."""
    from skinctl.products.ingest import ingest_cosing as run

    app_state = state(ctx)
    with progress_bar(progress_enabled()) as progress:
        report = run(app_state.engine(), inventory, annex_ii, annex_iii, user=app_state.settings.user,
                     progress=progress)
    _render(report, as_json)


def register(app: typer.Typer) -> None:
    app.command("products")(ingest_products)
    app.command("reviews")(ingest_reviews)
    app.command("cosing")(ingest_cosing)
