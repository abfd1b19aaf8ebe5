"""What every command gets from the root callback: settings resolved once, an engine on demand."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer

from skinctl.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from skinctl.config import LoadedSettings, Settings
    from skinctl.storage import Storage


@dataclass
class AppState:
    flags: dict[str, Any] = field(default_factory=dict)
    verbose: bool = False
    _loaded: LoadedSettings | None = None
    _engines: dict[bool, Engine] = field(default_factory=dict)

    @property
    def loaded(self) -> LoadedSettings:
        if self._loaded is None:
            from skinctl.config import load_settings  # pydantic model building: only when used

            self._loaded = load_settings(self.flags)
        return self._loaded

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    def engine(self, *, check_schema: bool = True) -> Engine:
        """The database engine; by default refuses a schema that is not at head."""
        if check_schema not in self._engines:
            from skinctl.console import info
            from skinctl.db.engine import engine_from_settings

            self._engines[check_schema] = engine_from_settings(
                self.settings, check_schema=check_schema, announce=info
            )
        return self._engines[check_schema]

    def storage(self, url: str | None = None) -> Storage:
        from skinctl.storage import open_storage

        return open_storage(url or self.settings.storage)

    def secrets(self) -> list[str]:
        """Passwords this run knows (the configured and the embedded database's), to mask in
        anything printed. Reads only what is already resolved: never starts a server."""
        found = {engine.url.password for engine in self._engines.values()}
        if self._loaded is not None and self._loaded.settings.database_url:
            from urllib.parse import urlsplit

            try:
                found.add(urlsplit(self._loaded.settings.database_url).password)
            except ValueError:
                pass
        return sorted(str(secret) for secret in found if secret)

    def close(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()


def state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


def read_ids(values: list[str]) -> list[int]:
    """Integer ids from arguments; `-` reads more from stdin (whitespace, commas, or JSON Lines
    with an `id` field), so ids can be piped from another skinctl command."""
    import json

    tokens: list[str] = []
    for value in values:
        if value == "-":
            for line in sys.stdin:
                line = line.strip()
                if not line:
                    continue
                if line.startswith("{"):
                    try:
                        tokens.append(str(json.loads(line)["id"]))
                    except (ValueError, KeyError):
                        raise UsageError(
                            f"Cannot read an id from the JSON line {line[:80]!r}."
                        ) from None
                elif line.startswith("["):
                    try:
                        tokens += [
                            str(item["id"] if isinstance(item, dict) else item)
                            for item in json.loads(line)
                        ]
                    except (ValueError, KeyError, TypeError):
                        raise UsageError(f"Cannot read ids from {line[:80]!r}.") from None
                else:
                    tokens += line.replace(",", " ").split()
        else:
            tokens += value.replace(",", " ").split()
    ids = []
    for token in tokens:
        try:
            ids.append(int(token))
        except ValueError:
            raise UsageError(f"{token!r} is not an id (a whole number).") from None
    if not ids:
        raise UsageError(
            "No ids given.", hint="Pass ids as arguments, or `-` to read them from stdin."
        )
    return ids
