"""FastAPI dependencies as Annotated aliases, so routes read like prose.

All of them are ``async def`` reads of ``app.state`` (built in the lifespan): sync dependencies
would each cost a thread-pool hop per request, and ``dependency_overrides`` would make FastAPI
re-analyse every dependency on every request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from agents.errors import NotFound
from backend.config import Settings
from backend.executor import LocalExecutor
from backend.service import WorkflowService
from backend.store import WorkflowRecord, WorkflowStore

__all__ = ["ExecutorDep", "ServiceDep", "SettingsDep", "StoreDep", "ValidWorkflowDep", "get_settings", "valid_workflow"]


async def get_settings(request: Request) -> Settings:
    """The app's settings: those given to ``create_app(settings)``, else the environment's."""
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> WorkflowStore:
    store: WorkflowStore = request.app.state.store
    return store


async def get_executor(request: Request) -> LocalExecutor:
    executor: LocalExecutor = request.app.state.executor
    return executor


async def get_service(request: Request) -> WorkflowService:
    service: WorkflowService = request.app.state.service
    return service


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[WorkflowStore, Depends(get_store)]
ExecutorDep = Annotated[LocalExecutor, Depends(get_executor)]
ServiceDep = Annotated[WorkflowService, Depends(get_service)]


async def valid_workflow(
    executor: ExecutorDep, workflow_id: Annotated[str, Path(max_length=64, description="The workflow id.")]
) -> WorkflowRecord:
    """The freshest record for ``workflow_id``; NotFound (404 problem) otherwise."""
    record = await executor.get(workflow_id)
    if record is None:
        raise NotFound(f"No workflow with id {workflow_id!r}.")
    return record


ValidWorkflowDep = Annotated[WorkflowRecord, Depends(valid_workflow)]
