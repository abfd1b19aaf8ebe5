"""Ingredient analysis: check a list or a product against CosIng (functions, Annex II
prohibitions, Annex III restrictions), show an ingredient, map names, list unmatched names,
and the match-rate figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import ColumnElement, Connection, Engine, func, select, tuple_, update
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
    ANNEX_II_EXCEPTION,
    USE_NAMES,
    Condition,
    ProductUse,
    conditions_for,
    use_of_category,
)
from skinctl.products.matching import IngredientIndex, Match
from skinctl.products.names import name_key, split_ingredient_text


def find_product(connection: Connection, ref: str) -> Product:
    """A product by database id, or by external id (Sephora's P473671, a LookFantastic URL#name)."""
    session = Session(bind=connection)
    product = None
    if ref.isdigit():
        product = session.get(Product, int(ref))
    if product is None:
        product = session.scalars(
            select(Product).where(Product.external_id == ref).limit(1)
        ).first()
    if product is None:
        product = session.scalars(
            select(Product)
            .where(func.lower(Product.name) == ref.strip().lower())
            .order_by(Product.id)
            .limit(1)
        ).first()
    if product is None:
        raise NotFound(f"No product {ref!r}.", hint="Use `skinctl products list` to find ids.")
    return product


@dataclass(frozen=True)
class ProductSummary:
    id: int
    source: str
    external_id: str
    name: str
    brand: str | None
    product_type: str | None
    category_path: str | None
    price: Decimal | None
    currency: str | None
    size: str | None
    rating: float | None
    review_count: int | None
    url: str | None


def product_summary(product: Product) -> ProductSummary:
    return ProductSummary(
        id=product.id,
        source=product.source,
        external_id=product.external_id,
        name=product.name,
        brand=product.brand,
        product_type=product.product_type,
        category_path=product.category_path,
        price=product.price,
        currency=product.currency,
        size=product.size,
        rating=product.rating,
        review_count=product.review_count,
        url=product.url,
    )


class AnnexStatus(StrEnum):
    """What an annex entry, or the strictest of an ingredient's entries, says. Strictest first."""

    PROHIBITED = "prohibited"  # Annex II (no exception covers the product type)
    CONDITIONALLY_PROHIBITED = "conditionally_prohibited"  # Annex II limited to some uses
    RESTRICTED = "restricted"  # Annex III limits, or a positive list that excludes the type
    UNLISTED = "unlisted"  # used as a preservative / UV filter but not on Annex V / VI
    ALLOWED = "allowed"  # on a positive list (IV colorants, V preservatives, VI UV filters)
    OK = "ok"
    UNMATCHED = "unmatched"


STATUS_ORDER = tuple(AnnexStatus)[:-1]
ANNEX_TITLES = {
    "II": "prohibited",
    "III": "restricted",
    "IV": "colorants allowed",
    "V": "preservatives allowed",
    "VI": "UV filters allowed",
}
# CosIng functions whose use needs a positive list: the function and the annex.
LISTED_FUNCTIONS = {"PRESERVATIVE": "V", "UV FILTER": "VI"}


@dataclass(frozen=True)
class AnnexFinding:
    """One annex entry linked to an ingredient, read for the product type asked about."""

    annex: str
    reference: str
    status: AnnexStatus
    substance: str | None
    product_type: str | None
    max_concentration: str | None
    other_limitations: str | None
    conditions: str | None
    regulation: str | None
    linked_by: str
    colour: str | None = None
    conditions_for_type: list[Condition] = field(default_factory=list)
    note: str | None = None


def annex_entries_for(
    connection: Connection, ingredient_ids: list[int], use: ProductUse = ProductUse.LEAVE_ON
) -> dict[int, list[AnnexFinding]]:
    rows = (
        Session(bind=connection)
        .execute(
            select(AnnexEntryIngredient.ingredient_id, AnnexEntryIngredient.link_method, AnnexEntry)
            .join(AnnexEntry, AnnexEntry.id == AnnexEntryIngredient.annex_entry_id)
            .where(AnnexEntryIngredient.ingredient_id.in_(ingredient_ids))
            .order_by(AnnexEntry.annex, AnnexEntry.reference_number, AnnexEntry.entry_no)
        )
        .all()
    )
    exceptions = _exception_entries(connection, [entry for _, _, entry in rows])
    result: dict[int, list[AnnexFinding]] = {}
    for ingredient_id, link_method, entry in rows:
        result.setdefault(ingredient_id, []).append(_finding(entry, link_method, use, exceptions))
    return result


def _exception_entries(
    connection: Connection, entries: list[AnnexEntry]
) -> dict[tuple[str, str], list[AnnexEntry]]:
    """The entries Annex II prohibitions name as their exception ("entry 14 in Annex III")."""
    wanted = {
        (m.group(2).upper(), m.group(1))
        for e in entries
        if e.annex == "II"
        for m in [ANNEX_II_EXCEPTION.search(e.chemical_name or "")]
        if m
    }
    if not wanted:
        return {}
    found: dict[tuple[str, str], list[AnnexEntry]] = {}
    for entry in Session(bind=connection).scalars(
        select(AnnexEntry).where(
            tuple_(AnnexEntry.annex, AnnexEntry.reference_number).in_(list(wanted))
        )
    ):
        found.setdefault((entry.annex, entry.reference_number), []).append(entry)
    return found


def _finding(
    entry: AnnexEntry,
    link_method: str,
    use: ProductUse,
    exceptions: dict[tuple[str, str], list[AnnexEntry]],
) -> AnnexFinding:
    reference = (
        entry.reference_number
        if entry.entry_no == 1
        else f"{entry.reference_number} ({entry.entry_no})"
    )
    conditions = (
        []
        if entry.annex == "II"
        else conditions_for(entry.product_type, entry.max_concentration, use)
    )
    note = None
    where = USE_NAMES[use]
    if entry.annex == "II":
        status = (
            AnnexStatus.CONDITIONALLY_PROHIBITED if entry.conditional else AnnexStatus.PROHIBITED
        )
        exception = ANNEX_II_EXCEPTION.search(entry.chemical_name or "")
        if exception:
            key = (exception.group(2).upper(), exception.group(1))
            named = exceptions.get(key, [])
            allowed = [
                c for e in named for c in conditions_for(e.product_type, e.max_concentration, use)
            ]
            label = f"Annex {key[0]} {key[1]}"
            if not named:
                note = f"its exception ({label}) is not loaded: load that annex to decide"
            elif any(c.applies for c in allowed):
                status = AnnexStatus.RESTRICTED
                note = f"prohibited except as {label} allows, which covers {where}"
            else:
                status = AnnexStatus.PROHIBITED
                types = "; ".join(c.product_type or "any" for c in allowed)
                note = f"its exception ({label}: {types}) does not apply to {where}"
    elif entry.annex == "III":
        status = AnnexStatus.RESTRICTED
        if conditions and all(c.applies is False for c in conditions):
            note = f"Annex III {reference} names no condition for {where}"
    else:
        status = AnnexStatus.ALLOWED
        if conditions and all(c.applies is False for c in conditions):
            status = AnnexStatus.RESTRICTED
            note = f"Annex {entry.annex} {reference} allows it only in: " + "; ".join(
                c.product_type or "" for c in conditions
            )
    return AnnexFinding(
        annex=entry.annex,
        reference=reference,
        status=status,
        substance=entry.chemical_name,
        product_type=entry.product_type,
        max_concentration=entry.max_concentration,
        other_limitations=entry.other_limitations,
        conditions=entry.conditions,
        regulation=entry.regulation,
        linked_by=link_method,
        colour=entry.colour,
        conditions_for_type=conditions,
        note=note,
    )


def annex_status(annexes: list[AnnexFinding]) -> AnnexStatus:
    """The strictest status of an ingredient's annex entries: prohibited (Annex II, no
    exception covering the product type), conditionally_prohibited (Annex II limited to some
    uses, such as hair dyes), restricted (Annex III, or a positive list excluding the type),
    allowed (on a positive list), or ok."""
    statuses = {a.status for a in annexes}
    return next((s for s in STATUS_ORDER if s in statuses), AnnexStatus.OK)


@dataclass(frozen=True)
class CheckedIngredient:
    position: int
    name: str
    match: Match
    functions: list[str]
    annex: list[AnnexFinding]
    status: AnnexStatus
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CheckSummary:
    count: int
    matched: int
    prohibited: list[str]
    conditionally_prohibited: list[str]
    restricted: list[str]
    unmatched: list[str]
    allowed: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    # One sentence per prohibited ingredient naming the entry ("Hydroquinone: Annex II 1339 ...").
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CheckResult:
    product: ProductSummary | None
    ingredients: list[CheckedIngredient]
    summary: CheckSummary
    product_type: ProductUse = ProductUse.LEAVE_ON


def _listed_annexes(connection: Connection) -> set[str]:
    return set(connection.execute(select(AnnexEntry.annex).distinct()).scalars())


def _check_one(
    position: int,
    name: str,
    match: Match,
    functions: list[str],
    findings: list[AnnexFinding],
    loaded: set[str],
) -> CheckedIngredient:
    if match.ingredient_id is None:
        return CheckedIngredient(position, name, match, [], [], AnnexStatus.UNMATCHED)
    status = annex_status(findings)
    notes = [f"Annex {f.annex} {f.reference}: {f.note}" for f in findings if f.note]
    on = {f.annex for f in findings}
    for function, annex in LISTED_FUNCTIONS.items():
        if function in functions and annex in loaded and annex not in on:
            notes.append(
                f"used as {function.lower()} (CosIng function) but not on Annex {annex} "
                f"({ANNEX_TITLES[annex]})"
            )
            if STATUS_ORDER.index(status) > STATUS_ORDER.index(AnnexStatus.UNLISTED):
                status = AnnexStatus.UNLISTED
    return CheckedIngredient(position, name, match, functions, findings, status, notes)


def check_ingredients(
    engine: Engine,
    text: str | None = None,
    product_ref: str | None = None,
    product_type: ProductUse | None = None,
) -> CheckResult:
    """Each ingredient with its match, functions and annex findings for the product type
    (`product_type`; default: a product's own category, else leave-on skin care). `prohibited`
    lists the ingredients Annex II prohibits for that type (the command exits 3 when it is not
    empty)."""
    if (text is None) == (product_ref is None):
        raise UsageError("Give either an ingredient list or --product, not both or neither.")
    with engine.connect() as connection:
        product = None
        if product_ref is not None:
            product = find_product(connection, product_ref)
            links = (
                Session(bind=connection)
                .scalars(
                    select(ProductIngredient)
                    .where(ProductIngredient.product_id == product.id)
                    .order_by(ProductIngredient.position)
                )
                .all()
            )
            inci = dict(
                connection.execute(
                    select(Ingredient.id, Ingredient.inci_name).where(
                        Ingredient.id.in_(
                            [link.ingredient_id for link in links if link.ingredient_id]
                        )
                    )
                ).all()
            )
            items = [
                (
                    link.position,
                    link.name_as_written,
                    Match(
                        link.ingredient_id,
                        inci.get(link.ingredient_id) if link.ingredient_id else None,
                        link.match_method,
                        link.match_score,
                    ),
                )
                for link in links
            ]
        else:
            names = split_ingredient_text(text or "")
            if not names:
                raise UsageError(
                    "The ingredient list is empty.",
                    hint='Pass a list such as "Aqua, Glycerin, Tocopherol".',
                )
            index = IngredientIndex.load(connection)
            if not len(index):
                raise NotFound(
                    "The CosIng inventory is not loaded.",
                    hint="Run `skinctl ingest cosing --inventory FILE`.",
                )
            items = [
                (position, name, index.match(name)) for position, name in enumerate(names, start=1)
            ]
        use = product_type or (
            use_of_category(product.category_path, product.product_type)
            if product is not None
            else ProductUse.LEAVE_ON
        )
        ids = [m.ingredient_id for _, _, m in items if m.ingredient_id]
        functions = dict(
            connection.execute(
                select(Ingredient.id, Ingredient.functions).where(Ingredient.id.in_(ids))
            ).all()
        )
        annexes = annex_entries_for(connection, ids, use)
        loaded = _listed_annexes(connection)
    rows = [
        _check_one(
            position,
            name,
            match,
            functions.get(match.ingredient_id, []) if match.ingredient_id else [],
            annexes.get(match.ingredient_id, []) if match.ingredient_id else [],
            loaded,
        )
        for position, name, match in items
    ]

    def named(status: AnnexStatus) -> list[str]:
        return [r.name for r in rows if r.status == status]

    reasons = []
    for row in rows:
        if row.status == AnnexStatus.PROHIBITED:
            entries = [f for f in row.annex if f.status == AnnexStatus.PROHIBITED]
            reasons.append(
                f"{row.name}: "
                + "; ".join(
                    f"Annex II {f.reference} prohibits it" + (f" ({f.note})" if f.note else "")
                    for f in entries
                )
            )
    return CheckResult(
        product=product_summary(product) if product else None,
        ingredients=rows,
        summary=CheckSummary(
            count=len(rows),
            matched=sum(r.match.ingredient_id is not None for r in rows),
            prohibited=named(AnnexStatus.PROHIBITED),
            conditionally_prohibited=named(AnnexStatus.CONDITIONALLY_PROHIBITED),
            restricted=named(AnnexStatus.RESTRICTED),
            unmatched=named(AnnexStatus.UNMATCHED),
            allowed=named(AnnexStatus.ALLOWED),
            unlisted=named(AnnexStatus.UNLISTED),
            reasons=reasons,
        ),
        product_type=use,
    )


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
