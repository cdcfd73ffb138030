"""The single ASGI app serving all three stand-in upstreams plus the ``/_standin`` admin API."""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .arxiv_app import arxiv_routes
from .config import UPSTREAMS, StandinConfig
from .journal import Journal
from .openai_app import openai_routes
from .state import StandinState, get_state
from .tavily_app import tavily_routes

__all__ = ["create_app", "upstream_for_path"]


def upstream_for_path(path: str) -> str | None:
    """Which upstream a request path belongs to (None for admin and unknown paths)."""
    if path.startswith("/v1/") or path == "/v1":
        return "openai"
    if path in ("/search", "/extract"):
        return "tavily"
    if path.startswith("/api/query"):
        return "arxiv"
    return None


class JournalMiddleware:
    """Journals every upstream request: arrival, completion, status and in-flight counts."""

    def __init__(self, app: ASGIApp, journal: Journal) -> None:
        self.app = app
        self.journal = journal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        upstream = upstream_for_path(scope["path"]) if scope["type"] == "http" else None
        if upstream is None:
            await self.app(scope, receive, send)
            return
        query_string = scope.get("query_string", b"").decode("latin-1")
        entry = self.journal.begin(upstream, scope["method"], scope["path"], query_string)
        scope["standin_entry"] = entry
        status: int | None = None

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Close the entry before the last byte leaves, so a client that has its answer
                # always finds the request journaled as finished.
                self.journal.finish(entry, status)
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        except BaseException:
            status = status or 500
            raise
        finally:
            self.journal.finish(entry, status)


async def _requests(request: Request) -> Response:
    upstream = request.query_params.get("upstream") or None
    if upstream is not None and upstream not in UPSTREAMS:
        return JSONResponse({"error": f"unknown upstream {upstream!r}"}, status_code=400)
    return JSONResponse(get_state(request).journal.entries(upstream))


async def _stats(request: Request) -> Response:
    return JSONResponse(get_state(request).journal.stats())


async def _reset(request: Request) -> Response:
    get_state(request).reset()
    return JSONResponse({"ok": True})


async def _get_config(request: Request) -> Response:
    return JSONResponse(get_state(request).config.to_dict())


async def _set_config(request: Request) -> Response:
    state = get_state(request)
    try:
        data: Any = json.loads(await request.body() or b"{}")
        if not isinstance(data, dict):
            raise TypeError("config must be a JSON object")
        state.configure(keep_responder=True, **data)
    except (ValueError, TypeError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(state.config.to_dict())


async def _health(request: Request) -> Response:
    return JSONResponse({"ok": True, "upstreams": list(UPSTREAMS)})


admin_routes = [
    Route("/_standin/requests", _requests, methods=["GET"]),
    Route("/_standin/stats", _stats, methods=["GET"]),
    Route("/_standin/reset", _reset, methods=["POST"]),
    Route("/_standin/config", _get_config, methods=["GET"]),
    Route("/_standin/config", _set_config, methods=["POST"]),
    Route("/_standin/health", _health, methods=["GET"]),
]


def create_app(config: StandinConfig | StandinState | None = None) -> Starlette:
    """Build the stand-in ASGI app (``app.state.standin`` is its :class:`StandinState`)."""
    state = config if isinstance(config, StandinState) else StandinState(config)
    app = Starlette(routes=[*openai_routes, *tavily_routes, *arxiv_routes, *admin_routes])
    app.state.standin = state
    app.add_middleware(JournalMiddleware, journal=state.journal)
    return app
