"""Submit, poll, list, cancel, wait and idempotency through the HTTP API."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from backend.config import Settings
from tests.helpers import reflection_responder, wait_terminal
from tests.standins import OpenAIConfig, StandinServer

RECORD_FIELDS = {
    "workflow_id", "workflow_type", "status", "created_at", "started_at", "finished_at", "execution_time", "input",
    "result", "error", "progress", "usage", "correlation_id",
}  # fmt: skip


async def test_submit_answers_202_with_location_and_record(client: httpx.AsyncClient, standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.2))
    response = await client.post(
        "/workflows/reflection", json={"topic": "  Tidal locking  "}, headers={"X-Request-ID": "submit-1"}
    )
    assert response.status_code == 202
    body = response.json()
    assert set(body) >= RECORD_FIELDS
    assert response.headers["Location"] == f"/workflows/{body['workflow_id']}"
    assert body["status"] in {"queued", "running"}
    assert body["input"] == {
        "topic": "Tidal locking",
        "max_iterations": 3,
        "score_threshold": 8.0,
        "models": None,
        "max_tokens_budget": None,
        "cache": "use",
    }
    assert body["correlation_id"] == "submit-1"
    assert body["result"] is None


async def test_completed_record_has_result_timing_and_usage(client: httpx.AsyncClient, standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(responder=reflection_responder([6, 9])))
    workflow_id = (await client.post("/workflows/reflection", json={"topic": "t"})).json()["workflow_id"]
    body = await wait_terminal(client, workflow_id)
    assert body["status"] == "completed"
    assert body["result"]["stop_reason"] == "score_threshold"
    assert body["execution_time"] > 0
    assert body["started_at"] <= body["finished_at"]
    usage = body["usage"]
    assert usage["llm_calls"] == 4
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["est_cost_usd"] > 0  # gpt-4o-mini has a list price
    assert (body["progress"]["node"], body["progress"]["iteration"]) == ("finalize", 1)


async def test_progress_is_visible_while_running(client: httpx.AsyncClient, standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.3, responder=reflection_responder([5, 5, 9])))
    workflow_id = (await client.post("/workflows/reflection", json={"topic": "t"})).json()["workflow_id"]
    seen: set[tuple[str | None, int]] = set()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        body = (await client.get(f"/workflows/{workflow_id}")).json()
        seen.add((body["progress"]["node"], body["progress"]["iteration"]))
        if body["status"] == "completed":
            break
        await asyncio.sleep(0.05)
    assert ("draft", 0) in seen
    assert ("revise", 1) in seen or ("critique", 1) in seen
    assert body["status"] == "completed"


async def test_post_wait_returns_the_finished_record(client: httpx.AsyncClient) -> None:
    response = await client.post("/workflows/reflection?wait=30", json={"topic": "t", "max_iterations": 1})
    assert response.status_code == 200
    assert response.json()["status"] == "completed"


async def test_waits_that_run_out_return_current_state(client: httpx.AsyncClient, standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(latency=2.0))
    response = await client.post("/workflows/reflection?wait=0.3", json={"topic": "t"})
    assert response.status_code == 202
    assert response.json()["status"] in {"queued", "running"}
    get = await client.get(f"/workflows/{response.json()['workflow_id']}?wait=0.3")
    assert get.status_code == 200
    assert get.json()["status"] == "running"  # each wait ran out long before the 2 s upstream call ended


@pytest.mark.parametrize("wait", ["61", "-1", "soon"])
async def test_wait_is_bounded(client: httpx.AsyncClient, wait: str) -> None:
    response = await client.post(f"/workflows/reflection?wait={wait}", json={"topic": "t"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.wait"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.topic"),
        ({"topic": "   "}, "body.topic"),
        ({"topic": "x" * 10_000}, "body.topic"),
        ({"topic": "t", "max_iterations": 0}, "body.max_iterations"),
        ({"topic": "t", "max_iterations": 99}, "body.max_iterations"),
        ({"topic": "t", "max_iterations": "three"}, "body.max_iterations"),
        ({"topic": "t", "score_threshold": 11}, "body.score_threshold"),
        ({"topic": "t", "surprise": True}, "body.surprise"),
        ({"topic": 42}, "body.topic"),
        ({"topic": "t", "models": {"draft": "gpt-4o", "writer": "x"}}, "body.models.writer"),
    ],
)
async def test_invalid_requests_name_the_field(client: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    response = await client.post("/workflows/reflection", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert field in [error["field"] for error in problem["errors"]]
    assert field in problem["detail"]
    assert (await client.get("/workflows")).json()["items"] == []  # nothing half-written


async def test_unknown_id_is_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/workflows/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert (await client.post("/workflows/nope/cancel")).status_code == 404


async def test_missing_openai_key_is_503_naming_the_variable(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any]
) -> None:
    client = await app_factory(make_settings(openai_api_key=None))
    response = await client.post("/workflows/reflection", json={"topic": "t"})
    assert response.status_code == 503
    assert "OPENAI_API_KEY" in response.json()["detail"]
    assert (await client.get("/workflows")).json()["items"] == []


async def test_list_is_newest_first_with_cursor_pagination(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(latency=5.0))
    client = await app_factory(make_settings(max_concurrent_workflows=1))  # one runs, four stay queued
    ids = [
        (await client.post("/workflows/reflection", json={"topic": f"t{n}"})).json()["workflow_id"] for n in range(5)
    ]
    first = (await client.get("/workflows?limit=2")).json()
    assert [item["workflow_id"] for item in first["items"]] == ids[::-1][:2]
    second = (await client.get(f"/workflows?limit=2&cursor={first['next_cursor']}")).json()
    third = (await client.get(f"/workflows?limit=2&cursor={second['next_cursor']}")).json()
    assert [i["workflow_id"] for i in second["items"] + third["items"]] == ids[::-1][2:]
    assert third["next_cursor"] is None
    while (await client.get(f"/workflows/{ids[0]}")).json()["status"] != "running":
        await asyncio.sleep(0.02)
    running = (await client.get("/workflows?type=reflection&status=running")).json()["items"]
    queued = (await client.get("/workflows?type=reflection&status=queued")).json()["items"]
    assert [item["workflow_id"] for item in running] == [ids[0]]
    assert [item["workflow_id"] for item in queued] == ids[:0:-1]
    assert (await client.get("/workflows?status=completed")).json()["items"] == []
    assert (await client.get("/workflows?type=unknown")).status_code == 422
    assert (await client.get("/workflows?status=bogus")).status_code == 422
    assert (await client.get("/workflows?cursor=garbage!")).status_code == 422
    for workflow_id in ids:
        await client.post(f"/workflows/{workflow_id}/cancel")


async def test_cancel_queued_run_never_starts(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.5))
    client = await app_factory(make_settings(max_concurrent_workflows=1))
    running = (await client.post("/workflows/reflection", json={"topic": "first"})).json()["workflow_id"]
    queued = (await client.post("/workflows/reflection", json={"topic": "second"})).json()["workflow_id"]
    response = await client.post(f"/workflows/{queued}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    await client.post(f"/workflows/{running}/cancel")
    await wait_terminal(client, running)
    assert not any("second" in entry.get("last_user_message", "") for entry in standin.requests("openai"))
    assert (await client.get(f"/workflows/{queued}")).json()["started_at"] is None


async def test_cancel_running_run_stops_at_next_node(client: httpx.AsyncClient, standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.3))
    workflow_id = (await client.post("/workflows/reflection", json={"topic": "t"})).json()["workflow_id"]
    while (await client.get(f"/workflows/{workflow_id}")).json()["status"] != "running":
        await asyncio.sleep(0.02)
    response = await client.post(f"/workflows/{workflow_id}/cancel")
    assert response.status_code == 202
    assert response.json()["cancel_requested"] is True
    body = await wait_terminal(client, workflow_id)
    assert body["status"] == "cancelled"
    assert body["usage"]["llm_calls"] <= 2
    conflict = await client.post(f"/workflows/{workflow_id}/cancel")
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "conflict"


async def test_idempotency_key(client: httpx.AsyncClient, standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(latency=1.0))
    headers = {"Idempotency-Key": "order-42"}
    first = await client.post("/workflows/reflection", json={"topic": "t"}, headers=headers)
    again = await client.post("/workflows/reflection", json={"topic": "t"}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["workflow_id"] == again.json()["workflow_id"]
    other = await client.post("/workflows/reflection", json={"topic": "different"}, headers=headers)
    assert other.status_code == 422
    problem = other.json()
    assert problem["code"] == "validation_error"
    assert [error["field"] for error in problem["errors"]] == ["header.idempotency-key"]
    assert first.json()["workflow_id"] not in other.text  # another request's run stays private
    assert len((await client.get("/workflows")).json()["items"]) == 1
    await client.post(f"/workflows/{first.json()['workflow_id']}/cancel")


async def test_concurrent_submits_with_one_idempotency_key_make_one_run(
    client: httpx.AsyncClient, standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(latency=1.0))
    responses = await asyncio.gather(
        *[client.post("/workflows/reflection", json={"topic": "t"}, headers={"Idempotency-Key": "k"}) for _ in range(8)]
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["workflow_id"] for r in responses}) == 1
    await client.post(f"/workflows/{responses[0].json()['workflow_id']}/cancel")


async def test_function_calling_structured_output(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(responder=reflection_responder([9])))
    client = await app_factory(make_settings(structured_output_method="function_calling"))
    body = (await client.post("/workflows/reflection?wait=20", json={"topic": "t"})).json()
    assert body["result"]["best_score"] == 9
    critique_call = [e for e in standin.requests("openai") if e.get("schema_name")]
    assert critique_call
    assert all(entry["tool_call"] is True for entry in critique_call)


async def test_hundred_workflows_submit_fast_and_all_complete(
    client: httpx.AsyncClient, standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.2, responder=reflection_responder([9] * 100)))
    responses = await asyncio.gather(
        *[client.post("/workflows/reflection", json={"topic": f"topic {n}", "max_iterations": 1}) for n in range(100)]
    )
    assert {r.status_code for r in responses} == {202}
    ids = [r.json()["workflow_id"] for r in responses]
    finals = [await wait_terminal(client, workflow_id, timeout=60) for workflow_id in ids]
    assert {body["status"] for body in finals} == {"completed"}
    # They ran side by side, not one after another.
    assert standin.stats()["upstreams"]["openai"]["max_in_flight"] > 1


async def test_events_stream_progress_until_the_end(client: httpx.AsyncClient, standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.1, responder=reflection_responder([5, 9])))
    workflow_id = (await client.post("/workflows/reflection", json={"topic": "t"})).json()["workflow_id"]
    events: list[tuple[str, dict[str, Any]]] = []
    async with client.stream("GET", f"/workflows/{workflow_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["X-Request-ID"]
        name = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    assert events[-1][0] == "end"
    assert events[-1][1]["status"] == "completed"
    nodes = [body["progress"]["node"] for kind, body in events if kind == "update"]
    assert "critique" in nodes
    assert len(events) >= 3
