"""The unmodified ``langgraph-sdk`` (async and sync clients) against a real ``agentflow serve`` process.

One server (authentication required, two API keys) serves the module; the stand-ins play OpenAI,
Tavily and arXiv. Every run goes through the same record and store as ``/workflows``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.client import LangGraphClient, SyncLangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from tests.integration.servers import ROOT, ServerProcess, WorkerProcess
from tests.integration.test_auth_processes import SECRET, _issue
from tests.standins import StandinServer
from tests.standins.config import OpenAIConfig

pytestmark = pytest.mark.slow


class Served:
    def __init__(self, server: ServerProcess, key: str, other_key: str) -> None:
        self.server = server
        self.key = key
        self.other_key = other_key

    @property
    def url(self) -> str:
        return self.server.base_url

    def http(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": key or self.key}, timeout=60)


@pytest.fixture(scope="module")
def served(standins: StandinServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    database_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('langgraph')}/langgraph.db"
    server = ServerProcess(
        {
            **standins.env(),
            "AGENTFLOW_DATABASE_URL": database_url,
            "AGENTFLOW_AUTH": "required",
            "AGENTFLOW_SECRET_KEY": SECRET,
            "AGENTFLOW_RATE_LIMIT_SUBMIT": "10000/minute",
            "AGENTFLOW_RATE_LIMIT_DEFAULT": "100000/minute",
            "AGENTFLOW_ARXIV_MIN_INTERVAL": "0",
        }
    ).start()
    try:
        _, key = _issue(database_url, name="first")
        _, other = _issue(database_url, name="second")
        yield Served(server, key, other)
    finally:
        server.terminate()


@pytest.fixture
async def client(served: Served) -> AsyncIterator[LangGraphClient]:
    """The async SDK client, with the first key."""
    async with get_client(url=served.url, api_key=served.key) as sdk:
        yield sdk


@pytest.fixture
def sync_client(served: Served) -> Iterator[SyncLangGraphClient]:
    """The sync SDK client, with the first key."""
    with get_sync_client(url=served.url, api_key=served.key) as sdk:
        yield sdk


@pytest.fixture
def slow_model(standin: StandinServer) -> None:
    """Every model call takes a while, so a run stays in flight long enough to act on it."""
    standin.configure(openai=OpenAIConfig(latency=0.5))


def _topic(label: str) -> dict[str, Any]:
    # A topic of its own per test: no run is answered from another's cached result.
    return {"topic": f"{label} {uuid.uuid4().hex[:8]}", "max_iterations": 1}


def _workflow(served: Served, run_id: str) -> dict[str, Any]:
    with served.http() as http:
        response = http.get(f"/workflows/{run_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _wait_status(served: Served, run_id: str, wanted: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        record = _workflow(served, run_id)
        if record["status"] in wanted or time.monotonic() > deadline:
            return record
        time.sleep(0.05)


async def test_assistants_are_the_workflow_types(
    served: Served, client: LangGraphClient, standin: StandinServer
) -> None:
    assistants = await client.assistants.search()
    by_graph = {assistant["graph_id"]: assistant for assistant in assistants}
    assert {"reflection", "research"} <= set(by_graph)
    research = by_graph["research"]
    assert await client.assistants.get(research["assistant_id"]) == research
    assert (await client.assistants.get("research"))["assistant_id"] == research["assistant_id"]
    schemas = await client.assistants.get_schemas("reflection")
    assert "topic" in schemas["input_schema"]["properties"]
    graph = await client.assistants.get_graph(by_graph["reflection"]["assistant_id"])
    assert {"draft", "critique", "revise", "finalize"} <= {node["id"] for node in graph["nodes"]}
    with pytest.raises(NotFoundError):
        await client.assistants.get("no-such-graph")


async def test_create_join_and_state_async(served: Served, client: LangGraphClient, standin: StandinServer) -> None:
    thread = await client.threads.create(metadata={"user": "ada"})
    assert thread["status"] == "idle"
    run = await client.runs.create(thread["thread_id"], "reflection", input=_topic("Tides"), metadata={"n": 1})
    assert run["status"] in ("pending", "running")
    assert run["thread_id"] == thread["thread_id"] and run["metadata"] == {"n": 1}
    values = await client.runs.join(thread["thread_id"], run["run_id"])
    assert values["result"]["final"]
    assert values["topic"].startswith("Tides")
    # A run is a workflow: the same id, record and store.
    record = _workflow(served, run["run_id"])
    assert record["status"] == "completed" and record["result"] == values["result"]
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"] == values and state["next"] == []
    assert (await client.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"
    assert [r["run_id"] for r in await client.runs.list(thread["thread_id"])] == [run["run_id"]]
    assert (await client.threads.get(thread["thread_id"]))["status"] == "idle"
    found = await client.threads.search(metadata={"user": "ada"})
    assert thread["thread_id"] in {t["thread_id"] for t in found}
    history = await client.threads.get_history(thread["thread_id"])
    assert [h["values"] for h in history] == [values]
    await client.threads.delete(thread["thread_id"])
    with pytest.raises(NotFoundError):
        await client.threads.get(thread["thread_id"])
    assert _workflow(served, run["run_id"])["status"] == "completed"  # the run outlives its thread


def test_wait_on_a_thread_and_stateless_sync(
    served: Served, sync_client: SyncLangGraphClient, standin: StandinServer
) -> None:
    client = sync_client
    thread = client.threads.create()
    values = client.runs.wait(thread["thread_id"], "reflection", input=_topic("Clouds"))
    assert values["result"]["final"]
    assert client.threads.get_state(thread["thread_id"])["values"] == values
    stateless = client.runs.wait(None, "reflection", input=_topic("Rain"))
    assert stateless["result"]["final"] and stateless["topic"].startswith("Rain")
    created = client.runs.create(None, "reflection", input=_topic("Snow"))
    joined = client.runs.join(created["thread_id"], created["run_id"])
    assert joined["topic"].startswith("Snow")


def test_bad_input_names_the_field(served: Served, sync_client: SyncLangGraphClient, standin: StandinServer) -> None:
    client = sync_client
    thread = client.threads.create()
    with pytest.raises(UnprocessableEntityError) as refused:
        client.runs.create(thread["thread_id"], "reflection", input={"max_iterations": 1})
    problem = refused.value.response.json()
    assert refused.value.response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in problem["errors"]] == ["body.input.topic"]
    assert client.runs.list(thread["thread_id"]) == []  # nothing half-written
    with pytest.raises(NotFoundError):
        client.runs.create(str(uuid.uuid4()), "reflection", input=_topic("Nowhere"))
    made = client.runs.create(str(uuid.uuid4()), "reflection", input=_topic("Somewhere"), if_not_exists="create")
    assert client.runs.join(made["thread_id"], made["run_id"])["result"]


async def test_stream_yields_tokens_then_final_values(
    served: Served, client: LangGraphClient, standin: StandinServer
) -> None:
    thread = await client.threads.create()
    parts = [
        part
        async for part in client.runs.stream(
            thread["thread_id"], "reflection", input=_topic("Comets"), stream_mode=["values", "updates", "messages"]
        )
    ]
    events = [part.event for part in parts]
    assert events[0] == "metadata"
    run_id = parts[0].data["run_id"]
    assert events[-1] == "end"
    partial = [i for i, event in enumerate(events) if event == "messages/partial"]
    values = [i for i, event in enumerate(events) if event == "values"]
    assert partial and values and "updates" in events
    assert partial[0] < values[-1]  # tokens arrive before the run ends
    final = parts[values[-1]].data
    assert final == (await client.threads.get_state(thread["thread_id"]))["values"]
    assert final["result"]["final"]
    assert _workflow(served, run_id)["status"] == "completed"


async def test_cancel_ends_the_run_cancelled(served: Served, client: LangGraphClient, slow_model: None) -> None:
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "reflection", input=_topic("Volcanoes"))
    await asyncio.to_thread(_wait_status, served, run["run_id"], {"running"})
    await client.runs.cancel(thread["thread_id"], run["run_id"], wait=True)
    assert _workflow(served, run["run_id"])["status"] == "cancelled"
    assert (await client.runs.get(thread["thread_id"], run["run_id"]))["status"] == "interrupted"
    assert (await client.threads.get(thread["thread_id"]))["status"] == "idle"


def test_reject_refuses_a_second_run_on_a_busy_thread(
    served: Served, sync_client: SyncLangGraphClient, slow_model: None
) -> None:
    client = sync_client
    thread = client.threads.create()
    first = client.runs.create(thread["thread_id"], "reflection", input=_topic("Glaciers"))
    with pytest.raises(ConflictError) as refused:
        client.runs.create(thread["thread_id"], "reflection", input=_topic("Deserts"), multitask_strategy="reject")
    assert refused.value.response.headers["content-type"].startswith("application/problem+json")
    assert [r["run_id"] for r in client.runs.list(thread["thread_id"])] == [first["run_id"]]
    client.runs.join(thread["thread_id"], first["run_id"])
    second = client.runs.create(thread["thread_id"], "reflection", input=_topic("Deserts"), multitask_strategy="reject")
    assert client.runs.join(thread["thread_id"], second["run_id"])["topic"].startswith("Deserts")


def test_enqueued_run_starts_after_the_one_ahead(
    served: Served, sync_client: SyncLangGraphClient, slow_model: None
) -> None:
    client = sync_client
    thread = client.threads.create()
    first = client.runs.create(thread["thread_id"], "reflection", input=_topic("Rivers"))
    second = client.runs.create(thread["thread_id"], "reflection", input=_topic("Lakes"), multitask_strategy="enqueue")
    third = client.runs.create(thread["thread_id"], "reflection", input=_topic("Seas"), multitask_strategy="enqueue")
    final = client.runs.join(thread["thread_id"], third["run_id"])
    records = [_workflow(served, run["run_id"]) for run in (first, second, third)]
    assert [r["status"] for r in records] == ["completed"] * 3
    assert records[0]["finished_at"] <= records[1]["started_at"]
    assert records[1]["finished_at"] <= records[2]["started_at"]
    assert final["topic"].startswith("Seas")
    assert client.threads.get_state(thread["thread_id"])["values"] == final


def test_another_key_sees_nothing(served: Served, sync_client: SyncLangGraphClient, standin: StandinServer) -> None:
    mine = sync_client
    with get_sync_client(url=served.url, api_key=served.other_key) as theirs:
        _refused_to_another_key(served, mine, theirs)


def _refused_to_another_key(served: Served, mine: SyncLangGraphClient, theirs: SyncLangGraphClient) -> None:
    thread = mine.threads.create(metadata={"owner": "first"})
    run = mine.runs.create(thread["thread_id"], "reflection", input=_topic("Secrets"))
    mine.runs.join(thread["thread_id"], run["run_id"])
    for call in (
        lambda: theirs.threads.get(thread["thread_id"]),
        lambda: theirs.threads.get_state(thread["thread_id"]),
        lambda: theirs.runs.get(thread["thread_id"], run["run_id"]),
        lambda: theirs.runs.list(thread["thread_id"]),
        lambda: theirs.runs.join(thread["thread_id"], run["run_id"]),
        lambda: theirs.runs.create(thread["thread_id"], "reflection", input=_topic("Intrude")),
    ):
        with pytest.raises(httpx.HTTPStatusError) as refused:  # join raises httpx's own error
            call()
        assert refused.value.response.status_code == 404
    assert thread["thread_id"] not in {t["thread_id"] for t in theirs.threads.search(limit=1000)}
    with served.http(served.other_key) as http:
        assert http.get(f"/workflows/{run['run_id']}").status_code == 404
    with httpx.Client(base_url=served.url, timeout=30) as anonymous:
        assert anonymous.post("/threads", json={}).status_code == 401


def test_unsupported_routes_answer_501(sync_client: SyncLangGraphClient) -> None:
    client = sync_client
    calls = (
        lambda: client.crons.create("reflection", schedule="* * * * *", input=_topic("Cron")),
        lambda: client.store.put_item(["notes"], "key", {"a": 1}),
        lambda: client.assistants.create("reflection"),
    )
    for call in calls:
        with pytest.raises(httpx.HTTPStatusError) as refused:
            call()
        response = refused.value.response
        assert response.status_code == 501
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "not_implemented" and response.json()["detail"]


async def test_join_stream_resumes_after_last_event_id(
    served: Served, client: LangGraphClient, slow_model: None
) -> None:
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "reflection", input=_topic("Auroras"))
    first: list[Any] = []
    async for part in client.runs.join_stream(thread["thread_id"], run["run_id"], stream_mode=["values", "updates"]):
        first.append(part)
        if len([p for p in first if p.id]) == 3:
            break  # the client goes away after 3 numbered events
    last_id = [p.id for p in first if p.id][-1]
    rest = [
        part
        async for part in client.runs.join_stream(
            thread["thread_id"], run["run_id"], stream_mode=["values", "updates"], last_event_id=last_id
        )
    ]
    complete = [
        part
        async for part in client.runs.join_stream(thread["thread_id"], run["run_id"], stream_mode=["values", "updates"])
    ]
    numbered = [(p.id, p.event) for p in [*first, *rest] if p.id]
    assert numbered == [(p.id, p.event) for p in complete if p.id]  # no gap, no duplicate
    assert rest[-1].event == "end" and int(rest[0].id or rest[1].id) > int(last_id)


@pytest.mark.postgres
def test_queue_executor_orders_enqueued_runs_and_streams_tokens(postgres_url: str, standin: StandinServer) -> None:
    """API process that only accepts, two workers that run: enqueue order, reject and tokens still hold."""
    standin.configure(openai=OpenAIConfig(latency=0.3))
    env = {
        **standin.env(),
        "AGENTFLOW_DATABASE_URL": postgres_url,
        "AGENTFLOW_RATE_LIMIT_SUBMIT": "100000/minute",
        "AGENTFLOW_RATE_LIMIT_DEFAULT": "100000/minute",
    }
    api = ServerProcess({**env, "AGENTFLOW_WORKER_CONCURRENCY": "0"})
    workers = [WorkerProcess(env, concurrency=4) for _ in range(2)]
    try:
        for process in (api, *workers):
            process.launch()
        for process in (api, *workers):
            process.wait_ready()
        with get_sync_client(url=api.base_url, api_key=None) as client:
            thread = client.threads.create()
            runs = [client.runs.create(thread["thread_id"], "reflection", input=_topic("Ferns"))]
            for label in ("Mosses", "Lichens", "Algae"):
                runs.append(
                    client.runs.create(
                        thread["thread_id"], "reflection", input=_topic(label), multitask_strategy="enqueue"
                    )
                )
            with pytest.raises(ConflictError):
                client.runs.create(thread["thread_id"], "reflection", input=_topic("No"), multitask_strategy="reject")
            final = client.runs.join(thread["thread_id"], runs[-1]["run_id"])
            assert final["topic"].startswith("Algae")
            with httpx.Client(base_url=api.base_url, timeout=30) as http:
                records = [http.get(f"/workflows/{run['run_id']}").json() for run in runs]
            assert [r["status"] for r in records] == ["completed"] * 4
            for before, after in itertools.pairwise(records):
                assert before["finished_at"] <= after["started_at"]
            events = [
                part.event
                for part in client.runs.stream(
                    None, "reflection", input=_topic("Spores"), stream_mode=["messages-tuple", "values"]
                )
            ]
            assert "messages" in events and events.index("messages") < len(events) - 2
            assert events[-1] == "end"
    finally:
        for process in (api, *workers):
            process.kill()


def test_the_readme_example_runs(served: Served, standin: StandinServer) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Using the LangGraph SDK", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert len([line for line in example.splitlines() if line.strip()]) <= 16  # short enough to read
    result = subprocess.run(
        [sys.executable, "-c", example.replace("http://localhost:8000", served.url)],
        env={**os.environ, "LANGGRAPH_API_KEY": served.key},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    streamed, final = result.stdout.split("Final:", 1)
    assert streamed.strip() and final.strip()
