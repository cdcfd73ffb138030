"""Build the run engine for a process from settings: store, providers, checkpointer, executor, webhooks, service.

The API lifespan and ``agentflow worker`` both enter ``open_runtime``; everything it opens is
closed when the context ends, in reverse order. The providers, the checkpointer and the runner
are built when the first run needs them (``backend.runs.stack``), not when the runtime opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from agents.metrics import allow_model_labels
from backend.config import Settings
from backend.observability import setup_tracing
from backend.runs.cache import ResultCache
from backend.runs.checkpoints import open_checkpointer
from backend.runs.events import EventLog
from backend.runs.executor import Executor
from backend.runs.local import LocalExecutor
from backend.runs.service import RunService
from backend.runs.signals import ChangeHub, listen_for_changes
from backend.runs.stack import DeferredRunner
from backend.runs.store import CHANGES_CHANNEL, WorkflowStore, create_engine, is_postgres, libpq_url, run_migrations
from backend.runs.store.fastpath import FastPath
from backend.runs.store.outbox import WebhookOutbox
from backend.runs.webhooks import WebhookConfig, WebhookDispatcher, Webhooks
from workflows.registry import WORKFLOWS

if TYPE_CHECKING:
    from agents.providers import Providers
    from backend.runs.runner import RunRunner

__all__ = ["build_providers", "default_models", "open_runtime", "webhook_config"]

logger = logging.getLogger("agentflow.executor")
#: Connections of the PostgreSQL fast path (one short statement each; beside the engine's pool).
FAST_POOL_SIZE = 4
#: The waiting-TTL sweep runs this often at most (more often for a shorter TTL).
WAITING_SWEEP_SECONDS = 60.0


def build_providers(settings: Settings) -> Providers:
    """The provider clients for this process, from settings (imports every provider SDK)."""
    from agents.providers import (
        ArxivConfig,
        ArxivSearch,
        ChatProvider,
        OpenAIConfig,
        Providers,
        TavilyConfig,
        TavilySearch,
    )

    chat = ChatProvider(
        OpenAIConfig(
            api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else None,
            base_url=settings.openai_base_url,
            timeout=settings.llm_timeout,
            connect_timeout=settings.llm_connect_timeout,
            max_retries=settings.llm_max_retries,
            max_concurrency=settings.openai_max_concurrency,
            rpm=settings.openai_rpm,
            structured_output_method=settings.structured_output_method,
            temperature=settings.llm_temperature,
            call_deadline=settings.llm_call_deadline,
            retry_base_delay=settings.retry_base_delay,
            retry_max_delay=settings.retry_max_delay,
            redis_url=settings.redis_url,
            model_prices=settings.model_prices,
        )
    )
    arxiv = ArxivSearch(
        ArxivConfig(
            api_url=settings.arxiv_api_url,
            timeout=settings.search_timeout,
            min_interval=settings.arxiv_min_interval,
            redis_url=settings.redis_url,
        )
    )
    web = TavilySearch(
        TavilyConfig(
            api_key=settings.tavily_api_key.get_secret_value() if settings.tavily_api_key else None,
            base_url=settings.tavily_base_url,
            timeout=settings.search_timeout,
            max_concurrency=settings.tavily_max_concurrency,
            rpm=settings.tavily_rpm,
            redis_url=settings.redis_url,
        )
    )
    return Providers(chat=chat, arxiv=arxiv, web=web)


def webhook_config(settings: Settings) -> WebhookConfig:
    """How this process checks and delivers webhooks, from settings."""
    return WebhookConfig(
        secret=settings.signing_secret,
        max_attempts=settings.webhook_max_attempts,
        timeout=settings.webhook_timeout,
        retry_base=settings.webhook_retry_base,
        retry_max=settings.webhook_retry_max,
        poll_interval=settings.webhook_poll_interval,
        allow_hosts=frozenset(settings.webhook_allow_hosts),
    )


def default_models(settings: Settings) -> dict[str, dict[str, str]]:
    """Workflow type → role → model: ``AGENTFLOW_MODEL_<ROLE>``, else the spec's default, else ``AGENTFLOW_MODEL``."""
    return {
        name: {role: settings.model_for(role, default) for role, default in spec.roles.items()}
        for name, spec in WORKFLOWS.items()
    }


@asynccontextmanager
async def open_runtime(settings: Settings, *, worker_concurrency: int | None = None) -> AsyncIterator[RunService]:
    """Open the engine; ``worker_concurrency`` (queue executor) defaults to the settings' value."""
    setup_tracing()  # once per process, when the OTEL_* environment asks for it (API and worker alike)
    async with AsyncExitStack() as stack:
        engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
        stack.push_async_callback(engine.dispose)
        await run_migrations(engine)
        queue_mode = settings.resolved_executor == "queue"
        hub = ChangeHub(sees_every_change=settings.workers == 1 and not queue_mode)
        fast: FastPath | None = None
        if is_postgres(settings.database_url):  # the per-run statements skip SQLAlchemy (see fastpath)
            fast = FastPath(libpq_url(settings.database_url), max_size=FAST_POOL_SIZE)
            await fast.open()
            stack.push_async_callback(fast.close)
        if queue_mode:
            from backend.runs.queue import JobQueue, QueueExecutor

            queue = JobQueue(libpq_url(settings.database_url), pool_size=settings.database_pool_size)
            await queue.open()
            stack.push_async_callback(queue.close)
            store = WorkflowStore(engine, defer_jobs=queue.defer_in, fast=fast)
        else:
            store = WorkflowStore(engine, fast=fast)
        if is_postgres(settings.database_url):  # every process hears every commit's change
            await stack.enter_async_context(listen_for_changes(hub, libpq_url(settings.database_url), CHANGES_CHANNEL))
        models = default_models(settings)
        # Model labels on the metrics: the configured models and the priced ones, nothing else.
        allow_model_labels({model for roles in models.values() for model in roles.values()})
        cache = ResultCache(
            store=store,
            default_models=models,
            ttl=settings.cache_ttl,
            # Model server settings that change answers are part of every cache key.
            model_settings={"base_url": settings.openai_base_url, "temperature": settings.llm_temperature},
        )
        # A run's stream may be read in another process (queue workers, several server processes).
        # On PostgreSQL the watching process says so by NOTIFY; several SQLite processes have no
        # such channel, so there every LLM call streams its tokens.
        events = EventLog(store=store, hub=hub, stream_always=settings.workers > 1 and not store.notifies)
        sweeper = asyncio.create_task(events.sweep_forever(retention=settings.event_retention), name="event-retention")
        stack.push_async_callback(_stop, sweeper)

        async def build_runner() -> RunRunner:
            # Called once, by the first run that needs it; what it opens closes with the runtime.
            from backend.runs.runner import RunRunner

            providers = build_providers(settings)
            stack.push_async_callback(providers.aclose)
            allow_model_labels(providers.chat.prices.prices)
            checkpointer = await stack.enter_async_context(
                open_checkpointer(settings.database_url, pool_size=settings.database_pool_size)
            )
            return RunRunner(
                store=store,
                checkpointer=checkpointer,
                providers=providers,
                default_models=models,
                workflow_timeout=settings.workflow_timeout,
                hub=hub,
                progress_interval=0.0 if queue_mode else 1.0,
                cache_ttl=settings.cache_ttl,
                events=events,
            )

        runner = DeferredRunner(store=store, hub=hub, build=build_runner)
        stack.push_async_callback(runner.close)
        executor: Executor
        if queue_mode:
            concurrency = settings.worker_concurrency if worker_concurrency is None else worker_concurrency
            executor = QueueExecutor(
                store=store,
                runner=runner,
                queue=queue,
                concurrency=settings.max_concurrent_workflows if concurrency is None else concurrency,
                stalled_after=settings.stalled_after,
                max_attempts=settings.max_attempts,
                shutdown_grace=settings.shutdown_grace_seconds,
            )
        else:
            executor = LocalExecutor(store=store, runner=runner, max_concurrent=settings.max_concurrent_workflows)
        # Every process that serves or works delivers due webhooks (its own runs' and, after a
        # restart, anyone's left pending); the outbox's claims keep two processes off one row.
        webhooks = webhook_config(settings)
        outbox = WebhookOutbox(engine)
        dispatcher = WebhookDispatcher(outbox=outbox, store=store, config=webhooks)
        await dispatcher.start()
        stack.push_async_callback(dispatcher.shutdown, min(settings.shutdown_grace_seconds, webhooks.timeout))
        store.on_webhook_due = dispatcher.wake
        await executor.start()
        sweeper = asyncio.create_task(_expire_waiting(runner, settings.waiting_ttl), name="waiting-ttl")
        try:
            yield RunService(
                store=store,
                executor=executor,
                hub=hub,
                providers=runner.providers,
                cache=cache,
                webhooks=Webhooks(webhooks),
                outbox=outbox,
                events=events,
            )
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await executor.shutdown(settings.shutdown_grace_seconds)
            await runner.close()  # a load still under way stops here, before what it would open closes
            # After the runs have stopped (their last events are pending) and before the engine
            # is disposed (the exit stack, below): no event write may outlive the store.
            await events.aclose()
            await store.flush_progress()


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _expire_waiting(runner: DeferredRunner, ttl: float) -> None:
    """The one periodic sweep that ends runs left waiting longer than ``AGENTFLOW_WAITING_TTL``.

    Every process runs it (API servers and workers alike); ending a waiting run is one
    conditional update, so two processes sweeping at once end each run once.
    """
    interval = min(WAITING_SWEEP_SECONDS, max(ttl / 4, 0.2))
    while True:
        try:
            await runner.expire_waiting(ttl)
        except Exception:
            logger.exception("waiting-run sweep failed", extra={"event": "waiting_sweep_failed"})
        await asyncio.sleep(interval)
