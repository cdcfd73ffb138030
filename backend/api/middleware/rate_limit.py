"""Rate limiting with slowapi's limiter: a submit limit for workflow- and run-creating POSTs, a default
limit for everything else, health and docs exempt.

slowapi's ``Limiter`` owns the storage (``memory://`` or Redis, shared by every worker) and the
sliding-window-counter strategy. We apply it from this pure ASGI middleware rather than slowapi's
decorators so that (a) the limit is chosen per app from settings, (b) the 429 is rendered by our
problem+json path inside the CORS and correlation middlewares, and (c) streaming responses are
untouched.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agents.errors import RateLimited
from agents.metrics import metrics
from backend.api.auth import principal_of
from backend.api.errors import problem_for

if TYPE_CHECKING:
    from limits import RateLimitItem

__all__ = ["RateLimitMiddleware", "is_exempt", "rate_limit_key"]

logger = logging.getLogger("agentflow.ratelimit")

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json"})
EXEMPT_PREFIX = "/docs/"  # the docs' assets and OAuth2 redirect page
# Workflow-creating POSTs: /workflows/<type> (not /workflows/<id>/cancel), and the LangGraph API's
# run-creating routes: /threads/<id>/runs[/wait|/stream] and /runs[/wait|/stream].
_SUBMIT_PATH = re.compile(r"^/(workflows/[^/]+|threads/[^/]+/runs(/wait|/stream)?|runs(/wait|/stream)?)/?$")


def is_exempt(path: str) -> bool:
    """Health probes and the API docs are never rate limited."""
    return path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIX)


def rate_limit_key(scope: Scope) -> str:
    """The authenticated API key's id, else the client IP; never an unchecked header value.

    ``AuthMiddleware`` (which runs first) resolved the key. The client IP is the one uvicorn's
    proxy-headers middleware resolved: ``X-Forwarded-For`` is only honoured from
    ``AGENTFLOW_FORWARDED_ALLOW_IPS``, so clients cannot choose their bucket.
    """
    key = principal_of(scope)
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


class RateLimitMiddleware:
    """Counts every request but the exempt ones against its bucket's limit, in ``storage_uri``.

    With ``memory://`` the limiter (slowapi, ``limits`` and its parsed limits) is built by the
    first request that counts: ~15 ms of imports that start-up and health probes never need. A
    Redis limiter is built at once, as before: its client's import is more than one request
    should wait for.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        storage_uri: str,
        submit_limit: str,
        default_limit: str,
        key_func: Callable[[Scope], str] = rate_limit_key,
    ) -> None:
        self.app = app
        self.storage_uri = storage_uri
        self.key_func = key_func
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_exempt(scope["path"]) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        limiter = self._limiter or self._build()
        is_submit = scope["method"] == "POST" and bool(_SUBMIT_PATH.match(scope["path"]))
        item, bucket = (limiter.submit, "submit") if is_submit else (limiter.default, "default")
        key_limit = (principal := principal_of(scope)) is not None and principal.rate_limit
        if is_submit and key_limit:  # the key's own submit limit replaces the server's
            item = self._parsed(key_limit)
        key = self.key_func(scope)
        allowed, remaining, reset_at = await self._hit(limiter, item, key, bucket)
        headers = {
            "X-RateLimit-Limit": str(item.amount),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset_at),
        }
        if not allowed:
            retry_after = max(1, math.ceil(reset_at - time.time()))
            metrics().rate_limited.labels(bucket).inc()
            logger.warning(
                "rate limit exceeded",
                extra={"event": "rate_limited", "bucket": bucket, "limit": str(item), "retry_after": retry_after},
            )
            error = RateLimited(
                f"Rate limit of {item} exceeded for this client; retry after {retry_after} s.", retry_after=retry_after
            )
            response = problem_for(error, instance=scope["path"], headers=headers)
            await response(scope, receive, send)
            return

        raw = [
            (b"x-ratelimit-limit", headers["X-RateLimit-Limit"].encode("latin-1")),
            (b"x-ratelimit-remaining", headers["X-RateLimit-Remaining"].encode("latin-1")),
            (b"x-ratelimit-reset", headers["X-RateLimit-Reset"].encode("latin-1")),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Appended, not set through MutableHeaders (a scan per header): no route sets them.
                message["headers"] = [*message.get("headers", ()), *raw]
            await send(message)

        await self.app(scope, receive, send_with_headers)

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
