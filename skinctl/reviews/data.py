"""Training data from the reviews themselves: text (title and body) labelled by its stars
(1-2 negative, 3 neutral, 4-5 positive), split so that no product and no author is on both
sides of train / validation / test."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Engine, select

from skinctl.db.models import SENTIMENTS, Review
from skinctl.errors import NotFound

CLASSES: list[str] = list(SENTIMENTS)  # negative, neutral, positive: the model's output order


def label_of(rating: int) -> str:
    return "negative" if rating <= 2 else "neutral" if rating == 3 else "positive"


def review_text(title: str | None, body: str | None) -> str:
    """What the model reads: the title, then the body, with every run of whitespace one space.
    (A line or paragraph separator left inside a token would split the saved vocabulary file,
    which is one term per line, and the model would not load again.)"""
    return " ".join(". ".join(part for part in (title, body) if part).split())


@dataclass(frozen=True)
class Example:
    review_id: int
    text: str
    label: int  # index into CLASSES
    product: str
    author: str | None
    skin_type: str | None


@dataclass(frozen=True)
class Split:
    train: list[Example]
    val: list[Example]
    test: list[Example]
    # Reviews left out of val/test because their author also wrote a training review.
    dropped_shared_authors: int

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def load_examples(engine: Engine) -> list[Example]:
    """Every review with a rating and some text."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                Review.id,
                Review.title,
                Review.review_text,
                Review.rating,
                Review.product_external_id,
                Review.author_id,
                Review.skin_type,
            )
            .where(Review.rating.is_not(None))
            .order_by(Review.id)
        ).all()
    examples = [
        Example(
            rid,
            review_text(title, body),
            CLASSES.index(label_of(rating)),
            product,
            author,
            skin_type,
        )
        for rid, title, body, rating, product, author, skin_type in rows
        if (title or body) and rating is not None  # the WHERE keeps rated reviews only
    ]
    if not examples:
        raise NotFound(
            "No reviews with a rating and text are loaded.",
            hint="Load some with `skinctl ingest reviews sephora`.",
        )
    return examples


def split_examples(
    examples: list[Example], *, seed: int, val_fraction: float, test_fraction: float
) -> Split:
    """Products are dealt to test, val and train (shuffled, until each holds its share of
    reviews); then val and test lose the reviews of authors who also wrote a training review."""
    by_product = Counter(e.product for e in examples)
    products = sorted(by_product)
    random.Random(seed).shuffle(products)
    total = len(examples)
    where: dict[str, str] = {}
    filled = {"test": 0, "val": 0}
    for product in products:
        if filled["test"] < test_fraction * total:
            part = "test"
        elif filled["val"] < val_fraction * total:
            part = "val"
        else:
            part = "train"
        where[product] = part
        if part in filled:
            filled[part] += by_product[product]
    parts: dict[str, list[Example]] = {"train": [], "val": [], "test": []}
    for example in examples:
        parts[where[example.product]].append(example)
    train_authors = {e.author for e in parts["train"] if e.author}
    dropped = 0
    for name in ("val", "test"):
        kept = [e for e in parts[name] if not e.author or e.author not in train_authors]
        dropped += len(parts[name]) - len(kept)
        parts[name] = kept
    # An author in both val and test: keep them in test only.
    test_authors = {e.author for e in parts["test"] if e.author}
    kept = [e for e in parts["val"] if not e.author or e.author not in test_authors]
    dropped += len(parts["val"]) - len(kept)
    parts["val"] = kept
    return Split(parts["train"], parts["val"], parts["test"], dropped)
