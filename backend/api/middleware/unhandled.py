"""Last-resort handler: log the traceback, answer a generic problem 500 with the request id.

It sits inside the CORS and correlation middlewares (Starlette's own ServerErrorMiddleware sits
outside them), so even a crash answers with ``X-Request-ID`` and CORS headers.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.errors import InternalError, problem_for

__all__ = ["UnhandledErrorMiddleware"]

logger = logging.getLogger("agentflow.errors")


class UnhandledErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            logger.exception("unhandled error", extra={"event": "unhandled_error", "path": scope["path"]})
            if started:
                raise
            error = InternalError("An unexpected error occurred; quote the request_id when reporting it.")
            response = problem_for(error, instance=scope["path"])
            await response(scope, receive, send)
