"""RunService: the one facade that routes, the CLI and the SDK-compatible API call.

submit, get, list, wait, events and cancel. It owns the store, the executor (in-process or job
queue, behind ``Executor``) and the change hub; nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator

from pydantic import BaseModel

from agents import context
from agents.errors import Conflict, InvalidInput, NotFound
from agents.providers import Providers
from backend.runs.executor import Executor
from backend.runs.records import WorkflowRecord, WorkflowStatus
from backend.runs.signals import ChangeHub
from backend.runs.store import IdempotencyConflict, Page, WorkflowStore, utcnow
from workflows.base import WorkflowSpec
from workflows.registry import WORKFLOWS

__all__ = ["KEEPALIVE_SECONDS", "RunService", "Submission"]

#: An event stream yields None (a keep-alive) after this many quiet seconds.
KEEPALIVE_SECONDS = 15.0


def request_hash(spec: WorkflowSpec, body: BaseModel) -> str:
    canonical = json.dumps({"type": spec.name, "input": body.model_dump(mode="json")}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Submission:
    """What ``submit`` returns: the record, and whether this call created it."""

    __slots__ = ("created", "record")

    def __init__(self, record: WorkflowRecord, created: bool) -> None:
        self.record = record
        self.created = created


class RunService:
    """Accepts, finds, waits on, streams and cancels workflow runs."""

    def __init__(self, *, store: WorkflowStore, executor: Executor, hub: ChangeHub, providers: Providers) -> None:
        self.store = store
        self.executor = executor
        self.hub = hub
        self.providers = providers

    # --- submit -------------------------------------------------------------------------------

    async def submit(self, *, spec: WorkflowSpec, body: BaseModel, idempotency_key: str | None) -> Submission:
        """Store a queued record (before any reply) and schedule it.

        The same Idempotency-Key with the same body returns the first record; with a different
        body it is an error, never a second run.
        """
        digest = request_hash(spec, body)
        if idempotency_key is not None:
            existing = await self.store.get_by_idempotency_key(key=idempotency_key)
            if existing is not None:
                return Submission(self._same_request(existing, digest), created=False)
        spec.required_providers(body, self.providers)
        record = WorkflowRecord(
            id=str(uuid.uuid4()),
            workflow_type=spec.name,
            status=WorkflowStatus.QUEUED,
            created_at=utcnow(),
            input=body.model_dump(mode="json"),
            progress={"node": None, "iteration": 0},
            correlation_id=context.correlation_id.get(),
            idempotency_key=idempotency_key,
            request_hash=digest,
        )
        try:
            # Shielded: a client that disconnects mid-submit must not leave a stored row that was
            # never scheduled.
            await asyncio.shield(self.executor.accept(record))
        except IdempotencyConflict as conflict:  # a concurrent request with the same key won
            return Submission(self._same_request(conflict.existing, digest), created=False)
        return Submission(record, created=True)

    @staticmethod
    def _same_request(existing: WorkflowRecord, digest: str) -> WorkflowRecord:
        if existing.request_hash != digest:
            raise InvalidInput(
                "This Idempotency-Key was already used with a different request body.",
                field="header.idempotency-key",
                workflow_id=existing.id,
            )
        return existing

    # --- read ---------------------------------------------------------------------------------

    async def find(self, *, workflow_id: str) -> WorkflowRecord | None:
        """The freshest record: from memory for runs executing here, else from the store."""
        return self.executor.live(workflow_id) or await self.store.get(workflow_id=workflow_id)

    async def get(self, *, workflow_id: str) -> WorkflowRecord:
        """The freshest record; NotFound otherwise."""
        record = await self.find(workflow_id=workflow_id)
        if record is None:
            raise NotFound(f"No workflow with id {workflow_id!r}.")
        return record

    async def list(
        self,
        *,
        workflow_type: str | None = None,
        status: WorkflowStatus | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page:
        """Newest first, keyset-paginated."""
        if workflow_type is not None and workflow_type not in WORKFLOWS:
            raise InvalidInput(
                f"Unknown workflow type {workflow_type!r}; known: {', '.join(sorted(WORKFLOWS))}.",
                field="query.type",
            )
        return await self.store.page(workflow_type=workflow_type, status=status, limit=limit, cursor=cursor)

    async def wait(self, *, workflow_id: str, seconds: float) -> WorkflowRecord:
        """The record once terminal, or as it stands when ``seconds`` run out."""
        deadline = time.monotonic() + seconds
        while True:
            signal = self.hub.watch(workflow_id)
            record = await self.get(workflow_id=workflow_id)
            remaining = deadline - time.monotonic()
            if record.status.is_terminal or remaining <= 0:
                return record
            await self.hub.wait(signal, remaining)

    async def events(self, *, workflow_id: str) -> AsyncIterator[WorkflowRecord | None]:
        """The record now and after every visible change, ending with the terminal record.

        Yields None after ``KEEPALIVE_SECONDS`` without a change, so the caller can keep an idle
        connection alive.
        """
        last: str | None = None
        quiet_since = time.monotonic()
        while True:
            signal = self.hub.watch(workflow_id)
            record = await self.get(workflow_id=workflow_id)
            fingerprint = _fingerprint(record)
            if fingerprint != last:
                last, quiet_since = fingerprint, time.monotonic()
                yield record
            elif time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                quiet_since = time.monotonic()
                yield None
            if record.status.is_terminal:
                return
            await self.hub.wait(signal, KEEPALIVE_SECONDS - (time.monotonic() - quiet_since))

    # --- cancel -------------------------------------------------------------------------------

    async def cancel(self, *, workflow_id: str) -> WorkflowRecord:
        """Cancel a queued (never starts) or running (stops) run; Conflict if it already ended."""
        record = await self.get(workflow_id=workflow_id)
        if record.status.is_terminal:
            raise Conflict(f"The workflow already ended as {record.status.value}.", current_status=record.status.value)
        updated = await self.executor.cancel(workflow_id) or record
        if updated.status.is_terminal and updated.status is not WorkflowStatus.CANCELLED:
            raise Conflict(
                f"The workflow already ended as {updated.status.value}.", current_status=updated.status.value
            )
        return updated


def _fingerprint(record: WorkflowRecord) -> str:
    return json.dumps(
        [record.status.value, record.progress, record.usage.as_dict(), record.cancel_requested], sort_keys=True
    )
