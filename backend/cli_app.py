"""The ``agentflow`` command line (typer): the server (``serve``, ``worker``, ``migrate``) and a client
for researchers (``run``, ``watch``, ``get``, ``list``, ``cancel``, ``resume``) that talks to a server over HTTP.

Entered through ``backend.cli.main`` (the ``agentflow`` script). Only typer is imported up front;
each command imports what it needs, so ``--help`` stays fast. The server commands live in
``backend.serving``, the client ones in ``backend.client.commands``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from backend.cli import DEFAULT_URL

if TYPE_CHECKING:
    from backend.client.commands import Connection

__all__ = ["app", "run_command_line"]


class ResumeAction(StrEnum):
    approve = "approve"
    edit = "edit"
    reject = "reject"


class ExportFormat(StrEnum):
    md = "md"
    html = "html"
    json = "json"
    bib = "bib"


class Status(StrEnum):
    queued = "queued"
    running = "running"
    waiting = "waiting"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


app = typer.Typer(
    name="agentflow",
    help="agentflow: durable agent workflows. Serve them, or run and follow them from the terminal.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain click help: rich's help renderer alone costs half a second
    pretty_exceptions_enable=False,  # plain tracebacks; never print local variables (keys)
    context_settings={"help_option_names": ["-h", "--help"]},
)
run_app = typer.Typer(help="Start a workflow run (add --wait to follow it live).", no_args_is_help=True)
app.add_typer(run_app, name="run")

# --- shared options -------------------------------------------------------------------------------

Url = Annotated[
    str, typer.Option("--url", envvar="AGENTFLOW_URL", help="The agentflow server.", rich_help_panel="Connection")
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="AGENTFLOW_API_KEY",
        help="Sent as Authorization: Bearer <key>.",
        show_envvar=True,
        rich_help_panel="Connection",
    ),
]
Wait = Annotated[bool, typer.Option("--wait", "-w", help="Follow the run live and print its result.")]
Json = Annotated[bool, typer.Option("--json", help="Print the run record as JSON (for scripts).")]
Topic = Annotated[str, typer.Argument(help="What to write about or research.", show_default=False)]
WorkflowId = Annotated[str, typer.Argument(help="The workflow id.", show_default=False)]


def _client() -> Any:
    from backend.client import commands

    return commands


def _connection(url: str, api_key: str | None) -> Connection:
    from backend.client.commands import Connection

    return Connection(url=url, api_key=api_key or None)


# --- client commands ------------------------------------------------------------------------------


@run_app.command("reflection")
def run_reflection(
    topic: Topic,
    max_iterations: Annotated[int | None, typer.Option(help="Most revisions (server default 3).")] = None,
    score_threshold: Annotated[float | None, typer.Option(help="Stop once a critique scores this (0-10).")] = None,
    wait: Wait = False,
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Draft, critique and revise a text until it is good enough."""
    body: dict[str, Any] = {"topic": topic}
    if max_iterations is not None:
        body["max_iterations"] = max_iterations
    if score_threshold is not None:
        body["score_threshold"] = score_threshold
    code = _client().run(_connection(url, api_key), "reflection", body, wait=wait, as_json=as_json)
    raise typer.Exit(code)


@run_app.command("research")
def run_research(
    question: Annotated[str, typer.Argument(help="The research question.", show_default=False)],
    sources: Annotated[
        str | None, typer.Option(help="Comma-separated: arxiv, web (server default: both).", metavar="LIST")
    ] = None,
    max_queries: Annotated[int | None, typer.Option(help="Most search queries per source.")] = None,
    reflect: Annotated[bool, typer.Option("--reflect", help="Critique the report once and revise it.")] = False,
    wait: Wait = False,
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Search arXiv and the web, then write a report citing only what was retrieved."""
    body: dict[str, Any] = {"topic": question}
    if sources is not None:
        body["sources"] = [name.strip() for name in sources.split(",") if name.strip()]
    if max_queries is not None:
        body["max_queries"] = max_queries
    if reflect:
        body["reflect"] = True
    code = _client().run(_connection(url, api_key), "research", body, wait=wait, as_json=as_json)
    raise typer.Exit(code)


@run_app.command("planner")
def run_planner(
    goal: Annotated[str, typer.Argument(help="The goal to plan for and deliver.", show_default=False)],
    approve_plan: Annotated[
        bool, typer.Option("--approve-plan", help="Stop after planning until you resume the run.")
    ] = False,
    max_steps: Annotated[int | None, typer.Option(help="Most plan steps (server default 8).")] = None,
    sources: Annotated[
        str | None, typer.Option(help="Comma-separated: arxiv, web (server default: both).", metavar="LIST")
    ] = None,
    wait: Wait = False,
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Plan the goal into steps, run them (independent ones in parallel) and write a cited deliverable."""
    body: dict[str, Any] = {"topic": goal}
    if approve_plan:
        body["approve_plan"] = True
    if max_steps is not None:
        body["max_steps"] = max_steps
    if sources is not None:
        body["sources"] = [name.strip() for name in sources.split(",") if name.strip()]
    code = _client().run(_connection(url, api_key), "planner", body, wait=wait, as_json=as_json)
    raise typer.Exit(code)


@app.command()
def watch(workflow_id: WorkflowId, as_json: Json = False, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Follow a run live until it ends, then print its result (Ctrl-C: cancel or detach)."""
    raise typer.Exit(_client().watch(_connection(url, api_key), workflow_id, as_json=as_json))


@app.command()
def get(
    workflow_id: WorkflowId,
    format: Annotated[ExportFormat, typer.Option("--format", "-f", help="Export format.")] = ExportFormat.md,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.", dir_okay=False)] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Export a run's result: Markdown, HTML (print to PDF), JSON or BibTeX."""
    raise typer.Exit(_client().get(_connection(url, api_key), workflow_id, fmt=format.value, output=output))


@app.command("list")
def list_(
    status: Annotated[Status | None, typer.Option(help="Only runs with this status.")] = None,
    type: Annotated[str | None, typer.Option("--type", help="Only this workflow type.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many runs.")] = 20,
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """List runs, newest first."""
    code = _client().list_runs(
        _connection(url, api_key),
        status=status.value if status else None,
        workflow_type=type,
        limit=limit,
        as_json=as_json,
    )
    raise typer.Exit(code)


@app.command()
def cancel(workflow_id: WorkflowId, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Cancel a queued, running or waiting run."""
    raise typer.Exit(_client().cancel(_connection(url, api_key), workflow_id))


@app.command()
def resume(
    workflow_id: WorkflowId,
    action: Annotated[ResumeAction, typer.Argument(help="approve, edit (with --plan) or reject.")],
    plan: Annotated[
        Path | None,
        typer.Option("--plan", help="action edit: a JSON file with the edited plan.", dir_okay=False, exists=True),
    ] = None,
    wait: Wait = False,
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Answer a run that waits for you (e.g. approve its plan); reject ends it cancelled."""
    code = _client().resume(
        _connection(url, api_key), workflow_id, action.value, plan_file=plan, wait=wait, as_json=as_json
    )
    raise typer.Exit(code)


# --- server commands ------------------------------------------------------------------------------


@app.command(rich_help_panel="Server")
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (AGENTFLOW_HOST, default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (AGENTFLOW_PORT, default 8000).")] = None,
    workers: Annotated[int | None, typer.Option(help="Server processes (AGENTFLOW_WORKERS, default 1).")] = None,
    worker_concurrency: Annotated[
        int | None,
        typer.Option(
            help="Queue executor: runs each server process executes at once; 0 = API only "
            "(AGENTFLOW_WORKER_CONCURRENCY, default AGENTFLOW_MAX_CONCURRENT_WORKFLOWS)."
        ),
    ] = None,
) -> None:
    """Serve the HTTP API and the web page (and, with the queue executor, run jobs)."""
    from backend import serving

    code = serving.main("serve", host=host, port=port, workers=workers, worker_concurrency=worker_concurrency)
    raise typer.Exit(code)


@app.command(rich_help_panel="Server")
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Runs executed at once (default AGENTFLOW_MAX_CONCURRENT_WORKFLOWS).")
    ] = None,
) -> None:
    """Run queued workflows (queue executor, PostgreSQL)."""
    from backend import serving

    raise typer.Exit(serving.main("worker", concurrency=concurrency))


@app.command(rich_help_panel="Server")
def migrate() -> None:
    """Upgrade the database schema and exit."""
    from backend import serving

    raise typer.Exit(serving.main("migrate"))


keys_app = typer.Typer(help="Manage API keys on the configured database.", no_args_is_help=True)
app.add_typer(keys_app, name="keys", rich_help_panel="Server")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="What the key is for (shown in listings).")],
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="admin: see and manage everything (repeatable).")
    ] = None,
    max_queued: Annotated[int | None, typer.Option(help="Unfinished workflows allowed at once.")] = None,
    rate_limit: Annotated[str | None, typer.Option(help="The key's own submit limit, e.g. 30/minute.")] = None,
    as_json: Json = False,
) -> None:
    """Create an API key and print its secret, once."""
    from backend import keys_cli

    unknown = sorted(set(scope or []) - {"admin"})
    if unknown:
        typer.echo(f"agentflow: --scope: unknown scope {unknown[0]!r} (known: admin)", err=True)
        raise typer.Exit(2)
    code = keys_cli.create(
        name=name, admin="admin" in (scope or []), max_queued=max_queued, rate_limit=rate_limit, as_json=as_json
    )
    raise typer.Exit(code)


@keys_app.command("list")
def keys_list(as_json: Json = False) -> None:
    """List API keys: ids, prefixes, scopes, state; never secrets."""
    from backend import keys_cli

    raise typer.Exit(keys_cli.list_keys(as_json=as_json))


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (key_…).", show_default=False)]) -> None:
    """Revoke an API key: every server refuses it within a second."""
    from backend import keys_cli

    raise typer.Exit(keys_cli.revoke(key_id=key_id))


def run_command_line(argv: list[str] | None = None) -> int:
    """Run the command line (``sys.argv`` by default); returns the exit code."""
    try:
        app(args=argv, prog_name="agentflow")
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        return 1
    return 0
