"""API keys: issue, list, revoke and authenticate them. The secret is shown once and never stored.

A key reads ``af_live_<8 id chars><32 secret chars>``; its first 16 characters are the prefix
shown to people and used to find the key, and the database keeps only
HMAC-SHA256(``AGENTFLOW_SECRET_KEY``, key), compared in constant time. Lookups are cached for
``CACHE_SECONDS`` per process, so a revocation reaches every process within that time, and
``last_used_at`` is written at most once per ``TOUCH_SECONDS`` per key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import string
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from backend.runs.store import utcnow
from backend.runs.store.keys import ApiKey, ApiKeyStore

__all__ = ["KEY_PREFIX", "AuthOutcome", "IssuedKey", "KeyService"]

logger = logging.getLogger("agentflow.auth")
KEY_PREFIX = "af_live_"
_ALPHABET = string.ascii_lowercase + string.digits
_ID_LENGTH, _SECRET_LENGTH = 8, 32
CACHE_SECONDS = 0.5
TOUCH_SECONDS = 60.0
Failure = Literal["malformed", "unknown", "revoked"]


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A newly created key: ``secret`` is the whole key, shown to its owner this once."""

    key: ApiKey
    secret: str


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    """Who a presented key belongs to, or why it was refused."""

    key: ApiKey | None
    failure: Failure | None = None
    prefix: str | None = None


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


class KeyService:
    """Key management and authentication over one ``ApiKeyStore``."""

    def __init__(self, store: ApiKeyStore, *, secret: bytes) -> None:
        self.store = store
        self._secret = secret
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._touched: dict[str, float] = {}

    def _hash(self, token: str) -> str:
        return hmac.new(self._secret, token.encode(), hashlib.sha256).hexdigest()

    async def create(
        self,
        *,
        name: str,
        scopes: list[str] | None = None,
        max_queued: int | None = None,
        rate_limit: str | None = None,
    ) -> IssuedKey:
        public = _random(_ID_LENGTH)
        token = KEY_PREFIX + public + _random(_SECRET_LENGTH)
        key = ApiKey(
            id="key_" + public,
            name=name,
            prefix=KEY_PREFIX + public,
            secret_hash=self._hash(token),
            created_at=utcnow(),
            scopes=sorted(set(scopes or [])),
            max_queued=max_queued,
            rate_limit=rate_limit,
        )
        await self.store.create(key=key)
        logger.info(
            "API key created",
            extra={"event": "key_created", "key_id": key.id, "key_prefix": key.prefix, "scopes": key.scopes},
        )
        return IssuedKey(key=key, secret=token)

    async def list(self) -> list[ApiKey]:
        return await self.store.all()

    async def get(self, *, key_id: str) -> ApiKey | None:
        return await self.store.get(key_id=key_id)

    async def revoke(self, *, key_id: str) -> ApiKey | None:
        key = await self.store.revoke(key_id=key_id, at=utcnow())
        if key is not None:
            self._cache.pop(key.prefix, None)
            logger.info("API key revoked", extra={"event": "key_revoked", "key_id": key.id, "key_prefix": key.prefix})
        return key

    async def authenticate(self, token: str) -> AuthOutcome:
        """The live key ``token`` belongs to, or the reason it is refused."""
        length = len(KEY_PREFIX) + _ID_LENGTH + _SECRET_LENGTH
        if len(token) != length or not token.startswith(KEY_PREFIX):
            return AuthOutcome(None, "malformed")
        prefix = token[: len(KEY_PREFIX) + _ID_LENGTH]
        key = await self._lookup(prefix)
        # Compare even when the prefix is unknown, so timing tells nothing about which prefixes exist.
        expected = key.secret_hash if key is not None else "0" * 64
        if not hmac.compare_digest(self._hash(token), expected) or key is None:
            return AuthOutcome(None, "unknown", prefix)
        if key.revoked_at is not None:
            return AuthOutcome(None, "revoked", prefix)
        await self._touch(key)
        return AuthOutcome(key, None, prefix)

    async def _lookup(self, prefix: str) -> ApiKey | None:
        now = time.monotonic()
        cached = self._cache.get(prefix)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        key = await self.store.by_prefix(prefix=prefix)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[prefix] = (now, key)
        return key

    async def _touch(self, key: ApiKey) -> None:
        now = time.monotonic()
        if now - self._touched.get(key.id, -TOUCH_SECONDS) >= TOUCH_SECONDS:
            self._touched[key.id] = now
            at = utcnow()
            if key.last_used_at is None or at - key.last_used_at >= timedelta(seconds=TOUCH_SECONDS):
                await self.store.touch(key_id=key.id, at=at)
