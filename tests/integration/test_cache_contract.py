"""The result cache, single flight, the timeline and the summary on both engines.

Parametrised like ``test_run_contract``: SQLite with the in-process executor, PostgreSQL with the
queue executor (followers of an identical run are jobs too, woken by LISTEN/NOTIFY).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.helpers import wait_terminal
from tests.standins import OpenAIConfig, StandinServer

BODY = {"topic": "Contract of the cache", "max_iterations": 1, "score_threshold": 10}


async def test_hit_single_flight_timeline_and_summary(start: Callable[..., Any], standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.2))
    client = await start()
    submitted = await asyncio.gather(*(client.post("/workflows/reflection", json=BODY) for _ in range(8)))
    records = [await wait_terminal(client, r.json()["workflow_id"]) for r in submitted]
    assert {r["status"] for r in records} == {"completed"}
    leader = next(r for r in records if r["cache_outcome"] == "miss")
    assert sum(r["cache_outcome"] == "miss" for r in records) == 1
    assert {r["cached_from"] for r in records if r is not leader} == {leader["workflow_id"]}
    assert len(standin.requests("openai")) == leader["usage"]["llm_calls"]

    hit = (await client.post("/workflows/reflection", json=BODY)).json()
    assert hit["cache_outcome"] == "hit" and hit["cached_from"] == leader["workflow_id"]
    assert len(standin.requests("openai")) == leader["usage"]["llm_calls"]

    timeline = (await client.get(f"/workflows/{leader['workflow_id']}/timeline")).json()["entries"]
    assert [e["name"] for e in timeline if e["kind"] == "node"] == [
        "draft",
        "critique",
        "revise",
        "critique",
        "finalize",
    ]
    assert sum(e["kind"] == "upstream" for e in timeline) == leader["usage"]["llm_calls"]

    summary = (await client.get("/metrics/summary")).json()
    assert summary["records"] == 9
    assert summary["cache"]["misses"] == 1
    assert summary["cache"]["hits"] + summary["cache"]["coalesced"] == 8
    assert summary["cache"]["saved_usd"] == round(8 * leader["usage"]["est_cost_usd"], 6)

    assert (await client.delete("/cache")).json() == {"deleted": 1}
    again = await client.post("/workflows/reflection?wait=30", json=BODY)
    assert again.json()["cache_outcome"] == "miss"


async def test_a_follower_takes_over_when_its_run_is_cancelled(
    start: Callable[..., Any], standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.4))
    client = await start()
    leader = (await client.post("/workflows/reflection", json=BODY)).json()
    follower = (await client.post("/workflows/reflection", json=BODY)).json()
    assert follower["cache_outcome"] == "coalesced"
    await client.post(f"/workflows/{leader['workflow_id']}/cancel")
    assert (await wait_terminal(client, leader["workflow_id"]))["status"] == "cancelled"
    done = await wait_terminal(client, follower["workflow_id"])
    assert done["status"] == "completed" and done["cache_outcome"] == "miss" and done["usage"]["llm_calls"] > 0
    hit = (await client.post("/workflows/reflection", json=BODY)).json()
    assert hit["cached_from"] == done["workflow_id"]
