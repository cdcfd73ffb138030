"""The ``agentflow`` command's entry point (the script calls ``main``).

``agentflow serve`` with plain flags (``--host``, ``--port``, ``--workers``,
``--worker-concurrency``, each given once with a plain value) starts the server at once; every
other command line, ``serve --help`` and anything unusual included, goes to the typer application
in ``backend.cli_app``, which parses it as it always has. Why: before running any command, typer
imports itself and builds the whole command tree, with a pydantic adapter per parameter: ~30 ms
of every server start, for four flags whose plain forms mean the same either way
(``tests/unit/test_cli_entry.py`` checks that they do).
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

__all__ = ["DEFAULT_URL", "ServeFlags", "main", "serve_flags"]

#: The same default as ``backend.client.http.DEFAULT_URL``, repeated so --help needs no httpx.
DEFAULT_URL = "http://127.0.0.1:8000"


class ServeFlags(NamedTuple):
    """``agentflow serve``'s flags (None: not given)."""

    host: str | None = None
    port: int | None = None
    workers: int | None = None
    worker_concurrency: int | None = None


_FLAGS = {"--host": "host", "--port": "port", "--workers": "workers", "--worker-concurrency": "worker_concurrency"}


def serve_flags(args: list[str]) -> ServeFlags | None:
    """``agentflow serve ARGS`` as flags, when every one is a plain ``--flag value`` or
    ``--flag=value`` given once (a whole number for the numeric ones); else None."""
    found: dict[str, Any] = {}
    rest = list(args)
    while rest:
        name, equals, value = rest.pop(0).partition("=")
        field = _FLAGS.get(name)
        if field is None or field in found:
            return None
        if not equals:
            if not rest:
                return None
            value = rest.pop(0)
        if not value or value.startswith("-"):
            return None
        if field == "host":
            found[field] = value
        elif value.isascii() and value.isdigit():
            found[field] = int(value)
        else:
            return None
    return ServeFlags(**found)


def main(argv: list[str] | None = None) -> int:
    """Run ``agentflow`` with ``argv`` (default: the process's arguments); returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["serve"] and (flags := serve_flags(args[1:])) is not None:
        from backend import serving

        return serving.main(
            "serve",
            host=flags.host,
            port=flags.port,
            workers=flags.workers,
            worker_concurrency=flags.worker_concurrency,
        )

    from backend.cli_app import run_command_line

    return run_command_line(args)


if __name__ == "__main__":
    raise SystemExit(main())
