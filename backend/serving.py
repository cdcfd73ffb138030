"""The server side of the ``agentflow`` command: ``serve`` (HTTP API, with an embedded worker),
``worker`` (queue executor) and ``migrate``. Each returns the process exit code."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import TYPE_CHECKING, Literal, TextIO

from pydantic import ValidationError

if TYPE_CHECKING:
    from backend.config import Settings

__all__ = ["ServerCommand", "main"]

ServerCommand = Literal["serve", "worker", "migrate"]
#: Seconds start-up waits for the database to accept a connection.
DATABASE_CONNECT_TIMEOUT = 10.0


def main(
    command: ServerCommand,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    worker_concurrency: int | None = None,
    concurrency: int | None = None,
    log_stream: TextIO | None = None,
) -> int:
    """Validate settings (exit 2 with one stderr line if bad), migrate once, then run ``command``."""
    from backend import heap

    # No garbage collection while the process starts: the lifespan's ``heap.settle`` (``worker``:
    # its own) turns it back on; any other way out of here does (backend.heap).
    heap.hold()
    try:
        return _main(command, host, port, workers, worker_concurrency, concurrency, log_stream)
    finally:
        heap.release()


def _main(
    command: ServerCommand,
    host: str | None,
    port: int | None,
    workers: int | None,
    worker_concurrency: int | None,
    concurrency: int | None,
    log_stream: TextIO | None,
) -> int:
    # Command-line flags win over the environment; settings validate both.
    flags = {"host": host, "port": port, "workers": workers, "worker_concurrency": worker_concurrency}
    for name, value in flags.items():
        if value is not None:
            os.environ[f"AGENTFLOW_{name.upper()}"] = str(value)

    from backend.config import config_error_message, get_settings

    try:
        settings = get_settings()
    except ValidationError as error:
        print(f"agentflow: {config_error_message(error)}", file=sys.stderr)
        return 2

    from backend.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format, stream=log_stream, background=log_stream is None)
    from backend.runs.store import create_engine, run_migrations

    async def migrate() -> None:
        engine = create_engine(settings.database_url)
        try:
            async with asyncio.timeout(DATABASE_CONNECT_TIMEOUT), engine.connect():
                pass  # reachable, and the credentials work: fail here, fast, not mid-migration
            await run_migrations(engine)
        finally:
            await engine.dispose()

    # Migrate once here, before any process starts, so processes never race on the schema.
    try:
        asyncio.run(migrate())
    except Exception as error:
        reason = _database_refusal(error)
        if reason is None:
            raise
        print(f"agentflow: AGENTFLOW_DATABASE_URL: {reason}", file=sys.stderr)
        return 2
    if command == "migrate":
        return 0
    if command == "worker":
        return _worker(settings, concurrency)
    return _serve(settings)


def _database_refusal(error: BaseException) -> str | None:
    """Why the configured database cannot be used, on one line and without the URL; None: not that."""
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    if isinstance(error, TimeoutError):
        return f"the database did not accept a connection within {DATABASE_CONNECT_TIMEOUT:g} s"
    if isinstance(error, DBAPIError) and error.orig is not None:
        error = error.orig  # the driver's words: "Connection refused", "password authentication failed ..."
    elif not isinstance(error, SQLAlchemyError | CommandError | OSError):
        return None
    return " ".join(str(error).split()) or type(error).__name__


def _serve(settings: Settings) -> int:
    import uvicorn

    if settings.workers > 1:
        from backend import heap

        heap.release()  # this process only supervises; each worker process settles its own heap

    from backend.logs import uvicorn_log_config

    uvicorn.run(
        "backend.api.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        log_config=uvicorn_log_config(),
        access_log=False,
        proxy_headers=False,  # the app resolves forwarded headers itself (AGENTFLOW_FORWARDED_ALLOW_IPS)
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 1,
        server_header=False,
    )
    return 0


def _worker(settings: Settings, concurrency: int | None) -> int:
    if settings.resolved_executor != "queue":
        print(
            "agentflow: AGENTFLOW_DATABASE_URL: `agentflow worker` needs the queue executor on PostgreSQL "
            "(the embedded SQLite default runs workflows inside `agentflow serve`)",
            file=sys.stderr,
        )
        return 2
    import uvloop

    from backend import heap
    from backend.runs import open_runtime

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        default = settings.worker_concurrency or settings.max_concurrent_workflows
        async with open_runtime(settings, worker_concurrency=concurrency or default):
            heap.settle()  # as `agentflow serve` does after start-up (backend.heap)
            await stop.wait()

    uvloop.run(run())
    return 0
