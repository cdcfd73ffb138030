"""Runs the stand-in app with uvicorn in a background thread; the handle tests talk to."""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn

from .app import create_app
from .config import StandinConfig, UpstreamConfig
from .state import StandinState

__all__ = ["StandinServer", "serve_standins"]


class _DropTruncationNoise(logging.Filter):
    """Hides uvicorn's error for responses the stand-in truncates on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_DropTruncationNoise())


class StandinServer:
    """One uvicorn server on 127.0.0.1 serving the OpenAI, Tavily and arXiv stand-ins.

    Use as ``with StandinServer(...) as s:`` or ``async with``; or call ``start()``/``stop()``.
    """

    def __init__(
        self,
        config: StandinConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        loop: str = "asyncio",
        http: str = "auto",
        graceful_shutdown_seconds: float = 1.0,
    ) -> None:
        self.state = StandinState(config)
        self.app = create_app(self.state)
        self.host = host
        self._requested_port = port
        self._loop = loop
        self._http = http
        self._graceful = graceful_shutdown_seconds
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._port: int | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> Self:
        """Bind, start serving in a daemon thread and wait until connections are accepted."""
        if self._thread is not None:
            raise RuntimeError("stand-in server already started")
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose listener
        # says so, and without it every response waits ~40 ms for a delayed ACK (Nagle).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.listen(512)
        sock.setblocking(False)
        self._sock = sock
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            loop=self._loop,
            http=self._http,
            ws="none",
            lifespan="off",
            log_config=None,
            log_level=None,
            access_log=False,
            timeout_graceful_shutdown=max(1, math.ceil(self._graceful)),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"standins:{self._port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                self._cleanup_socket()
                raise RuntimeError(f"stand-in server failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"stand-in server did not start within {timeout}s")
            time.sleep(0.005)
        return self

    def _run(self) -> None:
        assert self._server is not None
        assert self._sock is not None
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # surfaced by start()
            self._error = exc

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to exit and wait for its thread (idempotent)."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        self._cleanup_socket()
        self._server = None
        self._thread = None

    def _cleanup_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- addresses -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The real TCP port (known once started)."""
        if self._port is None:
            raise RuntimeError("stand-in server not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """Base URL for the OpenAI SDK / ChatOpenAI: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.base_url}/v1"

    @property
    def tavily_base_url(self) -> str:
        """``api_base_url`` for tavily's clients: ``http://127.0.0.1:PORT``."""
        return self.base_url

    @property
    def arxiv_query_url(self) -> str:
        """``http://127.0.0.1:PORT/api/query``."""
        return f"{self.base_url}/api/query"

    @property
    def arxiv_query_url_format(self) -> str:
        """Value for ``arxiv.Client.query_url_format``."""
        return self.arxiv_query_url + "?{}"

    def env(self) -> dict[str, str]:
        """Environment variables that point agentflow's settings at the stand-ins."""
        return {
            "OPENAI_BASE_URL": self.openai_base_url,
            "OPENAI_API_KEY": "sk-standin",
            "TAVILY_BASE_URL": self.tavily_base_url,
            "TAVILY_API_KEY": "tvly-standin",
            "ARXIV_API_URL": self.arxiv_query_url,
        }

    def ready_info(self) -> dict[str, Any]:
        """The ``standins_ready`` line the CLI prints."""
        return {
            "event": "standins_ready",
            "port": self.port,
            "base_url": self.base_url,
            "openai_base_url": self.openai_base_url,
            "tavily_base_url": self.tavily_base_url,
            "arxiv_query_url": self.arxiv_query_url,
        }

    # -- observability and control ---------------------------------------------------------
    def requests(self, upstream: str | None = None) -> list[dict[str, Any]]:
        """Journal entries (oldest first), optionally only for ``upstream``."""
        return self.state.journal.entries(upstream)

    def stats(self) -> dict[str, Any]:
        """Counts per upstream and status, plus in-flight maxima."""
        return self.state.journal.stats()

    def reset(self) -> None:
        """Clear journals and restart fault counters, RNGs and rate windows."""
        self.state.reset()

    def configure(
        self,
        config: StandinConfig | None = None,
        *,
        openai: UpstreamConfig | dict[str, Any] | None = None,
        tavily: UpstreamConfig | dict[str, Any] | None = None,
        arxiv: UpstreamConfig | dict[str, Any] | None = None,
    ) -> None:
        """Replace the whole config, or only the upstreams given."""
        given: dict[str, Any] = {
            k: v for k, v in {"openai": openai, "tavily": tavily, "arxiv": arxiv}.items() if v is not None
        }
        self.state.configure(config, **given)


def serve_standins(
    config: StandinConfig | None = None,
    *,
    openai: Any = None,
    tavily: Any = None,
    arxiv: Any = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> StandinServer:
    """A not-yet-started :class:`StandinServer`; enter it with ``with``/``async with``.

    ``openai``/``tavily``/``arxiv`` take ``OpenAIConfig``/``TavilyConfig``/``ArxivConfig``,
    a plain ``UpstreamBehaviour`` or a JSON-style dict, and override ``config``.
    """
    base = config or StandinConfig()
    merged = StandinConfig(
        openai=openai if openai is not None else base.openai,
        tavily=tavily if tavily is not None else base.tavily,
        arxiv=arxiv if arxiv is not None else base.arxiv,
    )
    return StandinServer(merged, host=host, port=port)
