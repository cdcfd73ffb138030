"""One access log line per request (method, path, status, duration_ms, client), and its HTTP metrics."""

from __future__ import annotations

import logging

from starlette.types import Scope

from backend.api.middleware.metrics import record_http_request

__all__ = ["log_request"]

logger = logging.getLogger("agentflow.access")


def log_request(scope: Scope, status: int, seconds: float) -> None:
    """Record a request that ended (or failed) after ``seconds``: its metrics, and its line at INFO.

    Called by the edge once the response has ended, so the duration covers streaming bodies.
    """
    record_http_request(scope, status, seconds)
    if logger.isEnabledFor(logging.INFO):  # at WARNING, not even the line's fields are built
        client = scope.get("client")
        logger.info(
            "%s %s %s",
            scope["method"],
            scope["path"],
            status,
            extra={
                "event": "http_request",
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "client": client[0] if client else None,
            },
        )
