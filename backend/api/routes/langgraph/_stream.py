"""A run's event log as LangGraph Server's server-sent events, the way ``langgraph-sdk`` decodes them.

``metadata`` (``{"run_id", "attempt"}``) comes first; then, per requested stream mode, ``values``,
``updates``, ``custom`` and the messages: ``messages`` events carrying LangGraph's
``[message_chunk, metadata]`` for ``messages-tuple``, or, for ``messages``, ``messages/metadata``
once per message and ``messages/partial`` with the message accumulated so far (as LangGraph
Server does). The stream ends with ``error`` (``{"error", "message"}``) for a failed run, else with
``end``. Every event from the log carries its sequence number as its SSE ``id``, so a client that
reconnects with ``Last-Event-ID`` gets exactly the events after it. Framing, keep-alive pings and
disconnects are sse-starlette's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from pydantic_core import to_jsonable_python
from sse_starlette import ServerSentEvent

from agents.errors import Conflict, InvalidInput
from backend.runs import RunService, WorkflowRecord, WorkflowStatus
from backend.runs.threads import RUN_STATUS

__all__ = ["ALL_MODES", "DEFAULT_MODES", "langgraph_events", "stream_modes"]

logger = logging.getLogger("agentflow.langgraph")

#: What a stream carries when the client names no mode (LangGraph Server's default).
DEFAULT_MODES = frozenset({"values"})
#: What joining a run's stream carries without a mode: everything the run produces.
ALL_MODES = frozenset({"values", "updates", "custom", "messages-tuple"})
_SUPPORTED = frozenset({"values", "updates", "custom", "messages", "messages-tuple"})


def stream_modes(requested: str | Iterable[str] | None, default: frozenset[str], *, field: str) -> frozenset[str]:
    """The stream modes asked for; InvalidInput for one agentflow cannot produce."""
    if requested is None:
        return default
    names = [requested] if isinstance(requested, str) else [name for name in requested if name]
    if not names:
        return default
    unknown = sorted(set(names) - _SUPPORTED)
    if unknown:
        raise InvalidInput(
            f"Stream mode {unknown[0]!r} is not supported; use {', '.join(sorted(_SUPPORTED))}.", field=field
        )
    return frozenset(names)


def _sse(event: str, data: Any, seq: int | None = None) -> ServerSentEvent:
    return ServerSentEvent(
        event=event, data=json.dumps(data, separators=(",", ":")), id=str(seq) if seq is not None else None
    )


class _Messages:
    """Accumulates LangGraph message chunks per message id (the ``messages`` mode's partial messages)."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}

    def translate(self, item: Any, seq: int) -> list[ServerSentEvent]:
        # Imported here, not with the app: langchain loads with the workflow stack (backend.runs.stack),
        # after start-up; a stream of messages is read once a run produced them (then it is a lookup).
        from langchain_core.messages import AIMessageChunk, BaseMessageChunk, convert_to_messages

        if not isinstance(item, list | tuple) or len(item) != 2 or not isinstance(item[0], dict):
            return []
        raw, metadata = item
        kind = str(raw.get("type", ""))
        message: Any
        if "chunk" in kind.lower():
            message = AIMessageChunk(**{k: v for k, v in raw.items() if k != "type"})
        else:
            message = convert_to_messages([raw])[0]
        key = message.id or f"run-{seq}"
        events: list[ServerSentEvent] = []
        if key in self.seen:
            self.seen[key] = self.seen[key] + message
        else:
            self.seen[key] = message
            events.append(
                _sse("messages/metadata", {key: {"metadata": to_jsonable_python(metadata, fallback=str)}}, seq)
            )
        name = "messages/partial" if isinstance(message, BaseMessageChunk) else "messages/complete"
        events.append(_sse(name, [to_jsonable_python(self.seen[key], fallback=str)], seq))
        return events


def _translate(kind: str, data: Any, seq: int, modes: frozenset[str], messages: _Messages) -> list[ServerSentEvent]:
    if kind in ("values", "updates", "custom"):
        return [_sse(kind, data, seq)] if kind in modes else []
    if kind == "messages":
        if "messages-tuple" in modes:
            return [_sse("messages", data, seq)]
        if "messages" in modes:
            return messages.translate(data, seq)
    return []  # ``status``: agentflow's own progress events have no LangGraph counterpart


def _ending(record: WorkflowRecord, seq: int | None) -> ServerSentEvent:
    if record.status is WorkflowStatus.FAILED:
        return _sse("error", {"error": record.error_code or "error", "message": record.error_message or ""}, seq)
    return _sse("end", {"run_id": record.id, "status": RUN_STATUS[record.status]}, seq)


async def langgraph_events(
    runs: RunService,
    record: WorkflowRecord,
    *,
    owner: str | None,
    modes: frozenset[str],
    after: int = 0,
    cancel_on_disconnect: bool = False,
) -> AsyncIterator[ServerSentEvent]:
    """The SSE events of a run from after event ``after`` until it ends."""
    ended = False
    try:
        yield _sse("metadata", {"run_id": record.id, "attempt": max(record.attempts, 1)})
        messages = _Messages()
        async for event in runs.stream(workflow_id=record.id, owner=owner, after=after):
            if event is None:  # a keep-alive: sse-starlette pings on its own schedule
                continue
            if event.kind == "end":
                ended = True
                final = await runs.get(workflow_id=record.id, owner=owner)
                yield _ending(final, event.seq)
                return
            if event.kind == "status" and event.data.get("status") == WorkflowStatus.WAITING.value:
                # Paused at an interrupt: LangGraph Server ends the stream of an interrupted run.
                ended = True
                yield _ending(await runs.get(workflow_id=record.id, owner=owner), event.seq)
                return
            for sse in _translate(event.kind, event.data, event.seq, modes, messages):
                yield sse
    finally:
        if cancel_on_disconnect and not ended:
            # The client went away (on_disconnect=cancel): stop the run too.
            with contextlib.suppress(Conflict):  # it ended meanwhile
                await asyncio.shield(runs.cancel(workflow_id=record.id, owner=owner))
