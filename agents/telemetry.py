"""Where a run spends its time: its timeline of nodes and upstream calls, and OpenTelemetry spans.

Two consumers, one set of hooks:

- **Timeline** (always on): while a run executes, ``run_scope`` binds a ``Timeline``; every graph
  node (entered through ``agents.context.bind(node=...)``) and every upstream call (entered in
  ``call_with_retries``) appends one entry ``{name, kind, started_at, duration_ms, status,
  tokens, ...}``. The run engine stores it with the run.
- **Tracing** (off unless ``backend.observability`` enables it from the standard ``OTEL_*``
  environment): the same hooks open spans — the run, each node, each upstream call with model,
  tokens, status and its retries as events — under the HTTP request that submitted the run.
  The OpenTelemetry API is imported only once tracing is enabled.

Outside a run, and with tracing off, every hook is a cheap no-op.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from agents import context

__all__ = [
    "MAX_ENTRIES",
    "Call",
    "Timeline",
    "annotate",
    "current_ids",
    "current_traceparent",
    "disable_tracing",
    "enable_tracing",
    "node",
    "run_scope",
    "tracing_enabled",
    "upstream_call",
]

#: A run keeps at most this many timeline entries (a runaway loop must not grow its row forever).
MAX_ENTRIES = 1000

_tracer: Any = None  # an opentelemetry Tracer while tracing is enabled
_timeline: ContextVar[Timeline | None] = ContextVar("agentflow_timeline", default=None)
_node_entry: ContextVar[dict[str, Any] | None] = ContextVar("agentflow_node_entry", default=None)


class Timeline:
    """The entries of one run, in the order they finished (a resumed run appends to its old ones)."""

    __slots__ = ("dropped", "entries")

    def __init__(self, entries: list[dict[str, Any]] | None = None) -> None:
        self.entries: list[dict[str, Any]] = list(entries or [])
        self.dropped = 0

    def add(self, entry: dict[str, Any]) -> None:
        if len(self.entries) < MAX_ENTRIES:
            self.entries.append(entry)
        else:
            self.dropped += 1


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


# --- tracing switch -----------------------------------------------------------------------------


def enable_tracing(tracer: Any) -> None:
    """Open spans with ``tracer`` from now on (``backend.observability`` calls this)."""
    global _tracer
    _tracer = tracer


def disable_tracing() -> None:
    global _tracer
    _tracer = None


def tracing_enabled() -> bool:
    return _tracer is not None


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the current span in hex, for log lines; None when not tracing."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span (kept with a run so its spans join this trace)."""
    if _tracer is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


def annotate(attributes: Mapping[str, Any]) -> None:
    """Set attributes on the current span (no-op when not tracing)."""
    if _tracer is None:
        return
    from opentelemetry import trace

    trace.get_current_span().set_attributes(_clean(attributes))


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in attributes.items() if value is not None}


@contextlib.contextmanager
def _span(name: str, attributes: Mapping[str, Any], parent: str | None = None) -> Iterator[Any]:
    """A current span named ``name`` (None when not tracing); exceptions mark it as an error."""
    if _tracer is None:
        yield None
        return
    parent_context = None
    if parent:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        parent_context = TraceContextTextMapPropagator().extract({"traceparent": parent})
    with _tracer.start_as_current_span(name, context=parent_context, attributes=_clean(attributes)) as span:
        yield span


# --- runs and nodes -----------------------------------------------------------------------------


@contextlib.contextmanager
def run_scope(
    timeline: Timeline, *, name: str, attributes: Mapping[str, Any], traceparent: str | None = None
) -> Iterator[None]:
    """Collect ``timeline`` for the code inside; with tracing, inside a run span joined to ``traceparent``."""
    token = _timeline.set(timeline)
    try:
        with _span(name, attributes, parent=traceparent):
            yield
    finally:
        _timeline.reset(token)


@contextlib.contextmanager
def node(name: str) -> Iterator[None]:
    """One graph node: a timeline entry (with the tokens its model calls spent) and a span."""
    timeline = _timeline.get()
    if timeline is None and _tracer is None:
        yield
        return
    entry: dict[str, Any] = {
        "name": name,
        "kind": "node",
        "started_at": _now_iso(),
        "duration_ms": 0.0,
        "status": "ok",
        "tokens": 0,
    }
    token = _node_entry.set(entry)
    started = time.perf_counter()
    try:
        with _span(
            f"node {name}",
            {
                "agentflow.node": name,
                "agentflow.workflow_id": context.workflow_id.get(),
                "agentflow.correlation_id": context.correlation_id.get(),
            },
        ):
            yield
    except BaseException as exc:
        if _is_graph_interrupt(exc):
            entry["status"] = "interrupted"  # the node asked a human (LangGraph ``interrupt``): not a failure
            raise
        entry["status"] = getattr(exc, "code", None) or type(exc).__name__
        raise
    finally:
        _node_entry.reset(token)
        entry["duration_ms"] = _ms(started)
        if timeline is not None:
            timeline.add(entry)


context.observe_nodes(node)


def _is_graph_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is LangGraph's ``GraphInterrupt``, without importing LangGraph for it.

    This module is on the server's accept path, which loads before LangGraph does; a node only
    runs (and can raise one) once LangGraph is loaded, so the import here is a lookup.
    """
    from langgraph.errors import GraphInterrupt

    return isinstance(exc, GraphInterrupt)


# --- upstream calls -----------------------------------------------------------------------------


class Call:
    """One upstream call in progress: its timeline entry and span, annotated as it goes."""

    __slots__ = ("entry", "span")

    def __init__(self, entry: dict[str, Any], span: Any) -> None:
        self.entry = entry
        self.span = span

    def retry(self, *, reason: str, status: int | None, attempt: int, wait_s: float) -> None:
        """An attempt failed and will be retried: counted, and a span event."""
        self.entry["retries"] = self.entry.get("retries", 0) + 1
        if self.span is not None:
            self.span.add_event(
                "retry", _clean({"reason": reason, "http.status_code": status, "attempt": attempt, "wait_s": wait_s})
            )

    def record(self, attributes: Mapping[str, Any]) -> None:
        """What the answer said (model, tokens): on the entry and the span."""
        tokens = attributes.get("gen_ai.usage.input_tokens", 0) + attributes.get("gen_ai.usage.output_tokens", 0)
        if tokens:
            self.entry["tokens"] = tokens
        if self.span is not None:
            self.span.set_attributes(_clean(attributes))


@contextlib.contextmanager
def upstream_call(provider: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Call]:
    """One logical upstream call (all its attempts): a timeline entry and a span ``{provider} call``."""
    attributes = attributes or {}
    model = attributes.get("gen_ai.request.model")
    entry: dict[str, Any] = {
        "name": f"{provider} {model}" if model else provider,
        "kind": "upstream",
        "started_at": _now_iso(),
        "duration_ms": 0.0,
        "status": "ok",
        "tokens": 0,
        "provider": provider,
    }
    enclosing = _node_entry.get()
    if enclosing is not None:
        entry["node"] = enclosing["name"]
    if model:
        entry["model"] = model
    started = time.perf_counter()
    try:
        with _span(f"{provider} call", {"agentflow.provider": provider, **attributes}) as span:
            call = Call(entry, span)
            yield call
    except BaseException as exc:
        entry["status"] = getattr(exc, "code", None) or type(exc).__name__
        raise
    finally:
        entry["duration_ms"] = _ms(started)
        if enclosing is not None:
            enclosing["tokens"] += entry["tokens"]
        timeline = _timeline.get()
        if timeline is not None:
            timeline.add(entry)
