"""Dataset readers: turn a folder on disk (and its label files) into a list of image entries.

One reader per on-disk layout (`folders`, `csv`, `manifest`) plus `auto`, which picks one.
The dataset catalog (known datasets by slug) lives next to them in `catalog.py`.
"""

from skinctl.datasets.readers import (
    LAYOUTS,
    DatasetScan,
    ImageEntry,
    LabelSpec,
    scan_dataset,
)

__all__ = ["LAYOUTS", "DatasetScan", "ImageEntry", "LabelSpec", "scan_dataset"]
