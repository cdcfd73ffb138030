"""FastAPI dependencies as Annotated aliases, so routes read like prose.

All of them are ``async def`` reads of ``app.state`` (built in the lifespan): sync dependencies
would each cost a thread-pool hop per request, and ``dependency_overrides`` would make FastAPI
re-analyse every dependency on every request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from backend.config import Settings
from backend.runs import RunService, WorkflowRecord

__all__ = ["RunServiceDep", "SettingsDep", "ValidWorkflowDep", "WorkflowIdPath", "get_settings", "valid_workflow"]


async def get_settings(request: Request) -> Settings:
    """The app's settings: those given to ``create_app(settings)``, else the environment's."""
    settings: Settings = request.app.state.settings
    return settings


async def get_run_service(request: Request) -> RunService:
    service: RunService = request.app.state.runs
    return service


SettingsDep = Annotated[Settings, Depends(get_settings)]
RunServiceDep = Annotated[RunService, Depends(get_run_service)]
WorkflowIdPath = Annotated[str, Path(max_length=64, description="The workflow id.")]


async def valid_workflow(runs: RunServiceDep, workflow_id: WorkflowIdPath) -> WorkflowRecord:
    """The freshest record for ``workflow_id``; NotFound (404 problem) otherwise."""
    return await runs.get(workflow_id=workflow_id)


ValidWorkflowDep = Annotated[WorkflowRecord, Depends(valid_workflow)]
