"""One access log line per request (method, path, status, duration_ms, client), and its HTTP metrics."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.middleware.metrics import record_http_request

__all__ = ["AccessLogMiddleware"]

logger = logging.getLogger("agentflow.access")


class AccessLogMiddleware:
    """Logs after the response ends (or the app fails), so duration covers streaming bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            seconds = time.perf_counter() - started
            record_http_request(scope, status, seconds)
            if logger.isEnabledFor(logging.INFO):  # at WARNING, not even the line's fields are built
                client = scope.get("client")
                duration_ms = round(seconds * 1000, 2)
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
                        "duration_ms": duration_ms,
                        "client": client[0] if client else None,
                    },
                )
