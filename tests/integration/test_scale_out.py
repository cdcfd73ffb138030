"""Scale-out mode: PostgreSQL for records and checkpoints, Redis for shared rate limits.

Skipped with a reason when the services are absent; required in CI (.ci/run).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from backend.config import Settings
from backend.runs import WorkflowRecord, WorkflowStatus
from backend.runs.store import WorkflowStore, create_engine, run_migrations
from backend.runs.store.repository import IdempotencyConflict, utcnow
from tests.conftest import REDIS_URL, require_service
from tests.helpers import reflection_responder, wait_terminal
from tests.standins import OpenAIConfig, StandinServer


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[WorkflowStore]:
    engine = create_engine(database_url)
    await run_migrations(engine)
    await run_migrations(engine)  # idempotent
    try:
        yield WorkflowStore(engine)
    finally:
        await engine.dispose()


def _record(n: int) -> WorkflowRecord:
    return WorkflowRecord(
        id=str(uuid.uuid4()),
        workflow_type="reflection",
        status=WorkflowStatus.QUEUED,
        created_at=utcnow(),
        input={"topic": f"t{n}"},
        idempotency_key=f"key-{n}",
        request_hash="h",
    )


async def test_store_round_trip_claims_and_pagination(store: WorkflowStore) -> None:
    records = [await store.create(record=_record(n), lease_owner="host:1:a") for n in range(5)]
    fetched = await store.get(workflow_id=records[0].id)
    assert fetched is not None and fetched.input == {"topic": "t0"}
    assert fetched.created_at.tzinfo is not None
    page = await store.page(limit=3)
    assert [r.id for r in page.items] == [r.id for r in records[::-1][:3]]
    rest = await store.page(limit=3, cursor=page.next_cursor)
    assert [r.id for r in rest.items] == [r.id for r in records[::-1][3:]]
    # Only one of two claimers wins a record whose holder is gone.
    winners = await asyncio.gather(
        store.claim(workflow_id=records[1].id, owner="host:2:b", lease_seconds=30, previous_owner="host:1:a"),
        store.claim(workflow_id=records[1].id, owner="host:3:c", lease_seconds=30, previous_owner="host:1:a"),
    )
    assert sum(w is not None for w in winners) == 1
    assert await store.finish(workflow_id=records[2].id, status=WorkflowStatus.COMPLETED, result={"ok": True})
    assert not await store.finish(workflow_id=records[2].id, status=WorkflowStatus.FAILED)  # terminal stays
    assert (await store.get_by_idempotency_key(key="key-3")) is not None


async def test_reflection_on_postgres(
    postgres_url: str,
    make_settings: Callable[..., Settings],
    app_factory: Callable[[Settings], Any],
    standin: StandinServer,
) -> None:
    standin.configure(openai=OpenAIConfig(responder=reflection_responder([6, 9] * 5)))
    client: httpx.AsyncClient = await app_factory(make_settings(database_url=postgres_url))
    ids = [
        (await client.post("/workflows/reflection", json={"topic": f"pg {n}"})).json()["workflow_id"] for n in range(5)
    ]
    finals = [await wait_terminal(client, workflow_id) for workflow_id in ids]
    assert {f["status"] for f in finals} == {"completed"}
    assert (await client.get("/readyz")).json()["database"] == "ok"


async def test_rate_limit_is_shared_through_redis(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any]
) -> None:
    url = make_url(REDIS_URL.replace("redis://", "postgresql://"))  # reuse the URL parser for host/port
    require_service("Redis", url.host or "127.0.0.1", url.port or 6379)
    import redis

    # Forget earlier windows of this limiter only (other tests may be using the same Redis DB at once).
    connection = redis.Redis.from_url(REDIS_URL)
    for key in connection.scan_iter("*LIMITER/ip:*"):
        connection.delete(key)
    settings = make_settings(redis_url=REDIS_URL, rate_limit_submit="3/hour")
    first = await app_factory(settings)
    second = await app_factory(settings)  # a second worker/process sharing the same Redis
    headers = {"X-API-Key": f"shared-{uuid.uuid4().hex}"}
    for client in (first, second, first):
        assert (await client.post("/workflows/reflection", json={"topic": "t"}, headers=headers)).status_code == 202
    limited = await second.post("/workflows/reflection", json={"topic": "t"}, headers=headers)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1


async def test_concurrent_creates_are_group_committed_and_conflicts_stay_isolated(store: WorkflowStore) -> None:
    records = [_record(n) for n in range(40)]
    duplicate = _record(7)  # reuses record 7's Idempotency-Key
    results = await asyncio.gather(
        *[store.create(record=record, lease_owner="host:1:a") for record in [*records, duplicate]],
        return_exceptions=True,
    )
    assert all(result is record for result, record in zip(results[:-1], records, strict=True))
    assert isinstance(results[-1], IdempotencyConflict)
    assert results[-1].existing.id == records[7].id
    page = await store.page(limit=100)
    assert {r.id for r in page.items} == {r.id for r in records}
