"""``python -m bench.profile_report FILE.txt [--top N]``: summarize a py-spy ``--format raw`` profile.

Prints, as % of all samples: time by component (each sample goes to the innermost frame that
belongs to a known library or to agentflow; stdlib frames such as json, typing or asyncio count
for the library that called them), the heaviest functions inclusive of what they call, the
heaviest leaf functions, and which agentflow function each sample last passed through.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

__all__ = ["load", "summarize"]

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*)(?::(?P<line>\d+))?\)$")
_PROJECT = ("backend/", "agents/", "workflows/")
# First path segment (as py-spy prints it) → component. Not listed (stdlib, anyio, typing ...):
# the sample goes to the component that called it.
_COMPONENTS = {
    "openai": "openai SDK (request transform, response parse)",
    "httpx2": "HTTP client to the LLM (httpx2/httpcore2/h11)",
    "httpcore2": "HTTP client to the LLM (httpx2/httpcore2/h11)",
    "h11": "HTTP client to the LLM (httpx2/httpcore2/h11)",
    "langchain_core": "langchain (runnables, callbacks, message conversion)",
    "langchain_openai": "langchain (runnables, callbacks, message conversion)",
    "langsmith": "langchain (runnables, callbacks, message conversion)",
    "uuid_utils": "langchain (runnables, callbacks, message conversion)",
    "pregel": "langgraph (Pregel loop, channels, routing)",
    "_internal": "langgraph (Pregel loop, channels, routing)",
    "graph": "langgraph (Pregel loop, channels, routing)",
    "channels": "langgraph (Pregel loop, channels, routing)",
    "runtime.py": "langgraph (Pregel loop, channels, routing)",
    "langgraph": "langgraph (Pregel loop, channels, routing)",
    "serde": "langgraph checkpointer (serialize, AsyncSqliteSaver)",
    "sqlite": "langgraph checkpointer (serialize, AsyncSqliteSaver)",
    "base": "langgraph checkpointer (serialize, AsyncSqliteSaver)",
    "sqlalchemy": "SQLAlchemy ORM (WorkflowStore)",
    "greenlet": "SQLAlchemy ORM (WorkflowStore)",
    "aiosqlite": "aiosqlite threads (SQLite calls, store + checkpoints)",
    "fastapi": "FastAPI/Starlette (routing, deps, validation)",
    "starlette": "FastAPI/Starlette (routing, deps, validation)",
    "uvicorn": "uvicorn (HTTP server, proxy-headers middleware)",
    "pydantic": "pydantic",
    "logging": "logging (stdlib + JSON formatter)",
    "pythonjsonlogger": "logging (stdlib + JSON formatter)",
    "limits": "rate limiter (limits/slowapi)",
    "slowapi": "rate limiter (limits/slowapi)",
    "backend": "agentflow code (backend/agents/workflows)",
    "agents": "agentflow code (backend/agents/workflows)",
    "workflows": "agentflow code (backend/agents/workflows)",
}


def load(path: Path) -> Counter[tuple[str, ...]]:
    """Stacks (root first) → sample counts."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    return f"{match['func']} ({match['file']})"


def _component(stack: tuple[str, ...]) -> str:
    for frame in reversed(stack):
        match = _FRAME.match(frame)
        if not match:
            continue
        path = match["file"]
        if path.startswith("<sqlalchemy"):
            return _COMPONENTS["sqlalchemy"]
        component = _COMPONENTS.get(path.split("/", 1)[0])
        if component is not None:
            return component
    return "event loop / stdlib"


def summarize(stacks: Counter[tuple[str, ...]], top: int = 25) -> str:
    total = sum(stacks.values())
    if not total:
        return "no samples"
    components: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    for stack, n in stacks.items():
        components[_component(stack)] += n
        for name in {_short(f) for f in stack}:
            inclusive[name] += n
        leaf[_short(stack[-1])] += n
        project = [f for f in stack if any(f"({p}" in f for p in _PROJECT)]
        ours[_short(project[-1]) if project else "(no agentflow frame)"] += n

    def block(title: str, counter: Counter[str], limit: int) -> list[str]:
        lines = [f"\n{title}"]
        for name, n in counter.most_common(limit):
            lines.append(f"  {n / total * 100:5.1f}%  {name}")
        return lines

    out = [f"{total} samples"]
    out += block("by component (innermost library or agentflow frame)", components, 20)
    out += block("inclusive (function and what it calls)", inclusive, top)
    out += block("self (leaf function)", leaf, top)
    out += block("last agentflow frame on the stack", ours, top)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_report", description=__doc__)
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    for path in args.files:
        print(f"=== {path}")
        print(summarize(load(path), args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
