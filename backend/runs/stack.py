"""The workflow stack of a process, loaded when the first run needs it rather than at start-up.

Running a workflow needs LangGraph, langchain, the provider SDKs (openai and langchain-openai,
tavily, arxiv), the workflows' graph modules, a checkpointer and the ``RunRunner``: about 1.5 s
of imports and 70 MiB, most of what a server process imports. Accepting, reading, listing,
waiting on and cancelling runs need none of it, so ``agentflow serve`` answers ``/readyz``
without it and idles without it.

``DeferredRunner`` stands in for the runner until then. The first thing that needs the stack
(a submit checking its providers, a run recovered at start-up, a queued job, a resume, the
waiting-run sweep finding a run to end) starts the load: the imports run in a worker thread, so
the event loop keeps answering requests meanwhile; the providers, checkpointer and runner are
then built on the loop. Whatever waits on it continues once it is done; a load that fails is
logged and tried again by the next caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING

from backend import heap
from backend.runs.records import WorkflowRecord, WorkflowStatus
from backend.runs.signals import ChangeHub
from backend.runs.store import WorkflowStore, utcnow
from workflows.registry import load_graphs

if TYPE_CHECKING:
    from agents.providers import Providers
    from backend.runs.runner import RunRunner

__all__ = ["DeferredRunner", "import_stack"]

logger = logging.getLogger("agentflow.executor")

_NO_RUNS: Mapping[str, WorkflowRecord] = MappingProxyType({})


def import_stack() -> None:
    """Import every module a run needs (blocking: call it in a worker thread)."""
    load_graphs()  # LangGraph, the agents and the provider SDKs under them
    importlib.import_module("backend.runs.runner")


class DeferredRunner:
    """The process's ``RunRunner``, built by ``build`` on first need; it answers for it until then.

    Executors and the run service hold this, never the runner itself: ``live`` is empty and
    ``changed`` goes straight to the hub while nothing is loaded (nothing runs yet), and every
    call that executes or ends a run waits for the load first.
    """

    def __init__(self, *, store: WorkflowStore, hub: ChangeHub, build: Callable[[], Awaitable[RunRunner]]) -> None:
        self.store = store
        self.hub = hub
        self._build = build
        self._runner: RunRunner | None = None
        self._loading: asyncio.Task[RunRunner] | None = None

    @property
    def loaded(self) -> RunRunner | None:
        """The runner once the stack is loaded, else None (never starts a load)."""
        return self._runner

    def load(self) -> asyncio.Future[RunRunner]:
        """Start loading the stack unless it is loaded or loading; the future ends with the runner."""
        if self._runner is not None:
            done: asyncio.Future[RunRunner] = asyncio.get_running_loop().create_future()
            done.set_result(self._runner)
            return done
        task = self._loading
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._loading = asyncio.create_task(self._load(), name="workflow-stack")
        return task

    async def get(self) -> RunRunner:
        """The runner, loading the stack first if needed."""
        if self._runner is not None:
            return self._runner
        # Shielded: a waiter that is cancelled (its run, at shutdown) must not cancel the load
        # every other waiter shares.
        return await asyncio.shield(self.load())

    async def _load(self) -> RunRunner:
        started = time.perf_counter()
        try:
            await asyncio.to_thread(import_stack)
            runner = await self._build()
        except Exception:
            logger.exception("loading the workflow stack failed", extra={"event": "workflow_stack_failed"})
            raise
        self._runner = runner
        heap.refreeze()  # the stack's modules live as long as the process: out of every collection
        logger.info(
            "workflow stack loaded",
            extra={"event": "workflow_stack_loaded", "duration_ms": round((time.perf_counter() - started) * 1000, 1)},
        )
        return runner

    async def close(self) -> None:
        """Stop a load still in progress (at shutdown; the import thread finishes on its own)."""
        task = self._loading
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    # --- the runner's interface ---------------------------------------------------------------

    async def providers(self) -> Providers:
        """The provider clients (a submit checks that the ones it needs are configured)."""
        return (await self.get()).providers

    @property
    def live(self) -> Mapping[str, WorkflowRecord]:
        """The record of every run executing in this process (none before the stack loads)."""
        return self._runner.live if self._runner is not None else _NO_RUNS

    def changed(self, workflow_id: str) -> None:
        self.hub.changed(workflow_id)

    async def run(
        self,
        record: WorkflowRecord,
        *,
        cancel_requested: Callable[[], bool],
        interrupted: Callable[[], bool],
        lease_owner: str | None = None,
    ) -> None:
        """``RunRunner.run`` once the stack is loaded."""
        runner = await self.get()
        await runner.run(record, cancel_requested=cancel_requested, interrupted=interrupted, lease_owner=lease_owner)

    async def end_waiting(
        self,
        workflow_id: str,
        *,
        status: WorkflowStatus = WorkflowStatus.CANCELLED,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> WorkflowRecord | None:
        """``RunRunner.end_waiting`` (it drops the run's checkpoint) once the stack is loaded."""
        runner = await self.get()
        return await runner.end_waiting(workflow_id, status=status, error_code=error_code, error_message=error_message)

    async def expire_waiting(self, ttl: float) -> int:
        """``RunRunner.expire_waiting``; loads the stack only when a run is due to expire."""
        if self._runner is None and not await self.store.waiting_before(before=utcnow() - timedelta(seconds=ttl)):
            return 0
        runner = await self.get()
        return await runner.expire_waiting(ttl)
