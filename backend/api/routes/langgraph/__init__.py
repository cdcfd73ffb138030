"""The LangGraph Server API subset ``langgraph-sdk`` uses: assistants, threads and runs, beside ``/workflows``.

Its routes join the app on first use (``defer``): the first request that no route matches, or
the first OpenAPI document, includes them, and that request is then routed again, as if they had
always been there. Building them (four route modules, their pydantic models, FastAPI's analysis
of ~50 endpoints) was ~40 ms of every start-up, for an API only ``langgraph-sdk`` clients call.
No other route matches a path of theirs, not even by another method (a test holds it), so no
request they would have answered is routed elsewhere before they are in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI
    from starlette.types import Receive, Scope, Send

__all__ = ["defer", "include", "routers"]


def routers() -> tuple[APIRouter, ...]:
    """The routers, in the order they are included: the 501 routes go last, so a path they share
    with an implemented route (by method) never shadows it."""
    from backend.api.routes.langgraph import assistants, runs, threads, unsupported

    return (assistants.router, threads.router, runs.router, unsupported.router)


def include(app: FastAPI) -> bool:
    """Include the routers into ``app``, after every route it has; False if they are in already."""
    state: Any = app.state
    if getattr(state, "langgraph_included", False):
        return False
    state.langgraph_included = True
    for router in routers():
        app.include_router(router)
    return True


def defer(app: FastAPI) -> None:
    """Include the routers into ``app`` on first use (see the module docstring).

    Call it last, after every other route and after ``install_openapi``: the routers go after
    every other route, as if they had been included here.
    """
    not_found = app.router.default
    document = app.openapi

    async def default(scope: Scope, receive: Receive, send: Send) -> None:
        if include(app):
            await app.router.app(scope, receive, send)  # routed again, with them
        else:
            await not_found(scope, receive, send)

    def openapi() -> dict[str, Any]:
        include(app)
        return document()

    app.router.default = default
    app.openapi = openapi  # type: ignore[method-assign]
