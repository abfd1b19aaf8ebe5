"""`skinctl ingredients`: check lists and products against CosIng, show, map, unmatched."""

from __future__ import annotations

import typer

from skinctl.commands.common import state
from skinctl.errors import EXIT_REJECTED
from skinctl.products.annexes import USE_NAMES, ProductUse

app = typer.Typer(help="Ingredient analysis against the EU CosIng database.", no_args_is_help=True)
JSON_OPTION = typer.Option(False, "--json", help="Print JSON on stdout.")


def _short(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command("check")
def check(
    ctx: typer.Context,
    text: str | None = typer.Argument(None, help='An ingredient list: "Aqua, Glycerin, ...".'),
    product: str | None = typer.Option(None, "--product", help="A product id or external id."),
    product_type: ProductUse | None = typer.Option(
        None,
        "--product-type",
        help="What the annex conditions are read for (default: leave-on skin care; a --product's own category).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Each ingredient with its CosIng match, functions and annex findings for the product type:
    Annex II prohibited, Annex III restricted, Annexes IV/V/VI (colorants, preservatives, UV
    filters allowed) with their limits. Exit 3 when an Annex II substance is present and no
    exception covers the product type (entries limited to some uses, e.g. hair dyes, are
    reported as conditionally_prohibited).

    Example: skinctl ingredients check "Aqua, Glycerin, Hydroquinone, Parfum"
    """
    from skinctl.console import info, print_json, stdout, table
    from skinctl.products.check import check_ingredients

    result = check_ingredients(
        state(ctx).engine(), text=text, product_ref=product, product_type=product_type
    )
    if as_json:
        print_json(result)
    else:
        if result.product:
            p = result.product
            stdout.print(f"[bold]{p.name}[/] ({p.brand or p.source}, id {p.id})", highlight=False)
        stdout.print(f"read for: {USE_NAMES[result.product_type]}", highlight=False)
        rows = []
        for item in result.ingredients:
            m = item.match
            annex = "; ".join(
                f"{a.annex}/{a.reference} {a.status}"
                + (f": {_short(a.substance, 50)}" if a.annex == "II" else "")
                + "".join(
                    f" [{c.part + ') ' if c.part else ''}{_short(c.product_type, 30) or 'any'}: "
                    f"max {_short(c.max_concentration, 20) or '-'}]"
                    for c in a.conditions_for_type
                    if c.applies is not False
                )
                for a in item.annex
            )
            rows.append(
                (
                    item.position,
                    _short(item.name, 40),
                    m.inci_name or "-",
                    m.method + (f" {m.score:.2f}" if m.method == "fuzzy" else ""),
                    _short(", ".join(item.functions), 40),
                    item.status,
                    annex,
                )
            )
        stdout.print(
            table(
                None, ["#", "as written", "CosIng", "match", "functions", "status", "annex"], rows
            )
        )
        s = result.summary
        stdout.print(
            f"{s.matched}/{s.count} matched; prohibited: {', '.join(s.prohibited) or 'none'}; "
            f"conditionally prohibited: {', '.join(s.conditionally_prohibited) or 'none'}; "
            f"restricted: {', '.join(s.restricted) or 'none'}; "
            f"on a positive list: {', '.join(s.allowed) or 'none'}",
            highlight=False,
        )
        for item in result.ingredients:
            for note in item.notes:
                stdout.print(f"  {item.name}: {note}", highlight=False)
    if result.summary.prohibited:
        for reason in result.summary.reasons:
            info(f"prohibited in {USE_NAMES[result.product_type]}: {reason}.")
        raise typer.Exit(EXIT_REJECTED)


@app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="An ingredient name."),
    limit: int = typer.Option(20, "--limit", help="Products to list."),
    product_type: ProductUse = typer.Option(
        ProductUse.LEAVE_ON, "--product-type", help="What the annex conditions are read for."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """The CosIng entry a name matches, every annex entry (II-VI) linked to it, and the products
    containing it.

    Example: skinctl ingredients show "Salicylic Acid"
    """
    from skinctl.console import print_json, stdout, table
    from skinctl.products.analysis import show_ingredient

    result = show_ingredient(
        state(ctx).engine(), name, product_limit=limit, product_type=product_type
    )
    if as_json:
        print_json(result)
        return
    i = result.ingredient
    stdout.print(
        table(
            f"{i.inci_name} (matched {result.match.method})",
            ["field", "value"],
            [
                ("CosIng ref", i.cosing_ref_no),
                ("CAS", i.cas_no),
                ("EC", i.ec_no),
                ("functions", ", ".join(i.functions)),
                ("restriction", i.restriction),
                ("status", result.status),
                ("products", result.product_count),
                ("description", _short(i.description, 100)),
            ],
        )
    )
    for a in result.annex:
        stdout.print(
            table(
                f"Annex {a.annex} / {a.reference}: {a.status}",
                ["field", "value"],
                [
                    ("substance", a.substance),
                    ("product type", a.product_type),
                    ("max concentration", a.max_concentration),
                    ("other", a.other_limitations),
                    ("conditions", a.conditions),
                    ("colour", a.colour),
                    ("linked by", a.linked_by),
                    (
                        f"for {USE_NAMES[result.product_type]}",
                        a.note
                        or "; ".join(
                            f"{c.part + ') ' if c.part else ''}max {c.max_concentration or '-'}"
                            for c in a.conditions_for_type
                            if c.applies
                        )
                        or None,
                    ),
                ],
            )
        )
    if result.products:
        stdout.print(
            table(
                "products",
                ["id", "name", "brand", "source", "position"],
                [(p.id, p.name, p.brand, p.source, p.position) for p in result.products],
            )
        )


@app.command("map")
def map_name(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The name as written on products."),
    inci: str = typer.Argument(..., help="The CosIng INCI name it means."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Map a name as written to a CosIng INCI name; applies to every product written that way."""
    from skinctl.console import info, print_json
    from skinctl.products.analysis import map_ingredient

    app_state = state(ctx)
    result = map_ingredient(app_state.engine(), name, inci, user=app_state.settings.user)
    if as_json:
        print_json(result)
    else:
        info(
            f"mapped {result.name!r} -> {result.inci_name}; "
            f"{result.product_ingredients_updated} product ingredient(s) updated"
        )


@app.command("unmatched")
def unmatched(
    ctx: typer.Context,
    limit: int = typer.Option(50, "--limit", help="Names to list."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Names on products that match no CosIng entry, most frequent first."""
    from skinctl.console import print_json, stdout, table
    from skinctl.products.analysis import unmatched_names

    result = unmatched_names(state(ctx).engine(), limit=limit)
    if as_json:
        print_json(result)
        return
    stdout.print(
        table(
            f"unmatched names ({result.total_distinct} distinct)",
            ["name", "products"],
            [(_short(n.name, 70), n.products) for n in result.names],
        )
    )
