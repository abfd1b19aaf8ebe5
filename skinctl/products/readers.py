"""One reader per file format. Each yields `ReadRow` (a typed record and the physical line it
starts on) or `RowProblem` (file, line, reason) and carries on with the next row.

Quirks handled here, once: a byte-order mark, preamble lines before the header (CosIng starts
with `sep=,` and a creation date), CRLF or LF, quoted cells with line breaks, Python-list
literals in cells, prices such as `£5.20`, names padded with spaces, `-` for empty.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from skinctl.errors import InputRejected
from skinctl.products.names import (
    clean_written,
    looks_like_ingredient,
    name_key,
    split_ingredient_text,
    split_top_level,
)

# Sephora ingredient lists run to tens of kilobytes in one cell.
csv.field_size_limit(16 * 1024 * 1024)
MAX_LITERAL_CHARS = 1_000_000


@dataclass(frozen=True)
class RowProblem:
    file: str
    line: int
    reason: str
    detail: str


@dataclass(frozen=True)
class ProductRecord:
    source: str
    external_id: str
    name: str
    brand: str | None
    product_type: str | None
    category_path: str | None
    url: str | None
    price: Decimal | None
    currency: str | None
    size: str | None
    rating: float | None
    review_count: int | None
    highlights: list[str]
    ingredients: list[str]  # as written, in order: product_ingredients rows, not a column


@dataclass(frozen=True)
class ReviewRecord:
    source: str
    external_id: str
    product_external_id: str
    author_id: str
    rating: int | None
    is_recommended: bool | None
    helpfulness: float | None
    total_feedback_count: int | None
    skin_type: str | None
    skin_tone: str | None
    eye_color: str | None
    hair_color: str | None
    title: str | None
    review_text: str | None
    submitted_on: date | None


@dataclass(frozen=True)
class IngredientRecord:
    inci_name: str
    name_key: str
    cosing_ref_no: str | None
    inn_name: str | None
    ph_eur_name: str | None
    cas_no: str | None
    ec_no: str | None
    description: str | None
    restriction: str | None
    functions: list[str]
    update_date: date | None


@dataclass(frozen=True)
class AnnexRecord:
    annex: str
    reference_number: str
    chemical_name: str | None
    cas_no: str | None
    ec_no: str | None
    regulation: str | None
    identified_ingredients: list[str]
    update_date: date | None
    raw: dict[str, str]
    glossary_name: str | None
    product_type: str | None
    max_concentration: str | None
    other_limitations: str | None
    conditions: str | None
    conditional: bool
    colour: str | None
    entry_no: int = 1  # numbers the rows that share a reference number, in file order


Record = ProductRecord | ReviewRecord | IngredientRecord | AnnexRecord
NOT_COLUMNS = {"ingredients"}


def columns(record: Record) -> dict[str, Any]:
    """The record as the column values of its table."""
    return {f.name: getattr(record, f.name) for f in fields(record) if f.name not in NOT_COLUMNS}


@dataclass
class ReadRow:
    line: int
    record: Record
    raw: dict[str, str] = field(default_factory=dict)


class BadRow(Exception):
    """Raised inside a row parser: the row is reported with this reason and skipped."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# Bytes of a file checked at a time for UTF-8 (`_encoding_of`).
ENCODING_BLOCK = 16 << 20


def _encoding_of(path: Path) -> str:
    """utf-8-sig, or cp1252 for exports saved from spreadsheet programs on Windows. The file is
    checked a block at a time by Arrow's UTF-8 validation, which makes no text (Python's decoder
    took 0.85 s for a 450 MB review file, Arrow 0.14 s)."""
    carry = b""
    try:
        with path.open("rb") as handle:
            while block := handle.read(ENCODING_BLOCK):
                data = carry + block
                complete = _complete_utf8(data)
                carry = data[complete:]
                if not _valid_utf8(data, complete):
                    return "cp1252"
    except OSError as error:
        raise InputRejected(f"Cannot read {path}: {error.strerror or error}.") from None
    return "cp1252" if carry else "utf-8-sig"


def _complete_utf8(data: bytes) -> int:
    """The length of `data` without an incomplete UTF-8 character at its end (the next block
    holds the rest of it)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data)
        if byte >= 0xC0:  # the first byte of a character of 2, 3 or 4 bytes
            size = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if back >= size else len(data) - back
    return len(data)  # continuation bytes only: not UTF-8, which the check says


def _valid_utf8(data: bytes, length: int) -> bool:
    import numpy as np
    import pyarrow as pa

    offsets = pa.py_buffer(np.array([0, length], np.int32))
    value = pa.Array.from_buffers(pa.binary(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        value.cast(pa.string())  # validates the bytes as UTF-8
    except pa.ArrowInvalid:
        return False
    return True


class CsvCells:
    """The rows of a CSV file as lists of cells, with the line each row starts on, streamed;
    `header` is set once the header row is read.

    The header is the first row holding every `required` column; anything before it is a
    preamble. Blank lines are not rows; a row with another number of cells than the header is
    reported. A file whose header lacks a required column is one error naming the missing
    columns (raised when the iteration reaches the end of the file)."""

    def __init__(self, path: Path, required: tuple[str, ...]) -> None:
        self.path = path
        self.required = required
        self.header: list[str] | None = None

    def __iter__(self) -> Iterator[tuple[int, list[str]] | RowProblem]:
        encoding = _encoding_of(self.path)
        with self.path.open(encoding=encoding, errors="replace", newline="") as handle:
            yield from self._rows(csv.reader(handle))

    def _rows(self, reader: Any) -> Iterator[tuple[int, list[str]] | RowProblem]:
        path, required = self.path, self.required
        closest: tuple[int, list[str]] = (0, [])  # the preamble row most like a header
        previous_line = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                start = previous_line + 1
                previous_line = reader.line_num
                yield RowProblem(str(path), start, "unreadable_csv", str(error))
                continue
            start = previous_line + 1
            previous_line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if self.header is None:
                stripped = [cell.strip().lstrip("\ufeff") for cell in cells]
                present = sum(column in stripped for column in required)
                if present == len(required):
                    self.header = stripped
                elif present > closest[0]:
                    closest = (present, stripped)
                continue
            if len(cells) != len(self.header):
                yield RowProblem(
                    str(path),
                    start,
                    "column_count",
                    f"expected {len(self.header)} columns, found {len(cells)}",
                )
                continue
            yield start, cells
        if self.header is None:
            if closest[0]:
                missing = [column for column in required if column not in closest[1]]
                raise InputRejected(
                    f"{path} has no column {', '.join(repr(c) for c in missing)} "
                    f"(its header has {len(closest[1])} columns).",
                    hint="Check the file and the --format option.",
                )
            raise InputRejected(
                f"{path} has no header row with the columns {', '.join(required)}.",
                hint="Check the file and the --format option.",
            )


def iter_csv_rows(
    path: Path, required: tuple[str, ...]
) -> Iterator[tuple[int, dict[str, str]] | RowProblem]:
    """Rows of a CSV file as {header: cell}, with the line each row starts on (`CsvCells`)."""
    rows = CsvCells(path, required)
    for item in rows:
        if isinstance(item, RowProblem):
            yield item
        else:
            line, cells = item
            assert rows.header is not None  # set before the first row
            yield line, dict(zip(rows.header, cells, strict=True))


def _rows(
    path: Path, required: tuple[str, ...], parse: Callable[[dict[str, str]], Record]
) -> Iterator[ReadRow | RowProblem]:
    for item in iter_csv_rows(path, required):
        if isinstance(item, RowProblem):
            yield item
            continue
        line, row = item
        try:
            yield ReadRow(line, parse(row), row)
        except BadRow as bad:
            yield RowProblem(str(path), line, bad.reason, bad.detail)


# --- cell parsers -----------------------------------------------------------------------------

_SPACES = re.compile(r"\s+")
CURRENCY_SYMBOLS = {"£": "GBP", "$": "USD", "€": "EUR"}


def text_cell(value: str | None, *, dash_is_empty: bool = False) -> str | None:
    """A trimmed cell with inner whitespace runs kept; None when blank (or `-`)."""
    if value is None:
        return None
    value = value.strip()
    if not value or (dash_is_empty and value == "-"):
        return None
    return value


def name_cell(value: str | None, *, dash_is_empty: bool = False) -> str | None:
    """A padded name: trimmed and with whitespace runs (line breaks too) made one space."""
    value = text_cell(value, dash_is_empty=dash_is_empty)
    return _SPACES.sub(" ", value) if value else None


def float_cell(value: str | None, column: str) -> float | None:
    value = text_cell(value)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise BadRow("bad_number", f"{column}={value!r} is not a number") from None


def int_cell(value: str | None, column: str) -> int | None:
    number = float_cell(value, column)
    if number is None:
        return None
    if not number.is_integer():
        raise BadRow("bad_number", f"{column}={value!r} is not a whole number")
    return int(number)


def price_cell(
    value: str | None, column: str, default_currency: str
) -> tuple[Decimal | None, str | None]:
    """'£5.20' -> (Decimal('5.20'), 'GBP'); '35' -> (Decimal('35'), default_currency)."""
    value = text_cell(value)
    if value is None:
        return None, None
    currency = default_currency
    if value[0] in CURRENCY_SYMBOLS:
        currency = CURRENCY_SYMBOLS[value[0]]
        value = value[1:].strip()
    try:
        price = Decimal(value.replace(",", ""))
    except InvalidOperation:
        raise BadRow("bad_price", f"{column}={value!r} is not a price") from None
    if price < 0 or not price.is_finite():
        raise BadRow("bad_price", f"{column}={value!r} is not a price")
    return price.quantize(Decimal("0.01")), currency


def date_cell(value: str | None, column: str, formats: tuple[str, ...]) -> date | None:
    value = text_cell(value, dash_is_empty=True)
    if value is None:
        return None
    for fmt in formats:
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise BadRow("bad_date", f"{column}={value!r} is not a date")


def list_literal_cell(value: str | None, column: str) -> list[str]:
    """A Python-list literal such as "['water', 'glycerin']", read with ast.literal_eval
    (never eval): anything but a list of strings is a bad row."""
    value = text_cell(value)
    if value is None:
        return []
    if len(value) > MAX_LITERAL_CHARS:
        raise BadRow("bad_list", f"{column} is longer than {MAX_LITERAL_CHARS} characters")
    try:
        # Cells such as 'C:\Aqua' hold invalid escapes, which Python parses with a warning
        # (an error under -W error); the literal is still well defined.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning))
            parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as error:
        raise BadRow(
            "bad_list", f"{column} is not a list literal ({type(error).__name__}: {value[:60]!r})"
        ) from None
    if not isinstance(parsed, list | tuple) or not all(isinstance(v, str) for v in parsed):
        raise BadRow("bad_list", f"{column} is not a list of strings")
    return list(parsed)


def split_names(value: str | None, *, dash_is_empty: bool = True) -> list[str]:
    value = text_cell(value, dash_is_empty=dash_is_empty)
    if value is None:
        return []
    return [n for n in (name_cell(p) for p in value.split(",")) if n and n != "-"]


def dedupe_ingredients(names: list[str]) -> list[str]:
    """Keep the first occurrence of each name (gift sets repeat whole lists)."""
    seen: set[str] = set()
    result = []
    for name in names:
        key = name_key(name)
        if key and key not in seen and looks_like_ingredient(name):
            seen.add(key)
            result.append(name)
    return result


def sephora_ingredients(items: list[str]) -> list[str]:
    """Sephora cells hold a list of strings: whole ingredient lists, headings of the parts of a
    set ('Capri Eau de Parfum:'), and notes ('-Niacinamide: brightens'). Headings and notes are
    not ingredients."""
    names: list[str] = []
    for item in items:
        item = item.strip()
        if not item or item.endswith(":") or item.startswith("-"):
            continue
        names.extend(split_ingredient_text(item))
    return dedupe_ingredients(names)


# --- the formats ------------------------------------------------------------------------------


def _sephora_product(row: dict[str, str]) -> ProductRecord:
    external_id = text_cell(row["product_id"])
    name = name_cell(row["product_name"])
    if not external_id:
        raise BadRow("missing_id", "product_id is blank")
    if not name:
        raise BadRow("missing_name", f"product_name is blank for {external_id}")
    price, currency = price_cell(row.get("price_usd"), "price_usd", "USD")
    categories = [
        c
        for c in (
            name_cell(row.get(k))
            for k in ("primary_category", "secondary_category", "tertiary_category")
        )
        if c
    ]
    rating = float_cell(row.get("rating"), "rating")
    if rating is not None and not 0 <= rating <= 5:
        raise BadRow("bad_rating", f"rating={rating} is outside 0..5")
    return ProductRecord(
        source="sephora",
        external_id=external_id,
        name=name,
        brand=name_cell(row.get("brand_name")),
        product_type=categories[-1] if categories else None,
        category_path=" > ".join(categories) or None,
        url=None,
        price=price,
        currency=currency,
        size=name_cell(row.get("size")),
        rating=rating,
        review_count=int_cell(row.get("reviews"), "reviews"),
        highlights=[
            h.strip() for h in list_literal_cell(row.get("highlights"), "highlights") if h.strip()
        ],
        ingredients=sephora_ingredients(list_literal_cell(row.get("ingredients"), "ingredients")),
    )


def _skincare_clean_product(row: dict[str, str]) -> ProductRecord:
    name = name_cell(row["product_name"])
    url = text_cell(row["product_url"])
    if not name:
        raise BadRow("missing_name", "product_name is blank")
    if not url:
        raise BadRow("missing_id", f"product_url is blank for {name!r}")
    price, currency = price_cell(row.get("price"), "price", "GBP")
    product_type = name_cell(row.get("product_type"))
    names = [clean_written(n) for n in list_literal_cell(row.get("clean_ingreds"), "clean_ingreds")]
    return ProductRecord(
        source="skincare-clean",
        # The same URL is listed for several sizes of one product, each with its own name.
        external_id=f"{url}#{name}",
        name=name,
        brand=None,
        product_type=product_type,
        category_path=product_type,
        url=url,
        price=price,
        currency=currency,
        size=None,
        rating=None,
        review_count=None,
        highlights=[],
        ingredients=dedupe_ingredients(names),
    )


PRODUCT_FORMATS: dict[str, tuple[tuple[str, ...], Callable[[dict[str, str]], ProductRecord]]] = {
    "sephora": (
        ("product_id", "product_name", "brand_name", "ingredients", "price_usd"),
        _sephora_product,
    ),
    "skincare-clean": (
        ("product_name", "product_url", "product_type", "clean_ingreds", "price"),
        _skincare_clean_product,
    ),
}


def read_products(path: Path, fmt: str) -> Iterator[ReadRow | RowProblem]:
    required, parse = PRODUCT_FORMATS[fmt]
    return _rows(path, required, parse)


def _bool_cell(value: str | None, column: str) -> bool | None:
    number = float_cell(value, column)
    if number is None:
        return None
    if number not in (0.0, 1.0):
        raise BadRow("bad_flag", f"{column}={value!r} is neither 0 nor 1")
    return number == 1.0


# What the reviews table holds (its VARCHAR lengths, its INTEGER count): a cell beyond is a
# reported row, not a failed load.
REVIEW_LENGTHS = {
    "author_id": 64,
    "skin_type": 20,
    "skin_tone": 30,
    "eye_color": 30,
    "hair_color": 30,
}
MAX_COUNT = 2**31 - 1


def _checked_review(record: ReviewRecord) -> ReviewRecord:
    for column, length in REVIEW_LENGTHS.items():
        value = getattr(record, column)
        if value is not None and len(value) > length:
            raise BadRow("too_long", f"{column}={value[:80]!r} is longer than {length} characters")
    count = record.total_feedback_count
    if count is not None and not 0 <= count <= MAX_COUNT:
        raise BadRow("bad_number", f"total_feedback_count={count} is outside 0..{MAX_COUNT}")
    return record


def _sephora_review(row: dict[str, str]) -> ReviewRecord:
    product = text_cell(row["product_id"])
    author = text_cell(row["author_id"])
    if not product:
        raise BadRow("missing_id", "product_id is blank")
    if not author:
        raise BadRow("missing_id", "author_id is blank")
    rating = int_cell(row.get("rating"), "rating")
    if rating is not None and not 1 <= rating <= 5:
        raise BadRow("bad_rating", f"rating={rating} is outside 1..5")
    submitted = date_cell(row.get("submission_time"), "submission_time", ("%Y-%m-%d",))
    title, body = text_cell(row.get("review_title")), text_cell(row.get("review_text"))
    if not _has_words(title) and not _has_words(body):
        what = "empty" if not (title or body) else f"not text ({(body or title or '')[:40]!r})"
        raise BadRow("empty_text", f"review of {product} by {author} is {what}")
    # The unnamed first column numbers the rows of the original file; with author, product and
    # date it identifies a review (one author reviews one product several times a day).
    index = text_cell(row.get(""))
    if index is None:
        # Files without that column (the 2023 extracts): the text tells two reviews apart.
        index = hashlib.sha256(f"{title or ''}\n{body or ''}".encode()).hexdigest()[:12]
    return _checked_review(
        ReviewRecord(
            source="sephora",
            external_id=f"{product}:{author}:{submitted or ''}:{index}",
            product_external_id=product,
            author_id=author,
            rating=rating,
            is_recommended=_bool_cell(row.get("is_recommended"), "is_recommended"),
            helpfulness=float_cell(row.get("helpfulness"), "helpfulness"),
            total_feedback_count=int_cell(row.get("total_feedback_count"), "total_feedback_count"),
            skin_type=(text_cell(row.get("skin_type")) or "").lower() or None,
            skin_tone=text_cell(row.get("skin_tone")),
            eye_color=text_cell(row.get("eye_color")),
            hair_color=text_cell(row.get("hair_color")),
            title=title,
            review_text=body,
            submitted_on=submitted,
        )
    )


_WORD = re.compile(r"[^\W\d_]{2,}")


def _has_words(value: str | None) -> bool:
    return bool(value and _WORD.search(value))


REVIEW_COLUMNS = ("author_id", "rating", "product_id", "submission_time", "review_text")


def read_reviews(path: Path, fmt: str = "sephora") -> Iterator[ReadRow | RowProblem]:
    return _rows(path, REVIEW_COLUMNS, _sephora_review)


COSING_DATES = ("%d/%m/%Y", "%Y-%m-%d")


def _cosing_ingredient(row: dict[str, str]) -> IngredientRecord:
    inci = name_cell(row["INCI name"], dash_is_empty=True)
    if not inci:
        raise BadRow(
            "missing_name", f"INCI name is blank (COSING Ref No {row['COSING Ref No'].strip()!r})"
        )
    key = name_key(inci)
    if not key:
        raise BadRow("missing_name", f"INCI name {inci!r} has no letters or digits")
    functions = [f.upper() for f in split_names(row.get("Function"))]
    return IngredientRecord(
        inci_name=inci.upper(),
        name_key=key,
        cosing_ref_no=text_cell(row["COSING Ref No"], dash_is_empty=True),
        inn_name=name_cell(row.get("INN name"), dash_is_empty=True),
        ph_eur_name=name_cell(row.get("Ph. Eur. Name"), dash_is_empty=True),
        cas_no=name_cell(row.get("CAS No"), dash_is_empty=True),
        ec_no=name_cell(row.get("EC No"), dash_is_empty=True),
        description=name_cell(row.get("Chem/IUPAC Name / Description"), dash_is_empty=True),
        restriction=name_cell(row.get("Restriction"), dash_is_empty=True),
        functions=list(dict.fromkeys(functions)),
        update_date=date_cell(row.get("Update Date"), "Update Date", COSING_DATES),
    )


def read_cosing_inventory(path: Path) -> Iterator[ReadRow | RowProblem]:
    return _rows(path, ("COSING Ref No", "INCI name", "Function"), _cosing_ingredient)


def _annex_common(row: dict[str, str], annex: str) -> dict[str, Any]:
    reference = text_cell(row["Reference Number"], dash_is_empty=True)
    if not reference:
        raise BadRow("missing_id", "Reference Number is blank")
    identified = [
        n.upper() for n in split_names(row.get("Identified INGREDIENTS or substances e.g."))
    ]
    return {
        "annex": annex,
        "reference_number": reference,
        "chemical_name": name_cell(row.get("Chemical name / INN"), dash_is_empty=True),
        "cas_no": name_cell(row.get("CAS Number"), dash_is_empty=True),
        "ec_no": name_cell(row.get("EC Number"), dash_is_empty=True),
        "regulation": name_cell(row.get("Regulation"), dash_is_empty=True),
        "identified_ingredients": list(dict.fromkeys(identified)),
        "update_date": date_cell(row.get("Update Date"), "Update Date", COSING_DATES),
        "raw": {k: v for k, v in row.items() if k},
    }


# Words with which an Annex II entry limits its prohibition to some uses or grades.
_CONDITIONAL_PROHIBITION = re.compile(
    r"\b(when used|except|unless|other than|with the exception|hair dye|shall be|if the)\b",
    re.IGNORECASE,
)


def _annex_ii(row: dict[str, str]) -> AnnexRecord:
    record = _annex_common(row, "II")
    record.update(
        glossary_name=None,
        product_type=None,
        max_concentration=None,
        other_limitations=None,
        conditions=None,
        colour=None,
        conditional=bool(_CONDITIONAL_PROHIBITION.search(record["chemical_name"] or "")),
    )
    return AnnexRecord(**record)


def _annex_with_conditions(row: dict[str, str], annex: str, glossary_column: str) -> AnnexRecord:
    """Annexes III to VI: the substance, and the conditions of use as written (lettered
    per-product-type parts such as "a) Rinse-off products" kept in the text)."""
    record = _annex_common(row, annex)
    glossary = name_cell(row.get(glossary_column), dash_is_empty=True)
    record.update(
        glossary_name=glossary.upper() if glossary else None,
        product_type=text_cell(row.get("Product Type, body parts"), dash_is_empty=True),
        max_concentration=text_cell(
            row.get("Maximum concentration in ready for use preparation"), dash_is_empty=True
        ),
        other_limitations=text_cell(row.get("Other"), dash_is_empty=True),
        conditions=text_cell(
            row.get("Wording of conditions of use and warnings"), dash_is_empty=True
        ),
        conditional=False,
        colour=name_cell(row.get("Color"), dash_is_empty=True),
    )
    if not record["chemical_name"]:
        record["chemical_name"] = name_cell(row.get("Chemical name"), dash_is_empty=True)
    # Names in the glossary column are joined by " / " or "; " (Annex V 1a: twelve benzoates).
    names = [n.upper() for n in re.split(r"\s*(?:/|;)\s*", glossary or "") if n.strip()]
    record["identified_ingredients"] = list(dict.fromkeys(record["identified_ingredients"] + names))
    return AnnexRecord(**record)


GLOSSARY = "Name of Common Ingredients Glossary"
ANNEX_COLUMNS: dict[str, tuple[tuple[str, ...], str]] = {
    # annex: (header columns that identify its file, the glossary-name column)
    "II": (("Reference Number", "Chemical name / INN", "CAS Number"), ""),
    "III": (("Reference Number", "Chemical name / INN", GLOSSARY), GLOSSARY),
    "IV": (
        (
            "Reference Number",
            "Chemical name",
            "Colour index Number / Name of Common Ingredients Glossary",
        ),
        "Colour index Number / Name of Common Ingredients Glossary",
    ),
    "V": (("Reference Number", "Chemical name / INN", GLOSSARY), GLOSSARY),
    "VI": (("Reference Number", "Chemical name / INN", GLOSSARY), GLOSSARY),
}
ANNEXES = tuple(ANNEX_COLUMNS)


def read_annex(path: Path, annex: str) -> Iterator[ReadRow | RowProblem]:
    """Annex rows; `entry_no` numbers the rows that share a reference number, in file order."""
    required, glossary_column = ANNEX_COLUMNS[annex]
    if annex == "II":
        rows = _rows(path, required, _annex_ii)
    else:
        rows = _rows(
            path, required, lambda row: _annex_with_conditions(row, annex, glossary_column)
        )
    seen: dict[str, int] = {}
    for item in rows:
        if isinstance(item, ReadRow) and isinstance(item.record, AnnexRecord):
            reference = item.record.reference_number
            seen[reference] = seen.get(reference, 0) + 1
            item.record = replace(item.record, entry_no=seen[reference])
        yield item


__all__ = [
    "AnnexRecord",
    "BadRow",
    "IngredientRecord",
    "ProductRecord",
    "ReadRow",
    "ReviewRecord",
    "RowProblem",
    "columns",
    "read_annex",
    "read_cosing_inventory",
    "read_products",
    "read_reviews",
    "split_top_level",
]
