"""The workflow run record as the engine and the API see it (decoupled from the table row)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from agents.providers.usage import Usage

__all__ = [
    "TERMINAL_STATUSES",
    "CacheOutcome",
    "DeliveryStatus",
    "Usage",
    "WebhookState",
    "WorkflowRecord",
    "WorkflowStatus",
]


class WorkflowStatus(StrEnum):
    """Where a run is: ``queued`` and ``running`` are live; ``waiting`` is paused for a human answer
    (not final, but holding no executor slot); the other three are final."""

    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELLED})


class CacheOutcome(StrEnum):
    """What the result cache did for a record's submit (None on the record: the cache is off)."""

    HIT = "hit"  #: answered at once from a fresh cached result
    MISS = "miss"  #: nothing fresh cached and no identical run in flight: this record ran
    COALESCED = "coalesced"  #: followed an identical run that was in flight (single flight)
    BYPASS = "bypass"  #: the request asked for no cache
    REFRESH = "refresh"  #: ran anyway, and replaces the cached result


class DeliveryStatus(StrEnum):
    """Where a run's webhook delivery is: ``pending`` until one attempt gets a 2xx or all fail."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WebhookState:
    """A run's webhook delivery as clients see it (``pending`` with 0 attempts while the run is live)."""

    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0


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
    #: The id of the API key that created the run ('' when it came without one).
    owner: str = ""
    #: The result-cache key of the request (None for ``cache: bypass`` or with the cache off).
    cache_key: str | None = None
    #: The single-flight key: set while this record is the one run in flight for its cache key.
    flight_key: str | None = None
    #: The run whose result this record carries (a hit), or that it follows while in flight.
    cached_from: str | None = None
    cache_outcome: CacheOutcome | None = None
    #: W3C traceparent of the submit, so the run's spans join the request's trace.
    traceparent: str | None = None
    #: The LangGraph-API thread the run belongs to (None for runs submitted at ``/workflows``).
    thread_id: str | None = None
    #: The run's own metadata (LangGraph API ``metadata``), kept as given.
    metadata: dict[str, Any] | None = None
    #: How the run was admitted on a busy thread: ``reject`` or ``enqueue`` (None: not on a thread).
    multitask_strategy: str | None = None
    #: Where to POST the final record when the run ends (checked against SSRF at submit).
    webhook_url: str | None = None
    #: The delivery of that webhook, filled in by ``RunService`` reads (never stored on the row).
    webhook: WebhookState | None = None
    #: Nodes and upstream calls so far; only on the live record of a run executing here (the
    #: store keeps it apart from the record, see ``WorkflowStore.timeline``).
    timeline: list[dict[str, Any]] | None = None
    #: While ``waiting``: what the run asks a human, ``{"kind": ..., **payload}`` (e.g. the plan).
    pending: dict[str, Any] | None = None
    #: The human's answer to the latest pending question, recorded before the run is re-scheduled.
    resume_value: dict[str, Any] | None = None
    #: When the run last started waiting (the ``AGENTFLOW_WAITING_TTL`` clock).
    waiting_since: datetime | None = None
    #: When the run was last resumed after waiting (its deadline counts from here).
    resumed_at: datetime | None = None

    @property
    def cache_hit(self) -> bool:
        """Completed from another run's result: a fresh cache hit, or a coalesced follower."""
        return self.status is WorkflowStatus.COMPLETED and self.cache_outcome in (
            CacheOutcome.HIT,
            CacheOutcome.COALESCED,
        )

    @property
    def execution_time(self) -> float | None:
        """Seconds from first start to finish (None until finished)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)
