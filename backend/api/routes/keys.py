"""API-key management over HTTP (admin-scoped keys only): create, list, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request, status
from pydantic import BaseModel, ConfigDict, Field

from agents.errors import NotFound
from backend.api.auth import AdminCallerDep
from backend.config import RATE_LIMIT_PATTERN
from backend.runs.keys import KeyService
from backend.runs.store.keys import ApiKey

__all__ = ["KeyCreate", "KeyCreated", "KeyPublic", "KeysPublic", "router"]

router = APIRouter(prefix="/keys", tags=["keys"])


class KeyCreate(BaseModel):
    """Body of ``POST /keys``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "ci", "max_queued": 50}]})
    name: str = Field(min_length=1, max_length=200, description="What the key is for (shown in listings).")
    scopes: list[Literal["admin"]] = Field(default_factory=list, description='["admin"] to see and manage everything.')
    max_queued: int | None = Field(default=None, ge=1, description="Unfinished workflows allowed at once.")
    rate_limit: str | None = Field(
        default=None, pattern=RATE_LIMIT_PATTERN, description='Submit limit, e.g. "30/minute".'
    )


class KeyPublic(BaseModel):
    """An API key as listings show it: never the secret."""

    id: str
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it (af_live_…).")
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    max_queued: int | None
    rate_limit: str | None

    @classmethod
    def from_key(cls, key: ApiKey) -> KeyPublic:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            scopes=key.scopes,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
            max_queued=key.max_queued,
            rate_limit=key.rate_limit,
        )


class KeyCreated(KeyPublic):
    secret: str = Field(description="The whole key. Shown this once: store it now.")


class KeysPublic(BaseModel):
    items: list[KeyPublic]


def _keys(request: Request) -> KeyService:
    keys: KeyService = request.app.state.keys
    return keys


@router.post("", status_code=status.HTTP_201_CREATED, response_model=KeyCreated, summary="Create an API key")
async def create_key(body: KeyCreate, request: Request, _admin: AdminCallerDep) -> KeyCreated:
    issued = await _keys(request).create(
        name=body.name, scopes=list(body.scopes), max_queued=body.max_queued, rate_limit=body.rate_limit
    )
    return KeyCreated(**KeyPublic.from_key(issued.key).model_dump(), secret=issued.secret)


@router.get("", response_model=KeysPublic, summary="List API keys (never their secrets)")
async def list_keys(request: Request, _admin: AdminCallerDep) -> KeysPublic:
    return KeysPublic(items=[KeyPublic.from_key(key) for key in await _keys(request).list()])


@router.delete("/{key_id}", response_model=KeyPublic, summary="Revoke an API key")
async def revoke_key(
    key_id: Annotated[str, Path(max_length=32, description="The key's id (key_…).")],
    request: Request,
    _admin: AdminCallerDep,
) -> KeyPublic:
    key = await _keys(request).revoke(key_id=key_id)
    if key is None:
        raise NotFound(f"No API key with id {key_id!r}.")
    return KeyPublic.from_key(key)
