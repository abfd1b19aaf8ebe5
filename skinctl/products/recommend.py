"""Product recommendations, in steps: the ask (`RecommendQuery`), the candidates that fit it
(filtered in SQL), what reviewers of the asker's skin type said, ingredient similarity, the
score, and sizes of one product folded into one recommendation.

Fit: `--type` follows the category tree (Sephora's primary/secondary/tertiary category,
skincare-clean's product_type); `--skin-type` leaves out products whose own claims name other
skin types ("Best for Dry, Combo, Normal Skin" in an oily ask) and prefers those made for it;
`--concern` keeps products whose claims say "Good for: <concern>".

Similarity (with --like): TF-IDF cosine over the products' matched CosIng ingredient ids.
Each ingredient is weighted by idf = ln(N / df) over the N products with matched ingredients,
so sharing a rare active (retinol, bakuchiol) counts for more than sharing water or glycerin.

Sentiment (with --skin-type): the share of positive reviews among reviewers of that skin type,
from the newest scored sentiment run (`skinctl reviews score`), or from the stars (4-5
positive, 1-2 negative) where no run has scored them; shrunk towards the product's overall
share with a prior weight of PRIOR_REVIEWS reviews, and shown with its 95% Wilson interval. A
product with fewer than MIN_REVIEWS such reviews says so instead of a share.

Score: with --like, 0.8 x similarity + 0.2 x quality; without, quality. Quality is the
expected share of positive reviewers, on one scale for every product: a rating r counts as
(r - 1) / 4; with reviews from the skin type, their positive share shrunk towards that; without,
the rating shrunk towards the mean of all rated products. + CLAIM_BONUS for a product made for
the skin type.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.orm import Session

from skinctl.db.models import (
    Ingredient,
    Product,
    ProductIngredient,
    Review,
    ReviewSentiment,
    TrainingRun,
)
from skinctl.errors import NotFound, UsageError
from skinctl.products.choices import (
    CLAIM_WORDS,
    CONCERN_CLAIMS,
    KIND_CATEGORIES,
    Concern,
    ProductKind,
    SkinType,
)
from skinctl.products.lookup import ProductSummary, find_product, product_summary
from skinctl.products.matching import IngredientIndex
from skinctl.products.names import name_key

PRIOR_REVIEWS = 5.0
MIN_REVIEWS = 10
SIMILARITY_WEIGHT = 0.8
CLAIM_BONUS = 0.1
METHOD = (
    "candidates: --type by category, --skin-type leaves out products made for other skin types, "
    "--concern by the product's 'Good for' claims; TF-IDF cosine similarity over matched CosIng "
    "ingredient ids (idf = ln(N/df)) with --like; quality = share of positive reviews from "
    "reviewers of the skin type (sentiment run, else stars) shrunk towards the product's share "
    f"(prior {PRIOR_REVIEWS:g} reviews), else rating/5 shrunk towards the mean; score = 0.8 x "
    f"similarity + 0.2 x quality with --like, else quality; +{CLAIM_BONUS:g} when made for the skin type"
)


@dataclass(frozen=True)
class RecommendQuery:
    like: str | None = None
    skin_type: SkinType | None = None
    concerns: tuple[Concern, ...] = ()
    avoid: tuple[str, ...] = ()
    types: tuple[ProductKind, ...] = ()
    max_price: float | None = None
    currency: str | None = None
    limit: int = 10


@dataclass(frozen=True)
class SkinTypeReviews:
    """What reviewers of one skin type said about a product."""

    skin_type: str
    reviews: int
    mean_rating: float | None
    positive: int
    negative: int
    positive_share: float | None  # None below MIN_REVIEWS
    positive_ci95: tuple[float, float] | None
    source: str  # "sentiment run N" or "stars"


@dataclass(frozen=True)
class Size:
    product_id: int
    name: str
    size: str | None
    price: object
    currency: str | None


@dataclass(frozen=True)
class Recommendation:
    rank: int
    score: float
    similarity: float | None
    rating_used: float | None
    skin_type_reviews: SkinTypeReviews | None
    shared_ingredients: list[str]
    product: ProductSummary
    why: str
    sizes: list[Size] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Filters:
    skin_type: str | None
    avoid: list[str]
    avoided_inci: list[str]
    type: list[str]
    max_price: float | None
    currency: str | None
    limit: int
    concern: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Recommendations:
    method: str
    like: ProductSummary | None
    filters: Filters
    excluded_for_avoided_ingredients: int
    results: list[Recommendation]
    excluded_for_skin_type: int = 0
    candidates: int = 0


def recommend(
    engine: Engine,
    *,
    like: str | None = None,
    skin_type: str | None = None,
    avoid: list[str] | None = None,
    types: list[str] | None = None,
    concerns: list[str] | None = None,
    max_price: float | None = None,
    currency: str | None = None,
    limit: int = 10,
) -> Recommendations:
    query = _query(like, skin_type, avoid, types, concerns, max_price, currency, limit)
    with engine.connect() as connection:
        avoided_inci, avoid_condition = _avoided(connection, query.avoid)
        excluded = (
            connection.execute(
                select(func.count()).select_from(Product).where(avoid_condition)
            ).scalar_one()
            if query.avoid
            else 0
        )
        fit = _fit_conditions(query)
        skin_excluded = 0
        if query.skin_type is not None and query.skin_type in CLAIM_WORDS:
            skin_excluded = connection.execute(
                select(func.count())
                .select_from(Product)
                .where(*fit, _made_for_others(query.skin_type))
            ).scalar_one()
        candidates = _candidates(connection, query, fit, avoid_condition)
        target = find_product(connection, query.like) if query.like else None
        similarity, shared = _similarities(connection, target, candidates) if target else ({}, {})
        reviews = _skin_type_reviews(connection, query.skin_type, [p.id for p in candidates])
        mean_rating = connection.execute(select(func.avg(Product.rating))).scalar_one() or 0.0
        if (
            not candidates
            and not connection.execute(select(func.count()).select_from(Product)).scalar_one()
        ):
            raise NotFound("No products are loaded.", hint="Run `skinctl ingest products sephora`.")
    scored = [
        _score(
            product, query, target, similarity, shared, reviews.get(product.id), float(mean_rating)
        )
        for product in candidates
        if target is None or (product.id in similarity and not _same_product(product, target))
    ]
    scored.sort(key=lambda r: (-r[0], -(r[1].review_count or 0), r[1].id))
    results = _fold_sizes(scored, query.limit)
    return Recommendations(
        method=METHOD,
        like=product_summary(target) if target else None,
        filters=Filters(
            skin_type=query.skin_type,
            avoid=list(query.avoid),
            avoided_inci=avoided_inci,
            type=list(query.types),
            max_price=query.max_price,
            currency=query.currency,
            limit=query.limit,
            concern=list(query.concerns),
        ),
        excluded_for_avoided_ingredients=excluded,
        results=results,
        excluded_for_skin_type=skin_excluded,
        candidates=len(candidates),
    )


# --- the steps ------------------------------------------------------------------------------


_Choice = TypeVar("_Choice", bound=StrEnum)


def _choice(enum: type[_Choice], value: str, option: str) -> _Choice:
    try:
        return enum(value.strip().lower())
    except ValueError:
        raise UsageError(
            f"Unknown {option} {value!r}.", hint=f"Use one of: {', '.join(e.value for e in enum)}."
        ) from None


def _query(
    like: str | None,
    skin_type: str | None,
    avoid: list[str] | None,
    types: list[str] | None,
    concerns: list[str] | None,
    max_price: float | None,
    currency: str | None,
    limit: int,
) -> RecommendQuery:
    if limit < 1:
        raise UsageError("--limit must be at least 1.")
    return RecommendQuery(
        like=like,
        skin_type=_choice(SkinType, skin_type, "skin type") if skin_type else None,
        concerns=tuple(_choice(Concern, c, "concern") for c in concerns or []),
        avoid=tuple(a for a in avoid or [] if a.strip()),
        types=tuple(_choice(ProductKind, t, "product type") for t in types or [] if t.strip()),
        max_price=max_price,
        currency=currency.upper() if currency else None,
        limit=limit,
    )


def _avoided(connection: Connection, avoid: tuple[str, ...]):  # noqa: ANN202 - (names, SQL condition)
    """The CosIng names the avoided terms match, and a condition true for products containing
    one of them (its entry, or a written name containing the term)."""
    if not avoid:
        return [], literal(False)
    index = IngredientIndex.load(connection)
    ids: dict[int, str] = {}
    conditions = []
    for term in avoid:
        found = index.match(term)
        if found.ingredient_id is not None:
            ids[found.ingredient_id] = found.inci_name or term
        if name_key(term):
            conditions.append(ProductIngredient.name_key.contains(name_key(term), autoescape=True))
    if ids:
        conditions.append(ProductIngredient.ingredient_id.in_(list(ids)))
    condition = exists().where(ProductIngredient.product_id == Product.id, or_(*conditions))
    return sorted(ids.values()), condition


def _claims_like(pattern: str):  # noqa: ANN202 - SQL condition
    claim = func.unnest(Product.highlights).column_valued("claim")
    return exists(select(literal(1)).where(claim.ilike(pattern)))


def _made_for_others(skin_type: SkinType):  # noqa: ANN202 - SQL condition
    """The product's claims name skin types, and not this one."""
    words = CLAIM_WORDS[skin_type]
    return and_(
        _claims_like("Best for %"), not_(or_(*[_claims_like(f"Best for %{w}%") for w in words]))
    )


def _fit_conditions(query: RecommendQuery) -> list:
    conditions = []
    if query.types:
        paths = [path for kind in query.types for path in KIND_CATEGORIES[kind]]
        conditions.append(Product.category_path.in_(paths))
    for concern in query.concerns:
        conditions.append(Product.highlights.contains([CONCERN_CLAIMS[concern]]))
    if query.max_price is not None:
        conditions.append(Product.price <= query.max_price)
    if query.currency:
        conditions.append(func.upper(Product.currency) == query.currency)
    return conditions


def _candidates(
    connection: Connection,
    query: RecommendQuery,
    fit: list,
    avoid_condition: ColumnElement[bool],
) -> list[Product]:
    statement = select(Product).where(*fit).where(not_(avoid_condition)).order_by(Product.id)
    if query.skin_type is not None and query.skin_type in CLAIM_WORDS:
        statement = statement.where(not_(_made_for_others(query.skin_type)))
    return list(Session(bind=connection).scalars(statement))


def _similarities(connection: Connection, target: Product, candidates: list[Product]):  # noqa: ANN202
    """TF-IDF cosine of each candidate sharing an ingredient with the target, and the shared
    ingredients rarest first."""
    vectors: dict[int, set[int]] = defaultdict(set)
    for product_id, ingredient_id in connection.execute(
        select(ProductIngredient.product_id, ProductIngredient.ingredient_id).where(
            ProductIngredient.ingredient_id.is_not(None)
        )
    ):
        if ingredient_id is not None:  # the WHERE above: never NULL here
            vectors[product_id].add(ingredient_id)
    target_ids = vectors.get(target.id, set())
    if not target_ids:
        raise UsageError(
            f"Product {target.id} ({target.name}) has no matched ingredients to compare.",
            hint="Check it with `skinctl ingredients check --product ID`.",
        )
    df: dict[int, int] = defaultdict(int)
    for ids in vectors.values():
        for ingredient_id in ids:
            df[ingredient_id] += 1
    idf = {i: math.log(len(vectors) / d) for i, d in df.items()}
    inci = dict(
        connection.execute(
            select(Ingredient.id, Ingredient.inci_name).where(Ingredient.id.in_(list(target_ids)))
        ).all()
    )

    def norm(ids: set[int]) -> float:
        return math.sqrt(sum(idf[i] ** 2 for i in ids)) or 1.0

    similarity: dict[int, float] = {}
    shared: dict[int, list[str]] = {}
    for product in candidates:
        common = vectors.get(product.id, set()) & target_ids
        if common:
            similarity[product.id] = sum(idf[i] ** 2 for i in common) / (
                norm(target_ids) * norm(vectors[product.id])
            )
            shared[product.id] = [inci[i] for i in sorted(common, key=lambda i: -idf[i])]
    return similarity, shared


def latest_sentiment_run(connection: Connection) -> int | None:
    """The newest finished sentiment run that has scored reviews."""
    return connection.execute(
        select(TrainingRun.id)
        .where(
            TrainingRun.task == "sentiment",
            TrainingRun.status == "finished",
            exists().where(ReviewSentiment.run_id == TrainingRun.id),
        )
        .order_by(TrainingRun.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _skin_type_reviews(
    connection: Connection, skin_type: SkinType | None, product_ids: list[int]
) -> dict[int, SkinTypeReviews]:
    if skin_type is None or not product_ids:
        return {}
    from skinctl.train.metrics import wilson_interval

    run_id = latest_sentiment_run(connection)
    if run_id is not None:
        sentiment = ReviewSentiment.sentiment
        statement = select(
            Review.product_id,
            func.count(),
            func.avg(Review.rating),
            func.count().filter(sentiment == "positive"),
            func.count().filter(sentiment == "negative"),
        ).join(
            ReviewSentiment,
            and_(ReviewSentiment.review_id == Review.id, ReviewSentiment.run_id == run_id),
        )
        source = f"sentiment run {run_id}"
    else:
        statement = select(
            Review.product_id,
            func.count(),
            func.avg(Review.rating),
            func.count().filter(Review.rating >= 4),
            func.count().filter(Review.rating <= 2),
        ).where(Review.rating.is_not(None))
        source = "stars"
    rows = connection.execute(
        statement.where(
            Review.skin_type == skin_type.value, Review.product_id.in_(product_ids)
        ).group_by(Review.product_id)
    ).all()
    result = {}
    for product_id, count, mean, positive, negative in rows:
        enough = count >= MIN_REVIEWS
        result[product_id] = SkinTypeReviews(
            skin_type=skin_type.value,
            reviews=count,
            mean_rating=round(float(mean), 2) if mean is not None else None,
            positive=positive,
            negative=negative,
            positive_share=round(positive / count, 4) if enough else None,
            positive_ci95=tuple(round(x, 4) for x in wilson_interval(positive, count))
            if enough
            else None,  # type: ignore[arg-type]
            source=source,
        )
    return result


def _claims(product: Product) -> list[str]:
    return [h for h in product.highlights or [] if h.startswith(("Best for", "Good for"))]


def _score(
    product: Product,
    query: RecommendQuery,
    target: Product | None,
    similarity: dict[int, float],
    shared: dict[int, list[str]],
    reviews: SkinTypeReviews | None,
    mean_rating: float,
) -> tuple[float, Product, dict]:
    why: list[str] = []
    sim = similarity.get(product.id)
    if target is not None and sim is not None:
        names = shared[product.id]
        why.append(
            f"shares {len(names)} ingredients with {target.name} (TF-IDF cosine {sim:.2f}; "
            f"rarest shared: {', '.join(names[:3])})"
        )
    made_for = False
    if query.skin_type in CLAIM_WORDS:
        best_for = [h for h in product.highlights or [] if h.startswith("Best for")]
        made_for = bool(best_for)
        if best_for:
            why.append(f"made for {query.skin_type} skin ({best_for[0]})")
    for concern in query.concerns:
        why.append(CONCERN_CLAIMS[concern].lower())
    # Quality: the expected share of positive reviewers (of the skin type), one scale for all:
    # a rating r maps to (r - 1) / 4; a product's own skin-type reviews pull it towards their share.
    quality = None
    rated = (product.rating - 1) / 4 if product.rating is not None else None
    if reviews is not None:
        prior = rated if rated is not None else reviews.positive / reviews.reviews
        quality = (reviews.positive + PRIOR_REVIEWS * prior) / (reviews.reviews + PRIOR_REVIEWS)
    if reviews is not None and reviews.positive_share is not None:
        low, high = reviews.positive_ci95 or (0.0, 1.0)
        why.append(
            f"{reviews.positive_share:.0%} of {reviews.reviews} reviewers with {reviews.skin_type} "
            f"skin were positive [{low:.0%}-{high:.0%}] ({reviews.source})"
        )
    elif query.skin_type is not None:
        n = reviews.reviews if reviews else 0
        why.append(
            f"too few reviews from {query.skin_type} skin for a share ({n}; {MIN_REVIEWS} needed)"
        )
    if quality is None and rated is not None:
        count = product.review_count or 0
        quality = (count * rated + PRIOR_REVIEWS * (mean_rating - 1) / 4) / (count + PRIOR_REVIEWS)
    if product.rating is not None:
        count = product.review_count or 0
        why.append(f"rated {product.rating:.2f} overall" + (f" ({count} reviews)" if count else ""))
    else:
        why.append("no rating")
    part = quality if quality is not None else 0.5
    score = (
        SIMILARITY_WEIGHT * (sim or 0.0) + (1 - SIMILARITY_WEIGHT) * part
        if target is not None
        else part
    )
    if made_for:
        score += CLAIM_BONUS
    if query.types:
        why.append(f"type {product.category_path or product.product_type}")
    if query.max_price is not None:
        why.append(
            f"price {product.price} {product.currency or ''}".rstrip() + f" <= {query.max_price:g}"
        )
    if query.avoid:
        why.append("contains none of: " + ", ".join(query.avoid))
    detail = {
        "similarity": sim,
        "quality": quality,
        "reviews": reviews,
        "shared": shared.get(product.id, []),
        "why": why,
    }
    return score, product, detail


def _same_product(product: Product, target: Product) -> bool:
    return (
        product.id == target.id
        or bool(product.url and product.url == target.url)
        or product.name == target.name
        or variant_key(product) == variant_key(target)
    )


_SIZE_WORDS = re.compile(
    r"\b(mini|travel size|travel|jumbo|value size|full size|deluxe)\b|\b\d+(\.\d+)?\s?(ml|g|oz|fl oz)\b|\([^)]*\)",
    re.IGNORECASE,
)


def variant_key(product: Product) -> tuple[str, str]:
    """Sizes and editions of one product share a key: brand and name without size words
    ("Mini Lala Retro Whipped Cream" and "Lala Retro Whipped Cream"); skincare-clean lists the
    sizes of one product under one URL."""
    if product.url:
        return (product.source, product.url)
    name = _SIZE_WORDS.sub(" ", product.name)
    return ((product.brand or "").lower(), " ".join(re.findall(r"[a-z0-9]+", name.lower())))


def _fold_sizes(scored: list[tuple[float, Product, dict]], limit: int) -> list[Recommendation]:
    """One recommendation per product: its best-scored size, listing every size found."""
    groups: dict[tuple[str, str], list[tuple[float, Product, dict]]] = {}
    for item in scored:
        groups.setdefault(variant_key(item[1]), []).append(item)
    results: list[Recommendation] = []
    for members in groups.values():  # insertion order = best score first
        score, product, detail = members[0]
        sizes = [Size(p.id, p.name, p.size, p.price, p.currency) for _, p, _ in members]
        why = list(detail["why"])
        if len(sizes) > 1:
            why.append(
                "sizes: "
                + ", ".join(
                    f"{s.size or s.name} {s.price or '-'} {s.currency or ''}".strip() for s in sizes
                )
            )
        reviews: SkinTypeReviews | None = detail["reviews"]
        results.append(
            Recommendation(
                rank=len(results) + 1,
                score=round(score, 4),
                similarity=round(detail["similarity"], 4)
                if detail["similarity"] is not None
                else None,
                # the quality on the star scale (1 + 4 x expected positive share)
                rating_used=round(1 + 4 * detail["quality"], 3)
                if detail["quality"] is not None
                else None,
                skin_type_reviews=reviews,
                shared_ingredients=detail["shared"][:10],
                product=product_summary(product),
                why="; ".join(why),
                sizes=sizes,
                claims=_claims(product),
            )
        )
        if len(results) == limit:
            break
    return results


def list_products(
    engine: Engine,
    *,
    search: str | None = None,
    source: str | None = None,
    types: list[str] | None = None,
    limit: int = 50,
) -> list[ProductSummary]:
    kinds = [_choice(ProductKind, t, "product type") for t in types or [] if t.strip()]
    with engine.connect() as connection:
        statement = select(Product).order_by(Product.id).limit(limit)
        if search:
            pattern = f"%{search.strip()}%"
            statement = statement.where(
                or_(Product.name.ilike(pattern), Product.brand.ilike(pattern))
            )
        if source:
            statement = statement.where(Product.source == source)
        if kinds:
            statement = statement.where(
                Product.category_path.in_(
                    [path for kind in kinds for path in KIND_CATEGORIES[kind]]
                )
            )
        return [product_summary(p) for p in Session(bind=connection).scalars(statement)]


__all__ = ["CLAIM_WORDS", "Concern", "ProductKind", "SkinType", "list_products", "recommend"]
