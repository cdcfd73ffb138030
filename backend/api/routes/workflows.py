"""Workflow routes: submit (one per type), get, list, cancel, resume, events and timeline, with optional waiting."""

# No ``from __future__ import annotations`` here: each submit endpoint's body type is the
# workflow's request model, bound at runtime, and FastAPI reads it from the live annotation.

import json
import re
import weakref
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, Header, Query, Request, Response, status
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, TypeAdapter
from sse_starlette import EventSourceResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from agents.errors import Conflict, InvalidInput, ProviderNotConfigured, QuotaExceeded, ServiceUnavailable
from backend.api.auth import Caller, current_caller
from backend.api.deps import (
    CallerDep,
    RunServiceDep,
    ValidWorkflowDep,
    WorkflowIdPath,
    storable_parameters,
    submit_quota,
)
from backend.api.errors import raises
from backend.api.middleware.body_limit import replaying
from backend.api.schemas import (
    ResumeRequest,
    TimelineEntryPublic,
    WorkflowPublic,
    WorkflowsPublic,
    WorkflowTimelinePublic,
)
from backend.api.sse import workflow_events_response
from backend.config import Settings
from backend.observability import tracing_requested
from backend.runs import RunService, WorkflowRecord, WorkflowStatus
from workflows.base import WorkflowSpec
from workflows.registry import WORKFLOWS

__all__ = ["SubmitRoute", "include"]

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


_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])
#: The routes ``include`` adds, in order: (path, endpoint, ``add_api_route`` options).
_ROUTES: list[tuple[str, Callable[..., Any], dict[str, Any]]] = []


def _route(path: str, **options: Any) -> Callable[[_Endpoint], _Endpoint]:
    """Declare a workflow route (``APIRouter.api_route``'s arguments), added by ``include``."""

    def declare(endpoint: _Endpoint) -> _Endpoint:
        _ROUTES.append((f"/workflows{path}", endpoint, {"tags": ["workflows"], **options}))
        return endpoint

    return declare


async def _accept(
    spec: WorkflowSpec,
    body: BaseModel,
    request: Request,
    caller: Caller,
    wait: float | None,
    idempotency_key: str | None,
) -> tuple[WorkflowRecord, int]:
    """Submit (and with ``wait``, wait on) a run: the record to answer with, and the status code."""
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
    return record, status.HTTP_200_OK if record.status.is_terminal and wait else status.HTTP_202_ACCEPTED


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
        record, code = await _accept(spec, body, request, caller, wait, idempotency_key)
        response.headers["Location"] = f"/workflows/{record.id}"
        response.status_code = code
        return WorkflowPublic.from_record(record)

    submit.__annotations__["body"] = spec.request_model
    submit.__name__ = f"submit_{spec.name}"
    submit.__doc__ = (
        f"Start a **{spec.name}** workflow. Answers 202 at once with the queued record and a "
        "`Location` header; poll it, or pass `?wait=N` to hold the reply until the run ends."
    )
    _SPECS[submit] = spec
    return submit


_SPECS: dict[Callable[..., Any], WorkflowSpec] = {}
_PUBLIC = TypeAdapter(WorkflowPublic)
#: What the submit routes solve besides their own parameters: with anything else, no fast path.
_FAST_DEPENDENCIES = frozenset({storable_parameters, current_caller})


class SubmitRoute(APIRoute):
    """``POST /workflows/{type}``, with a fast path for the common submit and FastAPI for every other.

    The common submit: a JSON body (``Content-Type: application/json``) that the workflow's request
    model accepts, no query string but a plain ``wait=N`` (digits, at most ``MAX_WAIT_SECONDS``),
    at most a well-formed ``Idempotency-Key``. For it the route does itself what FastAPI would
    (parse and validate the body, find the caller, answer with the record serialised by pydantic)
    without FastAPI's per-request dependency solving, parameter introspection and response
    preparation, which cost about a third of a submit's CPU (issue 16, B4), nor its per-request
    wrapping of the handler (a Request, two exit stacks for dependencies with ``yield``, an
    exception-handling layer: ~3 % of a submit's instructions). Its errors (401, quota, shutting
    down) reach the app's exception handlers through Starlette's exception middleware, which
    renders them as the route's layer would. Anything else (any other query, another content type,
    a body or header FastAPI would refuse) is handed to FastAPI's own route app with the body
    replayed, so every refusal is FastAPI's own problem+json, naming the field as always.

    The fast path stays off when the route would solve any dependency besides the app-wide
    ``storable_parameters`` (a no-op for a query of ASCII without ``%``) and ``current_caller``,
    when dependencies are overridden, and when OpenTelemetry tracing is on (FastAPI's spans). It is
    the route's own ASGI app, so it serves the route on the app's router (``include``).
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        spec = _SPECS.get(endpoint)
        if spec is not None and not tracing_requested():
            self.app = self._fast_app(spec, standard=self.app)

    def _fast_app(self, spec: WorkflowSpec, *, standard: ASGIApp) -> ASGIApp:
        request_model = spec.request_model
        fast_for: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()  # per app: its verdict

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            request = Request(scope, receive, send)
            application = request.app
            allowed = fast_for.get(application)
            if allowed is None:
                allowed = fast_for[application] = _only_fast_dependencies(application, self)
            headers = request.headers
            query = scope.get("query_string")
            wait = _plain_wait(query) if query else None
            if (
                not allowed
                or application.dependency_overrides
                or (query and wait is None)
                or headers.get("content-type") != "application/json"
            ):
                await standard(scope, receive, send)
                return
            idempotency_key = headers.get("idempotency-key")
            if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
                await standard(scope, receive, send)
                return
            raw = await request.body()
            try:
                body = request_model.model_validate(json.loads(raw), from_attributes=True)
            except Exception:  # e.g. ValueError, ValidationError, RecursionError: FastAPI renders the problem
                await standard(scope, replaying(raw, receive), send)
                return
            caller = await current_caller(request)
            record, code = await _accept(spec, body, request, caller, wait, idempotency_key)
            content = _PUBLIC.dump_json(WorkflowPublic.from_record(record), by_alias=True)
            response = Response(
                content,
                status_code=code,
                media_type="application/json",
                headers={"Location": f"/workflows/{record.id}"},
            )
            await response(scope, receive, send)

        return app


_PLAIN_WAIT = re.compile(rb"wait=([0-9]{1,2}(?:\.[0-9]{1,6})?)")


def _plain_wait(query: bytes) -> float | None:
    """The seconds of a query that is ``wait=N`` alone, N plain digits within ``WaitQuery``'s
    bounds; None for any other query (FastAPI parses it, and refuses what it must)."""
    matched = _PLAIN_WAIT.fullmatch(query)
    if matched is None:
        return None
    seconds = float(matched[1])
    return seconds if seconds <= MAX_WAIT_SECONDS else None


def _only_fast_dependencies(app: Any, route: APIRoute) -> bool:
    """Whether ``route``, as included in ``app``, solves no dependency the fast path skips."""
    for context in iter_route_contexts(app.routes):
        if context.original_route is not route:
            continue
        calls: list[Any] = []
        dependants = list(context.dependant.dependencies)
        while dependants:
            dependant = dependants.pop()
            calls.append(dependant.call)
            dependants.extend(dependant.dependencies)
        return all(any(call is allowed for allowed in _FAST_DEPENDENCIES) for call in calls)
    return False


for _spec in WORKFLOWS.values():  # first: a submit is the request a server answers most
    _route(
        f"/{_spec.name}",
        methods=["POST"],
        status_code=status.HTTP_202_ACCEPTED,
        response_model=WorkflowPublic,
        summary=f"Submit a {_spec.name} workflow",
        responses={200: {"description": "Finished within the requested wait", "model": WorkflowPublic}},
        route_class_override=SubmitRoute,
    )(_submit_endpoint(_spec))


@_route("", methods=["GET"], response_model=WorkflowsPublic, summary="List workflows, newest first")
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


@_route("/{workflow_id}", methods=["GET"], response_model=WorkflowPublic, summary="Get a workflow's status and result")
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


@_route(
    "/{workflow_id}/resume",
    methods=["POST"],
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


@_route(
    "/{workflow_id}/cancel",
    methods=["POST"],
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


@_route(
    "/{workflow_id}/events",
    methods=["GET"],
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


@_route(
    "/{workflow_id}/timeline",
    methods=["GET"],
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


def include(app: FastAPI) -> None:
    """Add the workflow routes to ``app``'s own router, after whatever routes it has.

    Not through ``app.include_router(APIRouter(prefix="/workflows"))``: FastAPI matches the routes
    of an included router through a layer of its own on every request (the router matched, then
    matched again to be handled, its route table's version recomputed each time): ~100 of the
    ~780 Python calls of a submit (cProfile), on the app's hottest routes.
    """
    for path, endpoint, options in _ROUTES:
        app.router.add_api_route(path, endpoint, **options)
