"""`skinctl fetch`: the dataset catalog and downloads into the cache."""

from __future__ import annotations

from pathlib import Path

import typer

from skinctl.commands.common import state
from skinctl.errors import UsageError

app = typer.Typer(
    help="Browse the dataset catalog and download datasets into the cache.", no_args_is_help=True
)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON on stdout.")
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def _parse_size(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip().lower().removesuffix("b").removesuffix("i")
    unit = text[-1] if text and text[-1] in _SIZE_UNITS else ""
    number = text[: len(text) - len(unit)] if unit else text
    try:
        size = int(float(number) * _SIZE_UNITS[unit])
    except ValueError:
        raise UsageError(f"--max-size {value!r} is not a size like 500M or 20G.") from None
    if size <= 0:
        raise UsageError(f"--max-size {value!r} must be positive.")
    return size


@app.command("list")
def list_datasets(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List the datasets skinctl knows, and whether each is fetched."""
    from skinctl.console import print_json, stdout, table
    from skinctl.datasets.catalog import catalog, fetched_copies

    settings = state(ctx).settings
    rows = []
    for entry in catalog(settings).values():
        copies = fetched_copies(entry.slug, settings)
        rows.append(
            {
                **entry.to_dict(),
                "fetched": bool(copies),
                "fetched_version": copies[0].version if copies else None,
                "fetched_path": str(copies[0].path) if copies else None,
            }
        )
    if as_json:
        print_json(rows)
        return
    stdout.print(
        table(
            "Datasets",
            ["slug", "kind", "source", "layout", "fetched", "title"],
            [
                (
                    r["slug"],
                    r["kind"],
                    r["source"],
                    r["layout"],
                    r["fetched_version"] or "-",
                    r["title"],
                )
                for r in rows
            ],
        )
    )


@app.command("info")
def info_dataset(
    ctx: typer.Context,
    slug: str = typer.Argument(..., help="Dataset slug."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a dataset's catalog entry and its fetched copies."""
    from skinctl.console import print_json, stdout, table
    from skinctl.datasets.catalog import fetched_copies, get_entry

    settings = state(ctx).settings
    entry = get_entry(slug, settings)
    copies = fetched_copies(slug, settings)
    if as_json:
        print_json({**entry.to_dict(), "copies": [copy.to_dict() for copy in copies]})
        return
    fields = [
        ("slug", entry.slug),
        ("title", entry.title),
        ("provider", entry.provider),
        ("source", entry.source),
        ("reference", entry.reference),
        ("kind", entry.kind),
        ("layout", entry.layout),
        ("licence", entry.licence),
        ("description", entry.description),
    ]
    if entry.files:
        fields.append(("files", ", ".join(entry.files)))
    if entry.url:
        fields.append(("url", entry.url))
    stdout.print(table(None, ["field", "value"], fields))
    if copies:
        stdout.print(
            table(
                "Fetched copies (newest first)",
                ["version", "fetched at", "files", "size", "path"],
                [(c.version, c.fetched_at[:19], c.files, f"{c.bytes:,}", c.path) for c in copies],
            )
        )
    else:
        stdout.print(f"Not fetched yet: run `skinctl fetch get {slug}`.")


@app.command("get")
def get_dataset(
    ctx: typer.Context,
    slug: str = typer.Argument(..., help="Dataset slug (see `skinctl fetch list`)."),
    output_dir: Path | None = typer.Option(
        None, "--output-dir", help="Put the files here instead of the cache."
    ),
    force: bool = typer.Option(
        False, "--force", help="Fetch again even when a complete copy exists."
    ),
    url: str | None = typer.Option(None, "--url", help="Download this http(s) URL (resumable)."),
    sha256: str | None = typer.Option(
        None, "--sha256", help="Expected SHA-256 of the --url or --from file."
    ),
    from_path: Path | None = typer.Option(
        None, "--from", help="Import a local zip, tar(.gz) file or folder."
    ),
    max_size: str | None = typer.Option(
        None, "--max-size", help="Refuse archives that unpack to more than this (e.g. 200G)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Download (or import) a dataset into SKINCTL_HOME/datasets/<slug>/<version>.

    Run again, it keeps the complete copy it has (`--force` fetches anew) and resumes a cut
    download. Commercial sets come from a file you were given (`--from`) or a URL (`--url`).

    Example: the skin-type images from Kaggle, then into the database

        skinctl fetch get skin-types
        skinctl ingest images skin-types
    """
    from skinctl.console import info, print_json, progress_bar, progress_enabled, stdout, warn
    from skinctl.datasets.catalog import get_entry
    from skinctl.fetch.archive import DEFAULT_MAX_UNCOMPRESSED
    from skinctl.fetch.service import BYTE_STAGES, FetchRequest, fetch_dataset

    settings = state(ctx).settings
    entry = get_entry(slug, settings)
    if sha256 and not (url or from_path):
        raise UsageError("--sha256 needs --url or --from.")
    request = FetchRequest(
        url=url,
        sha256=sha256,
        from_path=from_path,
        output_dir=output_dir,
        force=force,
        max_bytes=_parse_size(max_size) or DEFAULT_MAX_UNCOMPRESSED,
    )
    with progress_bar(progress_enabled(), byte_stages=BYTE_STAGES) as progress:
        result = fetch_dataset(entry, settings, request, progress)
    if result.notice:
        warn(result.notice)
    if as_json:
        print_json(result.to_dict())
        return
    what = "already fetched" if result.cached else "fetched"
    stdout.print(
        f"{result.slug} {result.version} {what}: {result.files:,} files, {result.bytes:,} bytes in {result.path}",
        highlight=False,
    )
    if entry.kind == "images":
        info(f"next: skinctl ingest images {result.slug}")
