"""The store's per-run PostgreSQL statements (on the fast path's pool, or on the engine): progress
batched and never written over a run that ended, notified as ``running``; records read; events logged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import psycopg
import pytest

from agents.providers.usage import Usage
from backend.runs.records import DeliveryStatus, WorkflowRecord, WorkflowStatus
from backend.runs.signals import ChangeHub, listen_for_changes
from backend.runs.store import CHANGES_CHANNEL, WorkflowStore, create_engine, libpq_url, run_migrations, utcnow
from backend.runs.store.fastpath import FastPath
from backend.runs.store.outbox import WebhookOutbox


@pytest.fixture(params=["fast path", "engine"])
async def store(postgres_url: str, request: pytest.FixtureRequest) -> AsyncIterator[WorkflowStore]:
    engine = create_engine(postgres_url)
    await run_migrations(engine)
    fast = FastPath(libpq_url(postgres_url)) if request.param == "fast path" else None
    if fast is not None:
        await fast.open()
    yield WorkflowStore(engine, fast=fast)
    if fast is not None:
        await fast.close()
    await engine.dispose()


async def _running(store: WorkflowStore, workflow_id: str) -> None:
    record = WorkflowRecord(
        id=workflow_id, workflow_type="reflection", status=WorkflowStatus.QUEUED, created_at=utcnow(), input={}
    )
    await store.create(record=record)
    assert await store.start_run(workflow_id=workflow_id, started_at=utcnow(), attempts=1)


async def test_progress_of_many_runs_is_written_together_and_only_while_they_run(store: WorkflowStore) -> None:
    for name in ("a", "b", "c"):
        await _running(store, name)
    await store.finish(workflow_id="c", status=WorkflowStatus.COMPLETED, progress={"node": "finalize"})
    for name in ("a", "b", "c"):
        await store.write_progress(
            workflow_id=name, progress={"node": f"step-{name}"}, usage=Usage(input_tokens=5), timeline=[{"n": 1}]
        )
    await store.flush_progress()
    a, b, c = [await store.get(workflow_id=name) for name in ("a", "b", "c")]
    assert a is not None and a.progress == {"node": "step-a"} and a.usage.input_tokens == 5
    assert b is not None and b.progress == {"node": "step-b"}
    assert await store.timeline(workflow_id="a") == [{"n": 1}]
    assert c is not None and c.progress == {"node": "finalize"}  # a finished run keeps its final progress


async def test_ending_a_run_takes_its_pending_progress(store: WorkflowStore) -> None:
    await _running(store, "r")
    await store.write_progress(
        workflow_id="r", progress={"node": "critique"}, usage=Usage(output_tokens=7), timeline=[]
    )
    await store.finish(workflow_id="r", status=WorkflowStatus.FAILED, error_code="internal_error")
    record = await store.get(workflow_id="r")
    assert record is not None and record.progress == {"node": "critique"} and record.usage.output_tokens == 7


async def test_a_wait_for_the_run_to_settle_is_not_woken_by_its_progress(
    store: WorkflowStore, postgres_url: str
) -> None:
    await _running(store, "w")
    hub = ChangeHub(sees_every_change=False)
    async with listen_for_changes(hub, libpq_url(postgres_url), CHANGES_CHANNEL):
        assert hub.sees_every_change
        every, settled = hub.watch("w"), hub.watch("w", settled_only=True)
        await store.write_progress(workflow_id="w", progress={"node": "draft"}, usage=Usage(), timeline=[])
        await store.flush_progress()
        await asyncio.wait_for(every.wait(), 10)  # the notification arrived...
        assert not settled.is_set()  # ...and named a status a settled-only watcher skips
        await store.finish(workflow_id="w", status=WorkflowStatus.COMPLETED)
        await asyncio.wait_for(settled.wait(), 10)


async def test_a_record_reads_back_as_written_and_starts_only_while_live(store: WorkflowStore) -> None:
    created = WorkflowRecord(
        id="full",
        workflow_type="reflection",
        status=WorkflowStatus.QUEUED,
        created_at=utcnow(),
        input={"topic": "t", "nested": {"n": [1, 2]}},
        progress={"node": None, "iteration": 0},
        usage=Usage(input_tokens=3),
        owner="key-1",
        metadata={"m": 1},
        webhook_url="https://example.com/hook",
    )
    await store.create(record=created)
    read = await store.get(workflow_id="full")
    assert read is not None
    assert (read.status, read.input, read.progress, read.usage, read.owner, read.metadata, read.webhook_url) == (
        WorkflowStatus.QUEUED,
        created.input,
        created.progress,
        created.usage,
        "key-1",
        {"m": 1},
        "https://example.com/hook",
    )
    assert read.created_at == created.created_at and read.created_at.tzinfo is not None
    assert await store.start_run(workflow_id="full", started_at=utcnow(), attempts=1, lease_owner="w1")
    await store.request_cancel(workflow_id="full")
    await store.finish(workflow_id="full", status=WorkflowStatus.CANCELLED)
    assert not await store.start_run(workflow_id="full", started_at=utcnow(), attempts=2)
    assert await store.get(workflow_id="missing") is None


async def test_events_are_logged_once_each_and_notified(store: WorkflowStore, postgres_url: str) -> None:
    await _running(store, "e")
    hub = ChangeHub(sees_every_change=False)
    async with listen_for_changes(hub, libpq_url(postgres_url), CHANGES_CHANNEL):
        woken = hub.watch("e:events")
        rows = [
            {
                "workflow_id": "e",
                "seq": seq,
                "kind": "custom",
                "data": {"n": seq, "text": "ü\n"},
                "created_at": utcnow(),
            }
            for seq in (1, 2)
        ]
        await store.append_events(rows=rows)
        await store.append_events(rows=[{**rows[1], "data": "ignored: (e, 2) is stored"}])
        await asyncio.wait_for(woken.wait(), 10)
    assert await store.events(workflow_id="e") == [
        (1, "custom", {"n": 1, "text": "ü\n"}),
        (2, "custom", {"n": 2, "text": "ü\n"}),
    ]


async def test_finishing_stores_the_end_queues_the_webhook_and_caches_once(store: WorkflowStore) -> None:
    record = WorkflowRecord(
        id="f",
        workflow_type="reflection",
        status=WorkflowStatus.QUEUED,
        created_at=utcnow(),
        input={},
        webhook_url="https://example.com/hook",
    )
    await store.create(record=record)
    assert await store.start_run(workflow_id="f", started_at=utcnow(), attempts=1)
    due: list[bool] = []
    store.on_webhook_due = lambda: due.append(True)
    end = {"workflow_id": "f", "seq": 1, "kind": "end", "data": {"status": "completed"}, "created_at": utcnow()}
    finished_at = utcnow()
    cache = ("key-1", "reflection", finished_at + timedelta(hours=1))
    for attempt in range(2):  # the second finds the run final already: changes nothing
        changed = await store.finish(
            workflow_id="f",
            status=WorkflowStatus.COMPLETED if attempt == 0 else WorkflowStatus.FAILED,
            result={"final": "text"},
            usage=Usage(output_tokens=9),
            finished_at=finished_at,
            cache_entry=cache,
            events=[end],
        )
        assert changed is (attempt == 0)
    assert due == [True]
    final = await store.get(workflow_id="f")
    assert final is not None
    assert (final.status, final.result, final.usage.output_tokens) == (WorkflowStatus.COMPLETED, {"final": "text"}, 9)
    assert final.finished_at == finished_at
    assert await store.events(workflow_id="f") == [(1, "end", {"status": "completed"})]
    cached = await store.cached_result(key="key-1", now=utcnow())
    assert cached is not None and cached.id == "f"
    states = await WebhookOutbox(store.engine).states(workflow_ids=["f"])
    assert states["f"].status is DeliveryStatus.PENDING


async def test_a_statement_survives_its_pooled_connection_being_cut(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    await run_migrations(engine)
    fast = FastPath(libpq_url(postgres_url), max_size=1)
    await fast.open()
    try:
        store = WorkflowStore(engine, fast=fast)
        await _running(store, "cut")
        async with fast.pool.connection() as conn:
            pid = conn.info.backend_pid
        with psycopg.connect(postgres_url, autocommit=True) as admin:  # what a server restart does to it
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        record = await store.get(workflow_id="cut")
        assert record is not None and record.status is WorkflowStatus.RUNNING
    finally:
        await fast.close()
        await engine.dispose()
