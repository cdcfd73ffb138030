"""LangGraph-API runs: create (on a thread, or stateless), wait, stream, get, list, join, join the stream, cancel.

A run is a workflow: every run-creating route goes through ``RunService.submit`` (so the result
cache, quotas, rate limits, durability, crash resume and ownership apply as at ``/workflows``),
and ``GET /workflows/{run_id}`` shows the same record. A stateless run (``/runs...``) gets a
thread of its own, hidden once the run is done unless ``on_completion`` is ``keep``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ValidationError
from sse_starlette import EventSourceResponse

from agents.errors import Conflict, NotFound, NotSupported, ProviderNotConfigured, QuotaExceeded, ServiceUnavailable
from backend.api.auth import Caller
from backend.api.deps import CallerDep, RunServiceDep, SettingsDep, submit_quota
from backend.api.errors import FieldError, ValidationFailed, raises
from backend.api.routes.langgraph._stream import ALL_MODES, DEFAULT_MODES, langgraph_events, stream_modes
from backend.api.routes.langgraph.schemas import RunCreate, RunPublic
from backend.api.routes.langgraph.threads import ThreadIdPath
from backend.config import Settings
from backend.runs import RunService, WorkflowRecord, WorkflowStatus
from backend.runs.assistants import resolve_assistant
from backend.runs.threads import RUN_STATUS, ThreadRecord

__all__ = ["router"]

router = APIRouter(tags=["langgraph: runs"])

#: A waiting reply sends a newline this often, so proxies keep the connection (JSON ignores it).
KEEPALIVE_SECONDS = 5.0
RunIdPath = Annotated[str, Path(min_length=1, max_length=64, description="The run id (= its workflow id).")]
LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        pattern=r"^[0-9]{0,18}$",
        description="Resume after this event id (the SDK sends the last one it received).",
    ),
]
_RUN_STATUS_BY_NAME = {name: ours for ours, name in RUN_STATUS.items()}

_JSON_OUTPUT = {
    "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
    "description": 'The thread\'s values once the run ends (`{"__error__": {...}}` for a failed run). Newlines '
    "may precede the JSON while the run is in flight.",
}
_EVENT_STREAM = {
    "content": {
        "text/event-stream": {
            "schema": {
                "type": "object",
                "description": "`metadata`, then `values` / `updates` / `messages` / `custom` events as asked by "
                "`stream_mode`, then `end` (or `error` for a failed run). `id` is the event's number.",
                "required": ["event", "data"],
                "properties": {"event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"}},
            }
        }
    },
    "description": "Server-sent events, LangGraph Server's framing.",
}


def _unsupported(payload: RunCreate) -> None:
    """Refuse, with 501, what would change a run in a way agentflow cannot honour."""
    refused = {
        "command": "Resuming or steering a run with `command` is not supported.",
        "interrupt_before": "Interrupts (`interrupt_before`) are not supported.",
        "interrupt_after": "Interrupts (`interrupt_after`) are not supported.",
        "checkpoint": "Starting from a `checkpoint` is not supported.",
        "checkpoint_id": "Starting from a `checkpoint_id` is not supported.",
        "after_seconds": "Delayed runs (`after_seconds`) are not supported.",
    }
    for name, message in refused.items():
        if getattr(payload, name) is not None:
            raise NotSupported(message)
    if payload.multitask_strategy in ("interrupt", "rollback"):
        raise NotSupported(
            f"multitask_strategy {payload.multitask_strategy!r} is not supported; use 'reject' or 'enqueue'."
        )


def _request(spec_model: type[BaseModel], data: dict[str, Any] | None) -> BaseModel:
    """The run's ``input`` validated with its workflow's request model; errors name ``body.input.*``."""
    try:
        return spec_model.model_validate(data or {})
    except ValidationError as error:
        raise ValidationFailed(
            [
                FieldError(
                    field=".".join(["body", "input", *(str(part) for part in item["loc"])]),
                    message=item["msg"],
                    type=item["type"],
                )
                for item in error.errors()
            ]
        ) from None


async def _thread_for(
    payload: RunCreate, thread_id: str | None, runs: RunService, caller: Caller
) -> tuple[ThreadRecord, bool]:
    """The run's thread (made for a stateless run, or on ``if_not_exists=create``); and whether it is new."""
    if thread_id is None:
        if payload.on_completion == "keep":
            return await runs.threads.create(owner=caller.owner), True
        return await runs.threads.create_temporary(owner=caller.owner), True
    thread = await runs.threads.find(thread_id=thread_id, owner=caller.scope_owner)
    if thread is not None:
        return thread, False
    if payload.if_not_exists != "create":
        raise NotFound(f"No thread with id {thread_id!r}; pass if_not_exists='create' to make it.")
    return await runs.threads.create(owner=caller.owner, thread_id=thread_id, if_exists="do_nothing"), True


async def _start(
    payload: RunCreate, thread_id: str | None, runs: RunService, caller: Caller, settings: Settings
) -> WorkflowRecord:
    _unsupported(payload)
    spec = resolve_assistant(payload.assistant_id).spec
    body = _request(spec.request_model, payload.input)
    stream_modes(payload.stream_mode, DEFAULT_MODES, field="body.stream_mode")
    thread, created = await _thread_for(payload, thread_id, runs, caller)
    try:
        submission = await runs.submit(
            spec=spec,
            body=body,
            idempotency_key=None,
            owner=caller.owner,
            max_queued=submit_quota(caller, settings),
            private_cache=settings.auth_required,
            thread_id=thread.id,
            metadata=payload.metadata,
            multitask_strategy="reject" if payload.multitask_strategy == "reject" else "enqueue",
            webhook=payload.webhook,
        )
    except Exception:
        if created:  # nothing runs on it: do not leave an empty thread behind
            await runs.threads.store.delete(thread_id=thread.id)
        raise
    return submission.record


def _locations(record: WorkflowRecord, tail: str = "") -> dict[str, str]:
    base = f"/threads/{record.thread_id}/runs/{record.id}"
    return {"Content-Location": base, "Location": base + tail} if tail else {"Content-Location": base}


async def _output(
    runs: RunService, record: WorkflowRecord, owner: str | None, cancel_on_disconnect: bool = False
) -> AsyncIterator[bytes]:
    """Newlines while the run is in flight, then its output as JSON (LangGraph Server's wait reply)."""
    ended = False
    try:
        # A run waiting for a human's answer is as far as it goes for now (LangGraph: interrupted).
        while not (record.status.is_terminal or record.status is WorkflowStatus.WAITING):
            record = await runs.wait(workflow_id=record.id, seconds=KEEPALIVE_SECONDS, owner=owner)
            if not (record.status.is_terminal or record.status is WorkflowStatus.WAITING):
                yield b"\n"
        ended = True
        yield json.dumps(await runs.output(record=record), separators=(",", ":")).encode()
    finally:
        if cancel_on_disconnect and not ended:
            with contextlib.suppress(Conflict):  # it ended meanwhile
                await asyncio.shield(runs.cancel(workflow_id=record.id, owner=owner))


#: What a run-creating route can refuse besides bad input: an unknown assistant or thread (404), a busy
#: thread with ``reject`` (409), an unsupported feature (501), no credentials, a quota, shutting down.
_SUBMIT_ERRORS = (NotFound, Conflict, NotSupported, ProviderNotConfigured, QuotaExceeded, ServiceUnavailable)


# --- create ----------------------------------------------------------------------------------------------


@router.post("/threads/{thread_id}/runs", response_model=RunPublic, summary="Create a background run on a thread")
@raises(*_SUBMIT_ERRORS)
async def create_run(
    thread_id: ThreadIdPath,
    payload: RunCreate,
    response: Response,
    runs: RunServiceDep,
    caller: CallerDep,
    settings: SettingsDep,
) -> RunPublic:
    """Starts the run and answers at once with it (``pending``). A busy thread: ``multitask_strategy``
    ``reject`` answers 409; ``enqueue`` (the default) starts it once the runs before it end."""
    record = await _start(payload, thread_id, runs, caller, settings)
    response.headers.update(_locations(record))
    return RunPublic.of(record)


@router.post("/runs", response_model=RunPublic, summary="Create a stateless background run")
@raises(*_SUBMIT_ERRORS)
async def create_stateless_run(
    payload: RunCreate, response: Response, runs: RunServiceDep, caller: CallerDep, settings: SettingsDep
) -> RunPublic:
    record = await _start(payload, None, runs, caller, settings)
    response.headers.update(_locations(record))
    return RunPublic.of(record)


def _wait_response(runs: RunService, record: WorkflowRecord, caller: Caller, payload: RunCreate) -> StreamingResponse:
    """The reply of the ``…/runs/wait`` routes: newlines while the run is in flight, then its output."""
    return StreamingResponse(
        _output(runs, record, caller.scope_owner, payload.on_disconnect == "cancel"),
        media_type="application/json",
        headers=_locations(record, "/join"),
    )


@router.post(
    "/threads/{thread_id}/runs/wait",
    response_class=StreamingResponse,
    responses={200: _JSON_OUTPUT},
    summary="Create a run on a thread and wait for its output",
)
@raises(*_SUBMIT_ERRORS)
async def wait_run(
    thread_id: ThreadIdPath, payload: RunCreate, runs: RunServiceDep, caller: CallerDep, settings: SettingsDep
) -> StreamingResponse:
    record = await _start(payload, thread_id, runs, caller, settings)
    return _wait_response(runs, record, caller, payload)


@router.post(
    "/runs/wait",
    response_class=StreamingResponse,
    responses={200: _JSON_OUTPUT},
    summary="Create a stateless run and wait for its output",
)
@raises(*_SUBMIT_ERRORS)
async def wait_stateless_run(
    payload: RunCreate, runs: RunServiceDep, caller: CallerDep, settings: SettingsDep
) -> StreamingResponse:
    record = await _start(payload, None, runs, caller, settings)
    return _wait_response(runs, record, caller, payload)


def _event_stream(
    runs: RunService, record: WorkflowRecord, owner: str | None, modes: frozenset[str], after: int, cancel: bool
) -> EventSourceResponse:
    return EventSourceResponse(
        langgraph_events(runs, record, owner=owner, modes=modes, after=after, cancel_on_disconnect=cancel),
        headers={**_locations(record, "/stream"), "Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        ping=15,
    )


@router.post(
    "/threads/{thread_id}/runs/stream",
    response_class=EventSourceResponse,
    responses={200: _EVENT_STREAM},
    summary="Create a run on a thread and stream it",
)
@raises(*_SUBMIT_ERRORS)
async def stream_run(
    thread_id: ThreadIdPath, payload: RunCreate, runs: RunServiceDep, caller: CallerDep, settings: SettingsDep
) -> EventSourceResponse:
    record = await _start(payload, thread_id, runs, caller, settings)
    modes = stream_modes(payload.stream_mode, DEFAULT_MODES, field="body.stream_mode")
    return _event_stream(runs, record, caller.scope_owner, modes, 0, payload.on_disconnect == "cancel")


@router.post(
    "/runs/stream",
    response_class=EventSourceResponse,
    responses={200: _EVENT_STREAM},
    summary="Create a stateless run and stream it",
)
@raises(*_SUBMIT_ERRORS)
async def stream_stateless_run(
    payload: RunCreate, runs: RunServiceDep, caller: CallerDep, settings: SettingsDep
) -> EventSourceResponse:
    record = await _start(payload, None, runs, caller, settings)
    modes = stream_modes(payload.stream_mode, DEFAULT_MODES, field="body.stream_mode")
    return _event_stream(runs, record, caller.scope_owner, modes, 0, payload.on_disconnect == "cancel")


# --- read ------------------------------------------------------------------------------------------------


@router.get("/threads/{thread_id}/runs", response_model=list[RunPublic], summary="List a thread's runs")
async def list_runs(
    thread_id: ThreadIdPath,
    runs: RunServiceDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    status_: Annotated[
        str | None,
        Query(alias="status", pattern="^(pending|running|error|success|timeout|interrupted)$"),
    ] = None,
) -> list[RunPublic]:
    """Newest first."""
    wanted: WorkflowStatus | None = _RUN_STATUS_BY_NAME.get(status_ or "")
    if status_ is not None and wanted is None:  # ``timeout``: agentflow ends such runs as ``error``
        return []
    found = await runs.thread_runs(
        thread_id=thread_id, owner=caller.scope_owner, limit=limit, offset=offset, status=wanted
    )
    return [RunPublic.of(record) for record in found]


@router.get("/threads/{thread_id}/runs/{run_id}", response_model=RunPublic, summary="Get a run")
async def get_run(thread_id: ThreadIdPath, run_id: RunIdPath, runs: RunServiceDep, caller: CallerDep) -> RunPublic:
    return RunPublic.of(await runs.thread_run(thread_id=thread_id, run_id=run_id, owner=caller.scope_owner))


@router.get(
    "/threads/{thread_id}/runs/{run_id}/join",
    response_class=StreamingResponse,
    responses={200: _JSON_OUTPUT},
    summary="Wait for a run and get its output",
)
async def join_run(
    thread_id: ThreadIdPath,
    run_id: RunIdPath,
    runs: RunServiceDep,
    caller: CallerDep,
    cancel_on_disconnect: Annotated[bool, Query()] = False,
) -> StreamingResponse:
    record = await runs.thread_run(thread_id=thread_id, run_id=run_id, owner=caller.scope_owner)
    return StreamingResponse(
        _output(runs, record, caller.scope_owner, cancel_on_disconnect),
        media_type="application/json",
        headers=_locations(record, "/join"),
    )


@router.get(
    "/threads/{thread_id}/runs/{run_id}/stream",
    response_class=EventSourceResponse,
    responses={200: _EVENT_STREAM},
    summary="Join a run's event stream",
)
async def join_run_stream(
    thread_id: ThreadIdPath,
    run_id: RunIdPath,
    runs: RunServiceDep,
    caller: CallerDep,
    last_event_id: LastEventId = None,
    stream_mode: Annotated[list[str] | None, Query(max_length=20)] = None,
    cancel_on_disconnect: Annotated[bool, Query()] = False,
) -> EventSourceResponse:
    """From the start, or after ``Last-Event-ID``: the events missed, then live ones until the run ends."""
    record = await runs.thread_run(thread_id=thread_id, run_id=run_id, owner=caller.scope_owner)
    modes = stream_modes(stream_mode, ALL_MODES, field="query.stream_mode")
    return _event_stream(runs, record, caller.scope_owner, modes, int(last_event_id or 0), cancel_on_disconnect)


# --- cancel ----------------------------------------------------------------------------------------------


@router.post(
    "/threads/{thread_id}/runs/{run_id}/cancel",
    response_class=StreamingResponse,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        202: {"description": "Cancellation asked; the run stops at its next node boundary."},
        200: _JSON_OUTPUT,
    },
    summary="Cancel a run",
)
@raises(Conflict)  # the run already ended
async def cancel_run(
    thread_id: ThreadIdPath,
    run_id: RunIdPath,
    runs: RunServiceDep,
    caller: CallerDep,
    wait: Annotated[bool, Query(description="Hold the reply until the run has ended, then answer its output.")] = False,
    action: Annotated[str, Query(pattern="^(interrupt|rollback)$")] = "interrupt",
) -> Response:
    """Ends the run ``cancelled`` (LangGraph: ``interrupted``). With either action the thread keeps the
    values of its last run that was not cancelled."""
    record = await runs.thread_run(thread_id=thread_id, run_id=run_id, owner=caller.scope_owner)
    record = await runs.cancel(workflow_id=record.id, owner=caller.scope_owner)
    if not wait:
        return Response(status_code=status.HTTP_202_ACCEPTED)
    return StreamingResponse(
        _output(runs, record, caller.scope_owner), media_type="application/json", headers=_locations(record, "/join")
    )
