"""Rate limiting with slowapi's limiter: a submit limit for workflow-creating POSTs, a default
limit for everything else, health and docs exempt.

slowapi's ``Limiter`` owns the storage (``memory://`` or Redis, shared by every worker) and the
sliding-window-counter strategy. We apply it from this pure ASGI middleware rather than slowapi's
decorators so that (a) the limit is chosen per app from settings, (b) the 429 is rendered by our
problem+json path inside the CORS and correlation middlewares, and (c) streaming responses are
untouched.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import time
from collections.abc import Callable
from typing import Any

from limits import RateLimitItem, parse
from slowapi import Limiter
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.errors import problem_response

__all__ = ["RateLimitMiddleware", "build_limiter", "rate_limit_key"]

logger = logging.getLogger("agentflow.ratelimit")

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
# Workflow-creating POSTs: /workflows/<type>, not /workflows/<id>/cancel.
_SUBMIT_PATH = re.compile(r"^/workflows/[^/]+/?$")


def rate_limit_key(scope: Scope) -> str:
    """The API key when the request carries one (hashed: never stored raw), else the client IP.

    The client IP is the one uvicorn's proxy-headers middleware resolved: ``X-Forwarded-For`` is
    only honoured from ``AGENTFLOW_FORWARDED_ALLOW_IPS``, so clients cannot choose their bucket.
    """
    headers = dict(scope.get("headers") or [])
    api_key = headers.get(b"x-api-key")
    authorization = headers.get(b"authorization")
    if api_key is None and authorization and authorization.lower().startswith(b"bearer "):
        api_key = authorization[7:].strip()
    if api_key:
        return "key:" + hashlib.sha256(api_key).hexdigest()[:24]
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


def build_limiter(storage_uri: str) -> Limiter:
    """A slowapi limiter over ``storage_uri`` (``memory://`` or ``redis://...``)."""
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
        # Redis round-trips are blocking calls in slowapi's limiter; keep them off the loop.
        self._blocking = not str(getattr(limiter, "_storage_uri", "memory://")).startswith("memory")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        is_submit = scope["method"] == "POST" and bool(_SUBMIT_PATH.match(scope["path"]))
        item, bucket = (self.submit_limit, "submit") if is_submit else (self.default_limit, "default")
        key = self.key_func(scope)
        allowed, remaining, reset_at = await self._hit(item, key, bucket)
        headers = {
            "X-RateLimit-Limit": str(item.amount),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset_at),
        }
        if not allowed:
            retry_after = max(1, math.ceil(reset_at - time.time()))
            logger.warning(
                "rate limit exceeded",
                extra={"event": "rate_limited", "bucket": bucket, "limit": str(item), "retry_after": retry_after},
            )
            response = problem_response(
                status=429,
                code="rate_limited",
                title="Too many requests",
                detail=f"Rate limit of {item} exceeded for this client; retry after {retry_after} s.",
                instance=scope["path"],
                headers={**headers, "Retry-After": str(retry_after)},
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                mutable = MutableHeaders(scope=message)
                for name, value in headers.items():
                    mutable[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _hit(self, item: RateLimitItem, key: str, bucket: str) -> tuple[bool, int, int]:
        if self._blocking:
            return await asyncio.to_thread(self._hit_sync, item, key, bucket)
        return self._hit_sync(item, key, bucket)

    def _hit_sync(self, item: RateLimitItem, key: str, bucket: str) -> tuple[bool, int, int]:
        strategy: Any = self.limiter.limiter
        allowed = bool(strategy.hit(item, key, bucket))
        reset_at, remaining = strategy.get_window_stats(item, key, bucket)
        return allowed, int(remaining), math.ceil(reset_at)
