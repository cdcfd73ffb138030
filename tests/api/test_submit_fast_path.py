"""The submit routes' fast path: the common submit skips FastAPI's dependency solving and answers
exactly as FastAPI would; every other request still goes through FastAPI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fastapi.routing
import httpx
import pytest

from backend.api.deps import get_settings, storable_parameters
from backend.api.routes import workflows
from backend.api.routes.workflows import _only_fast_dependencies
from backend.config import Settings
from tests.helpers import reflection_responder
from tests.standins import OpenAIConfig, StandinServer

BODY = {"topic": "Tidal locking", "max_iterations": 1}
JSON = {"Content-Type": "application/json"}
_PER_REQUEST = {"x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset"}


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths FastAPI solved dependencies for (its handler's per-request work)."""
    paths: list[str] = []
    original = fastapi.routing.solve_dependencies

    async def counting(*, request: Any, **kwargs: Any) -> Any:
        paths.append(request.url.path)
        return await original(request=request, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    return paths


async def test_a_json_submit_skips_dependency_solving(
    make_settings: Callable[..., Settings],
    app_factory: Callable[[Settings], Any],
    standin: StandinServer,
    solved: list[str],
) -> None:
    standin.configure(openai=OpenAIConfig(latency=30.0))
    # One slot, held by a first run: the submit under test stays queued, so its record reads the
    # same when it is answered again below (a started run's record would differ).
    client: httpx.AsyncClient = await app_factory(make_settings(max_concurrent_workflows=1))
    await client.post("/workflows/reflection", json={**BODY, "topic": "Holds the slot"})
    solved.clear()
    response = await client.post("/workflows/reflection", json=BODY, headers={"Idempotency-Key": "fast-1"})
    assert response.status_code == 202
    assert response.headers["Location"] == f"/workflows/{response.json()['workflow_id']}"
    assert solved == []
    # A plain ?wait=N is the fast path's too; any other query is FastAPI's: the same request (a
    # replay of the key), its wait percent-encoded, answers through FastAPI's handler.
    waited = await client.post("/workflows/reflection?wait=0", json=BODY, headers={"Idempotency-Key": "fast-1"})
    assert solved == []
    replay = await client.post("/workflows/reflection?wait=%30", json=BODY, headers={"Idempotency-Key": "fast-1"})
    assert solved == ["/workflows/reflection"]
    assert waited.content == response.content
    # Byte for byte what FastAPI answers for the same record, headers included.
    assert replay.status_code == response.status_code
    assert replay.content == response.content
    assert {k: v for k, v in replay.headers.items() if k not in _PER_REQUEST} == {
        k: v for k, v in response.headers.items() if k not in _PER_REQUEST
    }


async def test_a_plain_wait_holds_the_fast_reply_until_the_run_ends(
    make_settings: Callable[..., Settings],
    app_factory: Callable[[Settings], Any],
    standin: StandinServer,
    solved: list[str],
) -> None:
    standin.configure(openai=OpenAIConfig(responder=reflection_responder([9.0])))
    client: httpx.AsyncClient = await app_factory(make_settings())
    response = await client.post("/workflows/reflection?wait=60", json={**BODY, "cache": "bypass"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"
    assert response.json()["result"]["final"]
    assert response.headers["Location"] == f"/workflows/{response.json()['workflow_id']}"
    assert solved == []


@pytest.mark.parametrize(
    ("query", "field"),
    [("wait=61", "query.wait"), ("wait=-1", "query.wait"), ("wait=soon", "query.wait"), ("wait=60.5", "query.wait")],
)
async def test_a_wait_out_of_bounds_is_fastapis_to_refuse(client: httpx.AsyncClient, query: str, field: str) -> None:
    response = await client.post(f"/workflows/reflection?{query}", json=BODY)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == [field]


@pytest.mark.parametrize(
    ("content", "headers", "field"),
    [
        (b'{"topic": ""}', JSON, "body.topic"),
        (b'{"topic": "t", "max_iterations": 99}', JSON, "body.max_iterations"),
        (b'{"topic": ', JSON, "body"),
        (b'["t"]', JSON, "body"),
        (b"[" * 5_000 + b"]" * 5_000, JSON, "body"),  # RecursionError in the parser
        (
            b'{"topic": "t"}',
            {**JSON, "Idempotency-Key": "k" * 256},
            "header.Idempotency-Key",
        ),
        (b'{"topic": "t"}', {"Content-Type": "text/plain"}, "body"),
    ],
)
async def test_what_the_fast_path_would_refuse_fastapi_refuses(
    client: httpx.AsyncClient, content: bytes, headers: dict[str, str], field: str
) -> None:
    response = await client.post("/workflows/reflection", content=content, headers=headers)
    assert response.status_code in (400, 422)  # malformed JSON is a 400
    assert response.headers["content-type"] == "application/problem+json"
    assert any(error["field"].startswith(field) for error in response.json()["errors"])


async def test_overridden_dependencies_turn_the_fast_path_off(
    make_settings: Callable[..., Settings],
    app_factory: Callable[[Settings], Any],
    standin: StandinServer,
    solved: list[str],
) -> None:
    standin.configure(openai=OpenAIConfig(latency=5.0))
    settings = make_settings()
    client = await app_factory(settings)
    client.app.dependency_overrides[get_settings] = lambda: settings  # type: ignore[attr-defined]
    assert (await client.post("/workflows/reflection", json=BODY)).status_code == 202
    assert solved == ["/workflows/reflection"]


def test_a_dependency_the_fast_path_would_skip_turns_it_off() -> None:
    """Any dependency besides the app-wide check and the caller (here one on the whole app) sends
    every submit through FastAPI, so it is never skipped."""

    async def audit() -> None:
        return None

    plain = fastapi.FastAPI(dependencies=[fastapi.Depends(storable_parameters)])
    workflows.include(plain)
    audited = fastapi.FastAPI(dependencies=[fastapi.Depends(storable_parameters), fastapi.Depends(audit)])
    workflows.include(audited)

    def submit_of(app: fastapi.FastAPI) -> workflows.SubmitRoute:
        return next(r for r in app.routes if isinstance(r, workflows.SubmitRoute))

    assert _only_fast_dependencies(plain, submit_of(plain))
    assert not _only_fast_dependencies(audited, submit_of(audited))
