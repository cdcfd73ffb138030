"""ApiKeyStore: every read and write of the ``api_keys`` table (SQLAlchemy Core, keyword-only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.runs.store.repository import _aware
from backend.runs.store.tables import api_keys

__all__ = ["ApiKey", "ApiKeyStore"]


@dataclass(slots=True)
class ApiKey:
    """An API key as the server knows it: never the secret, only its keyed hash."""

    id: str
    name: str
    prefix: str
    secret_hash: str
    created_at: datetime
    scopes: list[str] = field(default_factory=list)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    max_queued: int | None = None
    rate_limit: str | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes


def _to_key(row: RowMapping) -> ApiKey:
    created = _aware(row["created_at"])
    assert created is not None
    return ApiKey(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        secret_hash=row["secret_hash"],
        created_at=created,
        scopes=list(row["scopes"] or []),
        last_used_at=_aware(row["last_used_at"]),
        revoked_at=_aware(row["revoked_at"]),
        max_queued=row["max_queued"],
        rate_limit=row["rate_limit"],
    )


class ApiKeyStore:
    """Reads and writes API keys. Every method is one short transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self, *, key: ApiKey) -> ApiKey:
        values: dict[str, Any] = {
            "id": key.id,
            "name": key.name,
            "prefix": key.prefix,
            "secret_hash": key.secret_hash,
            "scopes": key.scopes,
            "created_at": key.created_at,
            "max_queued": key.max_queued,
            "rate_limit": key.rate_limit,
        }
        async with self.engine.begin() as connection:
            await connection.execute(insert(api_keys).values(**values))
        return key

    async def by_prefix(self, *, prefix: str) -> ApiKey | None:
        return await self._one(api_keys.c.prefix == prefix)

    async def get(self, *, key_id: str) -> ApiKey | None:
        return await self._one(api_keys.c.id == key_id)

    async def _one(self, condition: Any) -> ApiKey | None:
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(api_keys).where(condition))).mappings().first()
        return _to_key(row) if row is not None else None

    async def all(self) -> list[ApiKey]:
        async with self.engine.connect() as connection:
            rows = (await connection.execute(select(api_keys).order_by(api_keys.c.created_at))).mappings().all()
        return [_to_key(row) for row in rows]

    async def revoke(self, *, key_id: str, at: datetime) -> ApiKey | None:
        """Mark a key revoked (idempotent: the first revocation time stays); None if unknown."""
        async with self.engine.begin() as connection:
            await connection.execute(
                update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=at)
            )
        return await self.get(key_id=key_id)

    async def touch(self, *, key_id: str, at: datetime) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=at))
