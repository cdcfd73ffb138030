"""Correlation id: accept a safe client-supplied id or make one, echo it, hold it in context."""

from __future__ import annotations

import logging
import os
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agents import context, telemetry

__all__ = ["CorrelationIdMiddleware", "is_safe_request_id", "new_request_id"]

logger = logging.getLogger("agentflow.request")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_NAME = REQUEST_ID_HEADER.lower().encode("latin-1")
# The original platform's header name, still accepted.
_INCOMING_HEADERS = (b"x-request-id", b"x-correlation-id")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def is_safe_request_id(value: str) -> bool:
    """Whether a client-supplied id is safe to log and echo (≤ 64 chars of ``[A-Za-z0-9._-]``)."""
    return bool(_SAFE_ID.match(value))


def new_request_id() -> str:
    """32 random hex digits (as ``uuid4().hex``, without building a UUID)."""
    return os.urandom(16).hex()


class CorrelationIdMiddleware:
    """Sets ``agents.context.correlation_id`` for the request and echoes ``X-Request-ID``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        supplied = _supplied_id(scope)
        request_id = supplied if supplied is not None and is_safe_request_id(supplied) else new_request_id()
        token = context.correlation_id.set(request_id)
        try:
            if supplied is not None and supplied != request_id:
                logger.warning(
                    "replaced an unsafe request id",
                    extra={"event": "request_id_replaced", "supplied_length": len(supplied)},
                )
            scope.setdefault("state", {})["request_id"] = request_id
            encoded_id = request_id.encode("latin-1")
            telemetry.annotate({"agentflow.correlation_id": request_id})  # on the HTTP span, when tracing

            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    # Appended, not set through MutableHeaders (which scans for an existing one):
                    # nothing inside sets this header.
                    message["headers"] = [*message.get("headers", ()), (_REQUEST_ID_NAME, encoded_id)]
                await send(message)

            await self.app(scope, receive, send_with_id)
        finally:
            context.correlation_id.reset(token)


def _supplied_id(scope: Scope) -> str | None:
    headers: dict[bytes, bytes] = dict(scope.get("headers") or [])
    for name in _INCOMING_HEADERS:
        raw = headers.get(name)
        if raw is not None:
            return raw.decode("latin-1")
    return None
