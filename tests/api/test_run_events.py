"""The per-run event log through the run service: numbering, kinds, replay, resume, retention."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from backend.config import Settings
from backend.runs import RunService
from backend.runs.events import RunEvent
from tests.standins import StandinServer

TOPIC = {"topic": "Event logs for agent runs", "max_iterations": 1, "cache": "bypass"}


def service_of(client: httpx.AsyncClient) -> RunService:
    runs: RunService = client.app.state.runs  # type: ignore[attr-defined]
    return runs


async def collect(runs: RunService, workflow_id: str, after: int = 0) -> list[RunEvent]:
    return [event async for event in runs.stream(workflow_id=workflow_id, after=after) if event is not None]


async def test_a_run_logs_numbered_events_ending_with_end(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    client = await app_factory(make_settings())
    runs = service_of(client)
    workflow_id = (await client.post("/workflows/reflection", json=TOPIC)).json()["workflow_id"]
    events = await collect(runs, workflow_id)
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    kinds = {event.kind for event in events}
    assert {"status", "values", "updates", "messages", "end"} <= kinds
    assert events[-1].kind == "end" and events[-1].data["status"] == "completed"

    tail = await collect(runs, workflow_id, after=3)
    assert tail == events[3:]
