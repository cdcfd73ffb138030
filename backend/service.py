"""WorkflowService: accept a request (idempotently), store it, hand it to the executor."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid

from pydantic import BaseModel

from agents import context
from agents.errors import InvalidInput
from agents.providers import Providers
from backend.executor import LocalExecutor
from backend.store import WorkflowRecord, WorkflowStatus, WorkflowStore
from backend.store.repository import IdempotencyConflict, utcnow
from workflows.base import WorkflowSpec

__all__ = ["WorkflowService"]


def request_hash(spec: WorkflowSpec, body: BaseModel) -> str:
    canonical = json.dumps({"type": spec.name, "input": body.model_dump(mode="json")}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class WorkflowService:
    def __init__(self, *, store: WorkflowStore, executor: LocalExecutor, providers: Providers) -> None:
        self.store = store
        self.executor = executor
        self.providers = providers

    async def submit(
        self, *, spec: WorkflowSpec, body: BaseModel, idempotency_key: str | None
    ) -> tuple[WorkflowRecord, bool]:
        """Store a queued record (before any reply) and schedule it; returns (record, created).

        The same Idempotency-Key with the same body returns the first record; with a different
        body it is an error, never a second run.
        """
        digest = request_hash(spec, body)
        if idempotency_key is not None:
            existing = await self.store.get_by_idempotency_key(key=idempotency_key)
            if existing is not None:
                return self._same_request(existing, digest), False
        self.executor.check_accepting()
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
            # never scheduled (it would sit "queued" under our live lease).
            await asyncio.shield(self._store_and_schedule(record))
        except IdempotencyConflict as conflict:  # a concurrent request with the same key won
            return self._same_request(conflict.existing, digest), False
        return record, True

    async def _store_and_schedule(self, record: WorkflowRecord) -> None:
        await self.store.create(record=record, owner=self.executor.owner, lease_seconds=self.executor.lease_seconds)
        self.executor.submit(record)

    @staticmethod
    def _same_request(existing: WorkflowRecord, digest: str) -> WorkflowRecord:
        if existing.request_hash != digest:
            raise InvalidInput(
                "This Idempotency-Key was already used with a different request body.",
                field="header.idempotency-key",
                workflow_id=existing.id,
            )
        return existing
