"""The image ingest pipeline (the table ingests live in `skinctl.products`).

`images.ingest_images` runs one ingest; each step is its own module: `options` (what was asked),
`source` (a folder or a catalog slug), `scan` (the dataset reader's entries and early
rejections), `known` (what the database already has: resume), `workers` (read, analyse and
store each file in worker processes), `writer` (one transaction per batch, columns from the
models), `linking` (near duplicates after the commit), `dry_run`, `summary` (the tally and the
frozen `--json` summary), `report` (the rejection CSV). `stats` is `skinctl stats`; `demo` draws
the demo set; `imageproc` is the one decode path.
"""
