"""The image and table ingest pipelines."""
