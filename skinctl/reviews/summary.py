"""`skinctl reviews show PRODUCT`: what reviewers say about one product.

The share of positive and negative reviews with 95% Wilson intervals, overall and by the
reviewer's skin type and skin tone; and the words and two-word phrases most over-represented in
the product's negative against its positive reviews, by the log-odds ratio with an informative
Dirichlet prior (Monroe, Colaresi & Quinn 2008, "Fightin' Words"), each with a short quote.
Sentiment is the newest scoring run's where it scored the product's reviews, else the stars.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Engine, and_, null, select

from skinctl.db.models import Review, ReviewSentiment
from skinctl.errors import NotFound
from skinctl.products.lookup import ProductSummary, find_product, product_summary
from skinctl.reviews.data import label_of, review_text
from skinctl.train.metrics import wilson_interval

PRIOR_WEIGHT = 500.0  # the Dirichlet prior's total pseudo-count, spread as the pooled counts
MIN_TERM_COUNT = 2
STOPWORDS = frozenset(
    "a an and are as at be been but by for from had has have i i'm im in is it it's its my me of on or so that "
    "the this to was were with you your they them their there these those we our us he she his her him than then "
    "just very really too also do does did not no if all am can will would could should out up about what which "
    "when while one get got use used using product".split()
)
_TOKEN = re.compile(r"[a-z][a-z']*")


@dataclass(frozen=True)
class Share:
    group: str  # "all", or a skin type / skin tone
    reviews: int
    positive: int
    negative: int
    positive_share: float | None
    positive_ci95: tuple[float, float] | None
    negative_share: float | None
    negative_ci95: tuple[float, float] | None


@dataclass(frozen=True)
class Term:
    term: str
    z: float  # log-odds ratio (negative vs positive) over its standard deviation
    negative_count: int
    positive_count: int
    quote: str


@dataclass(frozen=True)
class ProductReviews:
    product: ProductSummary
    sentiment_source: str  # "sentiment run N" or "stars"
    skin_type: str | None
    overall: Share
    by_skin_type: list[Share]
    by_skin_tone: list[Share]
    negative_terms: list[Term]
    positive_terms: list[Term]


def _share(group: str, labels: list[str]) -> Share:
    n = len(labels)
    positive, negative = labels.count("positive"), labels.count("negative")
    if not n:
        return Share(group, 0, 0, 0, None, None, None, None)
    positive_low, positive_high = wilson_interval(positive, n)
    negative_low, negative_high = wilson_interval(negative, n)
    return Share(
        group,
        n,
        positive,
        negative,
        round(positive / n, 4),
        (round(positive_low, 4), round(positive_high, 4)),
        round(negative / n, 4),
        (round(negative_low, 4), round(negative_high, 4)),
    )


def terms_of(text: str) -> list[str]:
    """Words (no stopwords) and two-word phrases (not both stopwords) of a text."""
    tokens = _TOKEN.findall(text.lower())
    words = [t for t in tokens if t not in STOPWORDS and len(t) > 2]
    pairs = [
        f"{a} {b}"
        for a, b in zip(tokens, tokens[1:], strict=False)
        if not (a in STOPWORDS and b in STOPWORDS)
    ]
    return words + pairs


def log_odds(counts_a: Counter, counts_b: Counter, prior: Counter) -> dict[str, float]:
    """z-scores of the log-odds ratio of each term in A against B with an informative Dirichlet
    prior proportional to `prior` (the pooled counts), total PRIOR_WEIGHT."""
    n_a, n_b, n_prior = sum(counts_a.values()), sum(counts_b.values()), sum(prior.values())
    if not n_prior:
        return {}
    scale = PRIOR_WEIGHT / n_prior
    alpha0 = PRIOR_WEIGHT
    result = {}
    for term, background in prior.items():
        alpha = background * scale
        a, b = counts_a.get(term, 0), counts_b.get(term, 0)
        delta = math.log((a + alpha) / (n_a + alpha0 - a - alpha)) - math.log(
            (b + alpha) / (n_b + alpha0 - b - alpha)
        )
        result[term] = delta / math.sqrt(1 / (a + alpha) + 1 / (b + alpha))
    return result


def _quote(texts: list[str], term: str, width: int = 70) -> str:
    pattern = re.compile(r"\b" + r"\W+".join(map(re.escape, term.split())) + r"\b", re.IGNORECASE)
    for text in texts:
        found = pattern.search(text)
        if found:
            start = max(0, found.start() - width // 2)
            snippet = " ".join(text[start : start + width].split())
            return ("…" if start else "") + snippet + ("…" if start + width < len(text) else "")
    return ""


def _top_terms(
    scores: dict[str, float],
    counts: Counter,
    other: Counter,
    texts: list[str],
    sign: float,
    limit: int,
) -> list[Term]:
    ranked = sorted(
        (t for t in scores if counts.get(t, 0) >= MIN_TERM_COUNT), key=lambda t: -sign * scores[t]
    )
    chosen: list[Term] = []
    for term in ranked:
        if sign * scores[term] <= 0 or len(chosen) == limit:
            break
        # A phrase that only repeats a chosen word adds nothing; keep the first of the two.
        if any(term in c.term.split() or c.term in term.split() for c in chosen):
            continue
        chosen.append(
            Term(
                term,
                round(scores[term], 2),
                counts.get(term, 0) if sign > 0 else other.get(term, 0),
                other.get(term, 0) if sign > 0 else counts.get(term, 0),
                _quote(texts, term),
            )
        )
    return chosen


def product_reviews(
    engine: Engine, product_ref: str, *, skin_type: str | None = None, terms: int = 10
) -> ProductReviews:
    from skinctl.products.recommend import latest_sentiment_run

    with engine.connect() as connection:
        product = find_product(connection, product_ref)
        run_id = latest_sentiment_run(connection)
        sentiment = ReviewSentiment.sentiment if run_id is not None else null()
        statement = select(
            Review.title,
            Review.review_text,
            Review.rating,
            Review.skin_type,
            Review.skin_tone,
            sentiment.label("sentiment"),
        )
        if run_id is not None:
            statement = statement.outerjoin(
                ReviewSentiment,
                and_(ReviewSentiment.review_id == Review.id, ReviewSentiment.run_id == run_id),
            )
        statement = statement.where(Review.product_id == product.id)
        if skin_type:
            statement = statement.where(Review.skin_type == skin_type.lower())
        rows = connection.execute(statement).all()
    if not rows:
        raise NotFound(
            f"No reviews of {product.name} (id {product.id})"
            + (f" from reviewers with {skin_type} skin" if skin_type else "")
            + ".",
            hint="Load reviews with `skinctl ingest reviews sephora`.",
        )
    scored = [r for r in rows if r.sentiment is not None]
    use_model = run_id is not None and len(scored) == len(rows)
    reviews = [
        (
            review_text(r.title, r.review_text),
            r.sentiment
            if use_model
            else (label_of(r.rating) if r.rating is not None else "neutral"),
            r.skin_type,
            r.skin_tone,
        )
        for r in rows
    ]

    def by(index: int) -> list[Share]:
        groups: dict[str, list[str]] = {}
        for review in reviews:
            if review[index]:
                groups.setdefault(review[index], []).append(review[1])
        return sorted((_share(g, labels) for g, labels in groups.items()), key=lambda s: -s.reviews)

    negative = [text for text, label, *_ in reviews if label == "negative"]
    positive = [text for text, label, *_ in reviews if label == "positive"]
    counts_negative = Counter(t for text in negative for t in set(terms_of(text)))
    counts_positive = Counter(t for text in positive for t in set(terms_of(text)))
    scores = log_odds(counts_negative, counts_positive, counts_negative + counts_positive)
    return ProductReviews(
        product=product_summary(product),
        sentiment_source=f"sentiment run {run_id}" if use_model else "stars",
        skin_type=skin_type,
        overall=_share("all", [label for _, label, *_ in reviews]),
        by_skin_type=by(2),
        by_skin_tone=by(3),
        negative_terms=_top_terms(scores, counts_negative, counts_positive, negative, 1.0, terms),
        positive_terms=_top_terms(scores, counts_positive, counts_negative, positive, -1.0, terms),
    )
