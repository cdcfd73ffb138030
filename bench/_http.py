"""The load generator's HTTP clients: a lean keep-alive HTTP/1.1 client, and httpx for cross-checks.

Why a hand-rolled client: on this 2-core machine httpx's async pool costs ~3 ms of CPU per
request and collapses with many connections (measured: 233 req/s at 16 connections, 45 req/s at
64, the client at 100 % CPU and the bare FastAPI server mostly idle). That measures the client,
not the server. This one costs a few tens of µs per request, so B3/B4/B5 load the server.
Both speak through ``await client.request(method, path, body) -> (status, body_bytes)``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Protocol
from urllib.parse import urlsplit

__all__ = ["Client", "HttpxClient", "RawClient", "make_client"]


class Client(Protocol):
    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]: ...

    async def aclose(self) -> None: ...


class _Conn:
    __slots__ = ("reader", "used_at", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.used_at = time.monotonic()


class _Stale(Exception):
    """A reused keep-alive connection died before any byte of the answer: safe to resend."""


class RawClient:
    """Keep-alive HTTP/1.1 over asyncio streams; at most ``connections`` sockets at once."""

    # uvicorn closes idle keep-alive connections after 5 s; never reuse one that old.
    IDLE_REUSE_SECONDS = 4.0

    def __init__(self, base_url: str, *, connections: int, timeout: float) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[_Conn] = []
        self._open: set[_Conn] = set()
        self._host_header = f"{self.host}:{self.port}".encode()

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + self._host_header]
        if body is not None or method == "POST":
            head += [b"Content-Type: application/json", b"Content-Length: " + str(len(payload)).encode()]
        message = b"\r\n".join(head) + b"\r\n\r\n" + payload
        async with self._slots:
            async with asyncio.timeout(self.timeout):
                for _attempt in range(2):
                    conn, reused = await self._checkout()
                    try:
                        status, data, keep = await self._exchange(conn, message, reused=reused)
                    except _Stale:
                        self._discard(conn)
                        continue
                    except BaseException:
                        self._discard(conn)
                        raise
                    if keep:
                        conn.used_at = time.monotonic()
                        self._idle.append(conn)
                    else:
                        self._discard(conn)
                    return status, data
        raise ConnectionError("connection dropped twice before any response")

    async def _checkout(self) -> tuple[_Conn, bool]:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.used_at < self.IDLE_REUSE_SECONDS and not conn.reader.at_eof():
                return conn, True
            self._discard(conn)
        reader, writer = await asyncio.open_connection(self.host, self.port)
        conn = _Conn(reader, writer)
        self._open.add(conn)
        return conn, False

    def _discard(self, conn: _Conn) -> None:
        self._open.discard(conn)
        conn.writer.close()

    @staticmethod
    async def _exchange(conn: _Conn, message: bytes, *, reused: bool) -> tuple[int, bytes, bool]:
        try:
            conn.writer.write(message)
            head = await conn.reader.readuntil(b"\r\n\r\n")
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            if reused and not getattr(exc, "partial", b""):
                raise _Stale from exc
            raise
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length: int | None = None
        chunked = False
        keep = True
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.strip().lower() == b"close":
                keep = False
        if chunked:
            parts = []
            while True:
                size = int((await conn.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await conn.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            data = b"".join(parts)
        elif length is not None:
            data = await conn.reader.readexactly(length)
        else:
            data = await conn.reader.read()
            keep = False
        return status, data, keep

    async def aclose(self) -> None:
        for conn in list(self._open):
            self._discard(conn)
        self._idle.clear()


class HttpxClient:
    """httpx behind the same interface (``"engine": "httpx"`` in a load spec)."""

    def __init__(self, base_url: str, *, connections: int, timeout: float) -> None:
        import httpx

        self._client = httpx.AsyncClient(
            base_url=base_url,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            timeout=httpx.Timeout(timeout, connect=30.0, pool=timeout),
        )

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        import httpx

        try:
            response = await self._client.request(method, path, json=body)
        except httpx.TimeoutException as exc:
            raise TimeoutError(str(exc)) from exc
        except httpx.HTTPError as exc:  # the load loops count OSErrors as transport errors
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self._client.aclose()


def make_client(engine: str, base_url: str, *, connections: int, timeout: float) -> Client:
    if engine == "httpx":
        return HttpxClient(base_url, connections=connections, timeout=timeout)
    if engine == "raw":
        return RawClient(base_url, connections=connections, timeout=timeout)
    raise ValueError(f"unknown HTTP engine {engine!r} (raw, httpx)")
