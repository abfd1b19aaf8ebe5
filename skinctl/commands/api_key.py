"""`skinctl api-key ...`: the keys `skinctl serve` accepts. Thin: parse, call
`skinctl.serve.keys`, render. A key is printed once, at creation; only its hash is stored."""

from __future__ import annotations

import typer

from skinctl.commands.common import state

app = typer.Typer(
    help="API keys for `skinctl serve` (Authorization: Bearer KEY).", no_args_is_help=True
)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON on stdout.")


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Who or what uses the key (e.g. backend-prod)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a key and print it once (it cannot be shown again)."""
    from skinctl.console import info, print_json, stdout
    from skinctl.serve.keys import create_key

    app_state = state(ctx)
    created = create_key(app_state.engine(), name, user=app_state.settings.user)
    if as_json:
        print_json(
            {
                "id": created.info.id,
                "name": created.info.name,
                "key": created.key,
                "prefix": created.info.prefix,
                "created_at": created.info.created_at,
            }
        )
        return
    stdout.print(created.key, highlight=False, soft_wrap=True)
    info(
        f"API key {created.info.id} {created.info.name!r} created: the key is shown only this "
        "once; keep it in your backend's secret store."
    )


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Every key (name, prefix, who created and revoked it); never the keys themselves."""
    from skinctl.console import print_json, stdout, table
    from skinctl.serve.keys import list_keys

    keys = list_keys(state(ctx).engine())
    if as_json:
        print_json(keys)
        return
    stdout.print(
        table(
            f"{len(keys)} API keys",
            ("id", "name", "prefix", "created", "by", "revoked"),
            [
                (
                    k.id,
                    k.name,
                    k.prefix + "...",
                    k.created_at.strftime("%Y-%m-%d %H:%M"),
                    k.created_by or "",
                    f"{k.revoked_at:%Y-%m-%d %H:%M} by {k.revoked_by}" if k.revoked_at else "live",
                )
                for k in keys
            ],
        )
    )


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="The key's name or id."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Revoke a key: running servers refuse it within their poll interval."""
    from skinctl.console import print_json, stdout
    from skinctl.serve.keys import revoke_key

    app_state = state(ctx)
    revoked = revoke_key(app_state.engine(), key, user=app_state.settings.user)
    if as_json:
        print_json(revoked)
        return
    stdout.print(f"API key {revoked.id} {revoked.name!r} revoked.", highlight=False)
