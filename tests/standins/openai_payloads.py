"""OpenAI chat-completions wire format: parse requests, pick answers, render bodies and chunks."""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from .chat_types import ChatReply, ChatRequest, call_responder
from .config import OpenAIConfig
from .schema_gen import GenContext, generate
from .text_gen import default_chat_text

__all__ = [
    "Answer",
    "RequestError",
    "answer_for",
    "completion_body",
    "completion_chunks",
    "default_reply",
    "estimate_tokens",
    "new_completion_id",
    "parse_chat_request",
    "usage_for",
]

SYSTEM_FINGERPRINT = "fp_standin"


class RequestError(ValueError):
    """A request the real API would refuse with 400; ``param`` names the culprit."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def estimate_tokens(text: str) -> int:
    """Rough token count: a quarter of the characters, at least 1."""
    return max(1, math.ceil(len(text) / 4))


def _function_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools") or []
    return [t for t in tools if isinstance(t, dict) and t.get("type", "function") == "function"]


def _tool_name(tool: dict[str, Any]) -> str:
    fn = tool.get("function") or tool
    return str(fn.get("name", ""))


def _chosen_tool(body: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    tools = _function_tools(body)
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name") or choice.get("name")
        for tool in tools:
            if _tool_name(tool) == wanted:
                return tool
        raise RequestError(f"tool_choice names unknown function {wanted!r}", "tool_choice")
    if choice == "required":
        return tools[0]
    # "auto": call the first tool unless the model just received a tool result.
    if messages and messages[-1].get("role") == "tool":
        return None
    return tools[0]


def parse_chat_request(body: Any) -> ChatRequest:
    """Validate a request body and describe it as a :class:`ChatRequest`."""
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty array", "messages")
    if not all(isinstance(m, dict) and "role" in m for m in messages):
        raise RequestError("every message needs a 'role'", "messages")
    tool = _chosen_tool(body, messages)
    rf = body.get("response_format") or {}
    rf_type = rf.get("type", "text") if isinstance(rf, dict) else "text"
    schema_name: str | None = None
    schema: dict[str, Any] | None = None
    if tool is not None:
        fn = tool.get("function") or tool
        schema_name = _tool_name(tool)
        schema = fn.get("parameters") or {"type": "object", "properties": {}}
    elif rf_type == "json_schema":
        js = rf.get("json_schema") or {}
        schema_name = js.get("name")
        schema = js.get("schema") or {}
    return ChatRequest(
        model=model,
        messages=messages,
        schema_name=schema_name,
        schema=schema,
        is_tool_call=tool is not None,
        response_format_type=rf_type,
        tools=_function_tools(body),
        stream=bool(body.get("stream")),
        body=body,
    )


@dataclass(frozen=True)
class Answer:
    """The assistant message to send: text ``content`` or one tool call."""

    content: str | None
    tool_name: str | None = None
    arguments: str | None = None
    finish_reason: str = "stop"

    @property
    def completion_text(self) -> str:
        """The text the completion tokens are counted from."""
        return self.arguments if self.arguments is not None else (self.content or "")


def default_reply(request: ChatRequest) -> ChatReply:
    """The stand-in's own answer when no responder or rule applies."""
    last = request.last_user_message
    if request.schema is not None:
        return ChatReply(json=generate(request.schema, GenContext(text=last)))
    text = default_chat_text(last)
    if request.response_format_type == "json_object":
        return ChatReply(json={"answer": text})
    return ChatReply(content=text)


def _apply_max_tokens(content: str, body: dict[str, Any]) -> tuple[str, str]:
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and limit > 0 and estimate_tokens(content) > limit:
        return content[: limit * 4], "length"
    return content, "stop"


async def answer_for(config: OpenAIConfig, request: ChatRequest, empty: bool = False) -> Answer:
    """Decide the answer: responder, then the first matching rule, then the default."""
    if empty:
        return Answer(content="")
    reply = await call_responder(config.responder, request) if config.responder else None
    if reply is None:
        reply = next((rule.reply() for rule in config.rules if rule.matches(request)), None)
    if reply is None:
        reply = default_reply(request)
    if request.is_tool_call and reply.json is not None:
        return Answer(
            content=None,
            tool_name=reply.tool_name or request.schema_name,
            arguments=json.dumps(reply.json),
            finish_reason=reply.finish_reason or "tool_calls",
        )
    if reply.content is not None:
        if reply.finish_reason:
            return Answer(content=reply.content, finish_reason=reply.finish_reason)
        if request.schema is None and request.response_format_type == "text":
            content, finish = _apply_max_tokens(reply.content, request.body)
            return Answer(content=content, finish_reason=finish)
        return Answer(content=reply.content)
    return Answer(content=json.dumps(reply.json), finish_reason=reply.finish_reason or "stop")


def _prompt_text(request: ChatRequest) -> str:
    extra = json.dumps(request.tools) if request.tools else ""
    if request.response_format_type == "json_schema":
        extra += json.dumps(request.body.get("response_format"))
    return request.all_text + extra


def usage_for(request: ChatRequest, answers: list[Answer]) -> dict[str, Any]:
    """The ``usage`` object: estimated prompt and completion tokens."""
    prompt = estimate_tokens(_prompt_text(request))
    completion = sum(estimate_tokens(a.completion_text) for a in answers)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def _message(answer: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.content,
        "refusal": None,
        "annotations": [],
    }
    if answer.tool_name is not None:
        message["tool_calls"] = [
            {
                "id": _call_id(),
                "type": "function",
                "function": {"name": answer.tool_name, "arguments": answer.arguments},
            }
        ]
    return message


def _envelope(request: ChatRequest, object_type: str, completion_id: str) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": object_type,
        "created": int(time.time()),
        "model": request.model,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def new_completion_id() -> str:
    """A fresh ``chatcmpl-...`` id."""
    return "chatcmpl-" + uuid.uuid4().hex[:29]


def completion_body(request: ChatRequest, answers: list[Answer]) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` body, one choice per answer."""
    body = _envelope(request, "chat.completion", new_completion_id())
    body["choices"] = [
        {
            "index": i,
            "message": _message(answer),
            "logprobs": None,
            "finish_reason": answer.finish_reason,
        }
        for i, answer in enumerate(answers)
    ]
    body["usage"] = usage_for(request, answers)
    return body


def _pieces(text: str, size: int = 24) -> list[str]:
    """Split ``text`` into chunks of about ``size`` characters, keeping word boundaries."""
    out: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if len(candidate) > size and current:
            out.append(current + " ")
            current = word
        else:
            current = candidate
    if current or not out:
        out.append(current)
    return out


def completion_chunks(request: ChatRequest, answers: list[Answer]) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a streamed answer (without ``[DONE]``)."""
    include_usage = bool((request.body.get("stream_options") or {}).get("include_usage"))
    completion_id = new_completion_id()
    chunks: list[dict[str, Any]] = []

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> None:
        body = _envelope(request, "chat.completion.chunk", completion_id)
        body["choices"] = [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if include_usage:
            body["usage"] = None
        chunks.append(body)

    for i, answer in enumerate(answers):
        if answer.tool_name is not None:
            chunk(i, {"role": "assistant", "content": None, "refusal": None})
            call = {
                "index": 0,
                "id": _call_id(),
                "type": "function",
                "function": {"name": answer.tool_name, "arguments": ""},
            }
            chunk(i, {"tool_calls": [call]})
            for piece in _pieces(answer.arguments or ""):
                chunk(i, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        else:
            chunk(i, {"role": "assistant", "content": "", "refusal": None})
            if answer.content:
                for piece in _pieces(answer.content):
                    chunk(i, {"content": piece})
        chunk(i, {}, answer.finish_reason)
    if include_usage:
        final = _envelope(request, "chat.completion.chunk", completion_id)
        final["choices"] = []
        final["usage"] = usage_for(request, answers)
        chunks.append(final)
    return chunks
