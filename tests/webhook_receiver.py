"""A real loopback HTTP server that receives webhooks for tests, and scripts its answers per path."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import standardwebhooks

#: The signing secret test servers are configured with (``whsec_`` + base64 of 32 bytes).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass(frozen=True)
class Received:
    """One request the receiver got, and the status it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    def verify(self, secret: str = SECRET) -> Any:
        """The payload, once the signature verifies with the ``standardwebhooks`` library (raises if not)."""
        return standardwebhooks.Webhook(secret).verify(self.body, self.headers)


class WebhookReceiver:
    """Records every request; answers 204 unless a path was scripted (``fail``, ``redirect``)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._failures: dict[str, list[int]] = {}
        self._always: dict[str, int] = {}
        self._redirects: dict[str, str] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                status, location = receiver._answer(self.path)
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, status)
                    )
                self.send_response(status)
                if location is not None:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST  # a followed redirect would arrive as a GET

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def fail(self, path: str, *statuses: int, always: int | None = None) -> None:
        """Answer ``path`` with these statuses first (then 204, or ``always`` forever)."""
        with self._lock:
            self._failures[path] = list(statuses)
            if always is not None:
                self._always[path] = always
            else:
                self._always.pop(path, None)

    def redirect(self, path: str, location: str) -> None:
        with self._lock:
            self._redirects[path] = location

    def _answer(self, path: str) -> tuple[int, str | None]:
        with self._lock:
            if path in self._redirects:
                return 302, self._redirects[path]
            queued = self._failures.get(path)
            if queued:
                return queued.pop(0), None
            return self._always.get(path, 204), None

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 60.0, answered: int | None = None) -> list[Received]:
        """Block until ``path`` got ``count`` requests (answered with ``answered``, when given)."""
        deadline = time.monotonic() + timeout
        while True:
            got = [r for r in self.at(path) if answered is None or r.answered == answered]
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: {len(got)} of {count} webhook requests after {timeout} s")
            time.sleep(0.02)

    async def until(
        self, path: str, count: int = 1, timeout: float = 60.0, answered: int | None = None
    ) -> list[Received]:
        """``wait_for`` for async tests: the event loop (and the app's dispatcher) keeps running."""
        deadline = time.monotonic() + timeout
        while True:
            got = [r for r in self.at(path) if answered is None or r.answered == answered]
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: {len(got)} of {count} webhook requests after {timeout} s")
            await asyncio.sleep(0.02)

    @contextmanager
    def serving(self) -> Iterator[WebhookReceiver]:
        thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(5)
