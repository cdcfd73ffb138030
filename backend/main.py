"""The FastAPI application: ``create_app(settings)`` wires middleware, routes and the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from agents.providers import (
    ArxivConfig,
    ArxivSearch,
    ChatProvider,
    OpenAIConfig,
    Providers,
    TavilyConfig,
    TavilySearch,
)
from backend.config import Settings, get_settings
from backend.errors import install_error_handlers
from backend.executor import LocalExecutor, open_checkpointer
from backend.logs import configure_logging
from backend.middleware import (
    AccessLogMiddleware,
    BodyLimitMiddleware,
    CorrelationIdMiddleware,
    RateLimitMiddleware,
    UnhandledErrorMiddleware,
)
from backend.middleware.rate_limit import build_limiter
from backend.routes import health, workflows
from backend.service import WorkflowService
from backend.store import WorkflowStore, create_engine, run_migrations

__all__ = ["build_providers", "create_app", "create_app_from_env"]

DESCRIPTION = """
agentflow runs durable **LangGraph** agent workflows behind a small HTTP API.

Submit a workflow (`POST /workflows/{type}`) and get its `workflow_id` at once (**202**); poll
`GET /workflows/{id}` (or pass `?wait=N`) for status, progress, usage and result. Runs are
checkpointed after every node and resume after a crash. Every response carries `X-Request-ID`;
errors are RFC 9457 `application/problem+json`.
"""
ROLES = ("draft", "critique", "revise", "plan", "synthesize")
ALLOWED_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "X-API-Key", "X-Request-ID", "X-Correlation-ID"]
EXPOSED_HEADERS = [
    "Location", "Retry-After", "X-Request-ID", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
]  # fmt: skip


def build_providers(settings: Settings) -> Providers:
    """The provider clients for this process, from settings."""
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
        )
    )
    arxiv = ArxivSearch(
        ArxivConfig(
            api_url=settings.arxiv_api_url,
            timeout=settings.search_timeout,
            min_interval=settings.arxiv_min_interval,
        )
    )
    web = TavilySearch(
        TavilyConfig(
            api_key=settings.tavily_api_key.get_secret_value() if settings.tavily_api_key else None,
            base_url=settings.tavily_base_url,
            timeout=settings.search_timeout,
            max_concurrency=settings.tavily_max_concurrency,
            rpm=settings.tavily_rpm,
        )
    )
    return Providers(chat=chat, arxiv=arxiv, web=web)


def _lifespan(settings: Settings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        await run_migrations(engine)
        store = WorkflowStore(engine)
        providers = build_providers(settings)
        try:
            async with open_checkpointer(settings.database_url) as checkpointer:
                executor = LocalExecutor(
                    store=store,
                    checkpointer=checkpointer,
                    providers=providers,
                    default_models={role: settings.model_for(role) for role in ROLES},
                    max_concurrent=settings.max_concurrent_workflows,
                    workflow_timeout=settings.workflow_timeout,
                )
                app.state.store = store
                app.state.executor = executor
                app.state.providers = providers
                app.state.service = WorkflowService(store=store, executor=executor, providers=providers)
                await executor.start()
                try:
                    yield
                finally:
                    await executor.shutdown(settings.shutdown_grace_seconds)
        finally:
            await providers.aclose()
            await engine.dispose()

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for ``settings`` (defaults to the environment)."""
    settings = settings or get_settings()
    limiter = build_limiter(settings.redis_url or "memory://")
    allow_any_origin = "*" in settings.cors_origins
    middleware = [  # outermost first
        Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips),
        Middleware(CorrelationIdMiddleware),
        Middleware(AccessLogMiddleware),
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=not allow_any_origin,  # never "*" together with credentials
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
        ),
        Middleware(
            RateLimitMiddleware,
            limiter=limiter,
            submit_limit=settings.rate_limit_submit,
            default_limit=settings.rate_limit_default,
        ),
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
        Middleware(UnhandledErrorMiddleware),
    ]
    app = FastAPI(
        title="agentflow",
        version=version("agentflow"),
        description=DESCRIPTION,
        lifespan=_lifespan(settings),
        middleware=middleware,
        debug=False,  # never render tracebacks to clients
    )
    app.state.settings = settings
    app.state.limiter = limiter
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(workflows.router)
    return app


def create_app_from_env() -> FastAPI:
    """uvicorn factory for ``agentflow serve`` workers: settings and logging from the environment."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
