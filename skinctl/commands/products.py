"""`skinctl products`: list, show, recommend, stats."""

from __future__ import annotations

import typer

from skinctl.commands.common import state
from skinctl.products.choices import Concern, ProductFormat, ProductKind, SkinType

app = typer.Typer(help="Products, their ingredients and recommendations.", no_args_is_help=True)
JSON_OPTION = typer.Option(False, "--json", help="Print JSON on stdout.")


def _price(p) -> str:  # noqa: ANN001 - a ProductSummary or a Size
    return f"{p.price} {p.currency}" if p.price is not None else ""


@app.command("list")
def list_products(
    ctx: typer.Context,
    search: str | None = typer.Option(None, "--search", help="Part of the name or brand."),
    source: ProductFormat | None = typer.Option(
        None, "--source", help="Where the product came from."
    ),
    types: list[ProductKind] = typer.Option(
        [], "--type", help="Product type, by category (repeatable)."
    ),
    limit: int = typer.Option(50, "--limit"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Products, filtered."""
    from skinctl.console import print_json, stdout, table
    from skinctl.products.recommend import list_products as run

    rows = run(
        state(ctx).engine(),
        search=search,
        source=source,
        types=[t.value for t in types],
        limit=limit,
    )
    if as_json:
        print_json(rows)
        return
    stdout.print(
        table(
            None,
            ["id", "source", "name", "brand", "type", "price", "rating"],
            [(p.id, p.source, p.name, p.brand, p.product_type, _price(p), p.rating) for p in rows],
        )
    )


@app.command("show")
def show(
    ctx: typer.Context,
    product: str = typer.Argument(..., help="Product id or external id."),
    as_json: bool = JSON_OPTION,
) -> None:
    """A product with its ingredient list and matches."""
    from dataclasses import asdict

    from skinctl.console import print_json, stdout, table
    from skinctl.products.check import check_ingredients

    result = check_ingredients(state(ctx).engine(), product_ref=product)
    if as_json:
        print_json(result)
        return
    p = result.product
    assert p is not None
    stdout.print(
        table(p.name, ["field", "value"], [(k, v) for k, v in asdict(p).items() if v is not None])
    )
    stdout.print(
        table(
            "ingredients",
            ["#", "as written", "CosIng", "match", "status"],
            [
                (i.position, i.name, i.match.inci_name or "-", i.match.method, i.status)
                for i in result.ingredients
            ],
        )
    )


@app.command("recommend")
def recommend(
    ctx: typer.Context,
    skin_type: SkinType | None = typer.Option(
        None,
        "--skin-type",
        help="Prefer products made for it, leave out those made for others, "
        "and rank by what reviewers with this skin type said.",
    ),
    concern: list[Concern] = typer.Option(
        [], "--concern", help="Only products claiming to be good for it (repeatable)."
    ),
    like: str | None = typer.Option(
        None, "--like", help="A product id or external id to find similar products to."
    ),
    avoid: list[str] = typer.Option([], "--avoid", help="An ingredient to avoid (repeatable)."),
    types: list[ProductKind] = typer.Option(
        [], "--type", help="Product type, by category (repeatable)."
    ),
    max_price: float | None = typer.Option(
        None, "--max-price", help="Highest price, in the product's own currency."
    ),
    currency: str | None = typer.Option(
        None, "--currency", help="Only products priced in this currency (USD, GBP)."
    ),
    limit: int = typer.Option(10, "--limit"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Products that fit the ask, ranked by what reviewers of your skin type said (and by
    ingredient similarity with --like); sizes of one product are one recommendation.

    Example: skinctl products recommend --skin-type oily --type moisturizer --limit 5
    """
    from skinctl.console import info, print_json, stdout, table
    from skinctl.products.recommend import recommend as run

    result = run(
        state(ctx).engine(),
        like=like,
        skin_type=skin_type,
        avoid=avoid,
        types=[t.value for t in types],
        concerns=[c.value for c in concern],
        max_price=max_price,
        currency=currency,
        limit=limit,
    )
    if as_json:
        print_json(result)
        return
    info(f"method: {result.method}")
    if result.like:
        info(f"like: {result.like.name} (id {result.like.id})")
    if result.excluded_for_skin_type:
        info(
            f"left out {result.excluded_for_skin_type} products whose claims name other skin types than "
            f"{skin_type}"
        )
    stdout.print(
        table(
            None,
            ["#", "id", "name", "brand", "price", "score", "why"],
            [
                (
                    r.rank,
                    r.product.id,
                    r.product.name,
                    r.product.brand or "",
                    _price(r.product),
                    f"{r.score:.3f}",
                    r.why,
                )
                for r in result.results
            ],
        )
    )


@app.command("stats")
def stats(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Product, review and CosIng counts, and the ingredient match rate."""
    render_product_stats(ctx, as_json)


def render_product_stats(ctx: typer.Context, as_json: bool) -> None:
    """Shared by `skinctl products stats` and `skinctl stats --products`."""
    from dataclasses import asdict

    from skinctl.console import print_json, stdout, table
    from skinctl.products.analysis import product_stats

    result = product_stats(state(ctx).engine())
    if as_json:
        print_json(result)
        return
    document = asdict(result)
    rows = [(k, v) for k, v in document.items() if not isinstance(v, dict)]
    rows += [(f"products.{k}", v) for k, v in result.products.items()]
    rows += [(f"links.{k}", v) for k, v in result.links_by_method.items()]
    stdout.print(table("products", ["figure", "value"], rows))
