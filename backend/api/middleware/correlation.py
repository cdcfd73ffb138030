"""Correlation id: accept a safe client-supplied id or make one, echo it, hold it in context."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from contextvars import Token

from starlette.types import Scope

from agents import context, telemetry

__all__ = [
    "REQUEST_ID_HEADER",
    "REQUEST_ID_NAME",
    "begin_request",
    "end_request",
    "is_safe_request_id",
    "new_request_id",
    "supplied_request_id",
]

logger = logging.getLogger("agentflow.request")

REQUEST_ID_HEADER = "X-Request-ID"
#: The response header's raw name, for the edge's single response-start rewrite.
REQUEST_ID_NAME = REQUEST_ID_HEADER.lower().encode("latin-1")
# The original platform's header name, still accepted.
_INCOMING_HEADERS = (REQUEST_ID_NAME, b"x-correlation-id")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def is_safe_request_id(value: str) -> bool:
    """Whether a client-supplied id is safe to log and echo (≤ 64 chars of ``[A-Za-z0-9._-]``)."""
    return bool(_SAFE_ID.match(value))


def new_request_id() -> str:
    """32 random hex digits (as ``uuid4().hex``, without building a UUID)."""
    return os.urandom(16).hex()


def supplied_request_id(headers: Mapping[bytes, bytes]) -> str | None:
    """The id the client sent: ``X-Request-ID``, else ``X-Correlation-ID`` (unchecked)."""
    for name in _INCOMING_HEADERS:
        raw = headers.get(name)
        if raw is not None:
            return raw.decode("latin-1")
    return None


def begin_request(scope: Scope, headers: Mapping[bytes, bytes]) -> tuple[str, Token[str | None]]:
    """Choose the request's id, set ``agents.context.correlation_id`` and ``scope["state"]["request_id"]``.

    Returns the id and the context token to give back to ``end_request``. An unsafe supplied id is
    replaced by a new one, and the replacement logged (under the new id).
    """
    supplied = supplied_request_id(headers)
    request_id = supplied if supplied is not None and is_safe_request_id(supplied) else new_request_id()
    token = context.correlation_id.set(request_id)
    if supplied is not None and supplied != request_id:
        logger.warning(
            "replaced an unsafe request id",
            extra={"event": "request_id_replaced", "supplied_length": len(supplied)},
        )
    scope.setdefault("state", {})["request_id"] = request_id
    telemetry.annotate({"agentflow.correlation_id": request_id})  # on the HTTP span, when tracing
    return request_id, token


def end_request(token: Token[str | None]) -> None:
    """Leave the request's correlation context (after its access-log line)."""
    context.correlation_id.reset(token)
