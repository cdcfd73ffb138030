"""Executor behaviour in-process: budgets, deadlines, graceful shutdown and resumption."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.api.app import create_app
from backend.config import Settings
from backend.runs.store import WorkflowStore, create_engine, run_migrations
from backend.runs.store.database import SQLITE_BUSY_TIMEOUT
from tests.helpers import reflection_responder, wait_terminal
from tests.standins import OpenAIConfig, StandinServer


async def test_token_budget_stops_the_run_and_keeps_the_best_result(
    client: httpx.AsyncClient, standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(responder=reflection_responder([5, 6, 7, 8])))
    response = await client.post(
        "/workflows/reflection?wait=20",
        json={"topic": "t", "max_iterations": 5, "score_threshold": 10, "max_tokens_budget": 250},
    )
    body = response.json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "budget_exceeded"
    spent = body["usage"]["input_tokens"] + body["usage"]["output_tokens"]
    assert spent >= 250
    assert body["result"]["final"]
    assert body["result"]["stop_reason"] == "budget_exceeded"


async def test_workflow_deadline_fails_the_run(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(latency=1.0))
    client = await app_factory(make_settings(workflow_timeout=0.5))
    body = (await client.post("/workflows/reflection?wait=10", json={"topic": "t"})).json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "workflow_timeout"
    assert body["finished_at"] is not None


async def _until(client: httpx.AsyncClient, workflow_id: str, condition: Callable[[dict[str, Any]], bool]) -> None:
    """Poll the record until ``condition`` holds (a loaded machine decides how long that takes)."""
    deadline = asyncio.get_running_loop().time() + 30
    while not condition((await client.get(f"/workflows/{workflow_id}")).json()):
        assert asyncio.get_running_loop().time() < deadline, "the run never reached the expected point"
        await asyncio.sleep(0.01)


async def test_graceful_shutdown_leaves_runs_resumable(
    make_settings: Callable[..., Settings], standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.3, responder=reflection_responder([4, 5, 9])))
    settings = make_settings(shutdown_grace_seconds=0.1)

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            workflow_id = (await client.post("/workflows/reflection", json={"topic": "t"})).json()["workflow_id"]
            await _until(client, workflow_id, lambda body: body["progress"]["node"] == "draft")  # critique in flight
    engine = create_engine(settings.database_url)
    try:
        interrupted = await WorkflowStore(engine).get(workflow_id=workflow_id)
    finally:
        await engine.dispose()
    assert interrupted is not None
    assert interrupted.status.value == "running"

    standin.configure(openai=OpenAIConfig(latency=0.05, responder=reflection_responder([4, 5, 9])))
    again = create_app(settings)
    async with again.router.lifespan_context(again):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=again), base_url="http://t") as client:
            body = await wait_terminal(client, workflow_id)
    assert body["status"] == "completed"
    assert body["result"]["stop_reason"] == "score_threshold"
    drafts = [entry for entry in standin.requests("openai") if entry["schema_name"] is None]
    assert sum("Draft" not in entry["last_user_message"] for entry in drafts) == 1  # the draft ran once


async def test_run_resumes_under_its_original_correlation_id(
    make_settings: Callable[..., Settings], standin: StandinServer, caplog: Any
) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.3))
    settings = make_settings(shutdown_grace_seconds=0.0)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            response = await client.post(
                "/workflows/reflection", json={"topic": "t"}, headers={"X-Request-ID": "origin-7"}
            )
            workflow_id = response.json()["workflow_id"]
            await _until(client, workflow_id, lambda body: body["status"] == "running")
    standin.configure(openai=OpenAIConfig())
    again = create_app(settings)
    caplog.set_level("INFO")
    async with again.router.lifespan_context(again):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=again), base_url="http://t") as client:
            await wait_terminal(client, workflow_id)
    lines = [r for r in caplog.records if getattr(r, "workflow_id", None) == workflow_id]
    assert any(getattr(r, "event", None) == "workflow_resumed" for r in lines)
    assert {getattr(r, "correlation_id", None) for r in lines} == {"origin-7"}
    assert {getattr(r, "workflow_type", None) for r in lines} == {"reflection"}


async def test_a_sqlite_write_waits_for_another_writer_instead_of_failing(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/store.db")
    try:
        await run_migrations(engine)
        async with engine.connect() as connection:  # set when each connection opens
            timeout = (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar()
        assert timeout == SQLITE_BUSY_TIMEOUT * 1000
        store = WorkflowStore(engine)
        # Another process holds SQLite's one write lock, and lets go a moment later. The store's
        # calls run on the loop (backend.runs.store.inline_sqlite), so the write waits in SQLite's
        # busy handler until then, and succeeds.
        other = sqlite3.connect(tmp_path / "store.db", isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        letting_go = threading.Timer(0.3, lambda: other.execute("COMMIT"))
        letting_go.start()
        try:
            await store.release_leases(owner="gone")  # waited, then wrote: no "database is locked"
        finally:
            letting_go.join()
            other.close()
    finally:
        await engine.dispose()


async def test_shutdown_completes_when_releasing_leases_fails(
    make_settings: Callable[..., Settings], standin: StandinServer, caplog: pytest.LogCaptureFixture
) -> None:
    standin.configure(openai=OpenAIConfig(latency=30.0))
    app = create_app(make_settings(shutdown_grace_seconds=0.0))
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        workflow_id = (await client.post("/workflows/reflection", json={"topic": "t"})).json()["workflow_id"]
        runs = app.state.runs
        async with asyncio.timeout(60):
            while (await runs.get(workflow_id=workflow_id)).status.value != "running":
                await asyncio.sleep(0.02)

    async def busy(*, owner: str) -> None:
        raise sqlite3.OperationalError("database is locked")

    runs.executor.store.release_leases = busy
    await lifespan.__aexit__(None, None, None)  # does not raise
    assert any(getattr(r, "event", None) == "executor_release_failed" for r in caplog.records)
