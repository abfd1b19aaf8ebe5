"""Ingredient names: normalisation to a lookup key, splitting ingredient lists as written on
products, and the candidate spellings one written name stands for.

Keys are lower case with punctuation and whitespace made uniform, so "Peg-100  Stearate",
"PEG 100 stearate" and "peg-100 stearate" share a key; `compact_key` also drops every
non-alphanumeric character for a second, looser exact lookup.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_DASHES = str.maketrans(
    {
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2019": "'",
        "\u2018": "'",
        "\u00a0": " ",
        "\u00b4": "'",
        "\\": "/",
    }
)
_SPACES = re.compile(r"\s+")
_AROUND_PUNCT = re.compile(r"\s*([-/,])\s*")
_TRAILING_MARKS = re.compile(r"[\s*†‡¹²³^.;:,]+$")
_LEADING_MARKS = re.compile(r"^[\s*†‡•·.;:,\-]+")
_MAY_CONTAIN = re.compile(
    r"^\s*(?:\[?\+/-\]?|\(\+/-\))?\s*(?:may contain|peut contenir)\s*(?:\[?\(?\+/-\)?\]?)?\s*:?\s*",
    re.IGNORECASE,
)
_PLUS_MINUS = re.compile(r"^\s*\[?\(?\+/-\)?\]?\s*:?\s*")
_PARENS = re.compile(r"\([^()]*\)")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_DIGITS = re.compile(r"\d+")


@lru_cache(maxsize=262_144)
def name_key(name: str) -> str:
    """The normalised lookup key of an ingredient name ('' for a blank name)."""
    text = unicodedata.normalize("NFKC", name).translate(_DASHES).lower()
    text = _SPACES.sub(" ", text).strip()
    text = _AROUND_PUNCT.sub(r"\1", text)
    text = _TRAILING_MARKS.sub("", text)
    text = _LEADING_MARKS.sub("", text)
    return text.strip()


def compact_key(key: str) -> str:
    return _NON_ALNUM.sub("", key)


def digits_of(key: str) -> tuple[str, ...]:
    """Numbers in a name: PEG-10 and PEG-100 must never fuzzy-match each other."""
    return tuple(_DIGITS.findall(key))


_PERCENT = re.compile(r"\s*\(?\s*\d+(?:[.,]\d+)?\s*%\s*\)?")
_QUALIFIERS = re.compile(r"^(?:and|organic|certified organic|natural)\s+", re.IGNORECASE)
_COLOUR_INDEX = re.compile(r"\bci ?\d{5}\b", re.IGNORECASE)


@lru_cache(maxsize=262_144)
def clean_written(name: str) -> str:
    """A name as written, without list debris: 'May Contain (+/-):', footnote stars, a final
    dot, a concentration ('Octisalate 5%'), an 'organic' qualifier."""
    text = _SPACES.sub(" ", name.replace("\u00a0", " ")).strip()
    text = _PERCENT.sub("", text)
    text = _QUALIFIERS.sub("", text)
    text = _MAY_CONTAIN.sub("", text)
    text = _PLUS_MINUS.sub("", text)
    text = _TRAILING_MARKS.sub("", text)
    text = _LEADING_MARKS.sub("", text)
    return text.strip()


_STRUCTURE = re.compile(r"[()\[\]{},;]")


def split_top_level(text: str, separators: str = ",;") -> list[str]:
    """Split at separators outside parentheses/brackets: 'Iron Oxides (CI 77491, CI 77492)'
    stays one item, and so does '1,2-Hexanediol' (a comma between digits)."""
    parts: list[str] = []
    depth = 0
    start = 0
    for found in _STRUCTURE.finditer(text):
        char = found.group()
        index = found.start()
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(depth - 1, 0)
        elif char in separators and depth == 0:
            if (
                char == ","
                and 0 < index < len(text) - 1
                and text[index - 1].isdigit()
                and text[index + 1].isdigit()
            ):
                continue
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


# ". May Contain ..." starts a new list inside the same string.
_SENTENCE_BEFORE_MAY_CONTAIN = re.compile(r"\.\s+(?=(?:may contain|\[?\(?\+/-))", re.IGNORECASE)


def split_ingredient_text(text: str) -> list[str]:
    """An ingredient list written as one string ('Water, Glycerin, ...') into names."""
    text = _SENTENCE_BEFORE_MAY_CONTAIN.sub(", ", text)
    names = []
    for part in split_top_level(text):
        name = clean_written(part)
        if name:
            names.append(name)
    return names


def looks_like_ingredient(name: str) -> bool:
    """False for prose that ended up in an ingredient list (marketing sentences, headings)."""
    return 0 < len(name) <= 160 and len(name.split()) <= 14


def candidate_keys(name: str) -> tuple[list[str], list[str]]:
    """The keys a written name may stand for, most literal first, in two groups.

    Primary: the whole; without parentheses ('Butyrospermum Parkii (Shea) Butter' ->
    'butyrospermum parkii butter'); the parenthesised names ('Parfum (Fragrance)' ->
    'fragrance'); a colour index on its own ('Titanium Dioxide CI 77891' -> 'ci 77891').
    Alternatives: the sides of a slash ('Aqua/Water/Eau', 'Water\\Aqua\\Eau'). CosIng names such
    as ACRYLATES/C10-30 ALKYL ACRYLATE CROSSPOLYMER contain slashes too, so alternatives are
    tried only after the whole name failed exactly and fuzzily.

    Computed from the name key alone, so names that share a key share their match."""
    whole = name_key(name)
    primary: list[str] = [whole] if whole else []
    alternatives: list[str] = []

    def add(value: str, into: list[str]) -> None:
        key = name_key(value)
        if key and key not in primary and key not in alternatives:
            into.append(key)

    without_parens = _PARENS.sub(" ", whole)
    add(without_parens, primary)
    colour_indexes = _COLOUR_INDEX.findall(whole)
    if colour_indexes:
        add(_COLOUR_INDEX.sub(" ", without_parens), primary)
        for ci in colour_indexes:
            add("ci " + ci[-5:], primary)
    for inner in re.findall(r"\(([^()]*)\)", whole):
        for piece in split_top_level(inner):
            add(piece, primary)
    for base in (whole, without_parens):
        sides = [side for side in base.split("/") if side.strip()]
        if len(sides) > 1:
            for side in sides:
                add(side, alternatives)
    return primary, alternatives
