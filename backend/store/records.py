"""The workflow record as the rest of the server sees it (decoupled from the ORM row)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = ["TERMINAL_STATUSES", "Usage", "WorkflowRecord", "WorkflowStatus"]


class WorkflowStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELLED})


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    llm_calls: int = 0
    est_cost_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "llm_calls": self.llm_calls,
            "est_cost_usd": round(self.est_cost_usd, 6),
        }


@dataclass(slots=True)
class WorkflowRecord:
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
    usage: dict[str, Any] = field(default_factory=lambda: Usage().as_dict())
    correlation_id: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    cancel_requested: bool = False
    attempts: int = 0

    @property
    def execution_time(self) -> float | None:
        """Seconds from first start to finish (or until now while running)."""
        if self.started_at is None:
            return None
        end = self.finished_at
        if end is None:
            return None
        return round((end - self.started_at).total_seconds(), 3)
