"""The workflow run record as the engine and the API see it (decoupled from the table row)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from agents.providers.usage import Usage

__all__ = ["TERMINAL_STATUSES", "Usage", "WorkflowRecord", "WorkflowStatus"]


class WorkflowStatus(StrEnum):
    """Where a run is: ``queued`` and ``running`` are live; the other three are final."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELLED})


@dataclass(slots=True)
class WorkflowRecord:
    """One workflow run: its request, where it is, what it spent and what it produced."""

    id: str
    workflow_type: str
    status: WorkflowStatus
    created_at: datetime
    input: dict[str, Any]
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    correlation_id: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    cancel_requested: bool = False
    attempts: int = 0
    job_id: int | None = None

    @property
    def execution_time(self) -> float | None:
        """Seconds from first start to finish (None until finished)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)
