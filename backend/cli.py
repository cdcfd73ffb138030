"""The ``agentflow`` command: ``agentflow serve`` runs the server with uvicorn, uvloop and httptools."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from pydantic import ValidationError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentflow", description="agentflow workflow orchestration server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", help="bind address (AGENTFLOW_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (AGENTFLOW_PORT, default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (AGENTFLOW_WORKERS, default 1)")
    commands.add_parser("migrate", help="upgrade the database schema and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Command-line flags win over the environment; settings validate both.
    for name in ("host", "port", "workers"):
        value = getattr(args, name, None)
        if value is not None:
            os.environ[f"AGENTFLOW_{name.upper()}"] = str(value)

    from backend.config import config_error_message, get_settings

    try:
        settings = get_settings()
    except ValidationError as error:
        print(f"agentflow: {config_error_message(error)}", file=sys.stderr)
        return 2

    from backend.logs import configure_logging, uvicorn_log_config

    configure_logging(settings.log_level, settings.log_format)
    from backend.store import create_engine, run_migrations

    async def migrate() -> None:
        engine = create_engine(settings.database_url)
        try:
            await run_migrations(engine)
        finally:
            await engine.dispose()

    # Migrate once here, before any worker starts, so workers never race on the schema.
    asyncio.run(migrate())
    if args.command == "migrate":
        return 0

    import uvicorn

    uvicorn.run(
        "backend.main:create_app_from_env",
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


if __name__ == "__main__":
    raise SystemExit(main())
