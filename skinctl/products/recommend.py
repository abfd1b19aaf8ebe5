"""Product recommendations.

Similarity (with --like): TF-IDF cosine over the products' matched CosIng ingredient ids.
Each ingredient is weighted by idf = ln(N / df) over the N products with matched ingredients,
so sharing a rare active (retinol, bakuchiol) counts for more than sharing water or glycerin;
term frequency is 1 (an ingredient is listed once).

Rating: where reviews exist from reviewers of the requested skin type, their mean rating,
shrunk towards the product's overall rating with a prior weight of PRIOR_REVIEWS reviews;
otherwise the product's overall rating shrunk towards the mean of all rated products with a
prior weight of PRIOR_REVIEWS reviews (a product with two 5-star reviews does not beat one
with two hundred 4.8s).

Score: with --like, 0.8 x similarity + 0.2 x rating / 5; without --like, rating / 5.
Filters (--type, --max-price, --avoid) remove products before ranking.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Any

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from skinctl.db.models import Ingredient, Product, ProductIngredient, Review
from skinctl.errors import NotFound, UsageError
from skinctl.products.analysis import find_product, product_summary
from skinctl.products.matching import IngredientIndex
from skinctl.products.names import name_key

SKIN_TYPES = ("oily", "dry", "normal", "combination", "sensitive")
PRIOR_REVIEWS = 5.0
SIMILARITY_WEIGHT = 0.8
METHOD = (
    "TF-IDF cosine similarity over matched CosIng ingredient ids (idf = ln(N/df)); "
    "score = 0.8 x similarity + 0.2 x rating/5 with --like, else rating/5; rating = mean review "
    "rating from reviewers of the requested skin type shrunk towards the product rating, else "
    f"the product rating shrunk towards the mean of all products (prior weight {PRIOR_REVIEWS:g} reviews)"
)


def _type_term(value: str) -> str:
    """'Moisturisers' and 'moisturizer' compare equal."""
    value = value.strip().lower().replace("iser", "izer").replace("isers", "izers")
    return re.sub(r"s$", "", value)


def _matches_type(product_type: str | None, category_path: str | None, terms: list[str]) -> bool:
    haystack = _type_term(f"{product_type or ''} > {category_path or ''}")
    return any(term in haystack for term in terms)


def recommend(
    engine: Engine,
    *,
    like: str | None = None,
    skin_type: str | None = None,
    avoid: list[str] | None = None,
    types: list[str] | None = None,
    max_price: float | None = None,
    currency: str | None = None,
    limit: int = 10,
) -> dict[str, Any]:
    if skin_type is not None and skin_type not in SKIN_TYPES:
        raise UsageError(f"Unknown skin type {skin_type!r}.", hint=f"Use one of: {', '.join(SKIN_TYPES)}.")
    if limit < 1:
        raise UsageError("--limit must be at least 1.")
    avoid = avoid or []
    type_terms = [_type_term(t) for t in types or [] if t.strip()]
    with engine.connect() as connection:
        products = {p.id: p for p in Session(bind=connection).scalars(select(Product))}
        rated = [p.rating for p in products.values() if p.rating is not None]
        overall_mean = sum(rated) / len(rated) if rated else 0.0
        # avoided ingredients: the CosIng entry a name matches, and any written name containing it
        avoided_ids: dict[int, str] = {}
        avoided_keys = []
        if avoid:
            index = IngredientIndex.load(connection)
            for term in avoid:
                found = index.match(term)
                if found.ingredient_id is not None:
                    avoided_ids[found.ingredient_id] = found.inci_name or term
                if name_key(term):
                    avoided_keys.append(name_key(term))
        excluded: dict[int, str] = {}
        if avoided_ids or avoided_keys:
            conditions = []
            if avoided_ids:
                conditions.append(ProductIngredient.ingredient_id.in_(list(avoided_ids)))
            for key in avoided_keys:
                conditions.append(ProductIngredient.name_key.contains(key, autoescape=True))
            for product_id, written in connection.execute(
                select(ProductIngredient.product_id, ProductIngredient.name_as_written).where(or_(*conditions))
            ):
                excluded.setdefault(product_id, written)
        reviews: dict[int, tuple[float, int]] = {}
        if skin_type:
            reviews = {
                product_id: (float(mean), count)
                for product_id, mean, count in connection.execute(
                    select(Review.product_id, func.avg(Review.rating), func.count())
                    .where(Review.skin_type == skin_type, Review.product_id.is_not(None),
                           Review.rating.is_not(None))
                    .group_by(Review.product_id)
                )
            }
        target = None
        vectors: dict[int, set[int]] = defaultdict(set)
        idf: dict[int, float] = {}
        inci: dict[int, str] = {}
        if like:
            target = find_product(connection, like)
            for product_id, ingredient_id in connection.execute(
                select(ProductIngredient.product_id, ProductIngredient.ingredient_id)
                .where(ProductIngredient.ingredient_id.is_not(None))
            ):
                vectors[product_id].add(ingredient_id)
            if not vectors.get(target.id):
                raise UsageError(
                    f"Product {target.id} ({target.name}) has no matched ingredients to compare.",
                    hint="Check it with `skinctl ingredients check --product ID`.",
                )
            df: dict[int, int] = defaultdict(int)
            for ids in vectors.values():
                for ingredient_id in ids:
                    df[ingredient_id] += 1
            n = len(vectors)
            idf = {i: math.log(n / d) for i, d in df.items()}
            inci = dict(connection.execute(
                select(Ingredient.id, Ingredient.inci_name).where(Ingredient.id.in_(list(vectors[target.id])))
            ).all())

    def norm(ids: set[int]) -> float:
        return math.sqrt(sum(idf[i] ** 2 for i in ids)) or 1.0

    target_ids = vectors.get(target.id, set()) if target else set()
    target_norm = norm(target_ids) if target else 1.0
    results = []
    for product in products.values():
        if target is not None and (product.id == target.id or (product.url and product.url == target.url)
                                   or product.name == target.name):
            continue
        if product.id in excluded:
            continue
        if type_terms and not _matches_type(product.product_type, product.category_path, type_terms):
            continue
        if max_price is not None and (product.price is None or float(product.price) > max_price):
            continue
        if currency and (product.currency or "").upper() != currency.upper():
            continue
        why: list[str] = []
        similarity = None
        shared: list[int] = []
        if target is not None:
            ids = vectors.get(product.id, set())
            shared_set = ids & target_ids
            if not shared_set:
                continue
            similarity = sum(idf[i] ** 2 for i in shared_set) / (target_norm * norm(ids))
            shared = sorted(shared_set, key=lambda i: -idf[i])
            why.append(
                f"shares {len(shared_set)} of {len(target_ids)} ingredients with {target.name} "
                f"(TF-IDF cosine {similarity:.2f}; rarest shared: "
                + ", ".join(inci[i] for i in shared[:3]) + ")"
            )
        rating = product.rating
        review_info = None
        if skin_type and product.id in reviews:
            mean, count = reviews[product.id]
            prior = product.rating if product.rating is not None else mean
            rating = (count * mean + PRIOR_REVIEWS * prior) / (count + PRIOR_REVIEWS)
            review_info = {"skin_type": skin_type, "reviews": count, "mean_rating": round(mean, 2)}
            why.append(f"rated {mean:.2f} by {count} reviewer(s) with {skin_type} skin")
        elif rating is not None:
            why.append(f"rated {rating:.2f} overall" + (f" ({product.review_count} reviews)" if product.review_count else "")
                       + (f"; no reviews from {skin_type} skin yet" if skin_type else ""))
            count = product.review_count or 0
            rating = (count * rating + PRIOR_REVIEWS * overall_mean) / (count + PRIOR_REVIEWS)
        else:
            why.append("no rating")
        rating_part = (rating / 5.0) if rating is not None else 0.5
        if target is not None:
            score = SIMILARITY_WEIGHT * (similarity or 0.0) + (1 - SIMILARITY_WEIGHT) * rating_part
        else:
            score = rating_part if rating is not None else 0.0
        if type_terms:
            why.append(f"type {product.product_type or product.category_path}")
        if max_price is not None:
            why.append(f"price {product.price} {product.currency or ''} <= {max_price:g}".replace("  ", " "))
        if avoid:
            why.append("contains none of: " + ", ".join(avoid))
        results.append({
            "score": round(score, 4),
            "similarity": round(similarity, 4) if similarity is not None else None,
            "rating_used": round(rating, 3) if rating is not None else None,
            "skin_type_reviews": review_info,
            "shared_ingredients": [inci[i] for i in shared[:10]],
            "product": product_summary(product),
            "why": "; ".join(why),
        })
    results.sort(key=lambda r: (-r["score"], -(r["product"]["review_count"] or 0), r["product"]["id"]))
    if not results and not products:
        raise NotFound("No products are loaded.", hint="Run `skinctl ingest products FILE --format ...`.")
    return {
        "method": METHOD,
        "like": product_summary(target) if target else None,
        "filters": {"skin_type": skin_type, "avoid": avoid, "avoided_inci": sorted(avoided_ids.values()),
                    "type": types or [], "max_price": max_price, "currency": currency, "limit": limit},
        "excluded_for_avoided_ingredients": len(excluded),
        "results": [{"rank": n, **r} for n, r in enumerate(results[:limit], start=1)],
    }


def list_products(engine: Engine, *, search: str | None = None, source: str | None = None,
                  types: list[str] | None = None, limit: int = 50) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        statement = select(Product).order_by(Product.id)
        if search:
            pattern = f"%{search.strip()}%"
            statement = statement.where(or_(Product.name.ilike(pattern), Product.brand.ilike(pattern)))
        if source:
            statement = statement.where(Product.source == source)
        rows = Session(bind=connection).scalars(statement).all()
    type_terms = [_type_term(t) for t in types or [] if t.strip()]
    if type_terms:
        rows = [p for p in rows if _matches_type(p.product_type, p.category_path, type_terms)]
    return [product_summary(p) for p in rows[:limit]]
