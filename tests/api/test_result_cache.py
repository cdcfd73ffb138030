"""The result cache through the API: hits, misses on every result-changing parameter, single flight,
what is never cached, the ``cache`` policies, expiry, ``DELETE /cache`` and restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from backend.config import Settings
from backend.runs.store import create_engine, utcnow
from backend.runs.store.tables import result_cache, workflows
from tests.helpers import wait_terminal
from tests.standins import OpenAIConfig, StandinServer

BODY = {"topic": "Explain vector clocks", "max_iterations": 1, "score_threshold": 10}


async def run(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """Submit and wait for the run to end."""
    response = await client.post("/workflows/reflection?wait=30", json=body)
    assert response.status_code in (200, 202), response.text
    record: dict[str, Any] = response.json()
    if record["status"] not in ("completed", "failed", "cancelled"):
        record = await wait_terminal(client, record["workflow_id"])
    return record


async def test_a_repeated_request_completes_from_the_cache_without_upstream_calls(
    client: httpx.AsyncClient, standin: StandinServer
) -> None:
    first = await run(client, BODY)
    assert first["status"] == "completed"
    assert first["cache_outcome"] == "miss"
    assert first["cache_hit"] is False
    calls = len(standin.requests("openai"))
    assert calls == first["usage"]["llm_calls"] > 0

    # Same request, topic differing only in case and whitespace: answered at once.
    response = await client.post("/workflows/reflection", json={**BODY, "topic": "  explain   VECTOR clocks "})
    hit = response.json()
    assert hit["status"] == "completed"
    assert hit["cache_hit"] is True
    assert hit["cache_outcome"] == "hit"
    assert hit["cached_from"] == first["workflow_id"]
    assert hit["workflow_id"] != first["workflow_id"]
    assert hit["result"] == first["result"]
    assert hit["usage"] == {
        "input_tokens": 0,
        "cached_input_tokens": 0,
        "output_tokens": 0,
        "llm_calls": 0,
        "est_cost_usd": 0.0,
    }
    assert hit["execution_time"] == 0.0
    assert len(standin.requests("openai")) == calls  # no upstream call at all

    stored = (await client.get(f"/workflows/{hit['workflow_id']}")).json()
    assert stored["cache_hit"] is True and stored["cached_from"] == first["workflow_id"]
    timeline = (await client.get(f"/workflows/{hit['workflow_id']}/timeline")).json()
    assert timeline["entries"] == [] and timeline["cached_from"] == first["workflow_id"]


@pytest.mark.parametrize(
    "change",
    [
        {"topic": "Explain Lamport clocks"},
        {"max_iterations": 2},
        {"score_threshold": 9},
        {"models": {"critique": "gpt-4o"}},
        {"max_tokens_budget": 100_000},
    ],
    ids=["topic", "iterations", "threshold", "model", "budget"],
)
async def test_a_request_differing_in_a_result_changing_parameter_misses(
    client: httpx.AsyncClient, standin: StandinServer, change: dict[str, Any]
) -> None:
    first = await run(client, BODY)
    before = len(standin.requests("openai"))
    other = await run(client, {**BODY, **change})
    assert other["status"] == "completed"
    assert other["cache_outcome"] == "miss"
    assert other["cached_from"] is None
    assert len(standin.requests("openai")) > before
    # ... while the original request still hits its own entry.
    again = (await client.post("/workflows/reflection", json=BODY)).json()
    assert again["cached_from"] == first["workflow_id"]


async def test_naming_the_default_model_explicitly_hits_the_same_entry(
    client: httpx.AsyncClient, standin: StandinServer
) -> None:
    first = await run(client, BODY)
    explicit = {**BODY, "models": {"draft": "gpt-4o-mini", "critique": "gpt-4o-mini", "revise": "gpt-4o-mini"}}
    hit = (await client.post("/workflows/reflection", json=explicit)).json()
    assert hit["cached_from"] == first["workflow_id"]


async def test_a_changed_default_model_misses(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    settings = make_settings()
    client = await app_factory(settings)
    first = await run(client, BODY)
    again = await app_factory(settings.model_copy(update={"model_critique": "gpt-4o"}))  # same database
    other = await run(again, BODY)
    assert other["cache_outcome"] == "miss"
    assert other["workflow_id"] != first["workflow_id"]


async def test_identical_concurrent_submits_make_one_run(client: httpx.AsyncClient, standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.2))
    body = {**BODY, "topic": "Single flight"}
    responses = await asyncio.gather(*(client.post("/workflows/reflection", json=body) for _ in range(20)))
    assert {r.status_code for r in responses} == {202}
    records = await asyncio.gather(*(wait_terminal(client, r.json()["workflow_id"]) for r in responses))
    assert {r["status"] for r in records} == {"completed"}
    leaders = [r for r in records if r["cache_outcome"] == "miss"]
    assert len(leaders) == 1
    leader = leaders[0]
    followers = [r for r in records if r is not leader]
    assert {r["cache_outcome"] for r in followers} <= {"coalesced", "hit"}
    assert {r["cached_from"] for r in followers} == {leader["workflow_id"]}
    assert all(r["cache_hit"] and r["result"] == leader["result"] for r in followers)
    assert all(r["usage"]["llm_calls"] == 0 for r in followers)
    assert len(standin.requests("openai")) == leader["usage"]["llm_calls"]


async def test_single_flight_holds_across_processes_sharing_the_database(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.2))
    settings = make_settings()
    one, two = await app_factory(settings), await app_factory(settings)  # two engines, one SQLite file
    body = {**BODY, "topic": "Two processes"}
    submitted = await asyncio.gather(*(app.post("/workflows/reflection", json=body) for app in (one, two, one, two)))
    records = [
        await wait_terminal(app, response.json()["workflow_id"])
        for app, response in zip((one, two, one, two), submitted, strict=True)
    ]
    assert sum(r["cache_outcome"] == "miss" for r in records) == 1
    assert {r["cache_outcome"] for r in records} - {"miss"} <= {"coalesced", "hit"}  # hit: only if it ended first
    leader = next(r for r in records if r["cache_outcome"] == "miss")
    assert len(standin.requests("openai")) == leader["usage"]["llm_calls"]


async def test_failed_runs_are_never_cached(client: httpx.AsyncClient, standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(fault_rate=1.0, faults=["400"]))
    failed = await run(client, BODY)
    assert failed["status"] == "failed"
    standin.configure(openai=OpenAIConfig())
    again = await run(client, BODY)
    assert again["status"] == "completed"
    assert again["cache_outcome"] == "miss"


async def test_budget_stopped_runs_are_never_cached(client: httpx.AsyncClient, standin: StandinServer) -> None:
    body = {**BODY, "max_tokens_budget": 1}
    stopped = await run(client, body)
    assert stopped["error"]["code"] == "budget_exceeded"
    again = await run(client, body)
    assert again["cache_outcome"] == "miss"
    assert again["workflow_id"] != stopped["workflow_id"]


async def test_cancelled_runs_are_never_cached(client: httpx.AsyncClient, standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.3))
    submitted = (await client.post("/workflows/reflection", json=BODY)).json()
    await client.post(f"/workflows/{submitted['workflow_id']}/cancel")
    assert (await wait_terminal(client, submitted["workflow_id"]))["status"] == "cancelled"
    standin.configure(openai=OpenAIConfig())
    again = await run(client, BODY)
    assert again["cache_outcome"] == "miss"


async def test_a_follower_of_a_cancelled_run_runs_itself(client: httpx.AsyncClient, standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.5))
    leader = (await client.post("/workflows/reflection", json=BODY)).json()
    follower = (await client.post("/workflows/reflection", json=BODY)).json()
    assert follower["cache_outcome"] == "coalesced" and follower["cached_from"] == leader["workflow_id"]
    await client.post(f"/workflows/{leader['workflow_id']}/cancel")
    assert (await wait_terminal(client, leader["workflow_id"]))["status"] == "cancelled"
    done = await wait_terminal(client, follower["workflow_id"])
    assert done["status"] == "completed"
    assert done["cache_outcome"] == "miss" and done["cached_from"] is None
    assert done["usage"]["llm_calls"] > 0
    # It produced the result, so it is the cached one now.
    assert (await client.post("/workflows/reflection", json=BODY)).json()["cached_from"] == done["workflow_id"]


async def test_a_follower_of_a_failed_run_fails_the_same_way(client: httpx.AsyncClient, standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(latency=1.0, fault_rate=1.0, faults=["400"]))
    leader = (await client.post("/workflows/reflection", json=BODY)).json()
    follower = (await client.post("/workflows/reflection", json=BODY)).json()
    assert follower["cache_outcome"] == "coalesced"
    failed = await wait_terminal(client, leader["workflow_id"])
    copied = await wait_terminal(client, follower["workflow_id"])
    assert failed["status"] == copied["status"] == "failed"
    assert copied["error"] == failed["error"]
    assert copied["cache_hit"] is False
    assert len(standin.requests("openai")) == 1  # the follower sent nothing


async def test_bypass_neither_reads_nor_writes_and_refresh_replaces(
    client: httpx.AsyncClient, standin: StandinServer
) -> None:
    bypassed = await run(client, {**BODY, "cache": "bypass"})
    assert bypassed["cache_outcome"] == "bypass"
    first = await run(client, BODY)
    assert first["cache_outcome"] == "miss"  # the bypassed run was not cached
    again = await run(client, {**BODY, "cache": "bypass"})
    assert again["cache_outcome"] == "bypass" and again["usage"]["llm_calls"] > 0  # nor read
    refreshed = await run(client, {**BODY, "cache": "refresh"})
    assert refreshed["cache_outcome"] == "refresh" and refreshed["usage"]["llm_calls"] > 0
    hit = (await client.post("/workflows/reflection", json=BODY)).json()
    assert hit["cached_from"] == refreshed["workflow_id"]


async def test_the_cache_policy_is_validated(client: httpx.AsyncClient) -> None:
    response = await client.post("/workflows/reflection", json={**BODY, "cache": "sometimes"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.cache"


async def test_expired_entries_miss_and_a_zero_ttl_turns_the_cache_off(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    settings = make_settings()
    client = await app_factory(settings)
    first = await run(client, BODY)
    engine = create_engine(settings.database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(update(result_cache).values(expires_at=utcnow() - timedelta(seconds=1)))
    finally:
        await engine.dispose()
    expired = await run(client, BODY)
    assert expired["cache_outcome"] == "miss" and expired["workflow_id"] != first["workflow_id"]

    off = await app_factory(settings.model_copy(update={"cache_ttl": 0.0}))
    uncached = await run(off, BODY)
    assert uncached["cache_outcome"] is None and uncached["usage"]["llm_calls"] > 0


async def test_delete_cache_forgets_results(client: httpx.AsyncClient, standin: StandinServer) -> None:
    await run(client, BODY)
    await run(client, {**BODY, "topic": "Another topic"})
    assert (await client.delete("/cache?type=research")).json() == {"deleted": 0}
    assert (await client.delete("/cache")).json() == {"deleted": 2}
    assert (await run(client, BODY))["cache_outcome"] == "miss"
    assert (await client.delete("/cache?type=nope")).status_code == 422


async def test_the_cache_survives_a_restart(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    settings = make_settings()
    first = await run(await app_factory(settings), BODY)
    restarted = await app_factory(settings)
    hit = (await restarted.post("/workflows/reflection", json=BODY)).json()
    assert hit["cached_from"] == first["workflow_id"]
    # A hit stores a reference to its source, not a copy; reads fill the result in.
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            stored = await connection.execute(select(workflows.c.result).where(workflows.c.id == hit["workflow_id"]))
            assert stored.scalar_one() is None
    finally:
        await engine.dispose()
    fresh = await app_factory(settings)  # nothing in its memory
    assert (await fresh.get(f"/workflows/{hit['workflow_id']}")).json()["result"] == first["result"]
    listed = (await fresh.get("/workflows")).json()["items"]
    assert [r["result"] for r in listed] == [first["result"], first["result"]]


async def test_research_requests_take_the_cache_field_too(client: httpx.AsyncClient, standin: StandinServer) -> None:
    body = {"topic": "Cache research", "sources": ["arxiv"], "max_queries": 1}
    first = (await client.post("/workflows/research?wait=30", json=body)).json()
    assert first["status"] == "completed", first
    hit = (await client.post("/workflows/research", json=body)).json()
    assert hit["cached_from"] == first["workflow_id"]
    bypassed = (await client.post("/workflows/research", json={**body, "cache": "bypass"})).json()
    assert bypassed["cache_outcome"] == "bypass"
