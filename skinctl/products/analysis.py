"""Ingredient analysis: check a list or a product against CosIng (functions, Annex II
prohibitions, Annex III restrictions), show an ingredient, map names, list unmatched names,
and the match-rate figures."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from skinctl.db.models import (
    AnnexEntry,
    AnnexEntryIngredient,
    Ingredient,
    IngredientSynonym,
    Product,
    ProductIngredient,
    Review,
)
from skinctl.errors import NotFound, UsageError
from skinctl.products.matching import IngredientIndex, Match
from skinctl.products.names import name_key, split_ingredient_text


def find_product(connection: Connection, ref: str) -> Product:
    """A product by database id, or by external id (Sephora's P473671, a LookFantastic URL#name)."""
    session = Session(bind=connection)
    product = None
    if ref.isdigit():
        product = session.get(Product, int(ref))
    if product is None:
        product = session.scalars(select(Product).where(Product.external_id == ref).limit(1)).first()
    if product is None:
        product = session.scalars(
            select(Product).where(func.lower(Product.name) == ref.strip().lower()).order_by(Product.id).limit(1)
        ).first()
    if product is None:
        raise NotFound(f"No product {ref!r}.", hint="Use `skinctl products list` to find ids.")
    return product


def product_summary(product: Product) -> dict[str, Any]:
    return {
        "id": product.id, "source": product.source, "external_id": product.external_id,
        "name": product.name, "brand": product.brand, "product_type": product.product_type,
        "category_path": product.category_path, "price": product.price, "currency": product.currency,
        "size": product.size, "rating": product.rating, "review_count": product.review_count,
        "url": product.url,
    }


def annex_entries_for(connection: Connection, ingredient_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    rows = Session(bind=connection).execute(
        select(AnnexEntryIngredient.ingredient_id, AnnexEntryIngredient.link_method, AnnexEntry)
        .join(AnnexEntry, AnnexEntry.id == AnnexEntryIngredient.annex_entry_id)
        .where(AnnexEntryIngredient.ingredient_id.in_(ingredient_ids))
        .order_by(AnnexEntry.annex, AnnexEntry.reference_number, AnnexEntry.entry_no)
    ).all()
    result: dict[int, list[dict[str, Any]]] = {}
    for ingredient_id, link_method, entry in rows:
        result.setdefault(ingredient_id, []).append({
            "annex": entry.annex,
            "reference": entry.reference_number if entry.entry_no == 1 else f"{entry.reference_number} ({entry.entry_no})",
            "status": _entry_status(entry),
            "substance": entry.chemical_name,
            "product_type": entry.product_type,
            "max_concentration": entry.max_concentration,
            "other_limitations": entry.other_limitations,
            "conditions": entry.conditions,
            "regulation": entry.regulation,
            "linked_by": link_method,
        })
    return result


def _entry_status(entry: AnnexEntry) -> str:
    if entry.annex == "III":
        return "restricted"
    return "conditionally_prohibited" if entry.conditional else "prohibited"


STATUS_ORDER = ("prohibited", "conditionally_prohibited", "restricted")


def annex_status(annexes: list[dict[str, Any]]) -> str:
    """The strictest status of an ingredient's annex entries: prohibited (Annex II, no
    exception in its text), conditionally_prohibited (Annex II limited to some uses, such as
    hair dyes, or with an exception), restricted (Annex III), or ok."""
    statuses = {a["status"] for a in annexes}
    return next((s for s in STATUS_ORDER if s in statuses), "ok")


def _status(match: Match, annexes: list[dict[str, Any]]) -> str:
    if match.ingredient_id is None:
        return "unmatched"
    return annex_status(annexes)


def check_ingredients(engine: Engine, text: str | None = None, product_ref: str | None = None) -> dict[str, Any]:
    """Each ingredient with its match, functions and annex status. `prohibited` lists the
    ingredients Annex II prohibits (the command exits 3 when it is not empty)."""
    if (text is None) == (product_ref is None):
        raise UsageError("Give either an ingredient list or --product, not both or neither.")
    with engine.connect() as connection:
        product = None
        if product_ref is not None:
            product = find_product(connection, product_ref)
            links = Session(bind=connection).scalars(
                select(ProductIngredient).where(ProductIngredient.product_id == product.id)
                .order_by(ProductIngredient.position)
            ).all()
            inci = dict(connection.execute(
                select(Ingredient.id, Ingredient.inci_name)
                .where(Ingredient.id.in_([link.ingredient_id for link in links if link.ingredient_id]))
            ).all())
            items = [
                (link.position, link.name_as_written,
                 Match(link.ingredient_id, inci.get(link.ingredient_id) if link.ingredient_id else None,
                       link.match_method, link.match_score))
                for link in links
            ]
        else:
            names = split_ingredient_text(text or "")
            if not names:
                raise UsageError("The ingredient list is empty.", hint='Pass a list such as "Aqua, Glycerin, Tocopherol".')
            index = IngredientIndex.load(connection)
            if not len(index):
                raise NotFound("The CosIng inventory is not loaded.", hint="Run `skinctl ingest cosing --inventory FILE`.")
            items = [(position, name, index.match(name)) for position, name in enumerate(names, start=1)]
        ids = [m.ingredient_id for _, _, m in items if m.ingredient_id]
        functions = dict(connection.execute(
            select(Ingredient.id, Ingredient.functions).where(Ingredient.id.in_(ids))
        ).all())
        annexes = annex_entries_for(connection, ids)
    rows = []
    for position, name, match in items:
        entry_annexes = annexes.get(match.ingredient_id, []) if match.ingredient_id else []
        rows.append({
            "position": position, "name": name, "match": match.as_dict(),
            "functions": functions.get(match.ingredient_id, []) if match.ingredient_id else [],
            "annex": entry_annexes, "status": _status(match, entry_annexes),
        })
    return {
        "product": product_summary(product) if product else None,
        "ingredients": rows,
        "summary": {
            "count": len(rows),
            "matched": sum(r["match"]["ingredient_id"] is not None for r in rows),
            "prohibited": [r["name"] for r in rows if r["status"] == "prohibited"],
            "conditionally_prohibited": [r["name"] for r in rows if r["status"] == "conditionally_prohibited"],
            "restricted": [r["name"] for r in rows if r["status"] == "restricted"],
            "unmatched": [r["name"] for r in rows if r["status"] == "unmatched"],
        },
    }


def show_ingredient(engine: Engine, name: str, product_limit: int = 20) -> dict[str, Any]:
    """The inventory entry a name matches, its annex status and the products containing it."""
    with engine.connect() as connection:
        index = IngredientIndex.load(connection)
        match = index.match(name)
        if match.ingredient_id is None:
            hint = ", ".join(index.suggestions(name)) if len(index) else None
            raise NotFound(
                f"No CosIng ingredient matches {name!r}.",
                hint=f"Closest names: {hint}." if hint else "Load CosIng with `skinctl ingest cosing`.",
            )
        ingredient = Session(bind=connection).get_one(Ingredient, match.ingredient_id)
        count = connection.execute(
            select(func.count(func.distinct(ProductIngredient.product_id)))
            .where(ProductIngredient.ingredient_id == ingredient.id)
        ).scalar_one()
        products = connection.execute(
            select(Product.id, Product.name, Product.brand, Product.source, ProductIngredient.position)
            .join(ProductIngredient, ProductIngredient.product_id == Product.id)
            .where(ProductIngredient.ingredient_id == ingredient.id)
            .order_by(ProductIngredient.position, Product.id).limit(product_limit)
        ).all()
        written = connection.execute(
            select(ProductIngredient.name_as_written, func.count())
            .where(ProductIngredient.ingredient_id == ingredient.id)
            .group_by(ProductIngredient.name_as_written).order_by(func.count().desc()).limit(10)
        ).all()
        annexes = annex_entries_for(connection, [ingredient.id]).get(ingredient.id, [])
    return {
        "query": name,
        "match": match.as_dict(),
        "ingredient": {
            "id": ingredient.id, "inci_name": ingredient.inci_name, "cosing_ref_no": ingredient.cosing_ref_no,
            "inn_name": ingredient.inn_name, "cas_no": ingredient.cas_no, "ec_no": ingredient.ec_no,
            "functions": ingredient.functions, "restriction": ingredient.restriction,
            "description": ingredient.description, "update_date": ingredient.update_date,
        },
        "status": annex_status(annexes),
        "annex": annexes,
        "product_count": count,
        "products": [
            {"id": p.id, "name": p.name, "brand": p.brand, "source": p.source, "position": p.position}
            for p in products
        ],
        "written_as": [{"name": n, "count": c} for n, c in written],
    }


def map_ingredient(engine: Engine, name: str, inci: str, user: str | None = None) -> dict[str, Any]:
    """Record that NAME (as written on products) means the inventory entry INCI, and apply it to
    every product ingredient written that way."""
    key = name_key(name)
    if not key:
        raise UsageError("The name to map is empty.")
    with engine.begin() as connection:
        ingredient = connection.execute(
            select(Ingredient.id, Ingredient.inci_name).where(Ingredient.name_key == name_key(inci))
        ).first()
        if ingredient is None:
            index = IngredientIndex.load(connection)
            close = ", ".join(index.suggestions(inci)) if len(index) else ""
            raise NotFound(
                f"{inci!r} is not an INCI name in the CosIng inventory.",
                hint=f"Closest names: {close}." if close else "Load CosIng with `skinctl ingest cosing`.",
            )
        previous = connection.execute(
            select(IngredientSynonym.ingredient_id).where(IngredientSynonym.name_key == key)
        ).scalar_one_or_none()
        statement = pg_insert(IngredientSynonym).values(
            name_key=key, name=name.strip(), ingredient_id=ingredient.id, source="user", created_by=user
        )
        connection.execute(statement.on_conflict_do_update(
            index_elements=["name_key"],
            set_={"ingredient_id": ingredient.id, "name": name.strip(), "created_by": user},
        ))
        updated = connection.execute(
            update(ProductIngredient)
            .where(ProductIngredient.name_key == key)
            .where((ProductIngredient.ingredient_id.is_distinct_from(ingredient.id))
                   | (ProductIngredient.match_method != "mapped"))
            .values(ingredient_id=ingredient.id, match_method="mapped", match_score=1.0)
        ).rowcount
    return {"name": name.strip(), "name_key": key, "inci_name": ingredient.inci_name,
            "ingredient_id": ingredient.id, "previous_ingredient_id": previous,
            "product_ingredients_updated": updated or 0}


def unmatched_names(engine: Engine, limit: int = 50) -> dict[str, Any]:
    """Names on products that match nothing, most frequent first: the list to map by hand."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(ProductIngredient.name_key, func.min(ProductIngredient.name_as_written),
                   func.count(func.distinct(ProductIngredient.product_id)).label("products"))
            .where(ProductIngredient.ingredient_id.is_(None))
            .group_by(ProductIngredient.name_key)
            .order_by(func.count(func.distinct(ProductIngredient.product_id)).desc(), ProductIngredient.name_key)
            .limit(limit)
        ).all()
        total = connection.execute(
            select(func.count(func.distinct(ProductIngredient.name_key)))
            .where(ProductIngredient.ingredient_id.is_(None))
        ).scalar_one()
    return {"total_distinct": total,
            "names": [{"name": written, "name_key": key, "products": count} for key, written, count in rows]}


def product_stats(engine: Engine) -> dict[str, Any]:
    """Products, reviews, the inventory, and the ingredient match rate (over every ingredient
    entry on every product, and over distinct names)."""
    with engine.connect() as connection:
        by_source = connection.execute(
            select(Product.source, func.count()).group_by(Product.source).order_by(Product.source)
        ).all()
        with_lists = connection.execute(
            select(func.count(func.distinct(ProductIngredient.product_id)))
        ).scalar_one()
        methods = dict(connection.execute(
            select(ProductIngredient.match_method, func.count()).group_by(ProductIngredient.match_method)
        ).all())
        distinct_total, distinct_matched = connection.execute(
            select(func.count(func.distinct(ProductIngredient.name_key)),
                   func.count(func.distinct(ProductIngredient.name_key))
                   .filter(ProductIngredient.ingredient_id.is_not(None)))
        ).one()
        fully = connection.execute(
            select(func.count()).select_from(
                select(ProductIngredient.product_id).group_by(ProductIngredient.product_id)
                .having(func.bool_and(ProductIngredient.ingredient_id.is_not(None))).subquery()
            )
        ).scalar_one()
        def products_with(*conditions) -> int:  # noqa: ANN002
            return connection.execute(
                select(func.count(func.distinct(ProductIngredient.product_id)))
                .join(AnnexEntryIngredient, AnnexEntryIngredient.ingredient_id == ProductIngredient.ingredient_id)
                .join(AnnexEntry, AnnexEntry.id == AnnexEntryIngredient.annex_entry_id)
                .where(*conditions)
            ).scalar_one()

        prohibited_products = products_with(AnnexEntry.annex == "II", AnnexEntry.conditional.is_(False))
        conditional_products = products_with(AnnexEntry.annex == "II", AnnexEntry.conditional.is_(True))
        restricted_products = products_with(AnnexEntry.annex == "III")
        reviews = connection.execute(select(func.count()).select_from(Review)).scalar_one()
        ingredients = connection.execute(select(func.count()).select_from(Ingredient)).scalar_one()
        annex = dict(connection.execute(
            select(AnnexEntry.annex, func.count()).group_by(AnnexEntry.annex)
        ).all())
        mappings = connection.execute(select(func.count()).select_from(IngredientSynonym)).scalar_one()
    links = sum(methods.values())
    matched = links - methods.get("none", 0)
    return {
        "products": {source: count for source, count in by_source},
        "products_total": sum(count for _, count in by_source),
        "products_with_ingredients": with_lists,
        "products_fully_matched": fully,
        "products_with_prohibited_ingredient": prohibited_products,
        "products_with_conditionally_prohibited_ingredient": conditional_products,
        "products_with_restricted_ingredient": restricted_products,
        "ingredient_links": links,
        "ingredient_links_matched": matched,
        "match_rate": round(matched / links, 4) if links else None,
        "links_by_method": {m: methods.get(m, 0) for m in ("exact", "synonym", "mapped", "fuzzy", "none")},
        "distinct_names": distinct_total,
        "distinct_names_matched": distinct_matched,
        "distinct_match_rate": round(distinct_matched / distinct_total, 4) if distinct_total else None,
        "reviews": reviews,
        "cosing_ingredients": ingredients,
        "annex_ii_entries": annex.get("II", 0),
        "annex_iii_entries": annex.get("III", 0),
        "user_mappings": mappings,
    }
