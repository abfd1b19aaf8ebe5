"""Products, reviews and the CosIng ingredient database: readers for each file format,
idempotent ingest, ingredient matching and checks, recommendations."""
