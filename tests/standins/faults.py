"""Applies an upstream's behaviour to a request: rate limit, latency and injected faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .behaviour import retry_after_headers
from .state import get_state, journal_entry

__all__ = ["ErrorRenderer", "GateResult", "TruncatedResponse", "gate", "hang"]

#: Renders an upstream-specific error: (status, message, extra headers) -> Response.
ErrorRenderer = Callable[[int, str, dict[str, str]], Response]

STATUS_MESSAGES = {
    429: "Rate limit reached. Please try again later.",
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The server is overloaded or not ready yet.",
    504: "Gateway timeout.",
}
CLIENT_CLOSED_REQUEST = 499


@dataclass(frozen=True)
class GateResult:
    """Either an early ``response`` to send as-is, or the ``fault`` the handler must apply
    to its normal answer (``"truncated"``/``"empty"``), or neither."""

    response: Response | None = None
    fault: str | None = None


class TruncatedResponse(Response):
    """Announces the full body's Content-Length, sends only half of it, then drops the link."""

    def __init__(self, body: bytes, status_code: int = 200, media_type: str | None = None) -> None:
        super().__init__(content=body, status_code=status_code, media_type=media_type)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        cut = max(1, len(self.body) // 2)
        await send({"type": "http.response.body", "body": self.body[:cut], "more_body": True})
        # Returning without completing the body makes the server close the connection.


async def hang(request: Request, seconds: float) -> bool:
    """Sleep ``seconds`` unless the client goes away first; True if the client is still there."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(0.05, remaining))
        if await request.is_disconnected():
            return False
    return True


async def gate(request: Request, upstream: str, render_error: ErrorRenderer) -> GateResult:
    """Run the upstream's behaviour for ``request`` before the handler answers it."""
    await request.body()  # read the body first so disconnect checks cannot swallow it
    state = get_state(request)
    behaviour = state.upstream(upstream)
    decision = state.admit(upstream, request.url.path)
    entry = journal_entry(request)
    if decision.rate_limited:
        seconds = decision.retry_after
        headers = retry_after_headers(seconds)
        # The wait as a client reads it (``retry-after-ms``), so tests can check it was honoured.
        state.journal.annotate(entry, fault="rate_limited", retry_after=int(headers["retry-after-ms"]) / 1000)
        message = f"Rate limit reached: {behaviour.rpm} requests per min. Please try again in {seconds:.2f}s."
        return GateResult(response=render_error(429, message, headers))
    if decision.latency > 0:
        await asyncio.sleep(decision.latency)
    fault = decision.fault
    if fault is None:
        return GateResult()
    state.journal.annotate(entry, fault=fault)
    if fault.isdigit():
        status = int(fault)
        headers = retry_after_headers(behaviour.retry_after_seconds) if status == 429 else {}
        if headers:
            state.journal.annotate(entry, retry_after=int(headers["retry-after-ms"]) / 1000)
        message = STATUS_MESSAGES.get(status, f"Injected stand-in error {status}.")
        return GateResult(response=render_error(status, message, headers))
    if fault == "timeout":
        if not await hang(request, behaviour.hang_seconds):
            state.journal.annotate(entry, status=CLIENT_CLOSED_REQUEST)
            return GateResult(response=Response(status_code=CLIENT_CLOSED_REQUEST))
        return GateResult()
    return GateResult(fault=fault)
