"""The public rendering of a workflow record: the JSON of ``GET /workflows/{id}`` and of every webhook.

It lives in the run engine, not the API layer, because two edges speak it: the HTTP routes, and
the webhook dispatcher that runs in every process (workers included, which load no API code).
Pure pydantic: no FastAPI here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.runs.records import DeliveryStatus, Usage, WorkflowRecord, WorkflowStatus

__all__ = ["ErrorPublic", "PendingPublic", "ProgressPublic", "WebhookPublic", "WorkflowPublic", "webhook_payload"]


class WebhookPublic(BaseModel):
    """The webhook a run posts its final record to, and how its delivery went."""

    url: str
    status: DeliveryStatus = Field(
        description="pending (the run is live, or attempts remain), delivered (a 2xx came back) or failed."
    )
    attempts: int = Field(description="Delivery attempts made so far.")

    @classmethod
    def from_record(cls, record: WorkflowRecord) -> WebhookPublic | None:
        if record.webhook_url is None:
            return None
        state = record.webhook
        return cls(
            url=record.webhook_url,
            status=state.status if state else DeliveryStatus.PENDING,
            attempts=state.attempts if state else 0,
        )


class ErrorPublic(BaseModel):
    code: str = Field(description="Stable error code, e.g. upstream_timeout or budget_exceeded.")
    message: str


class ProgressPublic(BaseModel):
    node: str | None = Field(default=None, description="The last node that finished.")
    iteration: int = 0
    sources: int | None = Field(default=None, description="Research: sources retrieved so far.")


class PendingPublic(BaseModel):
    """What a ``waiting`` run asks a human (answer it with ``POST /workflows/{id}/resume``)."""

    model_config = ConfigDict(extra="allow")  # the question's payload, e.g. ``plan``

    kind: str = Field(description="The question, e.g. plan_approval (the payload is its plan).")
    waiting_since: datetime | None = Field(default=None, description="When the run started waiting.")
    expires_at: datetime | None = Field(
        default=None, description="When the run ends cancelled (approval_timeout) if nobody answers."
    )


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
    cache_hit: bool = Field(
        default=False, description="Completed with another run's result (a fresh cached result, or a coalesced run)."
    )
    cached_from: str | None = Field(
        default=None, description="The run whose result this record carries (or follows, while it is in flight)."
    )
    cache_outcome: Literal["hit", "miss", "coalesced", "bypass", "refresh"] | None = Field(
        default=None, description="What the result cache did at submit (null: the cache is off)."
    )
    webhook: WebhookPublic | None = Field(
        default=None, description="The webhook asked for at submit and its delivery (null: none was asked for)."
    )
    pending: PendingPublic | None = Field(
        default=None,
        description=(
            "Status waiting: the question the run waits on, e.g. {kind: plan_approval, plan: {steps: [...]}}; "
            "answer it with POST /workflows/{id}/resume."
        ),
    )

    @classmethod
    def from_record(cls, record: WorkflowRecord, *, waiting_ttl: float | None = None) -> WorkflowPublic:
        """The public record; ``waiting_ttl`` (AGENTFLOW_WAITING_TTL) dates a waiting run's expiry."""
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
            cache_hit=record.cache_hit,
            cached_from=record.cached_from,
            cache_outcome=record.cache_outcome.value if record.cache_outcome else None,
            webhook=WebhookPublic.from_record(record),
            pending=_pending(record, waiting_ttl),
        )


def _pending(record: WorkflowRecord, waiting_ttl: float | None) -> PendingPublic | None:
    if record.status is not WorkflowStatus.WAITING or record.pending is None:
        return None
    since = record.waiting_since
    expires = since + timedelta(seconds=waiting_ttl) if since is not None and waiting_ttl else None
    return PendingPublic.model_validate({**record.pending, "waiting_since": since, "expires_at": expires})


def webhook_payload(record: WorkflowRecord) -> bytes:
    """The body of a run's webhook: its final record as ``GET /workflows/{id}`` renders it, minus
    the ``webhook`` member (the delivery's own state), so every retry carries the same bytes."""
    return WorkflowPublic.from_record(record).model_dump_json(exclude={"webhook"}).encode()
