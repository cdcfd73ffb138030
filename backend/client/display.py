"""What the CLI shows: a live progress panel (or plain lines off a terminal), reports, run lists."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markdown import Markdown
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

__all__ = ["ProgressView", "print_json", "print_markdown", "print_pending", "print_runs", "summary", "terminal"]

TERMINAL = frozenset({"completed", "failed", "cancelled"})
_STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "cancelled": "red",
    "running": "yellow",
    "queued": "yellow",
    "waiting": "magenta",
}


def terminal(record: dict[str, Any]) -> bool:
    return record.get("status") in TERMINAL


def _parse(stamp: str | None) -> datetime | None:
    return datetime.fromisoformat(stamp) if stamp else None


def elapsed(record: dict[str, Any], now: datetime | None = None) -> float:
    """Seconds the run has taken: its execution time once finished, else since it started."""
    if record.get("execution_time") is not None:
        return float(record["execution_time"])
    since = _parse(record.get("started_at")) or _parse(record.get("created_at"))
    if since is None:
        return 0.0
    return max(0.0, ((now or datetime.now(UTC)) - since).total_seconds())


def sources_found(record: dict[str, Any]) -> int | None:
    """Sources retrieved: from live progress when the server reports it, else from the result."""
    progress, result = record.get("progress") or {}, record.get("result") or {}
    if isinstance(progress.get("sources"), int):
        return int(progress["sources"])
    return len(result["sources"]) if isinstance(result.get("sources"), list) else None


def _tokens(record: dict[str, Any]) -> str:
    usage = record.get("usage") or {}
    tokens = f"{usage.get('input_tokens', 0):,} in / {usage.get('output_tokens', 0):,} out"
    return f"{tokens} ({usage.get('llm_calls', 0)} calls)"


def _cost(record: dict[str, Any]) -> str:
    cost = (record.get("usage") or {}).get("est_cost_usd", 0.0)
    return "unknown" if cost is None else f"${float(cost):.4f}"  # None: a model without a known price


def summary(record: dict[str, Any]) -> str:
    """One line: status, elapsed, tokens, cost (and sources for research)."""
    parts = [f"{record['workflow_type']} run {record['workflow_id']} {record['status']}", f"{elapsed(record):.1f} s"]
    usage = record.get("usage") or {}
    total = usage.get("input_tokens", 0) + usage.get("output_tokens", 0)
    parts += [f"{total:,} tokens ({usage.get('llm_calls', 0)} model calls)", _cost(record)]
    found = sources_found(record)
    if found is not None:
        parts.append(f"{found} sources")
    line = " · ".join(parts)
    error = record.get("error")
    return f"{line} — {error['code']}: {error['message']}" if error else line


class _Panel:
    """The live panel; re-rendered a few times a second, so elapsed time ticks between events."""

    def __init__(self) -> None:
        self.record: dict[str, Any] | None = None
        self.trail: list[str] = []
        self._spinner = Spinner("dots")

    def __rich__(self) -> RenderableType:
        record = self.record
        if record is None:
            return Text("connecting…")
        status = record["status"]
        head = Text.assemble(
            (f"{record['workflow_type']} ", "bold"),
            (record["workflow_id"], "dim"),
            " ",
            (status, _STATUS_STYLE.get(status, "")),
        )
        progress = record.get("progress") or {}
        facts = Table.grid(padding=(0, 2))
        facts.add_column(style="dim", justify="right")
        facts.add_column()
        facts.add_row("node", progress.get("node") or "—")
        facts.add_row("iteration", str(progress.get("iteration", 0)))
        if record["workflow_type"] == "research":
            found = sources_found(record)
            facts.add_row("sources", "—" if found is None else str(found))
        facts.add_row("tokens", _tokens(record))
        facts.add_row("cost", _cost(record))
        facts.add_row("elapsed", f"{elapsed(record):.1f} s")
        parts: list[RenderableType] = [head, facts]
        if self.trail:
            parts.append(Text(" → ".join(self.trail), style="dim"))
        if status in TERMINAL or status == "waiting":
            return Group(*parts)
        self._spinner.text = head
        return Group(self._spinner, *parts[1:])


class ProgressView:
    """Shows a run's progress on ``console``: a live panel on a terminal, else one plain line per step.

    ``live=False`` forces plain lines. Use as a context manager around the updates; ``update``
    takes each new record.
    """

    def __init__(self, console: Console, *, live: bool = True) -> None:
        self.console = console
        self.live = live and console.is_terminal and not console.is_dumb_terminal
        self._panel = _Panel()
        self._live: Live | None = None
        self._last_line: tuple[Any, ...] | None = None

    @property
    def panel(self) -> RenderableType:
        """The live panel (also what a terminal shows at this moment)."""
        return self._panel

    def __enter__(self) -> ProgressView:
        if self.live:
            self._live = Live(self._panel, console=self.console, refresh_per_second=8, transient=False)
            self._live.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def update(self, record: dict[str, Any]) -> None:
        node = (record.get("progress") or {}).get("node")
        if node and (not self._panel.trail or self._panel.trail[-1] != node):
            self._panel.trail.append(node)
        self._panel.record = record
        if self._live is not None:
            self._live.refresh()
            return
        progress = record.get("progress") or {}
        key = (record["status"], progress.get("node"), progress.get("iteration"))
        if key != self._last_line:
            self._last_line = key
            self.console.print(self.plain_line(record), markup=False, highlight=False, soft_wrap=True)

    @staticmethod
    def plain_line(record: dict[str, Any]) -> str:
        progress = record.get("progress") or {}
        parts = [
            f"[{elapsed(record):7.1f}s]",
            f"{record['status']:<9}",
            f"node={progress.get('node') or '-'}",
            f"iteration={progress.get('iteration', 0)}",
        ]
        found = sources_found(record)
        if record["workflow_type"] == "research":
            parts.append(f"sources={'-' if found is None else found}")
        usage = record.get("usage") or {}
        parts += [f"tokens={usage.get('input_tokens', 0) + usage.get('output_tokens', 0)}", f"cost={_cost(record)}"]
        return " ".join(parts)


def print_markdown(text: str, console: Console) -> None:
    """Rendered on a terminal; the Markdown itself when piped (so it can be saved as a file)."""
    if console.is_terminal:
        console.print(Markdown(text, hyperlinks=True))
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()


def print_pending(record: dict[str, Any], console: Console) -> None:
    """What a waiting run asks, and how to answer it (the plan as a numbered list)."""
    pending = record.get("pending") or {}
    workflow_id = record["workflow_id"]
    lines = [f"## Run {workflow_id} is waiting: {pending.get('kind', 'a question')}", ""]
    for number, step in enumerate(((pending.get("plan") or {}).get("steps")) or [], start=1):
        needs = f" (after {', '.join(step['depends_on'])})" if step.get("depends_on") else ""
        lines.append(f"{number}. **{step['id']}** [{step['kind']}]{needs}: {step['instruction']}")
    lines += [
        "",
        f"Answer it: `agentflow resume {workflow_id} approve`, `... reject`, or `... edit --plan plan.json`"
        " (the plan above as JSON, edited).",
    ]
    print_markdown("\n".join(lines), console)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_runs(items: list[dict[str, Any]], console: Console) -> None:
    """A table on a terminal; tab-separated lines (with a header) otherwise."""
    columns = ("id", "type", "status", "created", "node", "topic")
    rows = [
        (
            item["workflow_id"],
            item["workflow_type"],
            item["status"],
            item["created_at"][:19].replace("T", " "),
            (item.get("progress") or {}).get("node") or "-",
            " ".join(str(item.get("input", {}).get("topic") or "").split()),
        )
        for item in items
    ]
    if not console.is_terminal:
        for row in [columns, *rows]:
            sys.stdout.write("\t".join(row) + "\n")
        sys.stdout.flush()
        return
    table = Table(*columns, box=None, header_style="bold dim")
    for row in rows:
        table.add_row(
            *row[:2],
            Text(row[2], style=_STATUS_STYLE.get(row[2], "")),
            *row[3:5],
            Text(row[5], overflow="ellipsis", no_wrap=True),
        )
    console.print(table)
