"""OpenAI stand-in routes: ``POST /v1/chat/completions`` and ``GET /v1/models``."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .config import OpenAIConfig
from .faults import TruncatedResponse, gate
from .openai_payloads import (
    RequestError,
    answer_for,
    completion_body,
    completion_chunks,
    parse_chat_request,
)
from .state import get_state, journal_entry

__all__ = ["openai_error", "openai_routes"]

#: How much of a request's message text the journal keeps (plus a hash of all of it).
MESSAGES_TEXT_CHARS = 4000

_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "unknown_url"),
    429: ("requests", "rate_limit_exceeded"),
}


def openai_error(
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    param: str | None = None,
    code: str | None = None,
) -> JSONResponse:
    """An error in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""
    kind, default_code = _ERROR_KINDS.get(status, ("server_error", None))
    error = {"message": message, "type": kind, "param": param, "code": code or default_code}
    merged = {"x-request-id": "req_" + uuid.uuid4().hex, **(headers or {})}
    return JSONResponse({"error": error}, status_code=status, headers=merged)


def _render_error(status: int, message: str, headers: dict[str, str]) -> Response:
    return openai_error(status, message, headers)


def _auth_error(request: Request, config: OpenAIConfig) -> Response | None:
    if not config.require_auth:
        return None
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return openai_error(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="missing_api_key",
        )
    return None


def _annotate(request: Request, **values: Any) -> None:
    get_state(request).journal.annotate(journal_entry(request), **values)


async def chat_completions(request: Request) -> Response:
    """``POST /v1/chat/completions``."""
    started = time.monotonic()
    config = get_state(request).upstream("openai")
    assert isinstance(config, OpenAIConfig)
    if (denied := _auth_error(request, config)) is not None:
        return denied
    try:
        body = json.loads(await request.body() or b"null")
        chat = parse_chat_request(body)
    except json.JSONDecodeError as exc:
        return openai_error(400, f"We could not parse the JSON body of your request: {exc}")
    except RequestError as exc:
        return openai_error(400, str(exc), param=exc.param)
    all_text = chat.all_text
    _annotate(
        request,
        model=chat.model,
        schema_name=chat.schema_name,
        tool_call=chat.is_tool_call,
        stream=chat.stream,
        last_user_message=chat.last_user_message[:500],
        messages_text=all_text[:MESSAGES_TEXT_CHARS],
        messages_sha256=hashlib.sha256(all_text.encode()).hexdigest(),
    )
    verdict = await gate(request, "openai", _render_error)
    if verdict.response is not None:
        return verdict.response
    answer = await answer_for(config, chat, empty=verdict.fault == "empty")
    n = body.get("n") if isinstance(body.get("n"), int) and body["n"] > 0 else 1
    answers = [answer] * n
    _annotate(request, answer_preview=answer.completion_text[:500], tool_name=answer.tool_name)
    headers = {
        "x-request-id": "req_" + uuid.uuid4().hex,
        "openai-processing-ms": str(int((time.monotonic() - started) * 1000)),
    }
    if chat.stream:
        lines = [f"data: {json.dumps(c)}\n\n" for c in completion_chunks(chat, answers)]
        lines.append("data: [DONE]\n\n")
        if verdict.fault == "truncated":
            return TruncatedResponse("".join(lines).encode(), media_type="text/event-stream")

        async def events() -> AsyncIterator[str]:
            for line in lines:
                yield line

        headers["cache-control"] = "no-cache"
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
    payload = completion_body(chat, answers)
    if verdict.fault == "truncated":
        return TruncatedResponse(json.dumps(payload).encode(), media_type="application/json")
    return JSONResponse(payload, headers=headers)


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 1700000000, "owned_by": "standin"}


async def list_models(request: Request) -> Response:
    """``GET /v1/models``."""
    config = get_state(request).upstream("openai")
    assert isinstance(config, OpenAIConfig)
    if (denied := _auth_error(request, config)) is not None:
        return denied
    verdict = await gate(request, "openai", _render_error)
    if verdict.response is not None:
        return verdict.response
    return JSONResponse({"object": "list", "data": [_model(m) for m in config.models]})


async def get_model(request: Request) -> Response:
    """``GET /v1/models/{model}``: any model id exists."""
    config = get_state(request).upstream("openai")
    assert isinstance(config, OpenAIConfig)
    if (denied := _auth_error(request, config)) is not None:
        return denied
    return JSONResponse(_model(request.path_params["model"]))


async def unknown_endpoint(request: Request) -> Response:
    """Any other ``/v1/...`` path: OpenAI's 404 for unknown URLs."""
    return openai_error(
        404,
        f"Invalid URL ({request.method} {request.url.path}): the stand-in serves "
        "/v1/chat/completions and /v1/models only.",
    )


openai_routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", get_model, methods=["GET"]),
    Route(
        "/v1/{rest:path}",
        unknown_endpoint,
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    ),
]
