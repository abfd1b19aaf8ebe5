"""What a CosIng annex entry means for one product type.

Annex conditions are written per product type, often in lettered parts ("a) Rinse-off products,
except oral care products / b) Oral care products / c) Leave-on products"), with the maximum
concentrations lettered the same way ("a) 2.5% (acid) / b) 1.7% / c) 0.5%"). An Annex II
prohibition may name an exception ("with the exception of entry 14 in Annex III"): it holds for
every product type the exception does not cover (hydroquinone: artificial nail systems only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class ProductUse(StrEnum):
    """The product types an annex condition can name (`--product-type`)."""

    LEAVE_ON = "leave-on"  # leave-on skin care: creams, serums, sunscreens (the default)
    RINSE_OFF = "rinse-off"  # cleansers, masks, body wash
    EYE = "eye"
    LIP = "lip"
    HAIR = "hair"
    HAIR_DYE = "hair-dye"
    NAIL = "nail"
    ORAL = "oral-care"


USE_NAMES = {
    ProductUse.LEAVE_ON: "leave-on skin care",
    ProductUse.RINSE_OFF: "rinse-off products",
    ProductUse.EYE: "eye products",
    ProductUse.LIP: "lip products",
    ProductUse.HAIR: "hair products",
    ProductUse.HAIR_DYE: "hair dye products",
    ProductUse.NAIL: "nail products",
    ProductUse.ORAL: "oral care products",
}

# Words of a condition and the product types they cover. Leave-on covers eye and lip products.
_USE_WORDS: tuple[tuple[re.Pattern[str], frozenset[ProductUse]], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), frozenset(uses))
    for pattern, uses in (
        (r"rinse[- ]off", {ProductUse.RINSE_OFF}),
        (r"leave[- ]on", {ProductUse.LEAVE_ON, ProductUse.EYE, ProductUse.LIP}),
        (r"\bnail", {ProductUse.NAIL}),
        (r"hair dye|oxidative|colouring|coloring", {ProductUse.HAIR_DYE}),
        (r"\bhair|\bscalp", {ProductUse.HAIR, ProductUse.HAIR_DYE}),
        (r"\boral|tooth|mouth", {ProductUse.ORAL}),
        (r"\beye|mucous", {ProductUse.EYE}),
        (r"\blip", {ProductUse.LIP}),
        (
            r"\bface|\bskin|\bbody|\bhand|\bfoot|\bsun|\bcream|\bdeodorant|antiperspirant",
            {ProductUse.LEAVE_ON},
        ),
    )
)
_EXCEPT = re.compile(r"\b(except|excluding|other than)\b", re.IGNORECASE)
_LETTERED = re.compile(r"^\s*\(?([a-z])\)\s*", re.IGNORECASE | re.MULTILINE)
ANNEX_II_EXCEPTION = re.compile(
    r"exception of (?:the )?entr(?:y|ies) (\w+) (?:in|of) Annex (III|V|VI|IV)", re.IGNORECASE
)


def lettered_parts(text: str | None) -> dict[str, str]:
    """'a) Rinse-off ...\\nb) Oral care' -> {'a': 'Rinse-off ...', 'b': 'Oral care'};
    unlettered text -> {'': text}."""
    if not text:
        return {}
    marks = list(_LETTERED.finditer(text))
    if not marks:
        return {"": " ".join(text.split())}
    parts = {}
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() if following else len(text)
        body = " ".join(text[mark.end() : end].split())
        # Footnotes after the last part ("Footnote 1: ...") are not part of it.
        body = re.split(r"\bFootnote\b", body)[0].strip()
        parts.setdefault(mark.group(1).lower(), body)
    return parts


def uses_named(text: str) -> set[ProductUse] | None:
    """The product types a condition covers, or None when its words name none we know
    ("Professional use"): such a condition is shown, never assumed to apply or not.
    "Rinse-off products, except oral care products" covers rinse-off and not oral care."""
    head, *rest = _EXCEPT.split(text, maxsplit=1)
    excepted = rest[-1] if rest else ""
    covered = {use for pattern, uses in _USE_WORDS if pattern.search(head) for use in uses}
    if not covered:
        return None
    removed = {
        use for pattern, uses in _USE_WORDS if excepted and pattern.search(excepted) for use in uses
    }
    return covered - removed


@dataclass(frozen=True)
class Condition:
    """One product-type part of an entry and its limits, as written."""

    part: str  # the letter ("a"), or "" for an entry with one condition
    product_type: str | None
    max_concentration: str | None
    applies: bool | None  # to the product type asked about; None: its words name no type we know


def conditions_for(
    product_type: str | None, max_concentration: str | None, use: ProductUse
) -> list[Condition]:
    """The parts of an entry's conditions, each marked with whether it covers `use`. An entry
    without a product type covers every type."""
    types = lettered_parts(product_type)
    limits = lettered_parts(max_concentration)
    if not types:
        return [
            Condition(
                "", None, " ".join(max_concentration.split()) if max_concentration else None, True
            )
        ]
    result = []
    for letter, text in types.items():
        covered = uses_named(text)
        limit = (
            limits.get(letter) if letter in limits else limits.get("") if len(types) == 1 else None
        )
        if limit is None and len(limits) == 1 and "" in limits:
            limit = limits[""]
        result.append(Condition(letter, text, limit, None if covered is None else use in covered))
    return result


def use_of_category(category_path: str | None, product_type: str | None) -> ProductUse:
    """The annex product type of a product from its category (Sephora's category tree,
    skincare-clean's product_type): cleansers, masks and washes rinse off; eye and lip care."""
    text = f"{category_path or ''} > {product_type or ''}".lower()
    if re.search(r"\beye", text):
        return ProductUse.EYE
    if re.search(r"\blip", text):
        return ProductUse.LIP
    if re.search(r"cleans|wash|mask|exfoliat|peel|bath|scrub|shampoo|makeup remover", text):
        return ProductUse.RINSE_OFF
    if "hair" in text:
        return ProductUse.HAIR
    return ProductUse.LEAVE_ON
