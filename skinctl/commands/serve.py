"""`skinctl serve`: the analysis API. Thin: parse, check, hand the configuration to uvicorn.
FastAPI, uvicorn and TensorFlow are imported inside the command, never at import time."""

from __future__ import annotations

import typer

from skinctl.commands.common import state


def serve(
    ctx: typer.Context,
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."
    ),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Server processes (each loads the models)."
    ),
    no_auth: bool = typer.Option(
        False, "--no-auth", help="Accept requests without an API key (only with a loopback --host)."
    ),
    max_bytes: int = typer.Option(
        10 * 1024 * 1024,
        "--max-bytes",
        min=1,
        help="Largest accepted upload, in bytes (larger: 413).",
    ),
    record: bool = typer.Option(
        False,
        "--record",
        help="Keep each analysed image (dataset `api`) and the model's answer as pending labels.",
    ),
    alias: str = typer.Option(
        "production", "--alias", help="Serve the promotions under this alias."
    ),
    poll_seconds: float = typer.Option(
        2.0,
        "--poll-seconds",
        min=0.1,
        help="How often to look for new promotions and revoked keys.",
    ),
    batch_wait_ms: float = typer.Option(
        4.0, "--batch-wait-ms", min=0.0, help="How long a batch waits for concurrent requests."
    ),
    max_batch: int = typer.Option(32, "--max-batch", min=1, help="Most images per model call."),
) -> None:
    """Serve POST /api/v1/ml/analyze-condition from the promoted models (OpenAPI at /docs)."""
    from skinctl.console import info
    from skinctl.errors import UsageError
    from skinctl.serve.app import CONFIG_ENV, LOOPBACK, ServeConfig

    if no_auth and host not in LOOPBACK:
        raise UsageError(
            f"--no-auth is refused with --host {host}: only a loopback address may serve without keys.",
            hint="Create a key with `skinctl api-key create NAME`, or serve on 127.0.0.1.",
        )
    app_state = state(ctx)
    settings = app_state.settings
    engine = app_state.engine()  # starts the embedded database if needed; schema at head
    config = ServeConfig(
        database_url=engine.url.render_as_string(hide_password=False),
        storage_url=settings.storage,
        home=str(settings.home),
        user=settings.user,
        auth=not no_auth,
        max_bytes=max_bytes,
        record=record,
        poll_seconds=poll_seconds,
        alias=alias,
        max_batch=max_batch,
        batch_wait_ms=batch_wait_ms,
    )
    import uvicorn

    info(
        f"skinctl serve on http://{host}:{port} (OpenAPI at /docs); "
        f"{'NO API KEYS (loopback only)' if no_auth else 'API keys required'}"
        f"{'; recording analysed images into dataset api' if record else ''}."
    )
    if workers == 1:
        from skinctl.serve.app import create_app

        uvicorn.run(create_app(config), host=host, port=port, log_level="info")
    else:
        import os

        os.environ[CONFIG_ENV] = config.to_env()  # each worker process reads it
        uvicorn.run(
            "skinctl.serve.app:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
        )
