"""RunService: the one facade that routes, the CLI and the SDK-compatible API call.

submit, get, list, wait, stream (a run's events), cancel and resume. It owns the store, the executor (in-process or job
queue, behind ``Executor``), the result cache and the change hub; nothing here knows about HTTP.
Every submit goes through the result cache (``backend.runs.cache``): a fresh hit is answered
without scheduling anything, an identical run in flight is joined, anything else is scheduled.

A submit may name a ``webhook`` (the request body's field, or the ``webhook`` argument): it is
checked against SSRF at once (``backend.runs.webhooks``) and stored on the record, and the store
queues its delivery in the transaction that ends the run, however it ends (ran, failed,
cancelled, answered from the cache, coalesced). The webhook is not part of the cache key (the
same request with another webhook is still a hit, and still delivers to its own webhook); it is
part of the Idempotency-Key's request (reusing a key with another webhook is a different request).
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from agents import context, telemetry
from agents.errors import Conflict, InvalidInput, NotFound, QuotaExceeded
from agents.metrics import metrics
from agents.providers import Providers
from agents.providers.usage import Usage
from backend.runs.cache import ResultCache
from backend.runs.events import EventLog, RunEvent, events_key, record_fields
from backend.runs.executor import Executor
from backend.runs.records import CacheOutcome, WebhookState, WorkflowRecord, WorkflowStatus
from backend.runs.signals import WATCH_RENEW_SECONDS, ChangeHub, watch_key
from backend.runs.store import FlightTaken, IdempotencyConflict, Page, WorkflowStore, utcnow
from backend.runs.store.outbox import WebhookOutbox
from backend.runs.store.threads import ThreadStore
from backend.runs.summary import summarize
from backend.runs.threads import MultitaskStrategy, ThreadRecord, ThreadService, final_values, run_output
from backend.runs.webhooks import Webhooks
from workflows.base import EditProblem, InterruptPoint, WorkflowSpec
from workflows.registry import WORKFLOWS, get_spec

__all__ = ["KEEPALIVE_SECONDS", "ResumeAction", "RunService", "Submission"]

#: How a human answers a waiting run.
ResumeAction = Literal["approve", "edit", "reject"]

#: An event stream yields None (a keep-alive) after this many quiet seconds.
KEEPALIVE_SECONDS = 15.0


def request_input(body: BaseModel) -> dict[str, Any]:
    """The input stored on the record: the request without its ``webhook`` (kept on the record apart)."""
    return body.model_dump(mode="json", exclude={"webhook"})


def request_hash(spec: WorkflowSpec, body: BaseModel, webhook: str | None = None) -> str:
    """What an Idempotency-Key is bound to: the type, the input and (when given) the webhook."""
    request: dict[str, Any] = {"type": spec.name, "input": request_input(body)}
    if webhook is not None:  # absent otherwise, so requests without one hash as they always did
        request["webhook"] = webhook
    canonical = json.dumps(request, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Submission:
    """What ``submit`` returns: the record, and whether this call created it."""

    __slots__ = ("created", "record")

    def __init__(self, record: WorkflowRecord, created: bool) -> None:
        self.record = record
        self.created = created


class RunService:
    """Accepts, finds, waits on, streams and cancels workflow runs."""

    def __init__(
        self,
        *,
        store: WorkflowStore,
        executor: Executor,
        hub: ChangeHub,
        providers: Callable[[], Awaitable[Providers]],
        cache: ResultCache,
        webhooks: Webhooks,
        outbox: WebhookOutbox,
        events: EventLog | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.hub = hub
        #: The provider clients, built with the workflow stack on first need (``backend.runs.stack``).
        self.providers = providers
        self.cache = cache
        #: LangGraph-API threads, over the same database.
        self.threads = ThreadService(ThreadStore(store.engine))
        self.event_log = events or EventLog(store=store, hub=hub)
        self.webhooks = webhooks
        self.outbox = outbox

    # --- submit -------------------------------------------------------------------------------

    async def submit(
        self,
        *,
        spec: WorkflowSpec,
        body: BaseModel,
        idempotency_key: str | None,
        owner: str = "",
        max_queued: int | None = None,
        private_cache: bool = False,
        thread_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        multitask_strategy: MultitaskStrategy = "reject",
        webhook: str | None = None,
    ) -> Submission:
        """Store a queued record (before any reply) and schedule it.

        The same Idempotency-Key (per owner) with the same body returns the first record; with a
        different body it is an error, never a second run. The request's ``cache`` policy decides
        whether a fresh cached result answers it at once, or an identical run in flight is joined.

        Args:
            owner: the id of the API key submitting ('' without one), recorded on the run.
            max_queued: refuse with QuotaExceeded (nothing written) once ``owner`` has this many
                unfinished runs.
            private_cache: share cached results and flights only among runs of the same owner
                (with authentication on, one key never learns what another asked).
            webhook: where to POST the final record (default: the body's ``webhook`` field); a URL
                the SSRF guard refuses is InvalidInput naming ``body.webhook``, and nothing is written.
            thread_id: the LangGraph-API thread the run belongs to (the caller checked the owner
                may use it). The thread turns busy; when the run ends it takes the run's values.
            metadata: the run's LangGraph-API metadata, kept on the record.
            multitask_strategy: with ``thread_id``, what happens when the thread has a run in
                flight: ``reject`` raises Conflict, ``enqueue`` starts the run after it.
        """
        if webhook is None:
            webhook = getattr(body, "webhook", None)
        if webhook is not None:
            webhook = await self.webhooks.check(webhook)
        links: dict[str, Any] = {
            "thread_id": thread_id,
            "metadata": metadata,
            "multitask_strategy": multitask_strategy if thread_id is not None else None,
            "webhook_url": webhook,
        }
        if thread_id is None:
            return await self._submit(spec, body, idempotency_key, owner, max_queued, private_cache, links)
        digest = request_hash(spec, body, webhook)
        if idempotency_key is not None:  # a retry of an accepted run is not a second run on the thread
            existing = await self.store.get_by_idempotency_key(key=idempotency_key, owner=owner)
            if existing is not None:
                return Submission(self._same_request(existing, digest), created=False)
        if not await self.threads.store.occupy(thread_id=thread_id, reject_if_busy=multitask_strategy == "reject"):
            raise Conflict(
                "Thread is already running a task. Wait for it to finish or choose a different multitask strategy.",
                thread_id=thread_id,
            )
        try:
            submission = await self._submit(spec, body, idempotency_key, owner, max_queued, private_cache, links)
        except BaseException:
            await asyncio.shield(self.threads.store.release(thread_id=thread_id, run_id=""))
            raise
        record = submission.record
        if record.status.is_terminal:  # answered from the result cache: it ran nothing
            values = final_values(spec, record, None, record.result)
            if values is not None:
                await self.threads.store.set_values(thread_id=thread_id, values=values, run_id=record.id)
        return submission

    async def _submit(
        self,
        spec: WorkflowSpec,
        body: BaseModel,
        idempotency_key: str | None,
        owner: str,
        max_queued: int | None,
        private_cache: bool,
        links: dict[str, Any],
    ) -> Submission:
        """``submit`` once the thread (if any) is settled; ``links`` are the record's LangGraph-API
        fields and its webhook."""
        # Only an Idempotency-Key is bound to its request: without one, nothing compares the hash.
        digest = request_hash(spec, body, links["webhook_url"]) if idempotency_key is not None else None
        if idempotency_key is not None:
            existing = await self.store.get_by_idempotency_key(key=idempotency_key, owner=owner)
            if existing is not None:
                return Submission(self._same_request(existing, digest), created=False)
        if max_queued is not None and await self.store.count_unfinished(owner=owner) >= max_queued:
            raise QuotaExceeded(
                f"This API key already has {max_queued} unfinished workflows, its limit; "
                "wait for some to finish or cancel them.",
                retry_after=5,
            )
        policy = self.cache.policy(body)
        if policy is not None and spec.may_pause(body):
            # Its result depends on a human's answer: never served from, nor stored in, the cache.
            policy = "bypass"
        key = self.cache.key(spec, body) if policy in ("use", "refresh") else None
        if key is not None and private_cache:
            key = hashlib.sha256(f"{owner}\x00{key}".encode()).hexdigest()
        if policy == "use" and key is not None:
            source = await self.cache.fresh(key=key, now=utcnow())
            if source is not None:
                return await self._answer_from_cache(spec, body, source, key, idempotency_key, digest, owner, links)
        spec.required_providers(body, await self.providers())
        record = WorkflowRecord(
            id=str(uuid.uuid4()),
            workflow_type=spec.name,
            status=WorkflowStatus.QUEUED,
            created_at=utcnow(),
            input=request_input(body),
            progress={"node": None, "iteration": 0},
            correlation_id=context.correlation_id.get(),
            idempotency_key=idempotency_key,
            request_hash=digest,
            owner=owner,
            cache_key=key,
            flight_key=key if policy == "use" else None,
            cache_outcome=self.cache.outcome(policy),
            traceparent=telemetry.current_traceparent(),
            **links,
        )
        for _ in range(3):
            try:
                # Shielded: a client that disconnects mid-submit must not leave a stored row that
                # was never scheduled.
                await asyncio.shield(self.executor.accept(record))
            except IdempotencyConflict as conflict:  # a concurrent request with the same key won
                return Submission(self._same_request(conflict.existing, digest), created=False)
            except FlightTaken as taken:  # an identical run is in flight: follow it
                if taken.leader is not None:
                    record = dataclasses.replace(
                        record, flight_key=None, cached_from=taken.leader.id, cache_outcome=CacheOutcome.COALESCED
                    )
                    continue
                # It ended in between: its result may be cached by now; else try to lead again.
                assert key is not None
                source = await self.cache.fresh(key=key, now=utcnow())
                if source is not None:
                    return await self._answer_from_cache(spec, body, source, key, idempotency_key, digest, owner, links)
                continue
            break
        else:  # lost every race for the flight: run without one rather than fail the submit
            record = dataclasses.replace(record, flight_key=None, cached_from=None, cache_outcome=CacheOutcome.MISS)
            await asyncio.shield(self.executor.accept(record))
        self._count_submit(record)
        return Submission(record, created=True)

    async def _answer_from_cache(
        self,
        spec: WorkflowSpec,
        body: BaseModel,
        source: WorkflowRecord,
        key: str,
        idempotency_key: str | None,
        digest: str | None,
        owner: str,
        links: dict[str, Any],
    ) -> Submission:
        """A completed record carrying ``source``'s result at zero usage; nothing is scheduled
        (its webhook delivery is written with it)."""
        now = utcnow()
        record = WorkflowRecord(
            id=str(uuid.uuid4()),
            workflow_type=spec.name,
            status=WorkflowStatus.COMPLETED,
            created_at=now,
            started_at=now,
            finished_at=now,
            input=request_input(body),
            result=source.result,
            progress=source.progress,
            usage=Usage(),
            correlation_id=context.correlation_id.get(),
            idempotency_key=idempotency_key,
            request_hash=digest,
            owner=owner,
            cache_key=key,
            cached_from=source.id,
            cache_outcome=CacheOutcome.HIT,
            **links,
        )
        try:
            await asyncio.shield(self.store.create(record=record))
        except IdempotencyConflict as conflict:
            return Submission(self._same_request(conflict.existing, digest), created=False)
        self.store.remember_finished(record)
        self._count_submit(record)
        instruments = metrics()
        instruments.child(instruments.workflows_finished, spec.name, WorkflowStatus.COMPLETED.value, "cache").inc()
        telemetry.annotate({"agentflow.cache": "hit", "agentflow.cached_from": source.id})
        return Submission(record, created=True)

    @staticmethod
    def _count_submit(record: WorkflowRecord) -> None:
        instruments = metrics()
        instruments.child(instruments.workflows_submitted, record.workflow_type).inc()
        if record.cache_outcome is not None:
            instruments.child(instruments.cache_requests, record.workflow_type, record.cache_outcome.value).inc()
        telemetry.annotate({"agentflow.workflow_id": record.id, "agentflow.workflow_type": record.workflow_type})

    @staticmethod
    def _same_request(existing: WorkflowRecord, digest: str | None) -> WorkflowRecord:
        if existing.request_hash != digest:
            raise InvalidInput(
                "This Idempotency-Key was already used with a different request body.",
                field="header.idempotency-key",
            )
        return existing

    # --- read ---------------------------------------------------------------------------------

    async def find(self, *, workflow_id: str, owner: str | None = None) -> WorkflowRecord | None:
        """The freshest record: from memory for runs executing here, else from the store.

        With ``owner``, another owner's record is None, exactly like one that does not exist, so
        ids cannot be probed.
        """
        record = self.executor.live(workflow_id) or await self.store.get(workflow_id=workflow_id)
        if record is not None and owner is not None and record.owner != owner:
            return None
        if record is not None and record.webhook_url is not None:
            record = (await self._with_webhook_state([record]))[0]
        return record

    async def _with_webhook_state(self, records: builtins.list[WorkflowRecord]) -> builtins.list[WorkflowRecord]:
        """Copies of ``records`` showing their webhook delivery (it changes after the run ends,
        so it is read fresh, never cached with the record)."""
        ended = [r.id for r in records if r.webhook_url is not None and r.status.is_terminal]
        states = await self.outbox.states(workflow_ids=ended) if ended else {}
        return [
            dataclasses.replace(record, webhook=states.get(record.id, WebhookState()))
            if record.webhook_url is not None
            else record
            for record in records
        ]

    async def get(self, *, workflow_id: str, owner: str | None = None) -> WorkflowRecord:
        """The freshest record (of ``owner``, when given); NotFound otherwise."""
        record = await self.find(workflow_id=workflow_id, owner=owner)
        if record is None:
            raise NotFound(f"No workflow with id {workflow_id!r}.")
        return record

    async def list(
        self,
        *,
        workflow_type: str | None = None,
        status: WorkflowStatus | None = None,
        owner: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page:
        """Newest first, keyset-paginated; ``owner`` None lists everyone's."""
        if workflow_type is not None and workflow_type not in WORKFLOWS:
            raise InvalidInput(
                f"Unknown workflow type {workflow_type!r}; known: {', '.join(sorted(WORKFLOWS))}.",
                field="query.type",
            )
        page = await self.store.page(
            workflow_type=workflow_type, status=status, owner=owner, limit=limit, cursor=cursor
        )
        page.items = await self._with_webhook_state(page.items)
        return page

    async def wait(self, *, workflow_id: str, seconds: float, owner: str | None = None) -> WorkflowRecord:
        """The record once terminal or waiting for a human, or as it stands when ``seconds`` run out."""
        deadline = time.monotonic() + seconds
        while True:
            # Woken when the run settles, not by every step of a run in another process.
            signal = self.hub.watch(workflow_id, settled_only=True)
            record = await self.get(workflow_id=workflow_id, owner=owner)
            remaining = deadline - time.monotonic()
            if record.status.is_terminal or record.status is WorkflowStatus.WAITING or remaining <= 0:
                return record
            await self.hub.wait(signal, remaining)

    # --- LangGraph-API runs ---------------------------------------------------------------------

    async def thread_run(self, *, thread_id: str, run_id: str, owner: str | None = None) -> WorkflowRecord:
        """A run of a thread (the owner's, when given); NotFound otherwise."""
        record = await self.find(workflow_id=run_id, owner=owner)
        if record is None or record.thread_id != thread_id:
            raise NotFound(f"No run {run_id!r} on thread {thread_id!r}.")
        return record

    async def thread_runs(
        self,
        *,
        thread_id: str,
        owner: str | None = None,
        limit: int = 10,
        offset: int = 0,
        status: WorkflowStatus | None = None,
    ) -> builtins.list[WorkflowRecord]:
        """The runs of a thread the owner may see, newest first."""
        await self.threads.get(thread_id=thread_id, owner=owner)
        return await self.store.thread_runs(thread_id=thread_id, limit=limit, offset=offset, status=status)

    async def output(self, *, record: WorkflowRecord) -> dict[str, Any]:
        """A finished run's output as ``runs.wait`` / ``runs.join`` answer it (see ``run_output``)."""
        thread: ThreadRecord | None = None
        if record.thread_id is not None:
            thread = await self.threads.store.get(thread_id=record.thread_id)
        return run_output(record, thread)

    async def stream(
        self, *, workflow_id: str, owner: str | None = None, after: int = 0
    ) -> AsyncIterator[RunEvent | None]:
        """The run's events with ``seq`` > ``after``: every stored one, then live ones as they
        happen, ending after ``end`` (see ``backend.runs.events``).

        Works wherever the run executes (this process, a queue worker, a process that resumed it
        after a restart): events come from memory when this process writes them, else from the
        store. A run that ended without an ``end`` in its log (cancelled while queued, answered
        from the cache, lost its worker, or its events expired) ends the stream with one made
        from the terminal record, numbered after the last event. While it is open the run's
        LLM calls stream their tokens (``EventLog.watching``). Yields None after
        ``KEEPALIVE_SECONDS`` without an event, so the caller can keep the connection alive.
        NotFound for an unknown run or another owner's.
        """
        await self.get(workflow_id=workflow_id, owner=owner)
        log, key = self.event_log, events_key(workflow_id)
        cursor = after
        quiet_since = time.monotonic()
        announced = -WATCH_RENEW_SECONDS
        with log.watching(workflow_id):  # while someone watches, the run's LLM calls stream tokens
            while True:
                if not log.is_live(workflow_id) and time.monotonic() - announced >= WATCH_RENEW_SECONDS:
                    # The run executes elsewhere (or not yet): its process streams tokens while told.
                    announced = time.monotonic()
                    await self.store.announce_watch(key=watch_key(workflow_id))
                signal = self.hub.watch(key)
                batch = await log.read(workflow_id, after=cursor)
                if not batch and not log.is_live(workflow_id):
                    record = await self.get(workflow_id=workflow_id)
                    if record.status.is_terminal:
                        # A run finished by its runner stores ``end`` with the terminal record:
                        # look again now that the record is known to be terminal.
                        batch = await log.read(workflow_id, after=cursor)
                        if not batch:
                            yield RunEvent(cursor + 1, "end", record_fields(record))
                            return
                for event in batch:
                    yield event
                    cursor = event.seq
                    if event.kind == "end":
                        return
                if batch:
                    quiet_since = time.monotonic()
                    continue
                if time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                    quiet_since = time.monotonic()
                    yield None
                await self.hub.wait(
                    signal,
                    min(
                        KEEPALIVE_SECONDS - (time.monotonic() - quiet_since),
                        WATCH_RENEW_SECONDS - (time.monotonic() - announced),
                    ),
                )

    # --- cancel -------------------------------------------------------------------------------

    async def cancel(self, *, workflow_id: str, owner: str | None = None) -> WorkflowRecord:
        """Cancel a queued (never starts), running (stops) or waiting run; Conflict if it already ended."""
        record = await self.get(workflow_id=workflow_id, owner=owner)
        if record.status.is_terminal:
            raise Conflict(f"The workflow already ended as {record.status.value}.", current_status=record.status.value)
        if record.status is WorkflowStatus.WAITING:
            ended = await self.executor.end_waiting(
                workflow_id, status=WorkflowStatus.CANCELLED, error_code=None, error_message=None
            )
            if ended is not None:
                return ended
            record = await self.get(workflow_id=workflow_id, owner=owner)  # resumed or ended meanwhile
            if record.status.is_terminal:
                raise Conflict(
                    f"The workflow already ended as {record.status.value}.", current_status=record.status.value
                )
        updated = await self.executor.cancel(workflow_id) or record
        if updated.status.is_terminal and updated.status is not WorkflowStatus.CANCELLED:
            raise Conflict(
                f"The workflow already ended as {updated.status.value}.", current_status=updated.status.value
            )
        if updated.status is WorkflowStatus.CANCELLED:  # a queued run, cancelled outright: it never ran
            instruments = metrics()
            cancelled = WorkflowStatus.CANCELLED.value
            instruments.child(instruments.workflows_finished, updated.workflow_type, cancelled, "run").inc()
        return updated

    # --- resume -------------------------------------------------------------------------------

    async def resume(
        self,
        *,
        workflow_id: str,
        action: ResumeAction,
        edits: dict[str, Any] | None = None,
        owner: str | None = None,
    ) -> WorkflowRecord:
        """Answer a waiting run: ``approve`` or ``edit`` continue it from its checkpoint (the answer
        is stored first, then the run is re-scheduled); ``reject`` ends it ``cancelled``.

        Args:
            edits: the body's edited values by field (``{"plan": {...}}``); only with ``edit``,
                validated against the pending question's schema (InvalidInput names the field).

        Raises:
            NotFound: no such run (of ``owner``). Conflict: the run is not waiting.
            InvalidInput: the edit is missing, unexpected or invalid.
        """
        record = await self.get(workflow_id=workflow_id, owner=owner)
        if record.status is not WorkflowStatus.WAITING:
            raise Conflict(
                f"The workflow is {record.status.value}, not waiting for an answer.",
                current_status=record.status.value,
            )
        spec = get_spec(record.workflow_type)
        kind = str((record.pending or {}).get("kind", ""))
        point = spec.interrupt_point(kind) if spec is not None else None
        edits = {name: value for name, value in (edits or {}).items() if value is not None}
        for name in edits:
            if action != "edit" or point is None or name != point.edit_field:
                raise InvalidInput(
                    f"{name!r} is only accepted with action 'edit' of a question that takes it.",
                    field=f"body.{name}",
                    type="extra_forbidden",
                )
        value: dict[str, Any] = {"action": action}
        if action == "edit":
            if point is None or point.edit_field is None or point.edit_model is None:
                raise InvalidInput(f"The pending question ({kind}) cannot be edited.", field="body.action")
            assert spec is not None
            value[point.edit_field] = _checked_edit(spec, record, point, edits)
        if action == "reject":
            ended = await self.executor.end_waiting(
                workflow_id,
                status=WorkflowStatus.CANCELLED,
                error_code="rejected",
                error_message=f"The {kind or 'pending question'} was rejected.",
            )
        else:
            ended = await self.executor.resume(workflow_id, value)
        if ended is None:  # answered, cancelled or expired in the meantime
            current = await self.get(workflow_id=workflow_id, owner=owner)
            raise Conflict(
                f"The workflow is {current.status.value}, not waiting for an answer.",
                current_status=current.status.value,
            )
        instruments = metrics()
        instruments.child(instruments.workflows_resumed, record.workflow_type, action).inc()
        return self.executor.live(workflow_id) or ended

    # --- cache and observability -------------------------------------------------------------

    async def clear_cache(self, *, workflow_type: str | None = None) -> int:
        """Forget cached results (runs in flight are unaffected); returns how many entries went."""
        if workflow_type is not None and workflow_type not in WORKFLOWS:
            raise InvalidInput(f"Unknown workflow type {workflow_type!r}.", field="query.type")
        return await self.cache.clear(workflow_type=workflow_type)

    async def timeline(self, *, record: WorkflowRecord) -> builtins.list[dict[str, Any]]:
        """The run's nodes and upstream calls: live for a run executing here, else as stored."""
        live = self.executor.live(record.id)
        if live is not None and live.timeline is not None:
            return list(live.timeline)
        return await self.store.timeline(workflow_id=record.id) or []

    async def summary(self, *, since: datetime | None = None) -> dict[str, Any]:
        """Totals over the records created since ``since`` (naive: UTC), from the store (see ``summarize``)."""
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        facts = await self.store.run_facts(since=since)
        sources = {fact.cached_from for fact in facts if fact.cached_from is not None}
        known = {fact.id: fact.usage for fact in facts}
        missing = [workflow_id for workflow_id in sources if workflow_id not in known]
        source_usage = {**known, **(await self.store.usage_of(workflow_ids=missing) if missing else {})}
        counts = await self.store.live_counts()
        return summarize(facts, source_usage=source_usage, since=since, now=utcnow(), live=counts)

    async def live_counts(self) -> dict[str, int]:
        """Queued, running and waiting records now, across every process."""
        return await self.store.live_counts()


def _checked_edit(
    spec: WorkflowSpec, record: WorkflowRecord, point: InterruptPoint, edits: dict[str, Any]
) -> dict[str, Any]:
    """The edited value validated against the question's schema, then against the run's request."""
    field, model = point.edit_field, point.edit_model
    assert field is not None
    assert model is not None
    if field not in edits:
        raise InvalidInput(f"Action 'edit' needs the edited {field}.", field=f"body.{field}", type="missing")
    try:
        edited = model.model_validate(edits[field])
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in (field, *first["loc"]))
        raise InvalidInput(first["msg"], field=f"body.{where}", type=first["type"]) from None
    if point.check_edit is not None:
        try:
            point.check_edit(spec.request_model.model_validate(record.input), edited)
        except EditProblem as problem:
            where = ".".join(str(part) for part in (field, *problem.loc))
            raise InvalidInput(problem.message, field=f"body.{where}", type=problem.kind) from None
    dumped: dict[str, Any] = edited.model_dump(mode="json")
    return dumped
