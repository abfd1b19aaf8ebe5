"""Where `skinctl ingest images PATH` reads from: a folder, or a catalog slug's fetched copy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from skinctl.datasets.readers import Layout
from skinctl.errors import InputRejected, NotFound, UsageError

if TYPE_CHECKING:
    from skinctl.config import Settings


@dataclass(frozen=True)
class IngestSource:
    folder: Path
    layout: Layout | None  # the catalog's layout for a slug; None: the reader's own choice
    slug: str | None  # the catalog slug PATH named, if it named one
    bucket_url: str | None = None  # gs://bucket/prefix: objects are listed and read from there

    @property
    def location(self) -> Path | str:
        """What the ingest reads: the folder, or the bucket URL."""
        return self.bucket_url or self.folder

    def dataset_name(self, given: str | None) -> str:
        """`--dataset`, or the slug when PATH was a catalog slug."""
        if given is not None:
            return given
        if self.slug is not None:
            return self.slug
        raise UsageError(
            f"--dataset is needed to ingest {self.location}.",
            hint="Name the dataset every row records, e.g. `--dataset my_clinic` "
            "(a catalog slug such as `skin-types` names itself).",
        )


def resolve_source(arg: str, settings: Settings) -> IngestSource:
    """A path that exists is used as is; a catalog slug (`skin-types`) means the newest completed
    fetch of that dataset, read with the catalog's layout; `gs://bucket/prefix` is a bucket."""
    from skinctl.datasets.catalog import looks_like_slug, resolve_fetched

    if arg.startswith("gs://"):
        from skinctl.storage.gcs import parse_gs_url

        bucket, prefix = parse_gs_url(arg)
        url = f"gs://{bucket}" + (f"/{prefix}" if prefix else "")
        return IngestSource(Path(url), None, None, bucket_url=url)

    path = Path(arg).expanduser()
    if path.exists():
        return IngestSource(path, None, None)
    if looks_like_slug(arg):
        try:
            folder, layout = resolve_fetched(arg, settings)
        except NotFound:
            raise InputRejected(
                f"{arg!r} is neither a folder nor a dataset in the catalog.",
                hint="Give the folder that holds the images; `skinctl fetch list` shows the catalog.",
            ) from None
        return IngestSource(folder, _image_layout(layout), arg)
    raise InputRejected(f"{arg} does not exist.", hint="Give the folder that holds the images.")


def _image_layout(catalog_layout: str | None) -> Layout | None:
    """The catalog's layout when it is one the image readers know (tables are not images)."""
    try:
        return Layout(catalog_layout) if catalog_layout else None
    except ValueError:
        return None
