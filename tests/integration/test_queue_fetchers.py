"""A queue worker with many slots takes jobs with several fetching loops: each job runs once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from backend.config import Settings
from backend.runs import open_runtime
from backend.runs.queue import QueueExecutor
from tests.standins import OpenAIConfig, StandinServer
from workflows.registry import WORKFLOWS

pytestmark = pytest.mark.postgres


async def test_fetching_loops_side_by_side_run_every_job_once(
    postgres_url: str, make_settings: Callable[..., Settings], standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.2))
    settings = make_settings(database_url=postgres_url, openai_max_concurrency=200)
    spec = WORKFLOWS["reflection"]
    async with open_runtime(settings, worker_concurrency=192) as runs:
        executor = runs.executor
        assert isinstance(executor, QueueExecutor)
        assert executor._worker is not None and executor._worker.fetchers == 3
        body: Any = spec.request_model.model_validate(
            {"topic": "fetchers", "max_iterations": 1, "score_threshold": 10, "cache": "bypass"}
        )
        submitted = [(await runs.submit(spec=spec, body=body, idempotency_key=None)).record for _ in range(60)]
        ended = await asyncio.gather(*(runs.wait(workflow_id=record.id, seconds=60) for record in submitted))
    assert {record.status.value for record in ended} == {"completed"}
    assert {record.attempts for record in ended} == {1}  # each job taken by one loop, once
    assert standin.stats()["upstreams"]["openai"]["count"] == 60 * 4  # draft, critique, revise, critique: no run twice
