"""`skinctl products`: list, show, recommend, stats."""

from __future__ import annotations

import typer

from skinctl.commands.common import state

app = typer.Typer(help="Products, their ingredients and recommendations.", no_args_is_help=True)
JSON_OPTION = typer.Option(False, "--json", help="Print JSON on stdout.")


@app.command("list")
def list_products(
    ctx: typer.Context,
    search: str | None = typer.Option(None, "--search", help="Part of the name or brand."),
    source: str | None = typer.Option(None, "--source", help="sephora | skincare-clean"),
    types: list[str] = typer.Option([], "--type", help="Product type or category (repeatable)."),
    limit: int = typer.Option(50, "--limit"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Products, filtered."""
    from skinctl.console import print_json, stdout, table
    from skinctl.products.recommend import list_products as run

    rows = run(state(ctx).engine(), search=search, source=source, types=types, limit=limit)
    if as_json:
        print_json(rows)
        return
    stdout.print(table(None, ["id", "source", "name", "brand", "type", "price", "rating"], [
        (p["id"], p["source"], p["name"], p["brand"], p["product_type"],
         f"{p['price']} {p['currency']}" if p["price"] is not None else "", p["rating"]) for p in rows]))


@app.command("show")
def show(ctx: typer.Context, product: str = typer.Argument(..., help="Product id or external id."),
         as_json: bool = JSON_OPTION) -> None:
    """A product with its ingredient list and matches."""
    from skinctl.console import print_json, stdout, table
    from skinctl.products.analysis import check_ingredients

    result = check_ingredients(state(ctx).engine(), product_ref=product)
    if as_json:
        print_json(result)
        return
    p = result["product"]
    stdout.print(table(p["name"], ["field", "value"], [(k, v) for k, v in p.items() if v is not None]))
    stdout.print(table("ingredients", ["#", "as written", "CosIng", "match", "status"], [
        (i["position"], i["name"], i["match"]["inci_name"] or "-", i["match"]["method"], i["status"])
        for i in result["ingredients"]]))


@app.command("recommend")
def recommend(
    ctx: typer.Context,
    skin_type: str | None = typer.Option(None, "--skin-type", help="oily|dry|normal|combination|sensitive"),
    like: str | None = typer.Option(None, "--like", help="A product id or external id to find similar products to."),
    avoid: list[str] = typer.Option([], "--avoid", help="An ingredient to avoid (repeatable)."),
    types: list[str] = typer.Option([], "--type", help="Product type, e.g. moisturiser (repeatable)."),
    max_price: float | None = typer.Option(None, "--max-price", help="Highest price, in the product's own currency."),
    currency: str | None = typer.Option(None, "--currency", help="Only products priced in this currency (USD, GBP)."),
    limit: int = typer.Option(10, "--limit"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Products similar in ingredients (TF-IDF cosine), filtered, ranked with same-skin-type reviews."""
    from skinctl.console import info, print_json, stdout, table
    from skinctl.products.recommend import recommend as run

    result = run(state(ctx).engine(), like=like, skin_type=skin_type, avoid=avoid, types=types,
                 max_price=max_price, currency=currency, limit=limit)
    if as_json:
        print_json(result)
        return
    info(f"method: {result['method']}")
    if result["like"]:
        info(f"like: {result['like']['name']} (id {result['like']['id']})")
    stdout.print(table(None, ["#", "id", "name", "brand", "price", "score", "why"], [
        (r["rank"], r["product"]["id"], r["product"]["name"], r["product"]["brand"] or "",
         f"{r['product']['price']} {r['product']['currency']}" if r["product"]["price"] is not None else "",
         f"{r['score']:.3f}", r["why"]) for r in result["results"]]))


@app.command("stats")
def stats(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Product, review and CosIng counts, and the ingredient match rate."""
    render_product_stats(ctx, as_json)


def render_product_stats(ctx: typer.Context, as_json: bool) -> None:
    """Shared by `skinctl products stats` and `skinctl stats --products`."""
    from skinctl.console import print_json, stdout, table
    from skinctl.products.analysis import product_stats

    result = product_stats(state(ctx).engine())
    if as_json:
        print_json(result)
        return
    rows = [(k, v) for k, v in result.items() if not isinstance(v, dict)]
    rows += [(f"products.{k}", v) for k, v in result["products"].items()]
    rows += [(f"links.{k}", v) for k, v in result["links_by_method"].items()]
    stdout.print(table("products", ["figure", "value"], rows))
