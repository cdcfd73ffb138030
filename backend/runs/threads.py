"""LangGraph-API threads over the run engine: a thread is a sequence of runs, and a run is a workflow.

A thread keeps the values (final graph state) of its last finished run and a status; both are
written by the store in the transaction that finishes the run (``settle_thread``), so they hold
across processes and restarts. Runs submitted on a thread go through ``RunService.submit`` like
any workflow, with the thread's multitask strategy: ``reject`` refuses a run while the thread has
one in flight, ``enqueue`` admits it, and the runner starts it only once every earlier run of the
thread has ended (``ThreadStore.runs_ahead``), whichever executor runs it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal

from pydantic_core import to_jsonable_python

from agents.errors import Conflict, NotFound
from backend.runs.records import WorkflowRecord, WorkflowStatus
from backend.runs.store.threads import ThreadExists, ThreadRecord, ThreadStore
from workflows.base import WorkflowSpec

__all__ = [
    "RUN_STATUS",
    "MultitaskStrategy",
    "ThreadRecord",
    "ThreadService",
    "final_values",
    "run_output",
]

#: Our run statuses as LangGraph's (``pending``, ``running``, ``success``, ``error``,
#: ``interrupted``): a run ``waiting`` for a human's answer is ``interrupted`` there too.
RUN_STATUS: Mapping[WorkflowStatus, str] = {
    WorkflowStatus.QUEUED: "pending",
    WorkflowStatus.RUNNING: "running",
    WorkflowStatus.WAITING: "interrupted",
    WorkflowStatus.COMPLETED: "success",
    WorkflowStatus.FAILED: "error",
    WorkflowStatus.CANCELLED: "interrupted",
}
#: The strategies a run on a busy thread may ask for; LangGraph's ``interrupt`` and ``rollback``
#: are not offered (they would cancel the run in flight).
MultitaskStrategy = Literal["reject", "enqueue"]


def final_values(
    spec: WorkflowSpec,
    record: WorkflowRecord,
    state: Mapping[str, Any] | None,
    result: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """The values a finished run leaves on its thread: its final graph state, as JSON.

    A run answered from the result cache (or that followed an identical run) executed no graph;
    its values are its graph input with the result it carries. None: nothing to record (a run
    cancelled before its first step keeps the thread's earlier values).
    """
    if state:
        values: dict[str, Any] = to_jsonable_python(dict(state))
        return values
    if result is None:
        return None
    request = spec.request_model.model_validate(record.input)
    return {**to_jsonable_python(spec.initial_state(request)), "result": result}


def run_output(record: WorkflowRecord, thread: ThreadRecord | None) -> dict[str, Any]:
    """What ``runs.wait`` and ``runs.join`` answer for a finished run: the thread's values, or
    ``{"__error__": {...}}`` for a failed run, as LangGraph Server does."""
    if record.status is WorkflowStatus.FAILED:
        return {"__error__": {"error": record.error_code or "error", "message": record.error_message or ""}}
    return dict(thread.values or {}) if thread is not None else {}


class ThreadService:
    """Creates, finds and deletes threads, scoped to an owner like workflow records."""

    def __init__(self, store: ThreadStore) -> None:
        self.store = store

    async def create(
        self,
        *,
        owner: str,
        thread_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        if_exists: Literal["raise", "do_nothing"] = "raise",
    ) -> ThreadRecord:
        """A new idle thread; with ``if_exists="do_nothing"`` an existing one of the owner's is returned."""
        thread_id = thread_id or str(uuid.uuid4())
        try:
            return await self.store.create(thread_id=thread_id, owner=owner, metadata=dict(metadata or {}))
        except ThreadExists:
            existing = await self.store.get(thread_id=thread_id)
            if if_exists == "do_nothing" and existing is not None and existing.owner == owner:
                return existing
            raise Conflict(f"Thread {thread_id!r} already exists.") from None

    async def create_temporary(self, *, owner: str) -> ThreadRecord:
        """The thread of one stateless run: it holds the run's values but is not listed or readable."""
        return await self.store.create(thread_id=str(uuid.uuid4()), owner=owner, metadata={}, temporary=True)

    async def find(self, *, thread_id: str, owner: str | None, temporary: bool = False) -> ThreadRecord | None:
        """The thread if ``owner`` may see it (``owner`` None: anyone's); temporary ones only if asked."""
        thread = await self.store.get(thread_id=thread_id)
        if thread is None or (owner is not None and thread.owner != owner) or (thread.temporary and not temporary):
            return None
        return thread

    async def get(self, *, thread_id: str, owner: str | None) -> ThreadRecord:
        """The thread, or NotFound (another owner's thread is indistinguishable from a missing one)."""
        thread = await self.find(thread_id=thread_id, owner=owner)
        if thread is None:
            raise NotFound(f"No thread with id {thread_id!r}.")
        return thread

    async def search(
        self,
        *,
        owner: str | None,
        metadata: dict[str, Any] | None = None,
        status: str | None = None,
        ids: list[str] | None = None,
        limit: int = 10,
        offset: int = 0,
        newest_first: bool = True,
    ) -> list[ThreadRecord]:
        return await self.store.search(
            owner=owner,
            metadata=metadata,
            status=status,
            ids=ids,
            limit=limit,
            offset=offset,
            newest_first=newest_first,
        )

    async def count(self, *, owner: str | None) -> int:
        return await self.store.count(owner=owner)

    async def update_metadata(self, *, thread_id: str, owner: str | None, metadata: dict[str, Any]) -> ThreadRecord:
        """Merge ``metadata`` into the thread's."""
        await self.get(thread_id=thread_id, owner=owner)
        await self.store.merge_metadata(thread_id=thread_id, metadata=metadata)
        return await self.get(thread_id=thread_id, owner=owner)

    async def delete(self, *, thread_id: str, owner: str | None) -> None:
        """Drop the thread; its runs stay (they are workflows, still at ``/workflows/{id}``)."""
        await self.get(thread_id=thread_id, owner=owner)
        await self.store.delete(thread_id=thread_id)
