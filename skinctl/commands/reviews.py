"""`skinctl reviews`: score review sentiment with a trained run, and show what reviewers say
about a product. Training is `skinctl train run --task sentiment`."""

from __future__ import annotations

import typer

from skinctl.commands.common import state
from skinctl.products.choices import SkinType

app = typer.Typer(
    help="Review sentiment: score reviews, and what reviewers say about a product.",
    no_args_is_help=True,
)
JSON_OPTION = typer.Option(False, "--json", help="Print JSON on stdout.")


@app.command("score")
def score(
    ctx: typer.Context,
    run: str | None = typer.Option(
        None, "--run", help="A sentiment run id (default: the newest finished one)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Store each review's sentiment and class probabilities from a sentiment run (resumes
    where an interrupted scoring stopped).

    Example: skinctl reviews score --run 12
    """
    from skinctl.console import info, print_json, progress_bar, progress_enabled
    from skinctl.reviews.score import score_reviews

    app_state = state(ctx)
    with progress_bar(progress_enabled()) as progress:
        result = score_reviews(
            app_state.engine(), app_state.storage(), app_state.settings.home, run, progress=progress
        )
    if as_json:
        print_json(result)
        return
    rate = f" ({result.reviews_per_second:.0f} reviews/s)" if result.reviews_per_second else ""
    info(
        f"run {result.run_id}: scored {result.scored} reviews in {result.seconds:.1f} s{rate}; "
        f"{result.already_scored} were scored before; of {result.total_reviews}: "
        + ", ".join(f"{k} {v}" for k, v in result.by_sentiment.items())
    )


def _pct(share: float | None, ci: tuple[float, float] | None) -> str:
    if share is None or ci is None:
        return "-"
    return f"{share:.0%} [{ci[0]:.0%}-{ci[1]:.0%}]"


@app.command("show")
def show(
    ctx: typer.Context,
    product: str = typer.Argument(..., help="Product id, external id (P473671) or exact name."),
    skin_type: SkinType | None = typer.Option(
        None, "--skin-type", help="Only reviewers with this skin type."
    ),
    terms: int = typer.Option(10, "--terms", help="Words and phrases to list each way."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The share of positive and negative reviews with 95% intervals, overall and by skin type
    and skin tone, and the words and phrases over-represented in negative against positive
    reviews (log-odds with an informative Dirichlet prior), each with a quote.

    Example: skinctl reviews show P420652 --skin-type oily
    """
    from skinctl.console import print_json, stdout, table
    from skinctl.reviews.summary import product_reviews

    result = product_reviews(state(ctx).engine(), product, skin_type=skin_type, terms=terms)
    if as_json:
        print_json(result)
        return
    p = result.product
    stdout.print(
        f"[bold]{p.name}[/] ({p.brand or p.source}, id {p.id}); sentiment from "
        f"{result.sentiment_source}" + (f"; reviewers with {skin_type} skin" if skin_type else ""),
        highlight=False,
    )
    columns = ["group", "reviews", "positive [95% CI]", "negative [95% CI]"]
    for title, shares in (
        ("overall", [result.overall]),
        ("by skin type", result.by_skin_type),
        ("by skin tone", result.by_skin_tone),
    ):
        if shares:
            stdout.print(
                table(
                    title,
                    columns,
                    [
                        (
                            s.group,
                            s.reviews,
                            _pct(s.positive_share, s.positive_ci95),
                            _pct(s.negative_share, s.negative_ci95),
                        )
                        for s in shares
                    ],
                )
            )
    if not result.negative_terms:
        stdout.print(
            f"{result.overall.negative} negative review(s): too few to say what they say more "
            "(a term needs 2).",
            highlight=False,
        )
    for title, found in (
        ("said more in negative reviews", result.negative_terms),
        ("said more in positive reviews", result.positive_terms),
    ):
        if found:
            stdout.print(
                table(
                    title,
                    ["term", "z", "negative", "positive", "quote"],
                    [
                        (t.term, f"{t.z:.1f}", t.negative_count, t.positive_count, t.quote)
                        for t in found
                    ],
                )
            )
