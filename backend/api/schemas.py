"""Public API schemas (request bodies live with their workflows in ``workflows/``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from backend.runs import Usage, WorkflowRecord, WorkflowStatus

__all__ = ["ErrorPublic", "ProgressPublic", "WorkflowPublic", "WorkflowsPublic"]


class ErrorPublic(BaseModel):
    code: str = Field(description="Stable error code, e.g. upstream_timeout or budget_exceeded.")
    message: str


class ProgressPublic(BaseModel):
    node: str | None = Field(default=None, description="The last node that finished.")
    iteration: int = 0


class WorkflowPublic(BaseModel):
    """A workflow run as clients see it."""

    workflow_id: str
    workflow_type: str
    status: WorkflowStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    execution_time: float | None = Field(description="Seconds from start to finish, once finished.")
    input: dict[str, Any]
    result: dict[str, Any] | None
    error: ErrorPublic | None
    progress: ProgressPublic
    usage: Usage
    correlation_id: str | None
    cancel_requested: bool = False

    @classmethod
    def from_record(cls, record: WorkflowRecord) -> WorkflowPublic:
        return cls(
            workflow_id=record.id,
            workflow_type=record.workflow_type,
            status=record.status,
            created_at=record.created_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            execution_time=record.execution_time,
            input=record.input,
            result=record.result,
            error=ErrorPublic(code=record.error_code, message=record.error_message or "")
            if record.error_code
            else None,
            progress=ProgressPublic.model_validate(record.progress or {}),
            usage=record.usage,
            correlation_id=record.correlation_id,
            cancel_requested=record.cancel_requested,
        )


class WorkflowsPublic(BaseModel):
    items: list[WorkflowPublic]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page.")
