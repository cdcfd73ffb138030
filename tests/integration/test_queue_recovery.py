"""Stalled-job recovery of the queue executor, driven directly: requeue, or end as worker_lost."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from backend.config import Settings
from backend.runs import open_runtime
from backend.runs.queue import QueueExecutor
from workflows.registry import WORKFLOWS

pytestmark = pytest.mark.postgres


def _orphan_running_job(postgres_url: str, workflow_id: str, attempts: int) -> None:
    """What a SIGKILLed worker leaves: the job ``doing`` with no live worker, the run ``running``."""
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(
            "UPDATE procrastinate_jobs SET status = 'doing', worker_id = NULL WHERE args->>'workflow_id' = %s",
            (workflow_id,),
        )
        connection.execute(
            "UPDATE workflows SET status = 'running', started_at = now(), attempts = %s WHERE id = %s",
            (attempts, workflow_id),
        )


def _job_status(postgres_url: str, workflow_id: str) -> str | None:
    with psycopg.connect(postgres_url) as connection:
        row = connection.execute(
            "SELECT status FROM procrastinate_jobs WHERE args->>'workflow_id' = %s", (workflow_id,)
        ).fetchone()
    return None if row is None else str(row[0])


async def test_a_lost_workers_run_is_requeued_until_its_attempts_run_out(
    postgres_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(database_url=postgres_url, max_attempts=2)
    spec = WORKFLOWS["reflection"]
    async with open_runtime(settings, worker_concurrency=0) as runs:  # API only: nothing runs the jobs
        executor = runs.executor
        assert isinstance(executor, QueueExecutor)
        body: Any = spec.request_model.model_validate({"topic": "lost twice"})
        first = (await runs.submit(spec=spec, body=body, idempotency_key=None)).record
        second = (
            await runs.submit(spec=spec, body=body.model_copy(update={"topic": "x"}), idempotency_key=None)
        ).record
        assert _job_status(postgres_url, first.id) == "todo"

        _orphan_running_job(postgres_url, first.id, attempts=1)  # one start so far: worth another
        _orphan_running_job(postgres_url, second.id, attempts=2)  # out of attempts
        assert await executor.recover_stalled() == 1

        assert _job_status(postgres_url, first.id) == "todo"  # back in the queue, for any worker
        again = await runs.get(workflow_id=first.id)
        assert again.status.value == "running"  # its checkpoint decides where it resumes
        lost = await runs.get(workflow_id=second.id)
        assert lost.status.value == "failed"
        assert lost.error_code == "worker_lost"
        assert _job_status(postgres_url, second.id) is None  # finished and deleted
