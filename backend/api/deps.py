"""FastAPI dependencies as Annotated aliases, so routes read like prose.

All of them are ``async def`` reads of ``app.state`` (built in the lifespan): sync dependencies
would each cost a thread-pool hop per request, and ``dependency_overrides`` would make FastAPI
re-analyse every dependency on every request.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote_to_bytes

from fastapi import Depends, Path, Request
from fastapi.routing import APIRoute

from backend.api.auth import Caller, CallerDep, require_admin
from backend.api.errors import FieldError, MalformedQuery, ValidationFailed
from backend.config import Settings
from backend.runs import RunService, WorkflowRecord
from workflows.base import unstorable

__all__ = [
    "AdminDep",
    "CallerDep",
    "RunServiceDep",
    "SettingsDep",
    "ValidWorkflowDep",
    "WorkflowIdPath",
    "get_settings",
    "storable_parameters",
    "submit_quota",
    "valid_workflow",
]


async def get_settings(request: Request) -> Settings:
    """The app's settings: those given to ``create_app(settings)``, else the environment's."""
    settings: Settings = request.app.state.settings
    return settings


async def get_run_service(request: Request) -> RunService:
    service: RunService = request.app.state.runs
    return service


SettingsDep = Annotated[Settings, Depends(get_settings)]
RunServiceDep = Annotated[RunService, Depends(get_run_service)]
WorkflowIdPath = Annotated[str, Path(min_length=1, max_length=64, description="The workflow id.")]


async def storable_parameters(request: Request) -> None:
    """Refuse path and query values no store can hold (NUL: 422) or that are not UTF-8 (400).

    An app-wide dependency, so it runs first, for every route and every parameter (a body's
    strings are the request model's ``StorableText``). It names the parameter: ``path.workflow_id``,
    ``query.cursor``. Only the query parameters the route declares are read, as FastAPI does.
    """
    for name, value in request.path_params.items():
        if isinstance(value, str) and (reason := unstorable(value)) is not None:
            raise ValidationFailed([FieldError(field=f"path.{name}", message=reason, type="string_unstorable")])
    raw: bytes = request.scope.get("query_string", b"")
    if raw.isascii() and b"%" not in raw:  # the common case: nothing encoded, nothing to check
        return
    route = request.scope.get("route")
    declared = _query_names(route) if isinstance(route, APIRoute) else frozenset[str]()
    for pair in raw.split(b"&"):
        key, _, encoded = pair.partition(b"=")
        name = unquote_to_bytes(key.replace(b"+", b" ")).decode("latin-1")
        if name not in declared:
            continue
        try:
            value = unquote_to_bytes(encoded.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            error = FieldError(field=f"query.{name}", message="Not valid UTF-8.", type="query_invalid_encoding")
            raise MalformedQuery([error]) from None
        if (reason := unstorable(value)) is not None:
            raise ValidationFailed([FieldError(field=f"query.{name}", message=reason, type="string_unstorable")])


def _query_names(route: APIRoute) -> frozenset[str]:
    names: set[str] = set()
    dependants = [route.dependant]
    while dependants:
        dependant = dependants.pop()
        names.update(param.alias for param in dependant.query_params)
        dependants.extend(dependant.dependencies)
    return frozenset(names)


def submit_quota(caller: Caller, settings: Settings) -> int | None:
    """Unfinished workflows the caller's key may have (keyless callers, with auth off: no quota)."""
    if caller.key is None:
        return None
    return caller.key.max_queued or settings.max_queued_per_key


async def valid_workflow(request: Request, workflow_id: WorkflowIdPath, caller: CallerDep) -> WorkflowRecord:
    """The freshest record for ``workflow_id`` that the caller may see; NotFound (404 problem) otherwise.

    Another key's workflow answers 404 exactly like a missing one, so ids cannot be probed.
    """
    runs: RunService = request.app.state.runs  # not RunServiceDep: one dependency fewer to solve per request
    return await runs.get(workflow_id=workflow_id, owner=caller.scope_owner)


ValidWorkflowDep = Annotated[WorkflowRecord, Depends(valid_workflow)]
#: Route-level gate for admin-only operations (``DELETE /cache``): an admin key when auth is on.
AdminDep = Depends(require_admin)
