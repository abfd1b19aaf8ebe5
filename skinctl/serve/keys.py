"""API keys of `skinctl serve`: created once (the key is shown once), stored as a SHA-256 only,
revoked by name or id. Keys are 256 random bits, so a plain SHA-256 cannot be reversed."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skinctl.db.models import ApiKey
from skinctl.errors import Conflict, NotFound, UsageError

KEY_PREFIX = "skk_"
SHOWN_PREFIX = 10  # characters of the key kept (and listed) to tell keys apart


@dataclass(frozen=True)
class ApiKeyInfo:
    id: int
    name: str
    prefix: str
    created_by: str | None
    created_at: datetime
    revoked_by: str | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class CreatedKey:
    info: ApiKeyInfo
    key: str  # shown once; only its hash is stored


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _info(row: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        row.id, row.name, row.prefix, row.created_by, row.created_at, row.revoked_by, row.revoked_at
    )


def create_key(engine: Engine, name: str, *, user: str) -> CreatedKey:
    name = name.strip()
    if not name:
        raise UsageError("The key needs a name (who or what uses it).")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        name=name,
        prefix=key[:SHOWN_PREFIX],
        key_sha256=key_hash(key),
        created_by=user,
        created_at=datetime.now(),
    )
    try:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            session.add(row)
    except IntegrityError:
        raise Conflict(
            f"A live API key named {name!r} exists already.",
            hint=f"Pick another name, or `skinctl api-key revoke {name}` first.",
        ) from None
    return CreatedKey(_info(row), key)


def list_keys(engine: Engine, *, include_revoked: bool = True) -> list[ApiKeyInfo]:
    with Session(engine) as session:
        query = select(ApiKey).order_by(ApiKey.id)
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        return [_info(row) for row in session.scalars(query)]


def revoke_key(engine: Engine, ref: str, *, user: str) -> ApiKeyInfo:
    """Revoke the live key with this name (or id). Revoking twice is refused with NotFound."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        query = select(ApiKey).where(ApiKey.revoked_at.is_(None))
        query = (
            query.where(ApiKey.id == int(ref)) if ref.isdigit() else query.where(ApiKey.name == ref)
        )
        row = session.scalar(query.with_for_update())
        if row is None:
            raise NotFound(
                f"No live API key named (or numbered) {ref!r}.",
                hint="`skinctl api-key list` shows the keys.",
            )
        row.revoked_at, row.revoked_by = datetime.now(), user
        session.flush()
        return _info(row)


def live_key_hashes(engine: Engine) -> dict[str, str]:
    """SHA-256 of every live key -> its name (what the server checks requests against)."""
    with Session(engine) as session:
        return dict(
            session.execute(
                select(ApiKey.key_sha256, ApiKey.name).where(ApiKey.revoked_at.is_(None))
            ).all()
        )
