"""The LangGraph API's routes join the app on first use: nothing they answer may change for it."""

from __future__ import annotations

import re

import httpx
from fastapi.routing import iter_route_contexts
from starlette.routing import compile_path

from backend.api.routes.langgraph import routers


async def test_the_first_request_for_them_includes_them_and_is_answered(client: httpx.AsyncClient) -> None:
    state = client.app.state  # type: ignore[attr-defined]
    assert not getattr(state, "langgraph_included", False)  # ready without them
    found = await client.post("/assistants/search", json={})
    assert found.status_code == 200, found.text
    assert {assistant["graph_id"] for assistant in found.json()} >= {"reflection", "research"}
    assert state.langgraph_included
    assert (await client.post("/assistants/search", json={})).json() == found.json()


async def test_a_method_they_do_not_answer_is_still_a_405(client: httpx.AsyncClient) -> None:
    refused = await client.put("/assistants/search", json={})  # the first request: routed after including
    assert refused.status_code == 405
    assert refused.headers["content-type"] == "application/problem+json"


async def test_an_unknown_path_is_still_a_404_problem(client: httpx.AsyncClient) -> None:
    for _ in range(2):  # before they are in (the request that includes them) and after
        missing = await client.get("/no-such-page")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"


async def test_the_openapi_document_has_them_from_the_first_request(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/assistants/search", "/threads", "/threads/{thread_id}/runs", "/runs/wait"} <= set(paths)


async def test_no_other_route_matches_one_of_their_paths(client: httpx.AsyncClient) -> None:
    # Before they are in, a request for one of their paths must find no route (not even by
    # another method: that would answer 405), so that it reaches the fallback that includes them.
    app = client.app  # type: ignore[attr-defined]
    others = [
        (context.path, compile_path(context.path)[0])
        for context in iter_route_contexts(app.routes)
        if context.path and not getattr(app.state, "langgraph_included", False)
    ]
    assert others and not getattr(app.state, "langgraph_included", False)
    theirs = [route.path for router in routers() for route in router.routes]
    assert len(theirs) > 40
    for path in theirs:
        concrete = re.sub(r"{[^}]+}", "x1", path)
        assert not [other for other, pattern in others if pattern.match(concrete)], path
