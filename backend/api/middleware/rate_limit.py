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
import threading
import time
from collections.abc import Callable
from typing import Any

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from slowapi import Limiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agents.errors import RateLimited
from agents.metrics import metrics
from backend.api.auth import principal_of
from backend.api.errors import problem_for

__all__ = ["RateLimitMiddleware", "SweptMemoryStorage", "build_limiter", "is_exempt", "rate_limit_key"]

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


class SweptMemoryStorage(MemoryStorage):
    """limits' in-memory storage, with its expired keys swept once a second instead of every 10 ms.

    ``MemoryStorage`` starts a ``threading.Timer`` of 10 ms from every hit that finds the last
    one finished: under steady traffic that is a new OS thread about 100 times a second, each
    ``start()`` blocking the event loop until the thread runs, and a sweep of every key on it.
    Expired counters are already dropped when read (``get``), so the sweep only returns the
    memory of keys nobody asks for again; once a second does that as well.
    """

    STORAGE_SCHEME = ["agentflow+memory"]
    SWEEP_SECONDS = 1.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # overrides the base class's name-mangled hook
        if not self.timer.is_alive():
            self.timer = threading.Timer(self.SWEEP_SECONDS, self._MemoryStorage__expire_events)  # type: ignore[attr-defined]
            self.timer.daemon = True  # a pending sweep never holds up the process's exit
            self.timer.start()


def build_limiter(storage_uri: str) -> Limiter:
    """A slowapi limiter over ``storage_uri`` (``memory://`` or ``redis://...``).

    ``memory://`` is served by ``SweptMemoryStorage`` (same counters, no thread per 10 ms).
    """
    if storage_uri.startswith("memory://"):
        storage_uri = "agentflow+" + storage_uri
    return Limiter(
        key_func=lambda: "",  # keys are computed per ASGI scope by this module
        storage_uri=storage_uri,
        # O(1) per request in memory and in Redis; the moving window keeps one entry per request
        # and inserts at the front of a list, which costs O(limit) per hit at large limits.
        strategy="sliding-window-counter",
        headers_enabled=True,
        key_prefix="agentflow",
    )


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: Limiter,
        submit_limit: str,
        default_limit: str,
        key_func: Callable[[Scope], str] = rate_limit_key,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.submit_limit: RateLimitItem = parse(submit_limit)
        self.default_limit: RateLimitItem = parse(default_limit)
        self.key_func = key_func
        self._per_key_limits: dict[str, RateLimitItem] = {}
        # Redis round-trips are blocking calls in slowapi's limiter; keep them off the loop.
        self._blocking = not isinstance(limiter.limiter.storage, MemoryStorage)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_exempt(scope["path"]) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        is_submit = scope["method"] == "POST" and bool(_SUBMIT_PATH.match(scope["path"]))
        item, bucket = (self.submit_limit, "submit") if is_submit else (self.default_limit, "default")
        key_limit = (principal := principal_of(scope)) is not None and principal.rate_limit
        if is_submit and key_limit:  # the key's own submit limit replaces the server's
            item = self._parsed(key_limit)
        key = self.key_func(scope)
        allowed, remaining, reset_at = await self._hit(item, key, bucket)
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
            item = self._per_key_limits[limit] = parse(limit)
        return item

    async def _hit(self, item: RateLimitItem, key: str, bucket: str) -> tuple[bool, int, int]:
        if self._blocking:
            return await asyncio.to_thread(self._hit_sync, item, key, bucket)
        return self._hit_sync(item, key, bucket)

    def _hit_sync(self, item: RateLimitItem, key: str, bucket: str) -> tuple[bool, int, int]:
        strategy: Any = self.limiter.limiter
        allowed = bool(strategy.hit(item, key, bucket))
        reset_at, remaining = strategy.get_window_stats(item, key, bucket)
        return allowed, int(remaining), math.ceil(reset_at)
