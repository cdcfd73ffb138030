"""The client commands behind ``agentflow run|watch|get|list|cancel|resume``; each returns an exit code.

Exit codes: 0 the run completed (or the command did what it was asked), 1 the run failed or was
cancelled (or the server refused), 2 a usage error (the server's 422 included), 3 the server is
unreachable, 4 the run waits for an answer (``agentflow resume``), 130 detached from a run with
Ctrl-C (the run goes on). Errors are one line on stderr.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec

from rich.console import Console
from rich.prompt import Confirm

from backend.client.display import (
    ProgressView,
    print_json,
    print_markdown,
    print_pending,
    print_runs,
    summary,
    terminal,
)
from backend.client.http import AgentflowClient, ApiError, ClientError, InvalidUrl, ServerUnreachable

__all__ = [
    "EXIT_DETACHED",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "EXIT_WAITING",
    "Connection",
    "cancel",
    "get",
    "list_runs",
    "resume",
    "run",
    "watch",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_WAITING, EXIT_DETACHED = 0, 1, 2, 3, 4, 130
P = ParamSpec("P")
#: Reconnects to a dropped event stream (a restarting server) before giving up.
STREAM_RETRIES = 5


@dataclass(frozen=True, slots=True)
class Connection:
    """Where the server is and the key to send (``--url`` / ``--api-key``)."""

    url: str
    api_key: str | None = None

    def client(self) -> AgentflowClient:
        return AgentflowClient(self.url, api_key=self.api_key)


def _stderr() -> Console:
    # Colour only when stdout is a terminal too: piped output means a script or CI is reading.
    return Console(stderr=True, highlight=False, color_system="auto" if sys.stdout.isatty() else None)


def _stdout() -> Console:
    return Console(highlight=False)


def _note(message: str, console: Console | None = None, style: str | None = None) -> None:
    """One plain line on stderr (never parsed as markup, never wrapped)."""
    (console or _stderr()).print(message, markup=False, soft_wrap=True, highlight=False, style=style)


def _fail(message: str, code: int) -> int:
    _note(f"agentflow: {message}")
    return code


def _handled(command: Callable[P, int]) -> Callable[P, int]:
    """Client errors become one stderr line and their exit code, never a traceback."""

    @functools.wraps(command)
    def call(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            return command(*args, **kwargs)
        except ServerUnreachable as error:
            return _fail(str(error), EXIT_UNREACHABLE)
        except ApiError as error:
            return _fail(str(error), EXIT_USAGE if error.status == 422 else EXIT_FAILED)
        except InvalidUrl as error:
            return _fail(str(error), EXIT_USAGE)
        except ClientError as error:
            return _fail(str(error), EXIT_FAILED)

    return call


# --- commands -------------------------------------------------------------------------------------


@_handled
def run(connection: Connection, workflow_type: str, body: dict[str, Any], *, wait: bool, as_json: bool) -> int:
    """Submit a run; with ``wait``, follow it live and show its result."""
    with connection.client() as client:
        record = client.submit(workflow_type, body)
        if not wait:
            if as_json:
                print_json(record)
            else:
                workflow_id = record["workflow_id"]
                sys.stdout.write(workflow_id + "\n")
                _note(f"Submitted {workflow_type} run ({record['status']}). Follow it: agentflow watch {workflow_id}")
            return EXIT_OK
        return _follow_and_show(client, record, as_json=as_json)


@_handled
def watch(connection: Connection, workflow_id: str, *, as_json: bool) -> int:
    """Follow a run live until it ends, then show its result."""
    with connection.client() as client:
        return _follow_and_show(client, client.get(workflow_id), as_json=as_json)


@_handled
def get(connection: Connection, workflow_id: str, *, fmt: str, output: Path | None) -> int:
    """Write a run's export (md, html, json, bib) to ``output`` or stdout."""
    with connection.client() as client:
        body = client.export(workflow_id, fmt)
    if output is not None:
        output.write_bytes(body)
        _note(f"Wrote {len(body):,} bytes to {output}")
        return EXIT_OK
    out = _stdout()
    if fmt == "md" and out.is_terminal:
        print_markdown(body.decode("utf-8"), out)
    else:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    return EXIT_OK


@_handled
def list_runs(
    connection: Connection, *, status: str | None, workflow_type: str | None, limit: int, as_json: bool
) -> int:
    """List runs, newest first."""
    with connection.client() as client:
        page = client.list(status=status, workflow_type=workflow_type, limit=limit)
    if as_json:
        print_json(page)
    else:
        print_runs(page["items"], _stdout())
    return EXIT_OK


@_handled
def cancel(connection: Connection, workflow_id: str) -> int:
    """Cancel a queued or running run."""
    with connection.client() as client:
        record = client.cancel(workflow_id)
    note = "" if terminal(record) else " (cancel requested: it stops at its next node boundary)"
    sys.stdout.write(f"{record['workflow_id']} {record['status']}{note}\n")
    return EXIT_OK


@_handled
def resume(
    connection: Connection,
    workflow_id: str,
    action: str,
    *,
    plan_file: Path | None = None,
    wait: bool = False,
    as_json: bool = False,
) -> int:
    """Answer a waiting run; with ``wait``, follow it (when it continues) and show its result."""
    body: dict[str, Any] = {"action": action}
    if plan_file is not None:
        try:
            body["plan"] = json.loads(plan_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            return _fail(f"cannot read the plan from {plan_file}: {error}", EXIT_USAGE)
    elif action == "edit":
        return _fail("action edit needs --plan FILE (the edited plan as JSON)", EXIT_USAGE)
    with connection.client() as client:
        record = client.resume(workflow_id, body)
        if wait and not terminal(record):
            return _follow_and_show(client, record, as_json=as_json)
    if as_json:
        print_json(record)
    else:
        sys.stdout.write(f"{record['workflow_id']} {record['status']}\n")
    return EXIT_OK


# --- following a run ------------------------------------------------------------------------------


def follow(client: AgentflowClient, record: dict[str, Any], view: ProgressView) -> dict[str, Any]:
    """Feed ``view`` from the run's event stream until the run ends; returns the final record.

    A stream that drops (a restarting server) is reopened after the last event seen
    (``Last-Event-ID``): at once if it was delivering events, else after a back-off, up to
    ``STREAM_RETRIES`` times in a row. The run itself lives on the server and resumes there.
    """
    view.update(record)
    failures = 0
    last_id: str | None = None
    while not terminal(record) and record.get("status") != "waiting":
        received, lost = False, None
        try:
            with client.events(record["workflow_id"], last_event_id=last_id) as events:
                for event in events:
                    record, received = event.record, True
                    last_id = event.id or last_id
                    if record.get("status") == "waiting" and event.name != "end":
                        # The stream replays the run's history: a pause it was already resumed
                        # from is not where it stands now.
                        record = client.get(record["workflow_id"])
                        if record.get("status") != "waiting":
                            continue
                    view.update(record)
                    if event.name == "end" or record.get("status") == "waiting":
                        return record
        except ServerUnreachable as error:
            lost = error
        if received:
            failures = 0
            continue
        if failures >= STREAM_RETRIES:
            raise lost or ClientError(f"the server keeps closing the event stream of run {record['workflow_id']}")
        failures += 1
        time.sleep(min(0.25 * 2**failures, 8.0))  # back-off between reconnects
    return record


def _follow_and_show(client: AgentflowClient, record: dict[str, Any], *, as_json: bool) -> int:
    final = _follow_interactively(client, record)
    if final is None:
        return EXIT_DETACHED
    if as_json:
        print_json(final)
    elif final.get("status") == "waiting":
        print_pending(final, _stdout())
    elif final.get("result") is not None:
        print_markdown(client.export(final["workflow_id"], "md").decode("utf-8"), _stdout())
    _note(summary(final), style=None if final["status"] in ("completed", "waiting") else "red")
    if final["status"] == "waiting":
        return EXIT_WAITING
    return EXIT_OK if final["status"] == "completed" else EXIT_FAILED


def _follow_interactively(client: AgentflowClient, record: dict[str, Any]) -> dict[str, Any] | None:
    """``follow`` with Ctrl-C asking whether to cancel the run or detach (None: detached)."""
    err = _stderr()
    while True:
        try:
            # Spinner and colour only when both streams are a terminal: a pipe means a script.
            with ProgressView(err, live=sys.stdout.isatty()) as view:
                return follow(client, record, view)
        except KeyboardInterrupt:
            workflow_id = record["workflow_id"]
            if not _ask_to_cancel(err, workflow_id):
                _note(f"Detached; the run goes on. Follow it again: agentflow watch {workflow_id}", err)
                return None
            try:
                record = client.cancel(workflow_id)
            except ApiError as error:
                if error.status != 409:  # 409: it ended meanwhile; following shows how
                    raise
                record = client.get(workflow_id)
            _note("Cancel requested; waiting for the run to stop…", err)


def _ask_to_cancel(err: Console, workflow_id: str) -> bool:
    """Ask on a terminal; without one there is nobody to ask, so detach (never destroy work)."""
    if not sys.stdin.isatty():
        return False
    try:
        return Confirm.ask(
            f"\nCancel run {workflow_id}? ([bold]n[/] detaches and leaves it running)", console=err, default=False
        )
    except (KeyboardInterrupt, EOFError):
        return False
