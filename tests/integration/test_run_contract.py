"""The run service's contract, the same for both engines.

Parametrised over SQLite with the in-process executor and PostgreSQL with the queue executor
(procrastinate jobs run by the app's embedded worker): submit, get, list, wait, cancel a queued
run, cancel a running run, and resume after the server process is SIGKILLed.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.helpers import reflection_responder, wait_terminal
from tests.integration.servers import ServerProcess
from tests.standins import OpenAIConfig, StandinServer

EXECUTOR = {"sqlite": "local", "postgres": "queue"}


async def _until(client: httpx.AsyncClient, workflow_id: str, status: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = (await client.get(f"/workflows/{workflow_id}")).json()
        if body["status"] == status:
            return body
        assert time.monotonic() < deadline, f"{workflow_id} still {body['status']}, never {status}"
        await asyncio.sleep(0.05)


async def test_submit_get_list_wait(start: Callable[..., Any], backend: str, standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(responder=reflection_responder([9] * 10)))
    client = await start()
    ready = (await client.get("/readyz")).json()
    assert ready["executor"]["kind"] == EXECUTOR[backend]

    submitted = [(await client.post("/workflows/reflection", json={"topic": f"contract {n}"})) for n in range(3)]
    assert [r.status_code for r in submitted] == [202, 202, 202]
    ids = [r.json()["workflow_id"] for r in submitted]
    assert all(r.headers["Location"] == f"/workflows/{i}" for r, i in zip(submitted, ids, strict=True))
    first = (await client.get(f"/workflows/{ids[0]}")).json()
    assert first["status"] in {"queued", "running", "completed"}

    finals = [(await client.get(f"/workflows/{i}?wait=30")).json() for i in ids]
    assert [f["status"] for f in finals] == ["completed"] * 3
    assert all(f["result"]["final"] and f["usage"]["llm_calls"] == 2 for f in finals)

    listed = (await client.get("/workflows?limit=2")).json()
    assert [item["workflow_id"] for item in listed["items"]] == ids[::-1][:2]
    rest = (await client.get(f"/workflows?limit=2&cursor={listed['next_cursor']}")).json()
    assert [item["workflow_id"] for item in rest["items"]] == [ids[0]]
    completed = (await client.get("/workflows?status=completed")).json()
    assert {item["workflow_id"] for item in completed["items"]} == set(ids)

    waited = await client.post("/workflows/reflection?wait=30", json={"topic": "waited"})
    assert waited.status_code == 200 and waited.json()["status"] == "completed"


async def test_cancel_a_queued_run(start: Callable[..., Any], standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.5, responder=reflection_responder([9] * 10)))
    client = await start(max_concurrent_workflows=1, worker_concurrency=1)
    busy = (await client.post("/workflows/reflection", json={"topic": "keeps the only slot"})).json()["workflow_id"]
    await _until(client, busy, "running")
    queued = (await client.post("/workflows/reflection", json={"topic": "never starts"})).json()["workflow_id"]

    cancelled = await client.post(f"/workflows/{queued}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert (await client.post(f"/workflows/{queued}/cancel")).status_code == 409

    assert (await wait_terminal(client, busy))["status"] == "completed"
    final = (await client.get(f"/workflows/{queued}")).json()
    assert final["status"] == "cancelled" and final["started_at"] is None
    assert not [r for r in standin.requests("openai") if "never starts" in r["last_user_message"]]


async def test_cancel_a_running_run(start: Callable[..., Any], standin: StandinServer) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.4, responder=reflection_responder([5] * 10)))
    client = await start()
    workflow_id = (
        await client.post(
            "/workflows/reflection", json={"topic": "stopped", "max_iterations": 5, "score_threshold": 10}
        )
    ).json()["workflow_id"]
    await _until(client, workflow_id, "running")

    response = await client.post(f"/workflows/{workflow_id}/cancel")
    assert response.status_code in (200, 202)
    final = (await client.get(f"/workflows/{workflow_id}?wait=30")).json()
    assert final["status"] == "cancelled"
    assert final["finished_at"] is not None and final["error"] is None
    calls = len(standin.requests("openai"))
    assert calls < 11  # 1 draft + 5 critiques + 5 revisions had it run to the end


@pytest.mark.slow
def test_sigkill_mid_run_then_restart_resumes_every_run(
    database_url: str, backend: str, standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.4))
    env = {**standin.env(), "AGENTFLOW_DATABASE_URL": database_url, "AGENTFLOW_STALLED_AFTER": "6"}
    count = 12
    first = ServerProcess(env).start()
    try:
        with httpx.Client(base_url=first.base_url, timeout=10) as http:
            ids = [
                http.post(
                    "/workflows/reflection",
                    json={"topic": f"crash topic {n}", "max_iterations": 2, "score_threshold": 10},
                ).json()["workflow_id"]
                for n in range(count)
            ]
            deadline = time.monotonic() + 30
            while Counter(http.get(f"/workflows/{i}").json()["progress"]["node"] is not None for i in ids)[True] < 3:
                assert time.monotonic() < deadline, "no run got past its first node"
                time.sleep(0.05)
    finally:
        first.kill()  # SIGKILL: no shutdown hook runs

    second = ServerProcess(env, port=first.port).start()
    try:
        with httpx.Client(base_url=second.base_url, timeout=70) as http:
            finals = [http.get(f"/workflows/{i}?wait=60").json() for i in ids]
    finally:
        second.terminate()
    assert [f["status"] for f in finals] == ["completed"] * count, [f["status"] for f in finals]
    assert any(r.get("event") == "workflow_resumed" for r in second.json_lines())
    seen: set[str] = set()
    repeats: Counter[str] = Counter()
    for entry in standin.requests("openai"):
        if entry["messages_sha256"] in seen:
            repeats[entry["last_user_message"].split("crash topic ")[1].split()[0]] += 1
        seen.add(entry["messages_sha256"])
    assert all(n <= 1 for n in repeats.values()), repeats
