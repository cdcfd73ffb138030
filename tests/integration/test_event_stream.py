"""Resumable event streams against real ``agentflow serve`` processes, read with httpx-sse.

- A client that disconnects after 3 events and reconnects with ``Last-Event-ID`` receives every
  later event exactly once, also when the server is stopped mid-run (SIGTERM or SIGKILL) and
  started again on the same SQLite file: the run resumes there and the stream continues. What
  the client received is compared with the run's full stored event log.
- Token events arrive while the run is still running. LLM calls stream tokens only while a
  client watches the run, so the stand-in holds each critique until the test lets it through:
  the text call that follows it starts only once the reconnected client is known to watch.
- Cross-process: an API process (PostgreSQL, queue executor, no worker) streams a run that an
  ``agentflow worker`` process executes.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from httpx_sse import connect_sse

from tests.integration.servers import ServerProcess, WorkerProcess
from tests.standins import ChatRequest, OpenAIConfig, StandinServer

pytestmark = pytest.mark.slow
#: Start-up allowance: this machine is shared and loaded (imports alone have taken 60 s).
START = 180.0

#: draft, critique, revise, critique, revise, critique: six calls.
BODY = {"topic": "Resumable streams", "max_iterations": 2, "score_threshold": 10, "cache": "bypass"}
Event = tuple[str, int, str]  # (event, id, data)


def _read(base_url: str, workflow_id: str, *, after: int | None = None, stop: Any = None) -> list[Event]:
    """Events of one connection, until ``end``, until ``stop(events)`` says so, or until it drops."""
    headers = {"Last-Event-ID": str(after)} if after is not None else {}
    received: list[Event] = []
    timeout = httpx.Timeout(10, read=60)
    try:
        with (
            httpx.Client(base_url=base_url, timeout=timeout) as http,
            connect_sse(http, "GET", f"/workflows/{workflow_id}/events", headers=headers) as source,
        ):
            assert source.response.status_code == 200
            for sse in source.iter_sse():
                received.append((sse.event, int(sse.id), sse.data))
                if sse.event == "end" or (stop is not None and stop(received)):
                    break
    except httpx.TransportError:  # the server went away mid-stream
        pass
    return received


def _visible(kind: str, data: Any) -> str | None:
    """The SSE event a stored event becomes on /workflows/{id}/events (None: not shown there)."""
    if kind == "status":
        return "update"
    if kind == "end":
        return "end"
    if kind == "messages":
        chunk = data[0]
        return "token" if chunk.get("type") == "AIMessageChunk" and chunk.get("content") else None
    return None


def _stored_sqlite(path: Path, workflow_id: str) -> list[tuple[int, str, Any]]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT seq, kind, data FROM run_events WHERE workflow_id = ? ORDER BY seq", (workflow_id,)
        ).fetchall()
    return [(seq, kind, json.loads(data)) for seq, kind, data in rows]


def _shown(stored: list[tuple[int, str, Any]]) -> list[tuple[str, int]]:
    return [(name, seq) for seq, kind, data in stored if (name := _visible(kind, data)) is not None]


class CritiqueHold:
    """Holds the critique of draft version N at the stand-in until ``release(N)`` (or ``open()``).

    A reflection run alternates text calls (draft, revise) and critiques, so holding a critique
    decides when the next text call may start. A text call streams tokens only if someone
    watches the run when it starts; releasing a critique once a client has received an event
    (its watch is registered before the server sends anything) makes the next text call stream.
    """

    def __init__(self) -> None:
        self._released = 0

    def release(self, version: int) -> None:
        self._released = max(self._released, version)

    def open(self) -> None:
        self.release(1_000_000)

    async def respond(self, request: ChatRequest) -> None:
        """Answer nothing (the stand-in's default answer follows), a critique only once released."""
        if request.schema_name is None:
            return  # a text call: at once
        found = re.search(r'<draft version="(\d+)">', request.last_user_message)
        version = int(found.group(1)) if found else 0
        while version > self._released:  # polled: the test thread sets it, the stand-in's loop reads it
            await asyncio.sleep(0.02)


@pytest.fixture
def processes() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_a_reconnecting_client_gets_every_event_once_across_a_restart(
    stop: str, tmp_path: Path, standin: StandinServer, processes: ExitStack
) -> None:
    hold = CritiqueHold()
    processes.callback(hold.open)  # never leave a request held in the shared stand-in
    standin.configure(openai=OpenAIConfig(responder=hold.respond))
    database = tmp_path / "events.db"
    env = {
        **standin.env(),
        "AGENTFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "AGENTFLOW_SHUTDOWN_GRACE_SECONDS": "0",  # SIGTERM leaves the run resumable at once
    }
    first = ServerProcess(env)
    processes.callback(first.kill)
    first.start(START)
    workflow_id = httpx.post(f"{first.base_url}/workflows/reflection", json=BODY, timeout=30).json()["workflow_id"]

    # 1. Two events (``running``, then the draft's update or its tokens: both come before the
    # first critique is answered), then the client goes away.
    part1 = _read(first.base_url, workflow_id, stop=lambda events: len(events) >= 2)
    assert len(part1) == 2 and part1[0][0] == "update"
    hold.release(1)

    # 2. Reconnect after the second; the server stops mid-run while this stream is open. Its first
    # event proves it watches, so the revision after the second critique streams its tokens;
    # the third critique stays held, so the run is still running when the server stops.
    def tokens_while_running(events: list[Event]) -> bool:
        hold.release(2)
        if events[-1][0] == "token" and [name for name, _, _ in events].count("token") == 1:
            status = httpx.get(f"{first.base_url}/workflows/{workflow_id}", timeout=10).json()["status"]
            assert status == "running", "a token arrived only after the run ended"
        return sum(name == "update" for name, _, _ in events) >= 2 and any(name == "token" for name, _, _ in events)

    part2 = _read(first.base_url, workflow_id, after=part1[-1][1], stop=tokens_while_running)
    assert part2 and part2[-1][0] != "end", "the run ended before the server could be stopped"
    assert any(name == "token" for name, _, _ in part2)
    # Events are written every 0.1 s, and a SIGKILL loses what is not: wait until a token is
    # stored (the run waits on the held critique meanwhile), so the log compared below has one.
    deadline = time.monotonic() + 60
    while "token" not in {name for name, _ in _shown(_stored_sqlite(database, workflow_id))}:
        assert time.monotonic() < deadline, "no token event was stored"
        time.sleep(0.05)
    if stop == "sigterm":
        first.terminate()
    else:
        first.kill()
    hold.open()

    # 3. Same file, same port: the run resumes; reconnect after the last event received.
    second = ServerProcess(env, port=first.port)
    processes.callback(second.kill)
    second.start(START)
    part3 = _read(second.base_url, workflow_id, after=part2[-1][1])
    assert part3 and part3[-1][0] == "end"
    assert json.loads(part3[-1][2])["status"] == "completed"
    record = httpx.get(f"{second.base_url}/workflows/{workflow_id}", timeout=10).json()
    assert record["status"] == "completed"
    second.terminate()

    received = [(name, event_id) for name, event_id, _ in part1 + part2 + part3]
    ids = [event_id for _, event_id in received]
    assert ids == sorted(set(ids)), "an event arrived twice or out of order"
    shown = _shown(_stored_sqlite(database, workflow_id))
    before_stop = part2[-1][1]
    # After each reconnect: exactly the stored events after the id it resumed from.
    assert [e for e in received if e[1] > before_stop] == [e for e in shown if e[1] > before_stop]
    assert [e for e in received if e[1] > part1[-1][1]][: len(part2)] == [(n, i) for n, i, _ in part2]
    if stop == "sigterm":  # nothing was lost: the client saw exactly the stored log
        assert received == shown
    else:  # a SIGKILL may lose the last unwritten events, never numbers: the rest is the log
        assert set(shown) <= set(received)
        lost = set(received) - set(shown)
        assert all(event_id <= before_stop for _, event_id in lost)
    assert "token" in {name for name, _ in shown}


@pytest.mark.postgres
def test_an_api_process_streams_a_run_a_worker_executes(
    postgres_url: str, standin: StandinServer, processes: ExitStack
) -> None:
    standin.configure(openai=OpenAIConfig(latency=0.3))
    env = {**standin.env(), "AGENTFLOW_DATABASE_URL": postgres_url}
    api = ServerProcess({**env, "AGENTFLOW_WORKER_CONCURRENCY": "0"})
    worker = WorkerProcess(env, concurrency=2)
    for process in (api, worker):
        processes.callback(process.kill)
        process.launch()
    api.wait_ready(START)
    worker.wait_ready(START)

    workflow_id = httpx.post(f"{api.base_url}/workflows/reflection", json=BODY, timeout=30).json()["workflow_id"]
    running_at_first_token: list[str] = []

    def note_first_token(events: list[Event]) -> bool:
        if events[-1][0] == "token" and not running_at_first_token:
            record = httpx.get(f"{api.base_url}/workflows/{workflow_id}", timeout=10).json()
            running_at_first_token.append(record["status"])
        return False

    live = _read(api.base_url, workflow_id, stop=note_first_token)
    assert live and live[-1][0] == "end" and json.loads(live[-1][2])["status"] == "completed"
    assert running_at_first_token == ["running"]
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute(
            "SELECT seq, kind, data FROM run_events WHERE workflow_id = %s ORDER BY seq", (workflow_id,)
        ).fetchall()
    assert [(name, event_id) for name, event_id, _ in live] == _shown(
        [(seq, kind, data if not isinstance(data, str) else json.loads(data)) for seq, kind, data in rows]
    )
    # A late reader resumes from the store after any event.
    cut = live[len(live) // 2][1]
    assert _read(api.base_url, workflow_id, after=cut) == [event for event in live if event[1] > cut]
    api.terminate()
    worker.terminate()
