"""`skinctl config`: what the settings are and where each comes from."""

from __future__ import annotations

import typer

from skinctl.commands.common import state

app = typer.Typer(help="Show the settings and where each value comes from.", no_args_is_help=True)


def _shown(key: str, value: object) -> object:
    from skinctl.config import mask_url

    if key == "database_url":
        return mask_url(str(value)) if value else None
    if hasattr(value, "__fspath__"):
        return str(value)
    return value


@app.command("show")
def show(
    ctx: typer.Context,
    json_output: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Every setting, its value (passwords masked) and its source."""
    from skinctl.config import Settings
    from skinctl.console import print_json, stdout, table

    loaded = state(ctx).loaded
    settings = loaded.settings
    rows = []
    for key, field in Settings.model_fields.items():
        value = _shown(key, getattr(settings, key))
        if key == "storage_url" and value is None:
            value = settings.storage
        if key == "workers" and value is None:
            value = settings.worker_count
        rows.append(
            {
                "key": key,
                "value": value,
                "source": str(loaded.sources[key]),
                "description": field.description,
            }
        )
    if key_db := next(r for r in rows if r["key"] == "database_url"):
        if key_db["value"] is None:
            key_db["value"] = f"embedded ({settings.home / 'postgres'})"
    if json_output:
        print_json({row["key"]: {"value": row["value"], "source": row["source"]} for row in rows})
        return
    stdout.print(
        table(
            "skinctl settings",
            ["setting", "value", "source"],
            [(r["key"], r["value"], r["source"]) for r in rows],
        )
    )
    stdout.print(
        "[dim]precedence: flag > SKINCTL_* env > DATABASE_URL > ./skinctl.toml > "
        "user config skinctl.toml > default[/]",
        highlight=False,
    )
