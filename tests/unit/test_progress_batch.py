"""Progress of running runs on PostgreSQL: batched, never over a run that ended, notified as ``running``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from agents.providers.usage import Usage
from backend.runs.records import WorkflowRecord, WorkflowStatus
from backend.runs.signals import ChangeHub, listen_for_changes
from backend.runs.store import CHANGES_CHANNEL, WorkflowStore, create_engine, libpq_url, run_migrations, utcnow


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[WorkflowStore]:
    engine = create_engine(postgres_url)
    await run_migrations(engine)
    yield WorkflowStore(engine)
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
