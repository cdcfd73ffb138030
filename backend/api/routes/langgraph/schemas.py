"""The LangGraph Server wire shapes agentflow speaks (as ``langgraph-sdk`` sends and reads them)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.runs import WorkflowRecord
from backend.runs.assistants import Assistant, assistant_id_of
from backend.runs.threads import RUN_STATUS, ThreadRecord

__all__ = [
    "AssistantPublic",
    "AssistantSearch",
    "CheckpointPublic",
    "GraphSchemaPublic",
    "HistoryRequest",
    "RunCreate",
    "RunPublic",
    "ThreadCount",
    "ThreadCreate",
    "ThreadPatch",
    "ThreadPublic",
    "ThreadSearch",
    "ThreadStatePublic",
]

RunStatus = Literal["pending", "running", "error", "success", "timeout", "interrupted"]
ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
StreamMode = Literal[
    "values", "messages", "updates", "events", "tasks", "checkpoints", "debug", "custom", "messages-tuple", "tools",
    "lifecycle",
]  # fmt: skip
Limit = Field(default=10, ge=1, le=1000, description="Most items to return.")
Offset = Field(default=0, ge=0, le=1_000_000, description="Items to skip.")


class AssistantPublic(BaseModel):
    """An assistant: one per registered workflow type (``graph_id`` = the type)."""

    assistant_id: str
    graph_id: str
    config: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any]
    version: int = 1
    name: str
    description: str | None

    @classmethod
    def of(cls, assistant: Assistant) -> AssistantPublic:
        return cls(
            assistant_id=assistant.assistant_id,
            graph_id=assistant.graph_id,
            created_at=assistant.created_at,
            updated_at=assistant.created_at,
            metadata={"created_by": "system"},
            name=assistant.graph_id,
            description=assistant.description,
        )


class AssistantSearch(BaseModel):
    """Body of ``POST /assistants/search``."""

    metadata: dict[str, Any] | None = None
    graph_id: str | None = Field(default=None, max_length=64)
    name: str | None = Field(default=None, max_length=200)
    limit: int = Limit
    offset: int = Offset
    sort_by: Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[str] | None = None


class AssistantCount(BaseModel):
    """Body of ``POST /assistants/count``."""

    metadata: dict[str, Any] | None = None
    graph_id: str | None = Field(default=None, max_length=64)
    name: str | None = Field(default=None, max_length=200)


class GraphSchemaPublic(BaseModel):
    """``GET /assistants/{id}/schemas``: the input schema is the workflow's request model."""

    graph_id: str
    input_schema: dict[str, Any] | None
    output_schema: dict[str, Any] | None
    state_schema: dict[str, Any] | None
    config_schema: dict[str, Any] | None
    context_schema: dict[str, Any] | None


class ThreadCreate(BaseModel):
    """Body of ``POST /threads``."""

    thread_id: uuid.UUID | None = Field(default=None, description="Chosen by the client; generated if absent.")
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] | None = None
    supersteps: list[Any] | None = Field(default=None, description="Not supported (501).")
    ttl: Any | None = Field(default=None, description="Not supported (501).")


class ThreadPatch(BaseModel):
    """Body of ``PATCH /threads/{thread_id}``: metadata merged into the thread's."""

    metadata: dict[str, Any] | None = None
    ttl: Any | None = Field(default=None, description="Not supported (501).")


class ThreadSearch(BaseModel):
    """Body of ``POST /threads/search``."""

    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = Field(default=None, description="Not supported (501).")
    ids: list[str] | None = Field(default=None, max_length=1000)
    status: ThreadStatus | None = None
    limit: int = Limit
    offset: int = Offset
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[str] | None = None
    extract: dict[str, str] | None = None


class ThreadCount(BaseModel):
    """Body of ``POST /threads/count``."""

    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = Field(default=None, description="Not supported (501).")
    status: ThreadStatus | None = None


class ThreadPublic(BaseModel):
    """A thread: its runs' last values and status."""

    thread_id: str
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any]
    status: ThreadStatus
    values: dict[str, Any] | None
    interrupts: dict[str, list[Any]] = Field(default_factory=dict)

    @classmethod
    def of(cls, thread: ThreadRecord) -> ThreadPublic:
        return cls(
            thread_id=thread.id,
            created_at=thread.created_at,
            updated_at=thread.updated_at,
            metadata=thread.metadata,
            status=thread.status,
            values=thread.values,
        )


class CheckpointPublic(BaseModel):
    thread_id: str
    checkpoint_ns: str = ""
    checkpoint_id: str | None = None
    checkpoint_map: dict[str, Any] | None = None


class ThreadStatePublic(BaseModel):
    """The state of a thread: the values of its last finished run (checkpoints go when a run ends)."""

    values: dict[str, Any]
    next: list[str] = Field(default_factory=list)
    checkpoint: CheckpointPublic
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: str | None
    parent_checkpoint: CheckpointPublic | None = None
    tasks: list[Any] = Field(default_factory=list)
    interrupts: list[Any] = Field(default_factory=list)

    @classmethod
    def of(cls, thread: ThreadRecord) -> ThreadStatePublic:
        return cls(
            values=thread.values or {},
            checkpoint=CheckpointPublic(thread_id=thread.id),
            created_at=thread.updated_at.isoformat(),
        )


class HistoryRequest(BaseModel):
    """Body of ``POST /threads/{thread_id}/history``."""

    limit: int = Limit
    before: Any | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None


class RunCreate(BaseModel):
    """Body of every run-creating route (``/threads/{id}/runs[/wait|/stream]``, ``/runs[/wait|/stream]``).

    ``input`` is validated with the assistant's workflow request model (its errors name
    ``body.input.<field>``). Fields LangGraph Server has and agentflow does not act on are accepted
    when absent or null; the ones that would change what runs answer 501 when set.
    """

    assistant_id: str = Field(min_length=1, max_length=64, description="An assistant id, or a graph id.")
    input: dict[str, Any] | None = None
    command: dict[str, Any] | None = Field(default=None, description="Not supported (501).")
    metadata: dict[str, Any] | None = None
    config: dict[str, Any] | None = Field(default=None, description="Accepted; agentflow reads nothing from it.")
    context: dict[str, Any] | None = Field(default=None, description="Accepted; agentflow reads nothing from it.")
    stream_mode: StreamMode | list[StreamMode] | None = None
    stream_subgraphs: bool | None = None
    stream_resumable: bool | None = None
    interrupt_before: Literal["*"] | list[str] | None = Field(default=None, description="Not supported (501).")
    interrupt_after: Literal["*"] | list[str] | None = Field(default=None, description="Not supported (501).")
    feedback_keys: list[str] | None = None
    webhook: str | None = Field(default=None, max_length=2048, description="Called with the run when it ends.")
    checkpoint: dict[str, Any] | None = Field(default=None, description="Not supported (501).")
    checkpoint_id: str | None = Field(default=None, max_length=64, description="Not supported (501).")
    checkpoint_during: bool | None = None
    multitask_strategy: Literal["reject", "interrupt", "rollback", "enqueue"] | None = Field(
        default=None,
        description="On a busy thread: `reject` (409) or `enqueue` (the default); interrupt and rollback: 501.",
    )
    if_not_exists: Literal["create", "reject"] | None = Field(
        default=None, description="A missing thread: `create` it, or `reject` (404, the default)."
    )
    on_completion: Literal["delete", "keep"] | None = Field(
        default=None, description="Stateless runs: `delete` (default) hides their thread once done; `keep` keeps it."
    )
    on_disconnect: Literal["cancel", "continue"] | None = Field(
        default=None, description="`/wait` and `/stream`: cancel the run when the client goes away, or not (default)."
    )
    after_seconds: float | None = Field(default=None, description="Not supported (501).")
    durability: Literal["sync", "async", "exit"] | None = None
    strict_resume: bool | None = None
    langsmith_tracer: dict[str, Any] | None = None


class RunPublic(BaseModel):
    """A run: a workflow record seen through the LangGraph API (the same id as ``/workflows/{id}``)."""

    run_id: str
    thread_id: str
    assistant_id: str
    created_at: datetime
    updated_at: datetime
    status: RunStatus
    metadata: dict[str, Any]
    multitask_strategy: Literal["reject", "interrupt", "rollback", "enqueue"]
    model_config = ConfigDict(populate_by_name=True)

    run_kwargs: dict[str, Any] = Field(alias="kwargs", description="What the run was created with: its `input`.")

    @classmethod
    def of(cls, record: WorkflowRecord) -> RunPublic:
        return cls(
            run_id=record.id,
            thread_id=record.thread_id or "",
            assistant_id=assistant_id_of(record.workflow_type),
            created_at=record.created_at,
            updated_at=record.finished_at or record.started_at or record.created_at,
            status=RUN_STATUS[record.status],
            metadata=record.metadata or {},
            multitask_strategy=record.multitask_strategy or "reject",
            run_kwargs={"input": record.input},
        )
