"""The catalog of datasets skinctl knows how to bring in, plus entries users add in skinctl.toml.

Each entry says where the data comes from (`source`: kaggle, url or local), what kind of data it
is, and which on-disk layout the ingest readers should expect once it is fetched:

    layout   what is on disk                                          read by
    -------  -------------------------------------------------------  --------------------------
    folders  images in class folders, optionally under split folders  `skinctl ingest images`
             (`train/dry/x.jpg` or `Acne/x.jpg`)
    csv      one or more CSV tables (`files` names them, globs allowed) the table ingests
    cosing   CosIng CSV exports (preamble lines before the header)     the CosIng ingest

A user entry in skinctl.toml:

    [datasets.my-acne]
    title = "Acne photos from the clinic"
    source = "url"                       # kaggle | url | local
    url = "https://example.org/acne.zip" # for source = "url" (optional: --url still works)
    kind = "images"                      # images | products | reviews | ingredients
    layout = "folders"                   # folders | csv | cosing
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skinctl.errors import ConfigError, NotFound, UsageError

if TYPE_CHECKING:
    from skinctl.config import Settings

KINDS = ("images", "products", "reviews", "ingredients")
LAYOUTS = ("folders", "csv", "cosing")
SOURCES = ("kaggle", "url", "local")
SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
KAGGLE_REFERENCE = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


@dataclass(frozen=True)
class DatasetEntry:
    slug: str
    title: str
    provider: str
    source: str  # kaggle | url | local
    reference: str  # Kaggle owner/name, a URL, or a description of how it is delivered
    kind: str
    layout: str
    licence: str
    description: str = ""
    url: str | None = None  # default download URL for source = "url"
    sha256: str | None = None  # expected checksum of the default URL's file
    files: tuple[str, ...] = ()  # for csv/cosing layouts: the files (globs) that matter
    builtin: bool = True

    @property
    def kaggle_reference(self) -> str | None:
        return self.reference if self.source == "kaggle" else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = list(self.files)
        return data


BUILTIN: tuple[DatasetEntry, ...] = (
    DatasetEntry(
        slug="skin-types",
        title="Oily, Dry and Normal Skin Types Dataset",
        provider="Kaggle (shakyadissanayake), Roboflow export",
        source="kaggle",
        reference="shakyadissanayake/oily-dry-and-normal-skin-types-dataset",
        kind="images",
        layout="folders",
        licence="No licence stated upstream; research use only.",
        description="Face photos in class folders dry/normal/oily under train/valid/test.",
    ),
    DatasetEntry(
        slug="skin-conditions",
        title="Augmented Skin Conditions Image Dataset",
        provider="Kaggle (syedalinaqvi)",
        source="kaggle",
        reference="syedalinaqvi/augmented-skin-conditions-image-dataset",
        kind="images",
        layout="folders",
        licence="No licence stated upstream; many images carry DermNet watermarks; research use only.",
        description="Augmented photos of six conditions (Acne, Carcinoma, Eczema, Keratosis, Milia, "
        "Rosacea) in class folders under Skin_Conditions/; near copies within a class.",
    ),
    DatasetEntry(
        slug="skincare-products",
        title="Skincare Products Clean Dataset",
        provider="Kaggle (eward96), LookFantastic UK",
        source="kaggle",
        reference="eward96/skincare-products-clean-dataset",
        kind="products",
        layout="csv",
        licence="No licence stated upstream.",
        description="One CSV of skincare products with prices and cleaned ingredient lists.",
        files=("skincare_products_clean.csv",),
    ),
    DatasetEntry(
        slug="sephora",
        title="Sephora Products and Skincare Reviews",
        provider="Kaggle (nadyinky)",
        source="kaggle",
        reference="nadyinky/sephora-products-and-skincare-reviews",
        kind="reviews",
        layout="csv",
        licence="CC BY 4.0 (attribution required).",
        description="product_info.csv and reviews_*.csv (March 2023).",
        files=("product_info.csv", "reviews_*.csv"),
    ),
    DatasetEntry(
        slug="facial-skin-condition",
        title="Facial Skin Condition",
        provider="UniData (commercial)",
        source="local",
        reference="Delivered by UniData as an archive or a signed URL after purchase.",
        kind="images",
        layout="folders",
        licence="Commercial licence from UniData; do not redistribute.",
        description="Face images with condition labels and subject metadata "
        "(id, gender, age, ethnicity). Fetch with --from ARCHIVE or --url SIGNED_URL.",
    ),
    DatasetEntry(
        slug="cosing",
        title="EU CosIng ingredient inventory and annexes",
        provider="European Commission (CosIng)",
        source="url",
        reference="https://ec.europa.eu/growth/tools-databases/cosing/",
        kind="ingredients",
        layout="cosing",
        licence="European Commission reuse policy; attribution required.",
        description="CSV exports of the ingredient inventory and Annexes II-VI. Download them "
        "from the CosIng site and fetch with --from FILE|DIR, or --url URL.",
        files=("COSING_Ingredients*.csv", "COSING_Annex_*"),
    ),
)

_REQUIRED_USER_FIELDS = ("source", "kind", "layout")
_USER_FIELDS = {
    "title",
    "provider",
    "source",
    "reference",
    "kind",
    "layout",
    "licence",
    "description",
    "url",
    "sha256",
    "files",
}


def _user_entry(slug: str, raw: Any) -> DatasetEntry:
    where = f"[datasets.{slug}] in skinctl.toml"
    hint = "See `skinctl fetch list` for examples, and the README section on datasets."
    if not SLUG_PATTERN.match(slug):
        raise ConfigError(
            f"Dataset slug {slug!r} in skinctl.toml is not valid: use lower-case letters, digits "
            "and dashes.",
            hint=hint,
        )
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table of keys, not {type(raw).__name__}.", hint=hint)
    unknown = sorted(set(raw) - _USER_FIELDS)
    if unknown:
        raise ConfigError(
            f"Unknown key {unknown[0]!r} in {where}.",
            hint=f"Known keys: {', '.join(sorted(_USER_FIELDS))}.",
        )
    for name in _REQUIRED_USER_FIELDS:
        if name not in raw:
            raise ConfigError(f"{where} is missing {name!r}.", hint=hint)
    for name, value in raw.items():
        if name == "files":
            if not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
                raise ConfigError(f"{where}: 'files' must be a list of file names or globs.")
        elif not isinstance(value, str):
            raise ConfigError(f"{where}: {name!r} must be a string, got {value!r}.")
    choices = {"source": SOURCES, "kind": KINDS, "layout": LAYOUTS}
    for name, allowed in choices.items():
        if raw[name] not in allowed:
            raise ConfigError(
                f"{where}: {name} = {raw[name]!r} is not one of {', '.join(allowed)}.", hint=hint
            )
    reference = raw.get("reference", "")
    if raw["source"] == "kaggle" and not KAGGLE_REFERENCE.match(reference):
        raise ConfigError(
            f"{where}: reference = {reference!r} is not a Kaggle dataset like 'owner/dataset-name'.",
            hint=hint,
        )
    url = raw.get("url")
    if url is not None and not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: url = {url!r} must start with http:// or https://.")
    sha256 = raw.get("sha256")
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise ConfigError(f"{where}: sha256 must be 64 hexadecimal characters.")
    return DatasetEntry(
        slug=slug,
        title=raw.get("title", slug),
        provider=raw.get("provider", "user-defined"),
        source=raw["source"],
        reference=reference or (url or ""),
        kind=raw["kind"],
        layout=raw["layout"],
        licence=raw.get("licence", "not stated"),
        description=raw.get("description", ""),
        url=url,
        sha256=sha256.lower() if sha256 else None,
        files=tuple(raw.get("files", ())),
        builtin=False,
    )


def catalog(settings: Settings) -> dict[str, DatasetEntry]:
    """Every known dataset by slug: the built-in ones, then the user's (which may replace them)."""
    entries = {entry.slug: entry for entry in BUILTIN}
    for slug, raw in settings.datasets.items():
        entries[slug] = _user_entry(slug, raw)
    return entries


def get_entry(slug: str, settings: Settings) -> DatasetEntry:
    entries = catalog(settings)
    try:
        return entries[slug]
    except KeyError:
        raise NotFound(
            f"Unknown dataset {slug!r}.",
            hint=f"Known datasets: {', '.join(sorted(entries))} (see `skinctl fetch list`); "
            "add your own as [datasets.<slug>] in skinctl.toml.",
        ) from None


# --- the fetched copies -----------------------------------------------------------------------


@dataclass(frozen=True)
class FetchedCopy:
    """A completed fetch, as its completion marker records it."""

    slug: str
    version: str
    path: Path
    marker: Path
    fetched_at: str
    source: str
    origin: str  # masked URL, Kaggle reference or local path
    files: int
    bytes: int
    sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        return {**data, **self.extra}


def datasets_dir(settings: Settings) -> Path:
    return settings.home / "datasets"


MARKER_SUFFIX = ".complete.json"


def fetched_copies(slug: str, settings: Settings) -> list[FetchedCopy]:
    """Completed fetches of a dataset, newest first. Only a completion marker makes a copy count,
    so an interrupted fetch never shows up here."""
    folder = datasets_dir(settings) / slug
    copies: list[FetchedCopy] = []
    if not folder.is_dir():
        return copies
    for marker in folder.glob("*" + MARKER_SUFFIX):
        try:
            data = json.loads(marker.read_text(encoding="utf-8"))
            copy = FetchedCopy(
                slug=slug,
                version=data["version"],
                path=Path(data["path"]),
                marker=marker,
                fetched_at=data["fetched_at"],
                source=data["source"],
                origin=data["origin"],
                files=int(data["files"]),
                bytes=int(data["bytes"]),
                sha256=data.get("sha256"),
                extra={k: v for k, v in data.items() if k in ("kaggle_version", "url")},
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged marker is not a completed fetch
        if copy.path.is_dir():
            copies.append(copy)
    copies.sort(key=lambda copy: copy.fetched_at, reverse=True)
    return copies


def resolve_fetched(slug: str, settings: Settings) -> tuple[Path, str]:
    """The folder of the newest completed fetch of `slug` and the catalog layout to read it with.

    For `skinctl ingest images skin-types`: raises NotFound for an unknown slug, and UsageError
    ("not fetched yet: run `skinctl fetch get skin-types`") when nothing was fetched.
    """
    entry = get_entry(slug, settings)
    copies = fetched_copies(slug, settings)
    if not copies:
        how = f"skinctl fetch get {slug}"
        if entry.source == "local":
            how += " --from PATH"
        elif entry.source == "url" and not entry.url:
            how += " --url URL (or --from PATH)"
        raise UsageError(f"Dataset {slug!r} is not fetched yet: run `{how}`.")
    return copies[0].path, entry.layout


def looks_like_slug(value: str) -> bool:
    """True when an ingest argument is meant as a catalog slug rather than a path."""
    return bool(SLUG_PATTERN.match(value)) and not Path(value).exists()
