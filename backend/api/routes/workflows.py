"""Workflow routes: submit (one per type), get, list, cancel, resume, events and timeline, with optional waiting."""

# No ``from __future__ import annotations`` here: each submit endpoint's body type is the
# workflow's request model, bound at runtime, and FastAPI reads it from the live annotation.

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from agents.errors import Conflict, InvalidInput, ProviderNotConfigured, QuotaExceeded, ServiceUnavailable
from backend.api.auth import Caller
from backend.api.deps import CallerDep, RunServiceDep, SettingsDep, ValidWorkflowDep, WorkflowIdPath
from backend.api.errors import raises
from backend.api.schemas import (
    ResumeRequest,
    TimelineEntryPublic,
    WorkflowPublic,
    WorkflowsPublic,
    WorkflowTimelinePublic,
)
from backend.api.sse import workflow_events
from backend.config import Settings
from backend.runs import WorkflowStatus
from workflows.base import WorkflowSpec
from workflows.registry import WORKFLOWS

__all__ = ["router"]

MAX_WAIT_SECONDS = 60.0

WaitQuery = Annotated[
    float | None,
    Query(ge=0, le=MAX_WAIT_SECONDS, description="Hold the reply up to this many seconds until the run ends."),
]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255, description="Retry-safe submission key."),
]

router = APIRouter(prefix="/workflows", tags=["workflows"])


def _quota(caller: Caller, settings: Settings) -> int | None:
    """Unfinished workflows the caller's key may have (keyless callers, with auth off: no quota)."""
    if caller.key is None:
        return None
    return caller.key.max_queued or settings.max_queued_per_key


def _submit_endpoint(spec: WorkflowSpec) -> Any:
    @raises(ProviderNotConfigured, ServiceUnavailable, QuotaExceeded)  # no credentials; shutting down; quota
    async def submit(
        body: BaseModel,
        response: Response,
        runs: RunServiceDep,
        caller: CallerDep,
        settings: SettingsDep,
        wait: WaitQuery = None,
        idempotency_key: IdempotencyKey = None,
    ) -> WorkflowPublic:
        submission = await runs.submit(
            spec=spec,
            body=body,
            idempotency_key=idempotency_key,
            owner=caller.owner,
            max_queued=_quota(caller, settings),
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
    record: ValidWorkflowDep, runs: RunServiceDep, caller: CallerDep, settings: SettingsDep, wait: WaitQuery = None
) -> WorkflowPublic:
    """The run as it stands. A ``waiting`` run shows the question it waits on under ``pending``
    (e.g. the plan to approve). ``?wait=N`` holds the reply until the run ends or starts waiting."""
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
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "`update` events, then one `end` event"}},
)
async def stream_workflow(record: ValidWorkflowDep, runs: RunServiceDep, caller: CallerDep) -> StreamingResponse:
    """Server-sent events: an ``update`` (the full record) whenever status, progress or usage
    changes, then ``end`` once the run is terminal. Comments keep idle connections alive."""
    return StreamingResponse(
        workflow_events(runs, record.id, owner=caller.scope_owner),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


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
