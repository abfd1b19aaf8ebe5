"""`skinctl dedup`: near-duplicate groups, label conflicts, one image's duplicates, re-linking."""

from __future__ import annotations

import typer

from skinctl.commands.common import state

app = typer.Typer(
    help="Near-duplicate images: groups, label conflicts, and (re)linking what is stored. "
    "Nothing is ever deleted.",
    no_args_is_help=True,
)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON on stdout.")
DATASET_OPTION = typer.Option(None, "--dataset", "-d", help="Only groups touching this dataset.")


@app.command("list")
def list_groups(
    ctx: typer.Context,
    dataset: str | None = DATASET_OPTION,
    max_distance: int | None = typer.Option(
        None,
        "--max-distance",
        min=0,
        max=64,
        help="Only pairs whose pHash Hamming distance is at most this.",
    ),
    conflicts: bool = typer.Option(
        False, "--conflicts", help="List duplicates whose labels differ."
    ),
    limit: int = typer.Option(
        50, "--limit", min=0, help="Rows in the table (0: all); JSON has all."
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Duplicate groups (exact and near), largest first; or label conflicts with --conflicts."""
    from skinctl.console import print_json, stdout, table
    from skinctl.dedup.reports import duplicate_groups, label_conflicts

    engine = state(ctx).engine()
    if conflicts:
        rows = label_conflicts(engine, dataset=dataset, max_distance=max_distance)
        if json_output:
            print_json({"conflicts": rows, "count": len(rows)})
            return
        shown = rows if limit == 0 else rows[:limit]
        stdout.print(
            table(
                f"{len(rows)} label conflicts"
                + (f" (first {len(shown)})" if len(shown) < len(rows) else ""),
                ["kind", "task", "images", "labels", "distance", "paths"],
                [
                    (
                        c.kind,
                        c.task,
                        " ".join(map(str, c.image_ids)),
                        " vs ".join(
                            "/".join(entry.labels)
                            for entries in c.by_image.values()
                            for entry in entries
                        ),
                        c.distance,
                        " | ".join(
                            str(entry.local_path)
                            for entries in c.by_image.values()
                            for entry in entries
                        ),
                    )
                    for c in shown
                ],
            )
        )
        return
    groups = duplicate_groups(engine, dataset=dataset, max_distance=max_distance)
    if json_output:
        print_json({"groups": groups, "count": len(groups)})
        return
    shown = groups if limit == 0 else groups[:limit]
    stdout.print(
        table(
            f"{len(groups)} duplicate groups"
            + (f" (first {len(shown)})" if len(shown) < len(groups) else ""),
            [
                "group",
                "images",
                "files",
                "exact",
                "near pairs",
                "labels",
                "image ids",
                "first path",
            ],
            [
                (
                    g.group_id,
                    g.images,
                    g.files,
                    g.exact_duplicates,
                    g.near_pairs,
                    ", ".join(g.labels),
                    " ".join(str(m.id) for m in g.members[:8]) + (" ..." if g.images > 8 else ""),
                    g.members[0].local_path if g.members else "",
                )
                for g in shown
            ],
        )
    )


@app.command("show")
def show(
    ctx: typer.Context,
    image_id: int = typer.Argument(..., help="An image id."),
    json_output: bool = JSON_OPTION,
) -> None:
    """One image: its source files, labels, near duplicates and group."""
    from skinctl.console import print_json, stdout, table
    from skinctl.dedup.reports import image_duplicates

    result = image_duplicates(state(ctx).engine(), image_id)
    if json_output:
        print_json(result)
        return
    labels = ", ".join(sorted({f"{label.task}:{label.condition_type}" for label in result.labels}))
    stdout.print(
        f"image {result.id} ({result.dataset}) {result.local_path}\n"
        f"  labels: {labels or '-'}\n  group {result.group.group_id}: {result.group.images} images"
        f"\n  estimated skin tone: {_tone(result.skin_tone, result.skin_tone_ita)}"
    )
    stdout.print(
        table(
            "source files (exact duplicates)",
            ["source", "dataset", "path", "split"],
            [(s.source_id, s.dataset, s.local_path, s.split) for s in result.sources],
        )
    )
    stdout.print(
        table(
            f"{len(result.duplicates)} near duplicates",
            ["id", "distance", "method", "dataset", "labels", "tone", "path"],
            [
                (
                    d.id,
                    d.distance,
                    d.method,
                    d.dataset,
                    ", ".join(sorted({label.condition_type for label in d.labels})),
                    _tone(d.skin_tone, d.skin_tone_ita),
                    d.local_path,
                )
                for d in result.duplicates
            ],
        )
    )


def _tone(tone: str | None, ita: float | None) -> str:
    return f"{tone} ({ita:.0f}°)" if tone is not None and ita is not None else "-"


@app.command("scan")
def scan(
    ctx: typer.Context,
    dataset: str | None = typer.Option(
        None, "--dataset", "-d", help="Link this dataset's images (against all)."
    ),
    max_distance: int | None = typer.Option(
        None,
        "--max-distance",
        min=0,
        max=15,
        help="pHash radius whose neighbours are checked too (default 8).",
    ),
    workers: int = typer.Option(0, "--workers", min=0, help="Processes (0: the core count)."),
    full: bool = typer.Option(
        False,
        "--full",
        help="Check every stored image again, not only those not linked yet.",
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Link near duplicates among what is stored: images not linked yet (all with --full)
    against every stored image. Only adds missing pairs."""
    from skinctl.console import info, print_json, progress_bar, progress_enabled, stdout, table
    from skinctl.dedup import link
    from skinctl.errors import EXIT_REJECTED

    app_state = state(ctx)
    with progress_bar(progress_enabled()) as report:
        summary = link(
            app_state.engine(),
            app_state.storage(),
            dataset=dataset,
            max_distance=max_distance,
            workers=workers or None,
            full=full,
            report=report,
        )
    if json_output:
        print_json(summary)
    else:
        stdout.print(
            table(
                f"near-duplicate scan ({summary.method})",
                ["what", "count"],
                [
                    ("images scanned", summary.images),
                    ("features computed", summary.features_computed),
                    ("candidate pairs", summary.candidates),
                    ("already linked", summary.already_linked),
                    ("verified near duplicates", summary.verified),
                    ("new pairs recorded", summary.pairs),
                    ("unreadable images", len(summary.unreadable)),
                    ("seconds", summary.seconds),
                ],
            )
        )
        for item in summary.unreadable[:20]:
            info(f"image {item.image_id}: {item.reason}")
    if summary.unreadable:
        raise typer.Exit(EXIT_REJECTED)
