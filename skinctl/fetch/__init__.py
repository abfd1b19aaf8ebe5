"""Bringing datasets in: Kaggle, http(s) and local sources, safe extraction, the download cache."""
