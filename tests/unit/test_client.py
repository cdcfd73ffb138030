"""The CLI's HTTP client and progress display against httpx.MockTransport (no server)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from rich.console import Console

from backend.cli import DEFAULT_URL as CLI_DEFAULT_URL
from backend.client import DEFAULT_URL, AgentflowClient, ApiError, ClientError, ServerUnreachable
from backend.client.commands import STREAM_RETRIES, follow
from backend.client.display import ProgressView

Handler = Callable[[httpx.Request], httpx.Response]


def record(status: str = "running", node: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "workflow_id": "wf-1",
        "workflow_type": "research",
        "status": status,
        "created_at": "2026-03-01T10:00:00Z",
        "started_at": "2026-03-01T10:00:01Z",
        "execution_time": 4.5 if status in {"completed", "failed", "cancelled"} else None,
        "input": {"topic": "t"},
        "result": None,
        "error": None,
        "progress": {"node": node, "iteration": 0},
        "usage": {"input_tokens": 10, "output_tokens": 5, "llm_calls": 1, "est_cost_usd": 0.001},
        **extra,
    }


def sse(*events: tuple[str, dict[str, Any]], keepalive: bool = False, first_id: int = 1) -> bytes:
    parts = [": keep-alive\n\n"] if keepalive else []
    parts += [
        f"event: {name}\nid: {first_id + n}\ndata: {json.dumps(body)}\n\n" for n, (name, body) in enumerate(events)
    ]
    return "".join(parts).encode()


def client(handler: Handler, **kwargs: Any) -> AgentflowClient:
    return AgentflowClient("http://agentflow.test", transport=httpx.MockTransport(handler), **kwargs)


def test_the_cli_default_url_is_the_clients() -> None:
    assert CLI_DEFAULT_URL == DEFAULT_URL


def test_api_key_is_sent_as_bearer_only_when_given() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(200, json=record())

    client(handler, api_key="af-key-123").get("wf-1")
    client(handler).get("wf-1")
    assert seen == ["Bearer af-key-123", None]


def test_problem_answers_become_api_errors_naming_the_fields() -> None:
    problem = {
        "title": "Validation error",
        "status": 422,
        "detail": "Invalid value for: body.topic",
        "code": "validation_error",
        "errors": [{"field": "body.topic", "message": "String should have at least 1 character", "type": "x"}],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json=problem, headers={"content-type": "application/problem+json"})

    with pytest.raises(ApiError) as caught:
        client(handler).submit("reflection", {"topic": ""})
    assert caught.value.status == 422
    assert caught.value.code == "validation_error"
    assert str(caught.value) == "body.topic: String should have at least 1 character"


def test_a_non_json_error_still_says_what_happened() -> None:
    with pytest.raises(ApiError, match="Bad Gateway"):
        client(lambda request: httpx.Response(502, text="<html>proxy</html>")).get("wf-1")


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), "connection refused"),
        (httpx.ConnectTimeout("timed out"), "no answer in time"),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), "connection lost"),
    ],
)
def test_transport_failures_are_server_unreachable(failure: Exception, reason: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    with pytest.raises(ServerUnreachable) as caught:
        client(handler).list()
    message = str(caught.value)
    assert reason in message
    assert "http://agentflow.test" in message
    assert "\n" not in message


def test_events_yield_updates_then_end_and_skip_keepalives() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/workflows/wf-1/events"
        body = sse(("update", record(node="plan_queries")), ("end", record("completed", "finalize")), keepalive=True)
        token = 'event: token\nid: 9\ndata: {"node": "draft", "content": "Hel", "message_id": "m"}\n\n'
        return httpx.Response(200, content=token.encode() + body, headers={"content-type": "text/event-stream"})

    with client(handler).events("wf-1") as events:
        seen = [(event.name, event.record["status"], event.id) for event in events]
    assert seen == [("update", "running", "1"), ("end", "completed", "2")]


def test_events_of_an_unknown_run_are_an_api_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            404, json={"title": "Not found", "detail": "No workflow with id 'x'.", "code": "not_found"}
        )

    with pytest.raises(ApiError, match="No workflow"), client(handler).events("x"):
        pass


def test_a_stream_that_is_not_sse_is_a_client_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"not": "a stream"})

    with pytest.raises(ClientError, match="not server-sent events"), client(handler).events("wf-1") as events:
        list(events)


def test_follow_reopens_a_dropped_stream_until_the_run_ends() -> None:
    streams = [
        sse(("update", record(node="plan_queries")), first_id=3),  # the server went away before `end`
        sse(("update", record(node="synthesize")), ("end", record("completed", "finalize")), first_id=7),
    ]
    resumed_after: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        resumed_after.append(request.headers.get("Last-Event-ID"))
        return httpx.Response(200, content=streams.pop(0), headers={"content-type": "text/event-stream"})

    out = io.StringIO()
    view = ProgressView(Console(file=out, force_terminal=False, width=200))
    final = follow(client(handler), record("queued"), view)
    assert final["status"] == "completed"
    assert streams == []
    assert resumed_after == [None, "3"]  # the second stream resumes after the last event seen
    lines = out.getvalue().splitlines()
    assert [re.search(r"node=(\S+)", line)[1] for line in lines] == ["-", "plan_queries", "synthesize", "finalize"]  # type: ignore[index]
    assert " completed " in lines[-1]


def _empty_stream() -> httpx.Response:
    return httpx.Response(200, content=b": keep-alive\n\n", headers={"content-type": "text/event-stream"})


def _refused() -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused")


@pytest.mark.parametrize(
    ("answer", "error"),
    [(_empty_stream, "keeps closing"), (_refused, "cannot reach")],
    ids=["empty-streams", "server-gone"],
)
def test_follow_gives_up_after_its_retries(
    monkeypatch: pytest.MonkeyPatch, answer: Callable[[], httpx.Response], error: str
) -> None:
    waits: list[float] = []
    monkeypatch.setattr("backend.client.commands.time.sleep", waits.append)
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return answer()

    view = ProgressView(Console(file=io.StringIO()))
    with pytest.raises(ClientError, match=error):
        follow(client(handler), record(), view)
    assert calls == STREAM_RETRIES + 1
    assert waits == sorted(waits) and len(waits) == STREAM_RETRIES  # backing off, not spinning


def test_plain_progress_prints_a_line_only_when_the_step_changes() -> None:
    out = io.StringIO()
    view = ProgressView(Console(file=out, force_terminal=False, width=200))
    assert not view.live
    for update in (record(node="plan_queries"), record(node="plan_queries"), record("completed", "finalize")):
        view.update(update)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("node=plan_queries iteration=0 sources=- tokens=15 cost=$0.0010")
    assert "\x1b[" not in out.getvalue()  # no colour or cursor control off a terminal


def test_importing_the_cli_loads_no_heavy_module() -> None:
    heavy = ("httpx", "rich", "fastapi", "pydantic", "langgraph", "sqlalchemy")
    code = f"import sys, backend.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
