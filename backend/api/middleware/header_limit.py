"""Request header limits (total bytes, number of fields), enforced before the app does any work."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from backend.api.errors import HeadersTooLarge, problem_for

__all__ = ["HeaderLimitMiddleware"]


class HeaderLimitMiddleware:
    """Answers 431 when the headers pass ``max_bytes`` in total or ``max_count`` fields.

    uvicorn's httptools parser accepts headers of any size, so the limit is ours. It counts each
    field as ``name: value`` plus its line break, as sent; the request line is not counted. The
    connection is closed after the 431, since the body (if any) is never read.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_count: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_count = max_count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        if len(headers) > self.max_count:
            detail = f"The request has {len(headers)} header fields; at most {self.max_count} are accepted."
        else:
            size = sum(len(name) + len(value) + 4 for name, value in headers)
            if size <= self.max_bytes:
                await self.app(scope, receive, send)
                return
            detail = f"The request headers total {size} bytes; at most {self.max_bytes} are accepted."
        response = problem_for(HeadersTooLarge(detail), instance=scope["path"], headers={"Connection": "close"})
        await response(scope, receive, send)
