"""The dataset catalog and the readers of on-disk layouts."""
