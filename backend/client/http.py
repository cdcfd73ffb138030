"""A small synchronous HTTP client for an agentflow server (what the CLI talks through).

Errors are mapped once, here: a connection that cannot be made is ``ServerUnreachable``; an
answer that is a problem+json error is ``ApiError`` with the problem's fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from httpx_sse import SSEError, connect_sse

__all__ = [
    "DEFAULT_URL",
    "AgentflowClient",
    "ApiError",
    "ClientError",
    "InvalidUrl",
    "ServerEvent",
    "ServerUnreachable",
]

DEFAULT_URL = "http://127.0.0.1:8000"
#: The server sends a keep-alive comment every 15 s on a quiet event stream.
STREAM_READ_TIMEOUT = 45.0


class ClientError(Exception):
    """Base of the errors the client raises; ``str()`` is a one-line message for people."""


class ServerUnreachable(ClientError):
    """No HTTP answer at all: refused, unknown host, timed out."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"cannot reach the agentflow server at {url} ({reason}); is it running? Set --url or AGENTFLOW_URL."
        )
        self.url = url


class InvalidUrl(ClientError):
    """``--url`` is not an http(s) URL (a usage error)."""


class ApiError(ClientError):
    """The server answered with an error (a problem+json body when it is agentflow)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.code = str(problem.get("code") or "")
        self.detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
        self.errors: list[dict[str, Any]] = list(problem.get("errors") or [])
        fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in self.errors)
        super().__init__(fields or self.detail)


class ServerEvent:
    """One server-sent event of a run's stream: ``update`` or ``end``, with the record, and its id
    (reconnecting with it as ``Last-Event-ID`` resumes after it)."""

    __slots__ = ("id", "name", "record")

    def __init__(self, name: str, record: dict[str, Any], id: str | None = None) -> None:
        self.name = name
        self.record = record
        self.id = id


class AgentflowClient:
    """Talks to ``url``; sends ``Authorization: Bearer <api_key>`` when a key is given."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": "agentflow-cli"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        try:
            self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        except httpx.InvalidURL:
            raise InvalidUrl(f"{url!r} is not an http:// or https:// URL") from None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgentflowClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- calls ----------------------------------------------------------------------------------

    def submit(self, workflow_type: str, body: dict[str, Any]) -> dict[str, Any]:
        """Start a run; returns its (queued) record."""
        return self._json("POST", f"/workflows/{workflow_type}", json=body)

    def get(self, workflow_id: str) -> dict[str, Any]:
        return self._json("GET", f"/workflows/{workflow_id}")

    def list(self, *, status: str | None = None, workflow_type: str | None = None, limit: int = 20) -> dict[str, Any]:
        params: dict[str, str | int] = {"limit": limit}
        if status:
            params["status"] = status
        if workflow_type:
            params["type"] = workflow_type
        return self._json("GET", "/workflows", params=params)

    def cancel(self, workflow_id: str) -> dict[str, Any]:
        return self._json("POST", f"/workflows/{workflow_id}/cancel")

    def resume(self, workflow_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Answer a waiting run: ``{"action": "approve"|"edit"|"reject", "plan": ...}``."""
        return self._json("POST", f"/workflows/{workflow_id}/resume", json=body)

    def export(self, workflow_id: str, fmt: str) -> bytes:
        """The run's result as ``md``, ``html``, ``json`` or ``bib`` (the server renders it)."""
        return self._request("GET", f"/workflows/{workflow_id}/export", params={"format": fmt}).content

    @contextmanager
    def events(self, workflow_id: str, *, last_event_id: str | None = None) -> Iterator[Iterator[ServerEvent]]:
        """The run's event stream: ``update`` events with the full record, then one ``end``
        (``token`` events are skipped); after ``last_event_id``, when given."""
        timeout = httpx.Timeout(self._http.timeout.connect, read=STREAM_READ_TIMEOUT)
        path = f"/workflows/{workflow_id}/events"
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        with self._mapped(), connect_sse(self._http, "GET", path, timeout=timeout, headers=headers) as source:
            if source.response.is_error:
                source.response.read()
                raise _api_error(source.response)
            yield self._parsed(source.iter_sse())

    def _parsed(self, events: Iterator[Any]) -> Iterator[ServerEvent]:
        with self._mapped():
            try:
                for event in events:
                    if event.event in ("update", "end"):
                        yield ServerEvent(event.event, json.loads(event.data), event.id or None)
            except SSEError as error:
                raise ClientError(f"the server's event stream is not server-sent events ({error})") from None

    # --- plumbing -------------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self._request(method, path, **kwargs).json()
        return body

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._mapped():
            response = self._http.request(method, path, **kwargs)
        if response.is_error:
            raise _api_error(response)
        return response

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        """Transport failures become ``ServerUnreachable`` (the CLI's exit code 3)."""
        try:
            yield
        except httpx.ConnectError as error:
            raise ServerUnreachable(self.url, _reason(error)) from None
        except httpx.TimeoutException:
            raise ServerUnreachable(self.url, "no answer in time") from None
        except (httpx.RemoteProtocolError, httpx.ReadError) as error:
            raise ServerUnreachable(self.url, f"connection lost: {_reason(error)}") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL):
            raise InvalidUrl(f"{self.url!r} is not an http:// or https:// URL") from None


def _api_error(response: httpx.Response) -> ApiError:
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    problem.setdefault("title", response.reason_phrase)
    return ApiError(response.status_code, problem)


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    if "refused" in text.lower():
        return "connection refused"
    if "name or service not known" in text.lower() or "nodename nor servname" in text.lower():
        return "unknown host"
    return text.splitlines()[0][:120]
