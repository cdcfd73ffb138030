"""The per-run event log: numbering, kinds, replay, resume numbering, retention, and the SSE route."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from backend.config import Settings
from backend.runs import RunService, WorkflowRecord, WorkflowStatus
from backend.runs.events import RESUME_GAP, EventLog, RunEvent
from backend.runs.signals import ChangeHub
from backend.runs.store import WorkflowStore, create_engine, run_migrations, utcnow
from tests.helpers import reflection_responder
from tests.standins import OpenAIConfig, StandinServer

TOPIC = {"topic": "Event logs for agent runs", "max_iterations": 1, "cache": "bypass"}


def service_of(client: httpx.AsyncClient) -> RunService:
    runs: RunService = client.app.state.runs  # type: ignore[attr-defined]
    return runs


async def collect(runs: RunService, workflow_id: str, after: int = 0) -> list[RunEvent]:
    return [event async for event in runs.stream(workflow_id=workflow_id, after=after) if event is not None]


async def sse_events(client: httpx.AsyncClient, path: str, **kwargs: Any) -> list[tuple[str, str, str]]:
    """(event, id, data) of every event of a stream, read to its end."""
    events: list[tuple[str, str, str]] = []
    async with client.stream("GET", path, **kwargs) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if not line:
                if "event" in fields:
                    events.append((fields["event"], fields["id"], fields["data"]))
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
    return events


async def test_a_run_logs_numbered_events_of_every_kind_ending_with_end(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    client = await app_factory(make_settings())
    runs = service_of(client)
    workflow_id = (await client.post("/workflows/reflection", json=TOPIC)).json()["workflow_id"]
    events = await collect(runs, workflow_id)
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert {"status", "values", "updates", "messages", "end"} <= {event.kind for event in events}
    assert [event.kind for event in events].count("end") == 1
    assert events[-1].kind == "end" and events[-1].data["status"] == "completed"
    assert events[0].kind == "status" and events[0].data["status"] == "running"
    # LangGraph's own messages shape: [serialised chunk, metadata naming the node]. The run was
    # watched (this stream), so its plain-text calls streamed: their chunks add up to the texts.
    chunks = [event.data for event in events if event.kind == "messages" and event.data[0]["type"] == "AIMessageChunk"]
    assert chunks and all(chunk["id"] and metadata["langgraph_node"] for chunk, metadata in chunks)
    texts: dict[str, str] = {}
    for chunk, _ in chunks:
        texts[chunk["id"]] = texts.get(chunk["id"], "") + chunk["content"]
    final = events[-1].data["result"]
    assert set(texts.values()) <= {draft["text"] for draft in final["drafts"]}
    assert final["final"] in texts.values()
    # Usage is still counted once per call while the calls stream.
    assert (
        events[-1].data["usage"]["llm_calls"]
        == (await client.get(f"/workflows/{workflow_id}")).json()["usage"]["llm_calls"]
    )
    values = [event.data for event in events if event.kind == "values"]
    assert values[-1]["topic"] == TOPIC["topic"]
    # A replay after any event is exactly the rest, from the store as from memory.
    assert await collect(runs, workflow_id, after=3) == events[3:]
    assert await collect(runs, workflow_id, after=len(events) - 1) == events[-1:]
    stored = await runs.store.events(workflow_id=workflow_id)
    assert [(seq, kind) for seq, kind, _ in stored] == [(event.seq, event.kind) for event in events]


async def test_an_unwatched_run_makes_its_calls_whole(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    """Nobody streams the run: no call streams (no per-chunk cost); each answer is one message."""
    client = await app_factory(make_settings())
    body = (await client.post("/workflows/reflection?wait=30", json=TOPIC)).json()
    assert body["status"] == "completed"
    events = await collect(service_of(client), body["workflow_id"])
    messages = [event.data[0] for event in events if event.kind == "messages"]
    assert messages and {message["type"] for message in messages} == {"ai"}
    assert body["result"]["final"] in {message["content"] for message in messages}
    assert not any(entry["stream"] for entry in standin.requests("openai"))


async def test_the_sse_route_resumes_after_last_event_id_without_gap_or_duplicate(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    client = await app_factory(make_settings())
    workflow_id = (await client.post("/workflows/reflection", json=TOPIC)).json()["workflow_id"]
    path = f"/workflows/{workflow_id}/events"
    full = await sse_events(client, path)
    names = [name for name, _, _ in full]
    assert names[0] == "update" and names[-1] == "end" and names.count("end") == 1
    assert "token" in names[: names.index("end")]
    ids = [int(event_id) for _, event_id, _ in full]
    assert ids == sorted(set(ids))  # strictly increasing
    token = json.loads(next(data for name, _, data in full if name == "token"))
    assert set(token) == {"node", "content", "message_id"} and token["node"] == "draft" and token["content"]
    end = json.loads(full[-1][2])
    assert end["status"] == "completed" and end["workflow_id"] == workflow_id and end["result"]

    cut = full[2][1]
    assert await sse_events(client, path, headers={"Last-Event-ID": cut}) == full[3:]
    assert await sse_events(client, f"{path}?last_event_id={cut}") == full[3:]
    # The header wins over the query (browsers that can set it send the latest id).
    assert await sse_events(client, f"{path}?last_event_id=1", headers={"Last-Event-ID": cut}) == full[3:]

    bad = await client.get(path, headers={"Last-Event-ID": "abc"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "header.Last-Event-ID"


async def test_runs_that_never_ran_end_their_stream_with_the_terminal_record(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(latency=30))
    client = await app_factory(make_settings(max_concurrent_workflows=1))
    busy = (await client.post("/workflows/reflection", json=TOPIC)).json()["workflow_id"]
    queued = (await client.post("/workflows/reflection", json={**TOPIC, "topic": "queued"})).json()["workflow_id"]
    assert (await client.post(f"/workflows/{queued}/cancel")).json()["status"] == "cancelled"
    events = await sse_events(client, f"/workflows/{queued}/events")
    assert [(name, event_id) for name, event_id, _ in events] == [("end", "1")]
    assert json.loads(events[0][2])["status"] == "cancelled"
    assert await sse_events(client, f"/workflows/{queued}/events", headers={"Last-Event-ID": "7"}) == [
        ("end", "8", events[0][2])
    ]
    await client.post(f"/workflows/{busy}/cancel")


async def test_a_stream_of_another_owners_run_is_not_found(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    client = await app_factory(make_settings())
    runs = service_of(client)
    workflow_id = (await client.post("/workflows/reflection", json=TOPIC)).json()["workflow_id"]
    with pytest.raises(Exception, match="No workflow"):
        await anext(aiter(runs.stream(workflow_id=workflow_id, owner="someone-else")))
    assert (await collect(runs, workflow_id))[-1].kind == "end"


# --- the log itself, on a store --------------------------------------------------------------------


@pytest.fixture
async def store(make_settings: Callable[..., Settings]) -> Any:
    engine = create_engine(make_settings().database_url)
    await run_migrations(engine)
    yield WorkflowStore(engine)
    await engine.dispose()


def _record(workflow_id: str, status: WorkflowStatus = WorkflowStatus.RUNNING) -> WorkflowRecord:
    return WorkflowRecord(
        id=workflow_id, workflow_type="reflection", status=status, created_at=utcnow(), input={"topic": "t"}
    )


async def test_a_resumed_run_numbers_after_a_gap_and_never_reuses_a_number(store: WorkflowStore) -> None:
    hub = ChangeHub(sees_every_change=True)
    await store.create(record=_record("run-1"))
    first = EventLog(store=store, hub=hub, flush_interval=3600)  # writes only when told
    await first.open("run-1", resumed=False)
    for n in range(5):
        first.emit("run-1", "custom", {"n": n})
    await first.flush()
    unwritten = first.emit("run-1", "custom", {"n": 5})  # seen by a live reader, lost in a crash
    assert unwritten is not None and unwritten.seq == 6
    seen = await first.read("run-1", after=0)
    assert [event.seq for event in seen] == [1, 2, 3, 4, 5, 6]

    second = EventLog(store=store, hub=hub)  # the process that resumes the run
    await second.open("run-1", resumed=True)
    resumed = second.emit("run-1", "custom", {"n": "again"})
    assert resumed is not None and resumed.seq == 5 + 1 + RESUME_GAP > unwritten.seq
    await second.close("run-1")
    after_crash = await second.read("run-1", after=6)  # the reader resumes after what it saw
    assert after_crash == [resumed]
    assert [event.seq for event in await second.read("run-1", after=0)] == [1, 2, 3, 4, 5, resumed.seq]


async def test_closing_the_log_writes_pending_events_and_leaves_no_flush_behind(store: WorkflowStore) -> None:
    log = EventLog(store=store, hub=ChangeHub(sees_every_change=True), flush_interval=3600)
    await store.create(record=_record("run-c"))
    await log.open("run-c", resumed=False)
    log.emit("run-c", "custom", {"n": 1})  # arms the (hour-long) flush timer
    await log.aclose()  # what shutdown does before the engine is disposed
    assert [seq for seq, _, _ in await store.events(workflow_id="run-c")] == [1]
    assert log._timer is None and log._flushing is None  # nothing left to write after the engine closes


async def test_memory_serves_no_further_than_the_gap_past_the_stored_events(store: WorkflowStore) -> None:
    log = EventLog(store=store, hub=ChangeHub(sees_every_change=True), flush_interval=3600)
    await store.create(record=_record("run-2"))
    await log.open("run-2", resumed=False)
    for n in range(RESUME_GAP + 5):
        log.emit("run-2", "custom", n)
    assert [event.seq for event in await log.read("run-2", after=0)] == list(range(1, RESUME_GAP + 1))
    await log.flush()
    assert len(await log.read("run-2", after=0, limit=RESUME_GAP + 100)) == RESUME_GAP + 5
    await log.close("run-2")


async def test_the_retention_sweep_deletes_old_runs_events_and_keeps_recent_ones(store: WorkflowStore) -> None:
    log = EventLog(store=store, hub=ChangeHub(sees_every_change=True))
    now = utcnow()
    for workflow_id, ended in (("old", now - timedelta(hours=2)), ("recent", now - timedelta(minutes=5))):
        await store.create(record=_record(workflow_id))
        await store.finish(workflow_id=workflow_id, status=WorkflowStatus.COMPLETED, finished_at=ended)
    await store.create(record=_record("live"))
    rows = [
        {"workflow_id": workflow_id, "seq": seq, "kind": "custom", "data": seq, "created_at": now - timedelta(hours=3)}
        for workflow_id in ("old", "recent", "live")
        for seq in (1, 2, 3)
    ]
    await store.append_events(rows=rows)
    assert await log.sweep(retention=3600) == 3
    assert await store.events(workflow_id="old") == []
    assert len(await store.events(workflow_id="recent")) == 3
    assert len(await store.events(workflow_id="live")) == 3  # a run still going keeps everything
    assert await log.sweep(retention=60) == 3
    assert len(await store.events(workflow_id="live")) == 3


async def test_a_run_events_are_flushed_while_it_runs(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    """Events reach the store in batches while the run goes on, not only when it ends."""
    standin.configure(openai=OpenAIConfig(latency=0.3, responder=reflection_responder([4, 9])))
    client = await app_factory(make_settings())
    runs = service_of(client)
    workflow_id = (await client.post("/workflows/reflection", json=TOPIC)).json()["workflow_id"]
    async for event in runs.stream(workflow_id=workflow_id):
        if event is not None and event.kind == "values" and event.seq > 2:
            break
    stored: list[Any] = []
    for _ in range(200):
        stored = await runs.store.events(workflow_id=workflow_id)
        if stored:
            break
        await runs.hub.wait(runs.hub.watch(f"{workflow_id}:events"), 0.05)
    assert stored, "nothing was written while the run was going"
    assert (await client.get(f"/workflows/{workflow_id}")).json()["status"] == "running"
    await client.post(f"/workflows/{workflow_id}/cancel")
