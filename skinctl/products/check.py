"""`skinctl ingredients check`: an ingredient list or a product against CosIng, for a product type:
Annex II prohibitions (and the Annex III exceptions that lift them for named product types),
Annex III restrictions, and the positive lists of Annexes IV-VI (colorants, preservatives, UV
filters) with their limits; an ingredient used as a preservative or UV filter that is not on its
list is flagged. `annex_entries_for` and `annex_status` are also what `ingredients show` reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import Connection, Engine, select, tuple_
from sqlalchemy.orm import Session

from skinctl.db.models import (
    AnnexEntry,
    AnnexEntryIngredient,
    Ingredient,
    ProductIngredient,
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
from skinctl.products.lookup import ProductSummary, find_product, product_summary
from skinctl.products.matching import IngredientIndex, Match
from skinctl.products.names import split_ingredient_text


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
