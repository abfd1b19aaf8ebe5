"""Idempotent ingest of products, reviews and the CosIng files.

Every row read is accounted for: inserted, updated, unchanged, or reported (rejected with file,
line and reason). Upserts compare every column, so re-running the same file changes nothing;
each batch commits on its own, so an interrupted run keeps its work and the next run resumes.
The run and its rejected rows are recorded in `ingest_runs` / `ingest_rejections`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    delete,
    func,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from skinctl.db.models import (
    AnnexEntry,
    AnnexEntryIngredient,
    Base,
    IngestRejection,
    Ingredient,
    Product,
    ProductIngredient,
    Review,
)
from skinctl.db.runs import IngestRunRecord, recorded_ingest_run
from skinctl.errors import InputRejected
from skinctl.products import readers, review_bulk
from skinctl.products.matching import IngredientIndex
from skinctl.products.names import name_key
from skinctl.products.readers import ReadRow, RowProblem
from skinctl.progress import ReportProgress, no_progress

BATCH = 500
PRODUCT_FORMATS = tuple(readers.PRODUCT_FORMATS)
REVIEW_FORMATS = ("sephora",)


@dataclass
class TableReport:
    """What happened to the rows of one file, counted while it loads (`result()` freezes it)."""

    name: str
    file: str
    total: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[RowProblem] = field(default_factory=list)  # unreadable rows
    duplicates: list[RowProblem] = field(default_factory=list)  # same key as an earlier row

    @property
    def rejected(self) -> int:
        return len(self.problems)

    def result(self) -> TableResult:
        return TableResult(
            table=self.name,
            file=self.file,
            total=self.total,
            inserted=self.inserted,
            updated=self.updated,
            unchanged=self.unchanged,
            duplicate=len(self.duplicates),
            rejected=self.rejected,
            problems=list(self.problems),
            duplicates=list(self.duplicates),
        )


@dataclass(frozen=True)
class TableResult:
    """One file of an ingest: every row read is inserted, updated, unchanged or reported."""

    table: str
    file: str
    total: int
    inserted: int
    updated: int
    unchanged: int
    duplicate: int
    rejected: int
    problems: list[RowProblem]
    duplicates: list[RowProblem]

    def counts(self) -> dict[str, int]:
        """What `ingest_runs.counts` records for the file."""
        return {
            "total": self.total,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
        }


@dataclass(frozen=True)
class MatchingSummary:
    """Product ingredient names matched against the inventory after an ingest."""

    distinct_names: int
    names_by_method: dict[str, int]
    links_changed: int
    inventory_size: int


@dataclass(frozen=True)
class AnnexLinks:
    links: int
    added: int
    removed: int


@dataclass(frozen=True)
class ProductIngest:
    run_id: int | None
    tables: list[TableResult]
    rejected: int
    reviews_linked: int
    matching: MatchingSummary | None


@dataclass(frozen=True)
class ReviewIngest:
    run_id: int | None
    tables: list[TableResult]
    rejected: int
    reviews_linked: int
    reviews_without_product: int


@dataclass(frozen=True)
class CosingIngest:
    run_id: int | None
    tables: list[TableResult]
    rejected: int
    annex_links: AnnexLinks
    matching: MatchingSummary | None


IngestResult = ProductIngest | ReviewIngest | CosingIngest


# --- shared machinery -------------------------------------------------------------------------


def _check_file(path: Path) -> Path:
    if not path.is_file():
        raise InputRejected(f"{path} is not a file.", hint="Check the path.")
    return path


def _table(model: type[Base]) -> Table:
    # SQLAlchemy's stubs type `__table__` as any FromClause; a declarative model's is a Table.
    return cast(Table, model.__table__)


def _run_counts(tables: list[TableReport]) -> dict[str, Any]:
    """What `ingest_runs.counts` records for a table ingest: per table, the row counts."""
    return {t.name: t.result().counts() for t in tables}


def _record_problems(engine: Engine, run_id: int, source: str, problems: list[RowProblem]) -> None:
    if not problems:
        return
    with engine.begin() as connection:
        connection.execute(
            _table(IngestRejection).insert(),
            [
                {
                    "ingest_run_id": run_id,
                    "dataset_source": source,
                    "local_path": f"{p.file}:{p.line}",
                    "reason": p.reason[:40],
                    "detail": p.detail,
                }
                for p in problems
            ],
        )


def _split(
    items: Iterable[ReadRow | RowProblem], report: TableReport, key: Callable[[Any], Any]
) -> list[ReadRow]:
    """Rows that can be loaded; problems and repeated keys go to the report."""
    first_line: dict[Any, int] = {}
    rows = []
    for item in items:
        report.total += 1
        if isinstance(item, RowProblem):
            report.problems.append(item)
            continue
        k = key(item.record)
        if k in first_line:
            report.duplicates.append(
                RowProblem(
                    report.file,
                    item.line,
                    "duplicate",
                    f"{k if isinstance(k, str) else ' '.join(map(str, k))} already read on line {first_line[k]}",
                )
            )
            continue
        first_line[k] = item.line
        rows.append(item)
    return rows


def _upsert(
    connection: Connection, table: Table, rows: list[dict[str, Any]], keys: tuple[str, ...]
) -> tuple[list[tuple], list[tuple]]:
    """INSERT ... ON CONFLICT DO UPDATE only where a column differs. Returns the key tuples of
    inserted and of updated rows; every other row was unchanged."""
    if not rows:
        return [], []
    # executemany with one cached statement: SQLAlchemy batches it into multi-row VALUES
    # ("insertmanyvalues") without compiling a new statement for every batch.
    statement = pg_insert(table)
    compared = [c for c in rows[0] if c not in keys]
    excluded = statement.excluded
    set_: dict[str, Any] = {c: excluded[c] for c in compared}
    if "updated_at" in table.c:
        set_["updated_at"] = func.current_timestamp()
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_=set_,
        where=or_(*[table.c[c].is_distinct_from(excluded[c]) for c in compared]),
    ).returning(*[table.c[k] for k in keys], literal_column("(xmax = 0)").label("inserted"))
    inserted, updated = [], []
    for row in connection.execute(statement, rows):
        (inserted if row.inserted else updated).append(tuple(row[:-1]))
    return inserted, updated


def _batches(rows: list[Any], size: int | None = None) -> Iterator[list[Any]]:
    size = size or BATCH
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _jsonable(row: dict[str, str]) -> dict[str, str]:
    return {(k if k else "_index"): v for k, v in row.items()}


# --- products ---------------------------------------------------------------------------------


def ingest_products(
    engine: Engine,
    path: Path,
    fmt: str,
    *,
    user: str | None = None,
    match: bool = True,
    progress: ReportProgress = no_progress,
) -> ProductIngest:
    """Load a product file; replace the ingredient list of every inserted or changed product,
    then match ingredient names to the inventory."""
    if fmt not in PRODUCT_FORMATS:
        raise InputRejected(
            f"Unknown product format {fmt!r}.", hint=f"Use one of: {', '.join(PRODUCT_FORMATS)}."
        )
    path = _check_file(path)
    report = TableReport("products", str(path))
    rows = _split(readers.read_products(path, fmt), report, lambda r: r.external_id)
    first = rows[0].record if rows else None
    source = first.source if isinstance(first, readers.ProductRecord) else fmt
    with recorded_ingest_run(
        engine, source=f"products:{fmt}", path=str(path), options={"format": fmt}, user=user
    ) as run:
        _load_products(engine, run, rows, source, report, progress)
        _record_problems(engine, run.id, f"products:{fmt}", report.problems + report.duplicates)
        with engine.begin() as connection:
            linked = link_reviews(connection)
        matching = rematch_all(engine) if match else None
        run.counts = _run_counts([report])
    return ProductIngest(run.id, [report.result()], report.rejected, linked, matching)


def _load_products(
    engine: Engine,
    run: IngestRunRecord,
    rows: list[ReadRow],
    source: str,
    report: TableReport,
    progress: ReportProgress,
) -> None:
    index = _load_index(engine)
    done = 0
    for batch in _batches(rows):
        records = {}
        ingredient_lists = {}
        for item in batch:
            record = readers.columns(item.record)
            ingredient_lists[record["external_id"]] = item.record.ingredients
            record["raw"] = _jsonable(item.raw)
            record["ingest_run_id"] = run.id
            records[record["external_id"]] = record
        with engine.begin() as connection:
            # The run id differs on every run: leave it out of the comparison.
            values = [
                {k: v for k, v in r.items() if k != "ingest_run_id"} for r in records.values()
            ]
            inserted, updated = _upsert(
                connection, _table(Product), values, ("source", "external_id")
            )
            changed = [k[1] for k in inserted + updated]
            if changed:
                connection.execute(
                    update(Product)
                    .where(Product.source == source, Product.external_id.in_(changed))
                    .values(ingest_run_id=run.id)
                )
                _replace_ingredient_lists(
                    connection, source, {k: ingredient_lists[k] for k in changed}, index
                )
        report.inserted += len(inserted)
        report.updated += len(updated)
        report.unchanged += len(batch) - len(inserted) - len(updated)
        done += len(batch)
        progress("products", done, len(rows))


def _load_index(engine: Engine) -> IngredientIndex:
    with engine.connect() as connection:
        return IngredientIndex.load(connection)


def _replace_ingredient_lists(
    connection: Connection, source: str, lists: dict[str, list[str]], index: IngredientIndex
) -> None:
    """New ingredient rows for these products, matched as they are written."""
    ids = dict(
        connection.execute(
            select(Product.external_id, Product.id).where(
                Product.source == source, Product.external_id.in_(list(lists))
            )
        ).all()
    )
    connection.execute(
        delete(ProductIngredient).where(ProductIngredient.product_id.in_(list(ids.values())))
    )
    rows = []
    for external_id, names in lists.items():
        for position, name in enumerate(names, start=1):
            found = index.match(name)
            rows.append(
                (
                    ids[external_id],
                    position,
                    name,
                    name_key(name),
                    found.ingredient_id,
                    found.method,
                    found.score,
                )
            )
    copy_rows(
        connection,
        "product_ingredients",
        (
            "product_id",
            "position",
            "name_as_written",
            "name_key",
            "ingredient_id",
            "match_method",
            "match_score",
        ),
        rows,
    )


def copy_rows(
    connection: Connection, table: str, columns: tuple[str, ...], rows: list[tuple]
) -> None:
    """Bulk insert with COPY, in the connection's transaction (10x faster than INSERTs)."""
    if not rows:
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(["\\N" if value is None else value for value in row])
    buffer.seek(0)
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None  # a checked-out connection has its psycopg2 one
    cursor = driver_connection.cursor()
    try:
        cursor.copy_expert(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer
        )
    finally:
        cursor.close()


def link_reviews(connection: Connection) -> int:
    """Point reviews at their products once both are loaded (in either order)."""
    result = connection.execute(
        text(
            "UPDATE reviews r SET product_id = p.id FROM products p "
            "WHERE r.product_id IS NULL AND p.source = r.source AND p.external_id = r.product_external_id"
        )
    )
    return result.rowcount or 0


# --- matching ---------------------------------------------------------------------------------


def rematch_all(engine: Engine) -> MatchingSummary:
    """Match every distinct ingredient name on products against the inventory and store the
    result where it changed. Returns counts per method and how many links changed."""
    with engine.connect() as connection:
        index = IngredientIndex.load(connection)
        written = connection.execute(
            select(
                ProductIngredient.name_key, func.min(ProductIngredient.name_as_written)
            ).group_by(ProductIngredient.name_key)
        ).all()
    results = [(key, index.match(name)) for key, name in written]
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TEMP TABLE match_results (name_key text PRIMARY KEY, ingredient_id int, "
                "match_method varchar(10), match_score float) ON COMMIT DROP"
            )
        )
        copy_rows(
            connection,
            "match_results",
            ("name_key", "ingredient_id", "match_method", "match_score"),
            [(key, m.ingredient_id, m.method, m.score) for key, m in results],
        )
        changed = connection.execute(
            text(
                "UPDATE product_ingredients p SET ingredient_id = r.ingredient_id, "
                "match_method = r.match_method, match_score = r.match_score FROM match_results r "
                "WHERE p.name_key = r.name_key AND (p.ingredient_id, p.match_method, p.match_score) "
                "IS DISTINCT FROM (r.ingredient_id, r.match_method, r.match_score)"
            )
        ).rowcount
    methods: dict[str, int] = {}
    for _key, m in results:
        methods[m.method] = methods.get(m.method, 0) + 1
    return MatchingSummary(
        distinct_names=len(results),
        names_by_method=methods,
        links_changed=changed or 0,
        inventory_size=len(index),
    )


# --- reviews ---------------------------------------------------------------------------------


def ingest_reviews(
    engine: Engine,
    paths: Path | Sequence[Path],
    fmt: str = "sephora",
    *,
    user: str | None = None,
    progress: ReportProgress = no_progress,
) -> ReviewIngest:
    """Load review files in one run (re-running changes nothing): each file is read and checked
    row by row and streamed into the table with COPY in chunks (`review_bulk`); bad rows are
    reported with their file and line. Reviews whose product is not loaded yet are kept and
    linked when it arrives."""
    if fmt not in REVIEW_FORMATS:
        raise InputRejected(
            f"Unknown review format {fmt!r}.", hint=f"Use one of: {', '.join(REVIEW_FORMATS)}."
        )
    files = [paths] if isinstance(paths, Path) else list(paths)
    if not files:
        raise InputRejected(
            "No review file given.", hint="Pass one or more review CSV files, or `sephora`."
        )
    files = [_check_file(path) for path in files]
    with recorded_ingest_run(
        engine,
        source=f"reviews:{fmt}",
        path=", ".join(map(str, files)),
        options={"format": fmt, "files": [str(f) for f in files]},
        user=user,
    ) as run:
        tables: list[TableReport] = []
        done = 0

        def advance(rows: int) -> None:
            nonlocal done
            done += rows
            progress("reviews", done, None)

        claimed = review_bulk.ClaimedKeys()
        products = review_bulk.start_run(engine, fmt)
        for path in files:
            report = TableReport("reviews", str(path))
            tables.append(report)
            review_bulk.load_review_file(
                engine, path, fmt, run.id, claimed, products, report, advance
            )
            run.counts = _run_counts(tables)
            run.save_counts(engine)
            _record_problems(engine, run.id, f"reviews:{fmt}", report.problems + report.duplicates)
        with engine.begin() as connection:
            linked = link_reviews(connection)
            waiting = connection.execute(
                select(func.count()).select_from(Review).where(Review.product_id.is_(None))
            ).scalar_one()
        run.counts = _run_counts(tables)
    return ReviewIngest(
        run.id, [t.result() for t in tables], sum(t.rejected for t in tables), linked, waiting
    )


# --- CosIng -----------------------------------------------------------------------------------

_RESTRICTION_REF = re.compile(r"\b(III|II)/\s*([0-9]+[a-z]?)", re.IGNORECASE)


def ingest_cosing(
    engine: Engine,
    inventory: Path | None,
    annex_ii: Path | None = None,
    annex_iii: Path | None = None,
    *,
    annex_iv: Path | None = None,
    annex_v: Path | None = None,
    annex_vi: Path | None = None,
    user: str | None = None,
    match: bool = True,
    progress: ReportProgress = no_progress,
) -> CosingIngest:
    """Load the inventory and the annexes (II prohibited, III restricted, IV colorants, V
    preservatives, VI UV filters), link annex entries to inventory ingredients, then re-match
    product ingredients (the dictionary may have changed)."""
    annexes = {"II": annex_ii, "III": annex_iii, "IV": annex_iv, "V": annex_v, "VI": annex_vi}
    files = {"inventory": inventory, **{f"annex_{k.lower()}": v for k, v in annexes.items()}}
    if not any(files.values()):
        raise InputRejected(
            "No CosIng file given.",
            hint="Pass --inventory and/or --annex-ii ... --annex-vi, or the slug `cosing`.",
        )
    for path in files.values():
        if path is not None:
            _check_file(path)
    with recorded_ingest_run(
        engine,
        source="cosing",
        path=", ".join(str(p) for p in files.values() if p),
        options={k: str(v) for k, v in files.items() if v},
        user=user,
    ) as run:
        tables: list[TableReport] = []
        if inventory is not None:
            report = TableReport("ingredients", str(inventory))
            rows = _split(readers.read_cosing_inventory(inventory), report, lambda r: r.name_key)
            _load_simple(engine, _table(Ingredient), rows, ("name_key",), report, progress)
            tables.append(report)
        for annex, path in annexes.items():
            if path is None:
                continue
            report = TableReport(f"annex_{annex.lower()}", str(path))
            rows = _split(
                readers.read_annex(path, annex),
                report,
                lambda r: (r.annex, r.reference_number, r.entry_no),
            )
            _load_simple(
                engine,
                _table(AnnexEntry),
                rows,
                ("annex", "reference_number", "entry_no"),
                report,
                progress,
            )
            tables.append(report)
        for report in tables:
            _record_problems(
                engine, run.id, f"cosing:{report.name}", report.problems + report.duplicates
            )
        with engine.begin() as connection:
            links = relink_annexes(connection)
        matching = rematch_all(engine) if match else None
        run.counts = _run_counts(tables)
    return CosingIngest(
        run.id, [t.result() for t in tables], sum(t.rejected for t in tables), links, matching
    )


def _load_simple(
    engine: Engine,
    table: Table,
    rows: list[ReadRow],
    keys: tuple[str, ...],
    report: TableReport,
    progress: ReportProgress,
) -> None:
    done = 0
    for batch in _batches(rows):
        with engine.begin() as connection:
            inserted, updated = _upsert(
                connection, table, [readers.columns(item.record) for item in batch], keys
            )
        report.inserted += len(inserted)
        report.updated += len(updated)
        report.unchanged += len(batch) - len(inserted) - len(updated)
        done += len(batch)
        progress(report.name, done, len(rows))


def relink_annexes(connection: Connection) -> AnnexLinks:
    """Derive annex entry -> ingredient links from what is loaded: names an entry identifies,
    Annex III's glossary name, and the inventory's own Restriction column ('III/62').
    Idempotent: adds missing links, removes links no longer supported."""
    ingredients = connection.execute(
        select(Ingredient.id, Ingredient.name_key, Ingredient.restriction)
    ).all()
    by_key = {key: ingredient_id for ingredient_id, key, _ in ingredients}
    entries = connection.execute(
        select(
            AnnexEntry.id,
            AnnexEntry.annex,
            AnnexEntry.reference_number,
            AnnexEntry.identified_ingredients,
            AnnexEntry.glossary_name,
        )
    ).all()
    by_reference: dict[tuple[str, str], list[int]] = {}
    for entry_id, annex, reference, _, _ in entries:
        by_reference.setdefault((annex, reference.lower()), []).append(entry_id)
    wanted: dict[tuple[int, int], str] = {}
    for entry_id, _annex, _reference, identified, glossary in entries:
        for name in identified:
            ingredient_id = by_key.get(name_key(name))
            if ingredient_id is not None:
                wanted.setdefault((entry_id, ingredient_id), "identified_name")
        if glossary and by_key.get(name_key(glossary)) is not None:
            wanted.setdefault((entry_id, by_key[name_key(glossary)]), "glossary_name")
    for ingredient_id, _key, restriction in ingredients:
        for annex, reference in _RESTRICTION_REF.findall(restriction or ""):
            for entry_id in by_reference.get((annex.upper(), reference.lower()), ()):
                wanted.setdefault((entry_id, ingredient_id), "restriction_ref")
    existing = {
        (entry_id, ingredient_id): method
        for entry_id, ingredient_id, method in connection.execute(
            select(
                AnnexEntryIngredient.annex_entry_id,
                AnnexEntryIngredient.ingredient_id,
                AnnexEntryIngredient.link_method,
            )
        )
    }
    stale = [pair for pair, method in existing.items() if wanted.get(pair) != method]
    for batch in _batches(stale, 1000):
        connection.execute(
            delete(AnnexEntryIngredient).where(
                tuple_(AnnexEntryIngredient.annex_entry_id, AnnexEntryIngredient.ingredient_id).in_(
                    batch
                )
            )
        )
    new = [
        {"annex_entry_id": e, "ingredient_id": i, "link_method": m}
        for (e, i), m in wanted.items()
        if existing.get((e, i)) != m
    ]
    if new:
        connection.execute(_table(AnnexEntryIngredient).insert(), new)
    return AnnexLinks(
        links=len(wanted), added=len(new), removed=sum(p not in wanted for p in stale)
    )
