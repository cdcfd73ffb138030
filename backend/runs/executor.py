"""The interface the run service drives; two implementations: in-process and job queue."""

from __future__ import annotations

from typing import Any, Protocol

from backend.runs.records import WorkflowRecord, WorkflowStatus

__all__ = ["Executor"]


class Executor(Protocol):
    """Accepts stored runs, executes them somewhere, and cancels them on request.

    ``LocalExecutor`` (embedded default: asyncio tasks in the server process, SQLite or
    PostgreSQL) and ``QueueExecutor`` (procrastinate jobs on PostgreSQL, run by any worker).
    """

    #: ``local`` or ``queue``, as ``AGENTFLOW_EXECUTOR`` names them.
    kind: str

    @property
    def accepting(self) -> bool:
        """False once shutdown began: submits are refused with 503."""
        ...

    @property
    def active_runs(self) -> int:
        """Runs executing in this process right now."""
        ...

    async def start(self) -> None:
        """Begin executing (and resume what was left unfinished)."""

    async def shutdown(self, grace: float) -> None:
        """Stop taking work; give running nodes ``grace`` seconds; leave the rest resumable."""

    async def accept(self, record: WorkflowRecord) -> WorkflowRecord:
        """Store a new queued record and schedule it, atomically (IdempotencyConflict if its key is taken)."""
        ...

    async def cancel(self, workflow_id: str) -> WorkflowRecord | None:
        """Cancel a run: a queued one never starts; a running one stops. None if unknown."""
        ...

    async def resume(self, workflow_id: str, value: dict[str, Any]) -> WorkflowRecord | None:
        """Record the answer to a waiting run and schedule it to continue from its checkpoint,
        atomically; None if it is not waiting."""
        ...

    async def end_waiting(
        self, workflow_id: str, *, status: WorkflowStatus, error_code: str | None, error_message: str | None
    ) -> WorkflowRecord | None:
        """End a waiting run without running it again (and drop its checkpoint); None if not waiting."""
        ...

    def live(self, workflow_id: str) -> WorkflowRecord | None:
        """The in-memory record of a run executing in this process, else None."""
        ...
