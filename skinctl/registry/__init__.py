"""The model registry: which training run serves each task (`skinctl model ...`).

`skinctl.registry.service` holds the service; `skinctl.registry.tasks` the task enum (kept
import-light, since command modules use it as an option type at import time)."""
