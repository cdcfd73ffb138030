"""Request/reply types that let tests script the OpenAI stand-in's answers."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

__all__ = [
    "ChatReply",
    "ChatRequest",
    "ChatRule",
    "Responder",
    "ResponderResult",
    "call_responder",
    "coerce_reply",
    "message_text",
]


def message_text(message: dict[str, Any]) -> str:
    """Return the text of one chat message (string content or the text parts of a list)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return ""


@dataclass(frozen=True)
class ChatRequest:
    """What a chat completion request asked for, as seen by a responder or a rule.

    ``schema_name``/``schema`` are the ``json_schema`` response format's name and schema, or
    the called function's name and parameters when ``is_tool_call`` is true.
    """

    model: str
    messages: list[dict[str, Any]]
    schema_name: str | None = None
    schema: dict[str, Any] | None = None
    is_tool_call: bool = False
    response_format_type: str = "text"
    tools: list[dict[str, Any]] = field(default_factory=list)
    stream: bool = False
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def last_user_message(self) -> str:
        """Text of the last ``user`` message ('' if there is none)."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return message_text(message)
        return ""

    @property
    def system_message(self) -> str:
        """Text of all ``system``/``developer`` messages joined."""
        return "\n".join(message_text(m) for m in self.messages if m.get("role") in ("system", "developer"))

    @property
    def all_text(self) -> str:
        """Text of every message, joined by newlines."""
        return "\n".join(message_text(m) for m in self.messages)


@dataclass
class ChatReply:
    """A scripted answer: ``content`` text, or a ``json`` value.

    A ``json`` value becomes the tool-call arguments when the request is a tool call, and the
    serialised message content otherwise. ``content`` on a tool-call request answers text
    instead of calling the tool. ``tool_name`` overrides which function is called.
    """

    content: str | None = None
    json: Any = None
    tool_name: str | None = None
    finish_reason: str | None = None

    def __post_init__(self) -> None:
        if self.content is None and self.json is None:
            raise ValueError("ChatReply needs `content` or `json`")


ResponderResult: TypeAlias = ChatReply | str | dict[str, Any] | list[Any] | None
Responder: TypeAlias = Callable[[ChatRequest], ResponderResult | Awaitable[ResponderResult]]


def coerce_reply(value: ResponderResult) -> ChatReply | None:
    """Turn a responder's shorthand (str → content, dict/list → json) into a ChatReply."""
    if value is None or isinstance(value, ChatReply):
        return value
    if isinstance(value, str):
        return ChatReply(content=value)
    if isinstance(value, dict | list):
        return ChatReply(json=value)
    raise TypeError(f"responder returned unsupported {type(value).__name__}")


async def call_responder(responder: Responder, request: ChatRequest) -> ChatReply | None:
    """Call a sync or async responder and normalise its result."""
    result = responder(request)
    if inspect.isawaitable(result):
        result = await result
    return coerce_reply(result)


@dataclass
class ChatRule:
    """A declarative answer: first rule whose conditions all hold wins.

    ``when_contains`` is a case-insensitive substring of any message; ``schema_name`` must equal
    the request's schema/function name; ``model`` must equal the requested model. Missing
    conditions always hold.
    """

    content: str | None = None
    json: Any = None
    when_contains: str | None = None
    schema_name: str | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        if self.content is None and self.json is None:
            raise ValueError("a rule needs `content` or `json`")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatRule:
        """Build a rule from its JSON form (unknown keys are an error)."""
        allowed = {"content", "json", "when_contains", "schema_name", "model"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown rule keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Return the rule's JSON form without unset keys."""
        data = {
            "content": self.content,
            "json": self.json,
            "when_contains": self.when_contains,
            "schema_name": self.schema_name,
            "model": self.model,
        }
        return {k: v for k, v in data.items() if v is not None}

    def matches(self, request: ChatRequest) -> bool:
        """Return whether this rule applies to ``request``."""
        if self.model is not None and self.model != request.model:
            return False
        if self.schema_name is not None and self.schema_name != request.schema_name:
            return False
        if self.when_contains is not None:
            needle = self.when_contains.lower()
            if needle not in request.all_text.lower():
                return False
        return True

    def reply(self) -> ChatReply:
        """Return the answer this rule gives."""
        return ChatReply(content=self.content, json=self.json)
