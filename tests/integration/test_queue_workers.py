"""The queue executor across real processes: API processes that only accept, workers that run.

2 ``agentflow serve --worker-concurrency 0`` processes and 2 ``agentflow worker`` processes share
one PostgreSQL database. A worker is SIGKILLed mid-run: every accepted run still ends, resumed
by the surviving worker from its last checkpoint, and the stand-in's journal shows no run
executed twice (at most the one call that was in flight when its worker died is repeated).
An idle worker takes new work while the other is busy at its limit.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import httpx
import psycopg
import pytest
from httpx_sse import connect_sse

from tests.integration.servers import ServerProcess, WorkerProcess
from tests.standins import OpenAIConfig, StandinServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _env(standin: StandinServer, postgres_url: str) -> dict[str, str]:
    return {
        **standin.env(),
        "AGENTFLOW_DATABASE_URL": postgres_url,
        "AGENTFLOW_STALLED_AFTER": "8",
        "AGENTFLOW_RATE_LIMIT_SUBMIT": "100000/minute",
        "AGENTFLOW_RATE_LIMIT_DEFAULT": "100000/minute",
        "AGENTFLOW_OPENAI_MAX_CONCURRENCY": "200",
    }


def _started(*processes: ServerProcess) -> list[ServerProcess]:
    for process in processes:  # launch all, then wait: start-ups overlap
        process.launch()
    return [process.wait_ready() for process in processes]


def _owners(postgres_url: str) -> dict[str, tuple[str, str | None]]:
    """workflow id → (status, the worker that ran it last)."""
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute("SELECT id, status, lease_owner FROM workflows").fetchall()
    return {row[0]: (row[1], row[2]) for row in rows}


def _wait_for(condition: Any, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


@pytest.fixture
def processes() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def test_a_killed_worker_loses_no_run(postgres_url: str, standin: StandinServer, processes: ExitStack) -> None:
    standin.configure(openai=OpenAIConfig(latency=1.0))
    env = _env(standin, postgres_url)
    apis = [ServerProcess({**env, "AGENTFLOW_WORKER_CONCURRENCY": "0"}) for _ in range(2)]
    # 100 runs for 2 x 30 slots: both workers full and jobs still queued when one is killed.
    workers = [WorkerProcess(env, concurrency=30) for _ in range(2)]
    for process in [*apis, *workers]:
        processes.callback(process.kill)
    _started(*apis, *workers)

    body = {"max_iterations": 1, "score_threshold": 10}  # draft, critique, revise, critique: 4 calls

    def submit(n: int) -> str:
        api = apis[n % 2]
        response = httpx.post(f"{api.base_url}/workflows/reflection", json={**body, "topic": f"q{n} t"}, timeout=30)
        assert response.status_code == 202, response.text
        workflow_id: str = response.json()["workflow_id"]
        return workflow_id

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(submit, range(100)))
    victim, survivor = workers
    _wait_for(
        lambda: (
            sum(owner == victim.name and status == "running" for status, owner in _owners(postgres_url).values()) >= 20
        ),
        60,
        "the first worker never had 20 runs in flight",
    )
    victim.kill()  # SIGKILL
    # What the dead worker held, read right after its death (the survivor cannot take these over
    # for half of AGENTFLOW_STALLED_AFTER): every run it had fetched and not finished.
    held_by_victim = {
        workflow_id: status
        for workflow_id, (status, owner) in _owners(postgres_url).items()
        if owner == victim.name and status in ("queued", "running")
    }
    in_flight_on_victim = set(held_by_victim)

    def final(workflow_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 120
        while True:
            record: dict[str, Any] = httpx.get(f"{apis[0].base_url}/workflows/{workflow_id}?wait=30", timeout=40).json()
            if record["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
                return record

    with ThreadPoolExecutor(16) as pool:
        finals = list(pool.map(final, ids))
    statuses = Counter(record["status"] for record in finals)
    assert statuses == {"completed": 100}, statuses
    assert len(_owners(postgres_url)) == 100
    resumed_by_survivor = {
        line["workflow_id"] for line in survivor.json_lines() if line.get("event") == "workflow_resumed"
    }
    started_on_victim = {i for i, status in held_by_victim.items() if status == "running"}
    assert len(started_on_victim) >= 20
    assert started_on_victim <= resumed_by_survivor  # each resumed by the survivor from its checkpoint

    # The journal: each run's calls, by message hash. A repeat is the in-flight call of a run
    # whose worker died; nothing else is ever sent twice, and no run ran twice to the end.
    seen: set[str] = set()
    repeats: Counter[str] = Counter()
    for entry in standin.requests("openai"):
        topic = entry["last_user_message"].split(" t")[0].rsplit("q", 1)[-1]
        if entry["messages_sha256"] in seen:
            repeats[topic] += 1
        seen.add(entry["messages_sha256"])
    by_id = {workflow_id: str(n) for n, workflow_id in enumerate(ids)}
    victims = {by_id[i] for i in in_flight_on_victim}
    assert set(repeats) <= victims, set(repeats) - victims
    assert all(count <= 1 for count in repeats.values()), repeats
    assert all(record["usage"]["llm_calls"] == 4 for record in finals)


def test_an_idle_worker_takes_new_work(postgres_url: str, standin: StandinServer, processes: ExitStack) -> None:
    env = _env(standin, postgres_url)
    api = ServerProcess({**env, "AGENTFLOW_WORKER_CONCURRENCY": "0"})
    workers = [WorkerProcess(env, concurrency=1) for _ in range(2)]
    for process in [api, *workers]:
        processes.callback(process.kill)
    _started(api, *workers)

    with httpx.Client(base_url=api.base_url, timeout=30) as http:
        # The first run's first model call takes 20 s, so it holds its worker's one slot for as
        # long as the second run takes to start however loaded the machine (no race on timing).
        standin.configure(openai=OpenAIConfig(latency=20.0))
        first = http.post("/workflows/reflection", json={"topic": "keeps one worker busy"}).json()["workflow_id"]
        _wait_for(lambda: len(standin.requests("openai")) == 1, 60, "the first run never called the model")
        standin.configure(openai=OpenAIConfig(latency=0.2))  # later calls (its own included) are quick
        busy = _owners(postgres_url)[first][1]
        second = http.post("/workflows/reflection", json={"topic": "goes to the idle one"}).json()["workflow_id"]
        assert http.get(f"/workflows/{second}?wait=60").json()["status"] == "completed"
        # Done while the busy worker's one slot was still taken: the idle worker ran it.
        assert http.get(f"/workflows/{first}").json()["status"] == "running"
        assert busy in {w.name for w in workers}
        assert http.get(f"/workflows/{first}?wait=60").json()["status"] == "completed"


def test_a_worker_streams_tokens_only_for_runs_watched_in_another_process(
    postgres_url: str, standin: StandinServer, processes: ExitStack
) -> None:
    """The API says by NOTIFY who watches; the worker streams those runs' calls and no others."""
    standin.configure(openai=OpenAIConfig(latency=0.5))
    env = _env(standin, postgres_url)
    api = ServerProcess({**env, "AGENTFLOW_WORKER_CONCURRENCY": "0"})
    worker = WorkerProcess(env, concurrency=4)
    for process in (api, worker):
        processes.callback(process.kill)
    _started(api, worker)
    body = {"max_iterations": 1, "score_threshold": 10, "cache": "bypass"}

    submit = f"{api.base_url}/workflows/reflection"
    unwatched = httpx.post(submit, json={**body, "topic": "Unwatched ferns"}, timeout=30)
    done = httpx.get(f"{api.base_url}/workflows/{unwatched.json()['workflow_id']}", params={"wait": 60}, timeout=90)
    assert done.json()["status"] == "completed"

    watched = httpx.post(submit, json={**body, "topic": "Watched mosses"}, timeout=30)
    kinds: list[str] = []
    with (
        httpx.Client(base_url=api.base_url, timeout=httpx.Timeout(10, read=90)) as http,
        connect_sse(http, "GET", f"/workflows/{watched.json()['workflow_id']}/events") as source,
    ):
        for sse in source.iter_sse():
            kinds.append(sse.event)
            if sse.event == "end":
                break
    assert "token" in kinds

    def streamed(topic: str) -> list[bool]:
        calls = [e for e in standin.requests("openai") if topic in (e.get("messages_text") or "")]
        assert len(calls) == 4, calls
        return [bool(e.get("stream")) for e in calls]

    assert streamed("Unwatched ferns") == [False] * 4  # nobody watched: whole answers, no chunks
    assert any(streamed("Watched mosses"))  # told by the API, the worker streamed the calls
