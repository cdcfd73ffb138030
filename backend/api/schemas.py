"""Public API schemas (request bodies live with their workflows in ``workflows/``).

The record itself (``WorkflowPublic``) is rendered one level down, in ``backend.runs.public``:
the webhook dispatcher posts exactly that JSON, and ``backend.runs`` never imports the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from backend.runs import WorkflowStatus
from backend.runs.public import ErrorPublic, PendingPublic, ProgressPublic, WebhookPublic, WorkflowPublic
from workflows.registry import WORKFLOWS

__all__ = [
    "CacheClearedPublic",
    "ErrorPublic",
    "FieldErrorPublic",
    "MetricsSummaryPublic",
    "PendingPublic",
    "ProblemDetails",
    "ProgressPublic",
    "ReadinessPublic",
    "ResumeRequest",
    "TimelineEntryPublic",
    "WebhookPublic",
    "WorkflowPublic",
    "WorkflowTimelinePublic",
    "WorkflowsPublic",
]


def _resume_request() -> type[BaseModel]:
    """``POST /workflows/{id}/resume``'s body: the action, and one optional field per editable
    value any registered workflow declares (``plan`` for the planner), typed by its schema."""
    fields: dict[str, Any] = {
        "action": (
            Literal["approve", "edit", "reject"],
            Field(description="approve: continue as asked; edit: continue with the edited value; reject: end it."),
        )
    }
    for spec in WORKFLOWS.values():
        for point in spec.interrupts:
            if point.edit_field is not None and point.edit_model is not None:
                # Typed by the value's schema, so OpenAPI shows it and a structural error is a 422
                # naming the field (body.plan.steps.1.depends_on); the run service checks the rest.
                fields.setdefault(
                    point.edit_field,
                    (
                        point.edit_model | None,
                        Field(
                            default=None,
                            description=f"action edit of a {point.kind} question: the edited value.",
                        ),
                    ),
                )
    model: type[BaseModel] = create_model(
        "ResumeRequest",
        __config__=ConfigDict(
            extra="forbid",
            json_schema_extra={"examples": [{"action": "approve"}, {"action": "reject"}]},
        ),
        __doc__="The answer to a waiting run.",
        **fields,
    )
    return model


#: The body of ``POST /workflows/{id}/resume``.
ResumeRequest = _resume_request()


class WorkflowsPublic(BaseModel):
    items: list[WorkflowPublic]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page.")


class FieldErrorPublic(BaseModel):
    field: str = Field(description="Where: body.topic, body.models.draft, query.wait, path.workflow_id, body.")
    message: str = Field(description="What is wrong with it.")
    type: str = Field(description="The kind of failure, e.g. missing, string_too_long, json_too_deep.")


class ProblemDetails(BaseModel):
    """An RFC 9457 problem: the body of every error response (``application/problem+json``)."""

    # RFC 9457 allows extension members (e.g. ``variable`` on provider_not_configured).
    model_config = ConfigDict(extra="allow")

    type: str = Field(description="A URI naming the problem: urn:agentflow:problem:<code>.")
    title: str = Field(description="Short summary, the same for every instance of the problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong in this instance (safe to show).")
    instance: str = Field(description="The request path.")
    code: str = Field(description="Stable machine-readable code; the last segment of type.")
    request_id: str = Field(description="This request's X-Request-ID: quote it when reporting a problem.")
    errors: list[FieldErrorPublic] = Field(
        default_factory=list, description="400 and 422 only: each part of the request that was wrong."
    )


class ExecutorReadiness(BaseModel):
    kind: str = Field(description="local (in-process) or queue (procrastinate).")
    accepting: bool
    active_runs: int


class ProviderReadiness(BaseModel):
    configured: bool
    base_url: str


class ReadinessPublic(BaseModel):
    """``GET /readyz``: 200 when ready, 503 (same body) when not."""

    status: Literal["ready", "not_ready"]
    database: Literal["ok", "unreachable"]
    executor: ExecutorReadiness
    providers: dict[str, ProviderReadiness] = Field(description="openai, tavily and arxiv.")


class TimelineEntryPublic(BaseModel):
    """One node or upstream call of a run, in the order they finished."""

    model_config = ConfigDict(extra="allow")  # provider, model, node, retries where they apply

    name: str = Field(description="The node name, or the provider (and model) of an upstream call.")
    kind: Literal["node", "upstream"]
    started_at: datetime
    duration_ms: float
    status: str = Field(description="ok, or the error code it ended with.")
    tokens: int = Field(description="Model tokens spent (a node: by the model calls made inside it).")


class WorkflowTimelinePublic(BaseModel):
    """``GET /workflows/{id}/timeline``: where the run spent its time."""

    workflow_id: str
    status: WorkflowStatus
    cached_from: str | None = Field(description="Set for a cache hit, which ran nothing itself.")
    entries: list[TimelineEntryPublic]


class CacheClearedPublic(BaseModel):
    deleted: int = Field(description="How many cached results were dropped.")


class StatusCountsPublic(BaseModel):
    queued: int = 0
    running: int = 0
    waiting: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0


class ExecutionTimePublic(BaseModel):
    runs: int = Field(description="Completed runs that executed (answers from the cache excluded).")
    p50_s: float | None
    p95_s: float | None


class TypeSummaryPublic(BaseModel):
    records: int
    by_status: StatusCountsPublic
    execution_time: ExecutionTimePublic


class UsageSummaryPublic(BaseModel):
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    llm_calls: int
    est_cost_usd: float = Field(description="Sum over the records with a known cost.")
    unpriced_records: int = Field(description="Records whose cost is unknown (a model without a price).")


class CacheSummaryPublic(BaseModel):
    hits: int = Field(description="Submits answered at once from a fresh cached result.")
    coalesced: int = Field(description="Submits that joined an identical run in flight.")
    misses: int
    bypassed: int
    refreshed: int
    hit_rate: float | None = Field(description="(hits + coalesced) ÷ (hits + coalesced + misses).")
    saved_usd: float = Field(description="What the runs answered by the cache would have cost (their sources' cost).")
    saved_tokens: int


class MetricsSummaryPublic(BaseModel):
    """``GET /metrics/summary``: totals over the stored records created since ``since``."""

    since: datetime | None
    until: datetime
    records: int
    by_status: StatusCountsPublic
    live: dict[str, int] = Field(description="Queued, running and waiting now, across every process.")
    by_type: dict[str, TypeSummaryPublic]
    execution_time: ExecutionTimePublic
    usage: UsageSummaryPublic
    cache: CacheSummaryPublic
