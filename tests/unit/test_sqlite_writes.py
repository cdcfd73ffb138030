"""The SQLite store's direct writes (``backend.runs.store.sqlite_writes``) store what the engine stores.

The same runs go through two stores: one as the server builds it, one with its direct writes
turned off (every write through SQLAlchemy's engine). Every row of every table they touch must
match, column for column, as SQLite holds it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from backend.runs.records import Usage, WorkflowRecord, WorkflowStatus
from backend.runs.store.database import create_engine, run_migrations
from backend.runs.store.repository import IdempotencyConflict, WorkflowStore

NOW = datetime(2026, 12, 5, 12, 0, 0, 123456, tzinfo=UTC)
TABLES = {
    "workflows": "id",
    "run_events": "workflow_id, seq",
    "result_cache": "key",
    # A delivery's id and times are made when it is queued: compared without them.
    "webhook_deliveries": "workflow_id",
}
VOLATILE = {"webhook_deliveries": {"id", "next_attempt_at", "created_at", "updated_at"}}


async def _store(path: Path, *, direct: bool) -> WorkflowStore:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await run_migrations(engine)
    store = WorkflowStore(engine)
    if not direct:
        store._sqlite = None  # the engine path, for comparison
    return store


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[WorkflowStore, WorkflowStore]]:
    direct, engine = (
        await _store(tmp_path / "direct.db", direct=True),
        await _store(tmp_path / "engine.db", direct=False),
    )
    assert direct._sqlite is not None
    yield direct, engine
    for store in (direct, engine):
        await store.engine.dispose()


def _record(workflow_id: str, **fields: Any) -> WorkflowRecord:
    return WorkflowRecord(
        id=workflow_id,
        workflow_type="reflection",
        status=WorkflowStatus.QUEUED,
        created_at=NOW,
        input={"topic": "why the sky is blue", "nested": {"ünïcode": [1, 2.5, None]}},
        **fields,
    )


async def _lifecycle(store: WorkflowStore) -> None:
    """Runs through every direct write: insert, start, progress, finish (events, cache entry,
    webhook), a finish refused, a start refused, and events appended alone."""
    await store.create(record=_record("run-a", webhook_url="https://example.com/hook", idempotency_key="k-1"))
    await store.create(record=_record("run-b", cache_key="ck-1"), lease_owner="worker-1")
    assert await store.start_run(workflow_id="run-a", started_at=NOW, attempts=1, lease_owner="worker-1")
    assert await store.start_run(workflow_id="run-b", started_at=NOW, attempts=1)
    await store.write_progress(
        workflow_id="run-b",
        progress={"node": "draft", "iteration": 0},
        usage=Usage(llm_calls=1, prompt_tokens=40, completion_tokens=20),
        timeline=[{"name": "draft", "kind": "node", "duration_ms": 3.5}],
    )
    events = [
        {"workflow_id": "run-a", "seq": seq, "kind": "step", "data": {"step": seq}, "created_at": NOW} for seq in (1, 2)
    ]
    assert await store.finish(
        workflow_id="run-a",
        status=WorkflowStatus.COMPLETED,
        result={"text": "Rayleigh scattering", "score": 0.9},
        usage=Usage(llm_calls=3, prompt_tokens=100, completion_tokens=50),
        progress={"step": "finalize"},
        timeline=[{"node": "draft", "ms": 12.5}],
        finished_at=NOW + timedelta(seconds=2),
        events=events,
    )
    assert await store.finish(
        workflow_id="run-b",
        status=WorkflowStatus.FAILED,
        error_code="upstream_error",
        error_message="the model answered 500",
        finished_at=NOW + timedelta(seconds=3),
        cache_entry=("ck-1", "reflection", NOW + timedelta(hours=1)),
    )
    assert not await store.finish(workflow_id="run-a", status=WorkflowStatus.FAILED)  # final already
    assert not await store.start_run(workflow_id="run-b", started_at=NOW, attempts=2)
    await store.append_events(
        rows=[{"workflow_id": "run-b", "seq": 1, "kind": "end", "data": None, "created_at": NOW}] * 2
    )


def _rows(path: Path) -> dict[str, list[dict[str, Any]]]:
    with sqlite3.connect(path) as connection:
        connection.row_factory = sqlite3.Row
        tables = {}
        for table, order in TABLES.items():
            rows = connection.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
            tables[table] = [
                {key: row[key] for key in row.keys() if key not in VOLATILE.get(table, set())}  # noqa: SIM118
                for row in rows
            ]
        return tables


async def test_direct_writes_store_what_the_engine_stores(stores: tuple[WorkflowStore, WorkflowStore]) -> None:
    for store in stores:
        await _lifecycle(store)
    direct, engine = (_rows(Path(str(store.engine.url.database))) for store in stores)
    assert all(direct[table] for table in TABLES)  # every table was written
    assert direct == engine


async def test_a_conflict_is_sqlalchemys_integrity_error(stores: tuple[WorkflowStore, WorkflowStore]) -> None:
    direct, _ = stores
    assert direct._sqlite is not None
    await direct.create(record=_record("run-a", idempotency_key="k-1"))
    with pytest.raises(IdempotencyConflict):
        await direct.create(record=_record("run-b", idempotency_key="k-1"))
    row = {"id": "run-a", "workflow_type": "reflection"}
    with pytest.raises(IntegrityError):  # the same primary key, written directly
        direct._sqlite.insert_workflows([row], [])
    assert (await direct.get(workflow_id="run-a")) is not None
    assert await direct.get(workflow_id="run-b") is None  # the refused insert left nothing behind
