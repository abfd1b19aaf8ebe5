"""`skinctl ingest`: bring datasets into the database.

(Placeholder on the products branch: the ingest engineer's branch defines this module with
`images`; the products commands are registered onto `app` from `ingest_tables.py`.)"""

from __future__ import annotations

import typer

app = typer.Typer(help="Bring datasets into the database: images, products, reviews, CosIng.", no_args_is_help=True)
