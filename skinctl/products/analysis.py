"""Ingredient look-ups: show an ingredient (with every annex entry for a product type), map
names, list unmatched names, and the match-rate figures. The CosIng check is
`skinctl.products.check`; finding a product is `skinctl.products.lookup`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, Engine, func, select, update
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
    ReviewSentiment,
)
from skinctl.errors import NotFound, UsageError
from skinctl.products.annexes import (
    ProductUse,
)
from skinctl.products.check import AnnexFinding, AnnexStatus, annex_entries_for, annex_status
from skinctl.products.matching import IngredientIndex, Match
from skinctl.products.names import name_key


@dataclass(frozen=True)
class IngredientInfo:
    id: int
    inci_name: str
    cosing_ref_no: str | None
    inn_name: str | None
    cas_no: str | None
    ec_no: str | None
    functions: list[str]
    restriction: str | None
    description: str | None
    update_date: date | None


@dataclass(frozen=True)
class ProductUsing:
    id: int
    name: str
    brand: str | None
    source: str
    position: int


@dataclass(frozen=True)
class WrittenAs:
    name: str
    count: int


@dataclass(frozen=True)
class IngredientDetail:
    query: str
    match: Match
    ingredient: IngredientInfo
    status: AnnexStatus
    annex: list[AnnexFinding]
    product_count: int
    products: list[ProductUsing]
    written_as: list[WrittenAs]
    product_type: ProductUse = ProductUse.LEAVE_ON


def show_ingredient(
    engine: Engine,
    name: str,
    product_limit: int = 20,
    product_type: ProductUse = ProductUse.LEAVE_ON,
) -> IngredientDetail:
    """The inventory entry a name matches, every annex entry linked to it (read for the product
    type), and the products containing it."""
    with engine.connect() as connection:
        index = IngredientIndex.load(connection)
        match = index.match(name)
        if match.ingredient_id is None:
            hint = ", ".join(index.suggestions(name)) if len(index) else None
            raise NotFound(
                f"No CosIng ingredient matches {name!r}.",
                hint=f"Closest names: {hint}."
                if hint
                else "Load CosIng with `skinctl ingest cosing`.",
            )
        ingredient = Session(bind=connection).get_one(Ingredient, match.ingredient_id)
        count = connection.execute(
            select(func.count(func.distinct(ProductIngredient.product_id))).where(
                ProductIngredient.ingredient_id == ingredient.id
            )
        ).scalar_one()
        products = connection.execute(
            select(
                Product.id, Product.name, Product.brand, Product.source, ProductIngredient.position
            )
            .join(ProductIngredient, ProductIngredient.product_id == Product.id)
            .where(ProductIngredient.ingredient_id == ingredient.id)
            .order_by(ProductIngredient.position, Product.id)
            .limit(product_limit)
        ).all()
        written = connection.execute(
            select(ProductIngredient.name_as_written, func.count())
            .where(ProductIngredient.ingredient_id == ingredient.id)
            .group_by(ProductIngredient.name_as_written)
            .order_by(func.count().desc())
            .limit(10)
        ).all()
        annexes = annex_entries_for(connection, [ingredient.id], product_type).get(
            ingredient.id, []
        )
    return IngredientDetail(
        query=name,
        match=match,
        ingredient=IngredientInfo(
            id=ingredient.id,
            inci_name=ingredient.inci_name,
            cosing_ref_no=ingredient.cosing_ref_no,
            inn_name=ingredient.inn_name,
            cas_no=ingredient.cas_no,
            ec_no=ingredient.ec_no,
            functions=ingredient.functions,
            restriction=ingredient.restriction,
            description=ingredient.description,
            update_date=ingredient.update_date,
        ),
        status=annex_status(annexes),
        annex=annexes,
        product_count=count,
        products=[ProductUsing(p.id, p.name, p.brand, p.source, p.position) for p in products],
        written_as=[WrittenAs(n, c) for n, c in written],
        product_type=product_type,
    )


@dataclass(frozen=True)
class Mapping:
    name: str
    name_key: str
    inci_name: str
    ingredient_id: int
    previous_ingredient_id: int | None
    product_ingredients_updated: int


def map_ingredient(engine: Engine, name: str, inci: str, user: str | None = None) -> Mapping:
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
                hint=f"Closest names: {close}."
                if close
                else "Load CosIng with `skinctl ingest cosing`.",
            )
        previous = connection.execute(
            select(IngredientSynonym.ingredient_id).where(IngredientSynonym.name_key == key)
        ).scalar_one_or_none()
        statement = pg_insert(IngredientSynonym).values(
            name_key=key,
            name=name.strip(),
            ingredient_id=ingredient.id,
            source="user",
            created_by=user,
        )
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=["name_key"],
                set_={"ingredient_id": ingredient.id, "name": name.strip(), "created_by": user},
            )
        )
        updated = connection.execute(
            update(ProductIngredient)
            .where(ProductIngredient.name_key == key)
            .where(
                (ProductIngredient.ingredient_id.is_distinct_from(ingredient.id))
                | (ProductIngredient.match_method != "mapped")
            )
            .values(ingredient_id=ingredient.id, match_method="mapped", match_score=1.0)
        ).rowcount
    return Mapping(
        name=name.strip(),
        name_key=key,
        inci_name=ingredient.inci_name,
        ingredient_id=ingredient.id,
        previous_ingredient_id=previous,
        product_ingredients_updated=updated or 0,
    )


@dataclass(frozen=True)
class UnmatchedName:
    name: str
    name_key: str
    products: int


@dataclass(frozen=True)
class UnmatchedNames:
    total_distinct: int
    names: list[UnmatchedName]


def unmatched_names(engine: Engine, limit: int = 50) -> UnmatchedNames:
    """Names on products that match nothing, most frequent first: the list to map by hand."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                ProductIngredient.name_key,
                func.min(ProductIngredient.name_as_written),
                func.count(func.distinct(ProductIngredient.product_id)).label("products"),
            )
            .where(ProductIngredient.ingredient_id.is_(None))
            .group_by(ProductIngredient.name_key)
            .order_by(
                func.count(func.distinct(ProductIngredient.product_id)).desc(),
                ProductIngredient.name_key,
            )
            .limit(limit)
        ).all()
        total = connection.execute(
            select(func.count(func.distinct(ProductIngredient.name_key))).where(
                ProductIngredient.ingredient_id.is_(None)
            )
        ).scalar_one()
    return UnmatchedNames(
        total_distinct=total,
        names=[UnmatchedName(written, key, count) for key, written, count in rows],
    )


@dataclass(frozen=True)
class ProductStats:
    products: dict[str, int]
    products_total: int
    products_with_ingredients: int
    products_fully_matched: int
    products_with_prohibited_ingredient: int
    products_with_conditionally_prohibited_ingredient: int
    products_with_restricted_ingredient: int
    ingredient_links: int
    ingredient_links_matched: int
    match_rate: float | None
    links_by_method: dict[str, int]
    distinct_names: int
    distinct_names_matched: int
    distinct_match_rate: float | None
    reviews: int
    cosing_ingredients: int
    annex_ii_entries: int
    annex_iii_entries: int
    user_mappings: int
    annex_iv_entries: int = 0
    annex_v_entries: int = 0
    annex_vi_entries: int = 0
    reviews_scored: int = 0


def product_stats(engine: Engine) -> ProductStats:
    """Products, reviews, the inventory, and the ingredient match rate (over every ingredient
    entry on every product, and over distinct names)."""
    with engine.connect() as connection:
        by_source = connection.execute(
            select(Product.source, func.count()).group_by(Product.source).order_by(Product.source)
        ).all()
        with_lists = connection.execute(
            select(func.count(func.distinct(ProductIngredient.product_id)))
        ).scalar_one()
        methods = dict(
            connection.execute(
                select(ProductIngredient.match_method, func.count()).group_by(
                    ProductIngredient.match_method
                )
            ).all()
        )
        distinct_total, distinct_matched = connection.execute(
            select(
                func.count(func.distinct(ProductIngredient.name_key)),
                func.count(func.distinct(ProductIngredient.name_key)).filter(
                    ProductIngredient.ingredient_id.is_not(None)
                ),
            )
        ).one()
        fully = connection.execute(
            select(func.count()).select_from(
                select(ProductIngredient.product_id)
                .group_by(ProductIngredient.product_id)
                .having(func.bool_and(ProductIngredient.ingredient_id.is_not(None)))
                .subquery()
            )
        ).scalar_one()

        def products_with(*conditions: ColumnElement[bool]) -> int:
            return connection.execute(
                select(func.count(func.distinct(ProductIngredient.product_id)))
                .join(
                    AnnexEntryIngredient,
                    AnnexEntryIngredient.ingredient_id == ProductIngredient.ingredient_id,
                )
                .join(AnnexEntry, AnnexEntry.id == AnnexEntryIngredient.annex_entry_id)
                .where(*conditions)
            ).scalar_one()

        prohibited_products = products_with(
            AnnexEntry.annex == "II", AnnexEntry.conditional.is_(False)
        )
        conditional_products = products_with(
            AnnexEntry.annex == "II", AnnexEntry.conditional.is_(True)
        )
        restricted_products = products_with(AnnexEntry.annex == "III")
        reviews = connection.execute(select(func.count()).select_from(Review)).scalar_one()
        scored = connection.execute(
            select(func.count(func.distinct(ReviewSentiment.review_id)))
        ).scalar_one()
        ingredients = connection.execute(select(func.count()).select_from(Ingredient)).scalar_one()
        annex = dict(
            connection.execute(
                select(AnnexEntry.annex, func.count()).group_by(AnnexEntry.annex)
            ).all()
        )
        mappings = connection.execute(
            select(func.count()).select_from(IngredientSynonym)
        ).scalar_one()
    links = sum(methods.values())
    matched = links - methods.get("none", 0)
    return ProductStats(
        products={source: count for source, count in by_source},
        products_total=sum(count for _, count in by_source),
        products_with_ingredients=with_lists,
        products_fully_matched=fully,
        products_with_prohibited_ingredient=prohibited_products,
        products_with_conditionally_prohibited_ingredient=conditional_products,
        products_with_restricted_ingredient=restricted_products,
        ingredient_links=links,
        ingredient_links_matched=matched,
        match_rate=round(matched / links, 4) if links else None,
        links_by_method={
            m: methods.get(m, 0) for m in ("exact", "synonym", "mapped", "fuzzy", "none")
        },
        distinct_names=distinct_total,
        distinct_names_matched=distinct_matched,
        distinct_match_rate=round(distinct_matched / distinct_total, 4) if distinct_total else None,
        reviews=reviews,
        cosing_ingredients=ingredients,
        annex_ii_entries=annex.get("II", 0),
        annex_iii_entries=annex.get("III", 0),
        user_mappings=mappings,
        annex_iv_entries=annex.get("IV", 0),
        annex_v_entries=annex.get("V", 0),
        annex_vi_entries=annex.get("VI", 0),
        reviews_scored=scored,
    )
