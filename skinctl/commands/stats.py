"""`skinctl stats`: the dataset health report."""

from __future__ import annotations

import typer

from skinctl.commands.common import state


def stats(
    ctx: typer.Context,
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Only this dataset."),
    products: bool = typer.Option(
        False, "--products", help="Products, reviews, CosIng and the ingredient match rate instead."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Images per dataset, class and split; label coverage; duplicates; rejections; sizes; quality.
    With --products: the product tables and the ingredient match rate."""
    if products:
        from skinctl.commands.products import render_product_stats

        render_product_stats(ctx, json_output)
        return
    from skinctl.console import print_json, stdout, table
    from skinctl.errors import NotFound
    from skinctl.ingest.stats import dataset_stats

    report = dataset_stats(state(ctx).engine(), dataset)
    if dataset is not None and not report.datasets and not report.rejected:
        raise NotFound(
            f"No images of dataset {dataset!r} in the database.",
            hint="Run `skinctl stats` to see every dataset, or ingest it with `skinctl ingest images`.",
        )
    if json_output:
        print_json(report)
        return
    stdout.print(
        table(
            "datasets",
            ["dataset", "files", "images", "exact dup files", "labelled", "label coverage"],
            [
                (
                    r.dataset,
                    r.files,
                    r.images,
                    r.exact_duplicate_files,
                    r.labelled_images,
                    f"{r.label_coverage:.1%}",
                )
                for r in report.datasets
            ],
        )
    )
    stdout.print(
        table(
            "images per class and split",
            ["dataset", "task", "class", "split", "images"],
            [
                (r["dataset"], r["task"], r["class"], r["split"], r["images"])
                for r in report.classes
            ],
        )
    )
    near = report.near_duplicates
    conflicts = report.label_conflicts
    stdout.print(
        table(
            "duplicates and label conflicts",
            ["what", "count"],
            [
                ("near-duplicate pairs", near.pairs),
                ("images in near-duplicate pairs", near.images),
                ("exact duplicates with different labels", conflicts.exact_duplicate_conflicts),
                ("near-duplicate pairs with different labels", conflicts.near_duplicate_conflicts),
            ],
        )
    )
    if report.rejected:
        stdout.print(
            table(
                "rejected files",
                ["reason", "count"],
                [(r.reason, r.files) for r in report.rejected],
            )
        )
    sizes = report.sizes
    stdout.print(
        table(
            "sizes",
            ["measure", "min", "median", "max"],
            [
                ("width (px)", sizes.min_width, sizes.median_width, sizes.max_width),
                ("height (px)", sizes.min_height, sizes.median_height, sizes.max_height),
                ("file size (bytes)", sizes.min_bytes, sizes.median_bytes, sizes.max_bytes),
            ],
        )
    )
    stdout.print(
        table("aspect ratio", ["aspect", "images"], [(r.aspect, r.images) for r in report.aspect])
    )
    stdout.print(
        table("formats", ["format", "images"], [(r.format, r.images) for r in report.formats])
    )
    stdout.print(
        table(
            "quality flags", ["flag", "images"], [(r.flag, r.images) for r in report.quality_flags]
        )
    )
    stdout.print(
        table(
            "estimated skin tone (ITA from pixels, not Fitzpatrick type)",
            ["tone", "images"],
            [(r.tone, r.images) for r in report.skin_tones],
        )
    )
