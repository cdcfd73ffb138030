"""Rate limiting with slowapi's limiter: a submit limit for workflow- and run-creating POSTs, a default
limit for everything else, health and docs exempt.

slowapi's ``Limiter`` owns the storage (``memory://`` or Redis, shared by every worker) and the
sliding-window-counter strategy. The HTTP edge (``backend.api.middleware.edge``) applies it rather
than slowapi's decorators so that (a) the limit is chosen per app from settings, (b) the 429 is
rendered by our problem+json path inside CORS and the request id, and (c) streaming responses are
untouched.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from starlette.types import Scope

from agents.errors import RateLimited
from agents.metrics import metrics
from backend.api.errors import problem_for

if TYPE_CHECKING:
    from limits import RateLimitItem

    from backend.runs.store.keys import ApiKey

__all__ = ["RateLimiter", "is_exempt", "rate_limit_key"]

RawHeaders = list[tuple[bytes, bytes]]

logger = logging.getLogger("agentflow.ratelimit")

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json"})
EXEMPT_PREFIX = "/docs/"  # the docs' assets and OAuth2 redirect page
# Workflow-creating POSTs: /workflows/<type> (not /workflows/<id>/cancel), and the LangGraph API's
# run-creating routes: /threads/<id>/runs[/wait|/stream] and /runs[/wait|/stream].
_SUBMIT_PATH = re.compile(r"^/(workflows/[^/]+|threads/[^/]+/runs(/wait|/stream)?|runs(/wait|/stream)?)/?$")


def is_exempt(path: str) -> bool:
    """Health probes and the API docs are never rate limited."""
    return path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIX)


def rate_limit_key(scope: Scope, key: ApiKey | None) -> str:
    """The authenticated API key's id, else the client IP; never an unchecked header value.

    ``key`` is what authentication (which runs first) resolved. The client IP is the one uvicorn's
    proxy-headers middleware resolved: ``X-Forwarded-For`` is only honoured from
    ``AGENTFLOW_FORWARDED_ALLOW_IPS``, so clients cannot choose their bucket.
    """
    if key is not None:
        return "key:" + key.id
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


@dataclass(frozen=True, slots=True)
class _Limiter:
    """What counting needs, once built: slowapi's strategy over its storage and the parsed limits."""

    strategy: Any  # a limits RateLimiter (sliding window counter)
    submit: RateLimitItem
    default: RateLimitItem
    #: Redis round-trips are blocking calls in slowapi's limiter; keep them off the loop.
    blocking: bool


class RateLimiter:
    """Counts every request but the exempt ones against its bucket's limit, in ``storage_uri``.

    With ``memory://`` the limiter (slowapi, ``limits`` and its parsed limits) is built by the
    first request that counts: ~15 ms of imports that start-up and health probes never need. A
    Redis limiter is built at once: its client's import is more than one request should wait for.
    """

    def __init__(self, *, storage_uri: str, submit_limit: str, default_limit: str) -> None:
        self.storage_uri = storage_uri
        self._limits = (submit_limit, default_limit)
        self._per_key_limits: dict[str, RateLimitItem] = {}
        self._limiter: _Limiter | None = None
        if not storage_uri.startswith("memory://"):
            self._build()

    def _build(self) -> _Limiter:
        from limits.storage import MemoryStorage

        from backend.api.middleware._limiter import build_limiter

        strategy = build_limiter(self.storage_uri).limiter
        submit, default = (self._parsed(limit) for limit in self._limits)
        blocking = not isinstance(strategy.storage, MemoryStorage)
        self._limiter = _Limiter(strategy=strategy, submit=submit, default=default, blocking=blocking)
        return self._limiter

    async def admit(self, scope: Scope, principal: ApiKey | None) -> tuple[Response | None, RawHeaders]:
        """Count an HTTP request of ``principal`` (its authenticated key, if any).

        Returns the 429 problem to answer instead when the request is over its limit, else None
        and the ``X-RateLimit-*`` fields for its response (none for an exempt request).
        """
        path = scope["path"]
        if is_exempt(path) or scope["method"] == "OPTIONS":
            return None, []
        limiter = self._limiter or self._build()
        is_submit = scope["method"] == "POST" and bool(_SUBMIT_PATH.match(path))
        item, bucket = (limiter.submit, "submit") if is_submit else (limiter.default, "default")
        if is_submit and principal is not None and principal.rate_limit:  # the key's own submit limit wins
            item = self._parsed(principal.rate_limit)
        key = rate_limit_key(scope, principal)
        allowed, remaining, reset_at = await self._hit(limiter, item, key, bucket)
        if allowed:
            return None, [
                (b"x-ratelimit-limit", str(item.amount).encode("latin-1")),
                (b"x-ratelimit-remaining", str(remaining).encode("latin-1")),
                (b"x-ratelimit-reset", str(reset_at).encode("latin-1")),
            ]
        retry_after = max(1, math.ceil(reset_at - time.time()))
        instruments = metrics()
        instruments.child(instruments.rate_limited, bucket).inc()
        logger.warning(
            "rate limit exceeded",
            extra={"event": "rate_limited", "bucket": bucket, "limit": str(item), "retry_after": retry_after},
        )
        error = RateLimited(
            f"Rate limit of {item} exceeded for this client; retry after {retry_after} s.", retry_after=retry_after
        )
        headers = {
            "X-RateLimit-Limit": str(item.amount),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset_at),
        }
        return problem_for(error, instance=path, headers=headers), []

    def _parsed(self, limit: str) -> RateLimitItem:
        item = self._per_key_limits.get(limit)
        if item is None:
            from limits import parse

            item = self._per_key_limits[limit] = parse(limit)
        return item

    async def _hit(self, limiter: _Limiter, item: RateLimitItem, key: str, bucket: str) -> tuple[bool, int, int]:
        if limiter.blocking:
            return await asyncio.to_thread(_hit, limiter.strategy, item, key, bucket)
        return _hit(limiter.strategy, item, key, bucket)


def _hit(strategy: Any, item: RateLimitItem, key: str, bucket: str) -> tuple[bool, int, int]:
    allowed = bool(strategy.hit(item, key, bucket))
    reset_at, remaining = strategy.get_window_stats(item, key, bucket)
    return allowed, int(remaining), math.ceil(reset_at)
