"""Server-sent events for a run's event stream (``GET /workflows/{id}/events``), on sse-starlette.

The events come from the run's event log (``RunService.stream``); every SSE ``id`` is the event's
sequence number, so a client that reconnects with ``Last-Event-ID`` resumes exactly after it.
Of the log's kinds this stream shows three: ``status`` as ``update`` (the record), LLM token
chunks (``messages``) as ``token``, and ``end`` (the terminal record). sse-starlette sends the
keep-alive pings and stops the generator when the client goes away.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent

from backend.api.schemas import WorkflowPublic
from backend.runs import RunService
from backend.runs.events import RunEvent, record_from_fields

__all__ = ["EVENT_SCHEMA", "PING_SECONDS", "token_of", "workflow_events", "workflow_events_response"]

#: A quiet stream gets a comment line this often, so proxies and clients keep it open.
PING_SECONDS = 15

_RECORD = {
    "type": "string",
    "contentMediaType": "application/json",
    "contentSchema": {"$ref": "#/components/schemas/WorkflowPublic"},
}
_TOKEN = {
    "type": "string",
    "contentMediaType": "application/json",
    "contentSchema": {
        "type": "object",
        "required": ["node", "content", "message_id"],
        "properties": {
            "node": {"type": ["string", "null"], "description": "The graph node whose LLM call streams."},
            "content": {"type": "string", "description": "The text of this chunk (a few tokens)."},
            "message_id": {
                "type": ["string", "null"],
                "description": "The id shared by every chunk of one LLM answer.",
            },
        },
    },
}

#: One event of the stream, as OpenAPI describes ``text/event-stream`` items (comments are not events).
EVENT_SCHEMA = {
    "type": "object",
    "description": (
        "`update` (the record) whenever status, progress or usage changes; `token` for each chunk of "
        "text an LLM streams; last, one `end` (the terminal record). `id` is the event's sequence "
        "number in the run (1, 2, 3, ...; ids skipped belong to events this stream does not show): "
        "reconnect with the `Last-Event-ID` header (or `?last_event_id=`) to receive exactly the "
        "events after it."
    ),
    "required": ["event", "id", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["update", "token", "end"]},
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The event's sequence number in the run."},
        "data": {"oneOf": [_RECORD, _TOKEN]},
    },
}


def token_of(event: RunEvent) -> dict[str, Any] | None:
    """A ``messages`` event as a ``token`` payload; None if it is no streamed text chunk."""
    chunk, metadata = event.data
    if not isinstance(chunk, dict) or chunk.get("type") != "AIMessageChunk":
        return None  # a whole message (an unstreamed call), not a token
    content = chunk.get("content")
    if isinstance(content, list):  # content blocks: keep their text
        content = "".join(block.get("text", "") for block in content if isinstance(block, dict))
    if not isinstance(content, str) or not content:
        return None
    node = metadata.get("langgraph_node") if isinstance(metadata, dict) else None
    return {"node": node, "content": content, "message_id": chunk.get("id")}


def _record(event: RunEvent) -> str:
    return WorkflowPublic.from_record(record_from_fields(event.data)).model_dump_json()


async def workflow_events(
    runs: RunService, workflow_id: str, *, owner: str | None = None, after: int = 0
) -> AsyncIterator[ServerSentEvent]:
    """``update`` on every record change, ``token`` per text chunk, ``end`` with the terminal record."""
    async for event in runs.stream(workflow_id=workflow_id, owner=owner, after=after):
        if event is None:  # sse-starlette's pings keep the connection alive
            continue
        if event.kind == "status":
            yield ServerSentEvent(event="update", id=str(event.seq), data=_record(event))
        elif event.kind == "messages":
            token = token_of(event)
            if token is not None:
                yield ServerSentEvent(event="token", id=str(event.seq), data=_json(token))
        elif event.kind == "end":
            yield ServerSentEvent(event="end", id=str(event.seq), data=_record(event))


def workflow_events_response(
    runs: RunService, workflow_id: str, *, owner: str | None = None, after: int = 0
) -> EventSourceResponse:
    """The stream as a response: pings every ``PING_SECONDS``, no caching, no proxy buffering."""
    return EventSourceResponse(
        workflow_events(runs, workflow_id, owner=owner, after=after),
        ping=PING_SECONDS,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
