"""Workflow routes: submit (one per type), get, list, cancel, resume, events and timeline, with optional waiting."""

# No ``from __future__ import annotations`` here: each submit endpoint's body type is the
# workflow's request model, bound at runtime, and FastAPI reads it from the live annotation.

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from pydantic import BaseModel
from sse_starlette import EventSourceResponse

from agents.errors import Conflict, InvalidInput, ProviderNotConfigured, QuotaExceeded, ServiceUnavailable
from backend.api.deps import CallerDep, RunServiceDep, ValidWorkflowDep, WorkflowIdPath, submit_quota
from backend.api.errors import raises
from backend.api.schemas import (
    ResumeRequest,
    TimelineEntryPublic,
    WorkflowPublic,
    WorkflowsPublic,
    WorkflowTimelinePublic,
)
from backend.api.sse import workflow_events_response
from backend.config import Settings
from backend.runs import RunService, WorkflowStatus
from workflows.base import WorkflowSpec
from workflows.registry import WORKFLOWS

__all__ = ["router"]

MAX_WAIT_SECONDS = 60.0

WaitQuery = Annotated[
    float | None,
    Query(ge=0, le=MAX_WAIT_SECONDS, description="Hold the reply up to this many seconds until the run ends."),
]
LastEventIdHeader = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        pattern=r"^[0-9]{0,18}$",
        description="Resume the event stream after this event id (SSE clients send it when they reconnect).",
    ),
]
LastEventIdQuery = Annotated[
    int | None,
    Query(
        alias="last_event_id",
        ge=0,
        le=10**18,
        description="The same as the Last-Event-ID header, for clients that cannot set headers; the header wins.",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255, description="Retry-safe submission key."),
]

router = APIRouter(prefix="/workflows", tags=["workflows"])


def _submit_endpoint(spec: WorkflowSpec) -> Any:
    @raises(ProviderNotConfigured, ServiceUnavailable, QuotaExceeded)  # no credentials; shutting down; quota
    async def submit(
        body: BaseModel,
        request: Request,
        response: Response,
        caller: CallerDep,
        wait: WaitQuery = None,
        idempotency_key: IdempotencyKey = None,
    ) -> WorkflowPublic:
        # The run service and settings straight from the app state, not as RunServiceDep and
        # SettingsDep: this is the hottest route, and each dependency costs ~20 µs of solving.
        runs: RunService = request.app.state.runs
        settings: Settings = request.app.state.settings
        submission = await runs.submit(
            spec=spec,
            body=body,
            idempotency_key=idempotency_key,
            owner=caller.owner,
            max_queued=submit_quota(caller, settings),
            private_cache=settings.auth_required,
        )
        record = submission.record
        if wait:
            record = await runs.wait(workflow_id=record.id, seconds=wait, owner=caller.scope_owner)
        response.headers["Location"] = f"/workflows/{record.id}"
        response.status_code = status.HTTP_200_OK if record.status.is_terminal and wait else status.HTTP_202_ACCEPTED
        return WorkflowPublic.from_record(record)

    submit.__annotations__["body"] = spec.request_model
    submit.__name__ = f"submit_{spec.name}"
    submit.__doc__ = (
        f"Start a **{spec.name}** workflow. Answers 202 at once with the queued record and a "
        "`Location` header; poll it, or pass `?wait=N` to hold the reply until the run ends."
    )
    return submit


for _spec in WORKFLOWS.values():
    router.add_api_route(
        f"/{_spec.name}",
        _submit_endpoint(_spec),
        methods=["POST"],
        status_code=status.HTTP_202_ACCEPTED,
        response_model=WorkflowPublic,
        summary=f"Submit a {_spec.name} workflow",
        responses={200: {"description": "Finished within the requested wait", "model": WorkflowPublic}},
    )


@router.get("", response_model=WorkflowsPublic, summary="List workflows, newest first")
async def list_workflows(
    runs: RunServiceDep,
    caller: CallerDep,
    type: Annotated[str | None, Query(description="Only this workflow type.")] = None,
    status_: Annotated[WorkflowStatus | None, Query(alias="status", description="Only this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor from the previous page.")] = None,
    owner: Annotated[
        str | None, Query(max_length=32, description="Admin keys: only the workflows of this key id.")
    ] = None,
) -> WorkflowsPublic:
    # A key that is not admin sees only its own workflows, whatever it asks for.
    scope = caller.scope_owner if caller.scope_owner is not None else owner
    page = await runs.list(workflow_type=type, status=status_, owner=scope, limit=limit, cursor=cursor)
    return WorkflowsPublic(items=[WorkflowPublic.from_record(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/{workflow_id}", response_model=WorkflowPublic, summary="Get a workflow's status and result")
async def get_workflow(
    workflow_id: WorkflowIdPath, request: Request, caller: CallerDep, wait: WaitQuery = None
) -> WorkflowPublic:
    """The run as it stands. A ``waiting`` run shows the question it waits on under ``pending``
    (e.g. the plan to approve). ``?wait=N`` holds the reply until the run ends or starts waiting."""
    # Polling is the hottest read: the record, run service and settings are looked up here, not
    # through ValidWorkflowDep, RunServiceDep and SettingsDep, each of which costs ~20 µs of solving.
    runs: RunService = request.app.state.runs
    settings: Settings = request.app.state.settings
    record = await runs.get(workflow_id=workflow_id, owner=caller.scope_owner)  # as valid_workflow does
    if wait and not record.status.is_terminal and record.status is not WorkflowStatus.WAITING:
        record = await runs.wait(workflow_id=record.id, seconds=wait, owner=caller.scope_owner)
    return WorkflowPublic.from_record(record, waiting_ttl=settings.waiting_ttl)


@router.post(
    "/{workflow_id}/resume",
    response_model=WorkflowPublic,
    summary="Answer a waiting workflow: approve, edit or reject",
    responses={202: {"description": "Approved or edited: the run continues", "model": WorkflowPublic}},
    status_code=status.HTTP_202_ACCEPTED,
)
@raises(Conflict, InvalidInput, ServiceUnavailable)  # not waiting; invalid edit; shutting down
async def resume_workflow(
    workflow_id: WorkflowIdPath,
    body: ResumeRequest,  # type: ignore[valid-type]
    runs: RunServiceDep,
    caller: CallerDep,
    response: Response,
) -> WorkflowPublic:
    """``approve`` and ``edit`` continue the run from its checkpoint (202, the run queued again);
    ``edit`` carries the edited value (``plan``), checked like the original (422 naming the field).
    ``reject`` ends the run ``cancelled`` with error code ``rejected`` (200). A run that is not
    ``waiting`` answers 409."""
    values: dict[str, Any] = body.model_dump(exclude_none=True)  # type: ignore[attr-defined]
    action = values.pop("action")
    updated = await runs.resume(workflow_id=workflow_id, action=action, edits=values, owner=caller.scope_owner)
    response.status_code = status.HTTP_200_OK if updated.status.is_terminal else status.HTTP_202_ACCEPTED
    return WorkflowPublic.from_record(updated)


@router.post(
    "/{workflow_id}/cancel",
    response_model=WorkflowPublic,
    summary="Cancel a queued, running or waiting workflow",
    responses={202: {"description": "Running: it stops at its next node boundary", "model": WorkflowPublic}},
)
@raises(Conflict)  # the run already ended
async def cancel_workflow(
    workflow_id: WorkflowIdPath, runs: RunServiceDep, caller: CallerDep, response: Response
) -> WorkflowPublic:
    updated = await runs.cancel(workflow_id=workflow_id, owner=caller.scope_owner)
    response.status_code = status.HTTP_200_OK if updated.status.is_terminal else status.HTTP_202_ACCEPTED
    return WorkflowPublic.from_record(updated)


@router.get(
    "/{workflow_id}/events",
    summary="Stream a workflow's progress as server-sent events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`update` and `token` events, then one `end` event; `id` is the event's number",
        }
    },
)
async def stream_workflow(
    record: ValidWorkflowDep,
    runs: RunServiceDep,
    caller: CallerDep,
    last_event_id: LastEventIdHeader = None,
    last_event_id_query: LastEventIdQuery = None,
) -> EventSourceResponse:
    """Server-sent events from the run's event log: an ``update`` (the full record) whenever
    status, progress or usage changes, a ``token`` for each chunk of text an LLM streams, then
    ``end`` with the terminal record. Each ``id`` is the event's sequence number in the run;
    reconnecting with ``Last-Event-ID`` (or ``?last_event_id=``) replays exactly the events after
    it, also after a server restart, for as long as the run's events are kept
    (``AGENTFLOW_EVENT_RETENTION`` after it ends). Comments keep idle connections alive."""
    after = int(last_event_id) if last_event_id else (last_event_id_query or 0)
    return workflow_events_response(runs, record.id, owner=caller.scope_owner, after=after)


@router.get(
    "/{workflow_id}/timeline",
    response_model=WorkflowTimelinePublic,
    summary="Where a run spent its time: its nodes and upstream calls",
)
async def workflow_timeline(record: ValidWorkflowDep, runs: RunServiceDep) -> WorkflowTimelinePublic:
    """Every node and upstream call of the run, in the order they finished, each with when it
    started, how long it took, how it ended and the tokens it spent. Kept with the run (it
    survives restarts); live while the run executes in this process."""
    entries = await runs.timeline(record=record)
    return WorkflowTimelinePublic(
        workflow_id=record.id,
        status=record.status,
        cached_from=record.cached_from,
        entries=[TimelineEntryPublic.model_validate(entry) for entry in entries],
    )
