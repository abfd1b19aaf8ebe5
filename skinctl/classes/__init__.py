"""The class vocabulary: canonical class names per label task, what each dataset calls them
(synonyms), and every change to it (`label_class_changes`).

`vocabulary` reads and writes the vocabulary tables (and maps a dataset's names to canonical
ones, for ingest and training); `listing` counts images per canonical class and dataset.
Changes that also rewrite existing labels (map, rename, merge, revert) go through the label
service's history: they live in `skinctl.labels.classes`."""
