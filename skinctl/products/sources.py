"""Where the product, review and CosIng files of an argument are: a file as given, a folder, or a
catalog slug's newest fetch (through the catalog's one resolver, the one `ingest images SLUG`
uses), and which files of a folder are which (found by name).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from skinctl.errors import InputRejected
from skinctl.products import readers
from skinctl.products.choices import PRODUCT_FILE_FORMATS

_ANNEX_FILE = re.compile(r"annex[_ -]?(II|III|IV|V|VI)(?![IVX])", re.IGNORECASE)


def cosing_files(folder: Path) -> dict[str, Path]:
    """The CosIng files of a folder, found by name: `inventory` (COSING_Ingredients*.csv) and
    `annex_ii` ... `annex_vi` (COSING_Annex_<N>*)."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        name = path.name
        if name.lower().startswith("cosing_ingredients") and name.lower().endswith(".csv"):
            found.setdefault("inventory", path)
        elif (annex := _ANNEX_FILE.search(name)) is not None:
            found.setdefault(f"annex_{annex.group(1).lower()}", path)
    if not found:
        raise InputRejected(
            f"{folder} holds no CosIng file (COSING_Ingredients*.csv, COSING_Annex_*).",
            hint="Fetch it again with `skinctl fetch get cosing --from DIR`.",
        )
    return found


def sephora_files(folder: Path) -> tuple[Path | None, list[Path]]:
    """The Sephora set's product file and every review file (`reviews_*.csv`, in any subfolder)."""
    products = next(iter(sorted(folder.rglob("product_info.csv"))), None)
    reviews = [p for p in sorted(folder.rglob("*reviews_*.csv")) if p.is_file()]
    return products, reviews


def product_file(arg: str, fmt: str | None, settings: Any) -> tuple[Path, str]:
    """The product file an argument names (a file, a folder, a slug) and its format."""
    path = resolve_dataset(arg, settings)
    if path.is_dir():
        candidates = [p for name in PRODUCT_FILE_FORMATS for p in sorted(path.rglob(name))]
        if not candidates:
            raise InputRejected(
                f"{path} holds no product file ({', '.join(PRODUCT_FILE_FORMATS)}).",
                hint="Give the product CSV and --format.",
            )
        path = candidates[0]
    fmt = fmt or PRODUCT_FILE_FORMATS.get(path.name)
    if fmt is None:
        raise InputRejected(
            f"The format of {path} is not known from its name.",
            hint=f"Pass --format ({', '.join(readers.PRODUCT_FORMATS)}).",
        )
    return path, str(fmt)


def review_files(args: Sequence[str], settings: Any) -> list[Path]:
    """Every review file the arguments name: files as given; for a folder or the slug
    `sephora`, all its `reviews_*.csv` files."""
    files: list[Path] = []
    for arg in args:
        path = resolve_dataset(arg, settings)
        if path.is_dir():
            found = sephora_files(path)[1]
            if not found:
                raise InputRejected(
                    f"{path} holds no review file (reviews_*.csv).",
                    hint="Give the review CSV files.",
                )
            files.extend(found)
        else:
            files.append(path)
    return list(dict.fromkeys(files))


def resolve_dataset(arg: str | Path, settings: Any) -> Path:
    """A path as given, or the folder of a catalog slug's newest fetch (`sephora`, `cosing`),
    through the catalog's one resolver (the one `ingest images SLUG` uses)."""
    from skinctl.datasets.catalog import looks_like_slug, resolve_fetched
    from skinctl.errors import NotFound

    path = Path(arg).expanduser()
    if path.exists() or not looks_like_slug(str(arg)):
        return path
    try:
        folder, _layout = resolve_fetched(str(arg), settings)
    except NotFound:
        raise InputRejected(
            f"{arg!r} is neither a file nor a dataset in the catalog.",
            hint="`skinctl fetch list` shows the catalog.",
        ) from None
    return folder
