"""Request body limit counted on the bytes actually received (chunked bodies included)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agents.errors import PayloadTooLarge
from backend.api.errors import problem_for

__all__ = ["BodyLimitMiddleware"]


class BodyLimitMiddleware:
    """Answers 413 once a body passes ``max_bytes``, whatever Content-Length claimed.

    Bodies are small by contract (64 KiB default), so the middleware reads the body first and
    replays it to the app: the app never sees a partial body and never answers before the
    limit is known.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = PayloadTooLarge(f"The request body is larger than {self.max_bytes} bytes.")
        response = problem_for(error, instance=scope["path"], headers={"Connection": "close"})
        await response(scope, receive, send)
