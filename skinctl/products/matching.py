"""Matching ingredient names as written on products to CosIng inventory entries.

Order, for each candidate spelling of a name (see `names.candidate_keys`): a person's mapping
(`mapped`), a known synonym such as Vitamin E -> TOCOPHEROL (`synonym`), the normalised INCI
name or the same letters and digits without punctuation (`exact`). Only names none of those
resolve are compared fuzzily (`fuzzy`), against a blocked candidate set (inventory names that
share the first or the last four letters of a word, ignoring words as common as EXTRACT or
OIL), with rapidfuzz's normalised Indel ratio and a
threshold; names whose numbers differ never match (PEG-10 is not PEG-100). Results are cached
per distinct name, so matching every product is a few dictionary lookups per name.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import fuzz, process
from sqlalchemy import Connection, select

from skinctl.db.models import Ingredient, IngredientSynonym
from skinctl.products.names import (
    candidate_keys,
    clean_written,
    compact_key,
    digits_of,
    name_key,
)

FUZZY_THRESHOLD = 90.0  # rapidfuzz ratio, 0..100; below it a name stays unmatched
MIN_FUZZY_LENGTH = 5  # short names ('ci', 'peg') are too ambiguous to guess
MAX_CANDIDATES = 3000  # fuzzy compares at most this many names, from the most specific blocks

# Common names on labels -> the INCI name CosIng lists. Keys are name keys (lower case).
KNOWN_SYNONYMS: dict[str, str] = {
    "water": "AQUA",
    "eau": "AQUA",
    "purified water": "AQUA",
    "deionized water": "AQUA",
    "distilled water": "AQUA",
    "vitamin e": "TOCOPHEROL",
    "vit e": "TOCOPHEROL",
    "vitamin e acetate": "TOCOPHERYL ACETATE",
    "vitamin c": "ASCORBIC ACID",
    "vitamin a": "RETINOL",
    "vitamin b3": "NIACINAMIDE",
    "vitamin b5": "PANTHENOL",
    "provitamin b5": "PANTHENOL",
    "pro-vitamin b5": "PANTHENOL",
    "fragrance": "PARFUM",
    "perfume": "PARFUM",
    "aroma": "AROMA",
    "flavor": "AROMA",
    "flavour": "AROMA",
    "glycerine": "GLYCERIN",
    "shea butter": "BUTYROSPERMUM PARKII BUTTER",
    "aloe vera": "ALOE BARBADENSIS LEAF JUICE",
    "aloe vera gel": "ALOE BARBADENSIS LEAF JUICE",
    "jojoba oil": "SIMMONDSIA CHINENSIS SEED OIL",
    "argan oil": "ARGANIA SPINOSA KERNEL OIL",
    "squalene": "SQUALENE",
    "hyaluronic acid": "HYALURONIC ACID",
    "titanium dioxide": "CI 77891",
    "iron oxides": "CI 77491",
    "iron oxide": "CI 77491",
    "ultramarines": "CI 77007",
    "carmine": "CI 75470",
    "alcohol denat": "ALCOHOL DENAT.",
    "sd alcohol 40": "ALCOHOL DENAT.",
    "cerbomer": "CARBOMER",
    "octisalate": "ETHYLHEXYL SALICYLATE",
    "avobenzone": "BUTYL METHOXYDIBENZOYLMETHANE",
    "octinoxate": "ETHYLHEXYL METHOXYCINNAMATE",
    "oxybenzone": "BENZOPHENONE-3",
    "castor oil": "RICINUS COMMUNIS SEED OIL",
    "coconut oil": "COCOS NUCIFERA OIL",
    "olive oil": "OLEA EUROPAEA FRUIT OIL",
    "olea europaea oil": "OLEA EUROPAEA FRUIT OIL",
    "sunflower seed oil": "HELIANTHUS ANNUUS SEED OIL",
    "capric triglyceride": "CAPRYLIC/CAPRIC TRIGLYCERIDE",
    "caprylic capric triglyceride": "CAPRYLIC/CAPRIC TRIGLYCERIDE",
    "euphorbia cerifera wax": "EUPHORBIA CERIFERA CERA",
    "candelilla wax": "EUPHORBIA CERIFERA CERA",
    "beeswax": "CERA ALBA",
    "d-limonene": "LIMONENE",
    "yeast extract": "FAEX",
    "witch hazel": "HAMAMELIS VIRGINIANA WATER",
    "ci 77019": "MICA",
    "ci 77861": "TIN OXIDE",
    "arganine": "ARGININE",
}


def block_keys(key: str) -> set[str]:
    """Fuzzy-match blocks of a name: the first and last four letters of each word, together
    with the name's numbers (only names with the same numbers may match)."""
    digits = ",".join(digits_of(key))
    keys = set()
    for word in re.split(r"[^0-9a-z]+", key):
        if len(word) >= 4:
            keys.add(f"<{word[:4]}#{digits}")
            keys.add(f">{word[-4:]}#{digits}")
    return keys


@dataclass(frozen=True)
class Match:
    ingredient_id: int | None
    inci_name: str | None
    method: str  # exact | synonym | mapped | fuzzy | none
    score: float | None  # 1.0 for exact/synonym/mapped, the fuzzy ratio / 100, None for none


NO_MATCH = Match(None, None, "none", None)


class IngredientIndex:
    """The inventory's names in memory, ready to match names as written."""

    def __init__(
        self,
        ingredients: Iterable[tuple[int, str, str]],
        mappings: Iterable[tuple[str, int]] = (),
        threshold: float = FUZZY_THRESHOLD,
    ) -> None:
        self.threshold = threshold
        self.inci: dict[int, str] = {}
        self.by_key: dict[str, int] = {}
        by_compact: dict[str, set[int]] = defaultdict(set)
        blocks: dict[str, list[str]] = defaultdict(list)
        for ingredient_id, inci_name, key in ingredients:
            self.inci[ingredient_id] = inci_name
            self.by_key[key] = ingredient_id
            compact = compact_key(key)
            if compact:
                by_compact[compact].add(ingredient_id)
            for block in block_keys(key):
                blocks[block].append(key)
        self.blocks = dict(blocks)
        # A compact spelling that two inventory names share identifies neither.
        self.by_compact = {c: next(iter(ids)) for c, ids in by_compact.items() if len(ids) == 1}
        self.mapped = {key: ingredient_id for key, ingredient_id in mappings}
        self.synonyms = {
            key: self.by_key[name_key(inci)]
            for key, inci in KNOWN_SYNONYMS.items()
            if name_key(inci) in self.by_key
        }
        self._cache: dict[str, Match] = {}  # by name key
        self._written_cache: dict[str, Match] = {}  # by the name exactly as written

    @classmethod
    def load(cls, connection: Connection, threshold: float = FUZZY_THRESHOLD) -> IngredientIndex:
        ingredients = connection.execute(
            select(Ingredient.id, Ingredient.inci_name, Ingredient.name_key)
        ).all()
        mappings = connection.execute(
            select(IngredientSynonym.name_key, IngredientSynonym.ingredient_id)
        ).all()
        return cls(ingredients, mappings, threshold)

    def __len__(self) -> int:
        return len(self.inci)

    def match(self, written: str) -> Match:
        found = self._written_cache.get(written)
        if found is None:
            key = name_key(clean_written(written))
            found = self._cache.get(key) if key else NO_MATCH
            if found is None:
                found = self._cache[key] = self._match(key)
            self._written_cache[written] = found
        return found

    def _found(self, ingredient_id: int, method: str, score: float = 1.0) -> Match:
        return Match(ingredient_id, self.inci[ingredient_id], method, score)

    def _exact(self, key: str) -> Match | None:
        if key in self.mapped and self.mapped[key] in self.inci:
            return self._found(self.mapped[key], "mapped")
        if key in self.synonyms:
            return self._found(self.synonyms[key], "synonym")
        if key in self.by_key:
            return self._found(self.by_key[key], "exact")
        compact = compact_key(key)
        if compact in self.by_compact:
            return self._found(self.by_compact[compact], "exact")
        return None

    def _match(self, key: str) -> Match:
        primary, alternatives = candidate_keys(key)
        for candidate in primary:
            found = self._exact(candidate)
            if found:
                return found
        best: Match = NO_MATCH
        for candidate in primary[:2]:  # the whole name and the name without its parentheses
            found = self._fuzzy(candidate)
            if found.score is not None and (best.score is None or found.score > best.score):
                best = found
        if best.ingredient_id is not None:
            return best
        for candidate in alternatives:
            found = self._exact(candidate)
            if found:
                return found
        for candidate in alternatives:
            found = self._fuzzy(candidate)
            if found.score is not None and (best.score is None or found.score > best.score):
                best = found
        return best

    def _fuzzy(self, key: str) -> Match:
        compact = compact_key(key)
        if len(compact) < MIN_FUZZY_LENGTH:
            return NO_MATCH
        candidates: set[str] = set()
        # Sorted so that the same name always meets the same candidates (sets and hashing
        # would otherwise make ties, and so re-runs, differ).
        blocks = sorted((self.blocks.get(b, []) for b in sorted(block_keys(key))), key=len)
        for block in blocks:
            if candidates and len(candidates) + len(block) > MAX_CANDIDATES:
                break
            candidates.update(block)
        if not candidates:
            return NO_MATCH
        found = process.extractOne(
            key, sorted(candidates), scorer=fuzz.ratio, score_cutoff=self.threshold
        )
        if found is None:
            return NO_MATCH
        choice, score, _ = found
        return self._found(self.by_key[choice], "fuzzy", round(score / 100.0, 4))

    def suggestions(self, written: str, limit: int = 3) -> list[str]:
        """Closest inventory names for a hint, with no threshold."""
        key = name_key(written)
        found = process.extract(key, list(self.by_key), scorer=fuzz.WRatio, limit=limit)
        return [self.inci[self.by_key[choice]] for choice, _score, _ in found]
