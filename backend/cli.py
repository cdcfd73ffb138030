"""The ``agentflow`` command: ``serve`` (HTTP API, with an embedded worker), ``worker`` and ``migrate``."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import TYPE_CHECKING

from pydantic import ValidationError

if TYPE_CHECKING:
    from backend.config import Settings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentflow", description="agentflow workflow orchestration server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the HTTP API (and, with the queue executor, run jobs)")
    serve.add_argument("--host", help="bind address (AGENTFLOW_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (AGENTFLOW_PORT, default 8000)")
    serve.add_argument("--workers", type=int, help="server processes (AGENTFLOW_WORKERS, default 1)")
    serve.add_argument(
        "--worker-concurrency",
        type=int,
        help="queue executor: runs each server process executes at once; 0 = API only "
        "(AGENTFLOW_WORKER_CONCURRENCY, default AGENTFLOW_MAX_CONCURRENT_WORKFLOWS)",
    )
    worker = commands.add_parser("worker", help="run queued workflows (queue executor, PostgreSQL)")
    worker.add_argument(
        "--concurrency", type=int, help="runs executed at once (default AGENTFLOW_MAX_CONCURRENT_WORKFLOWS)"
    )
    commands.add_parser("migrate", help="upgrade the database schema and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Command-line flags win over the environment; settings validate both.
    for name in ("host", "port", "workers", "worker_concurrency"):
        value = getattr(args, name, None)
        if value is not None:
            os.environ[f"AGENTFLOW_{name.upper()}"] = str(value)

    from backend.config import config_error_message, get_settings

    try:
        settings = get_settings()
    except ValidationError as error:
        print(f"agentflow: {config_error_message(error)}", file=sys.stderr)
        return 2

    from backend.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    from backend.runs.store import create_engine, run_migrations

    async def migrate() -> None:
        engine = create_engine(settings.database_url)
        try:
            await run_migrations(engine)
        finally:
            await engine.dispose()

    # Migrate once here, before any process starts, so processes never race on the schema.
    asyncio.run(migrate())
    if args.command == "migrate":
        return 0
    if args.command == "worker":
        return _worker(settings, args.concurrency)
    return _serve(settings)


def _serve(settings: Settings) -> int:
    import uvicorn

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

    from backend.runs import open_runtime

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        default = settings.worker_concurrency or settings.max_concurrent_workflows
        async with open_runtime(settings, worker_concurrency=concurrency or default):
            await stop.wait()

    uvloop.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
