"""The chat-model provider: langchain-openai ``ChatOpenAI`` behind our gate and retry layer.

Works with any OpenAI-compatible server (``OPENAI_BASE_URL``). Structured output uses
``json_schema`` or, for servers without it, ``function_calling``. Every call reports its token
usage and logs one ``event=llm_call`` line with model, tokens and duration.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import httpx2
import openai
from langchain_core.messages import AIMessage, BaseMessage
from langchain_openai import ChatOpenAI
from openai import DefaultAioHttpClient
from pydantic import BaseModel, SecretStr, ValidationError

from agents.errors import (
    ProviderNotConfigured,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from agents.providers.gate import ProviderGate
from agents.providers.pricing import estimate_cost
from agents.providers.retry import RetryPolicy, call_with_retries, parse_retry_after

__all__ = ["ChatProvider", "ChatResult", "LLMUsage", "OpenAIConfig", "StructuredResult"]

logger = logging.getLogger("agentflow.llm")
SchemaT = TypeVar("SchemaT", bound=BaseModel)
_RETRYABLE_STATUS = {408, 409, 429}


@dataclass(frozen=True, slots=True)
class OpenAIConfig:
    api_key: str | None
    base_url: str
    timeout: float = 60.0
    connect_timeout: float = 5.0
    max_retries: int = 4
    max_concurrency: int = 16
    rpm: int | None = None
    structured_output_method: Literal["json_schema", "function_calling"] = "json_schema"
    temperature: float = 0.2
    call_deadline: float = 180.0
    retry_base_delay: float = 0.5
    retry_max_delay: float = 30.0


@dataclass(frozen=True, slots=True)
class LLMUsage:
    """Token usage of one or more calls."""

    input_tokens: int = 0
    output_tokens: int = 0
    llm_calls: int = 0
    est_cost_usd: float = 0.0

    def __add__(self, other: LLMUsage) -> LLMUsage:
        return LLMUsage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.llm_calls + other.llm_calls,
            self.est_cost_usd + other.est_cost_usd,
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "llm_calls": self.llm_calls,
            "est_cost_usd": round(self.est_cost_usd, 6),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> LLMUsage:
        data = data or {}
        return cls(
            int(data.get("input_tokens", 0)),
            int(data.get("output_tokens", 0)),
            int(data.get("llm_calls", 0)),
            float(data.get("est_cost_usd", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class ChatResult:
    text: str
    usage: LLMUsage


@dataclass(frozen=True, slots=True)
class StructuredResult(Generic[SchemaT]):
    """A structured answer; ``value`` is None when the model's output did not validate."""

    value: SchemaT | None
    error: str | None
    usage: LLMUsage


def _describe_invalid(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return f"{exc.error_count()} validation error(s): " + "; ".join(
            f"{'.'.join(map(str, item['loc'])) or 'answer'}: {item['msg']}" for item in exc.errors()
        )
    return f"unreadable answer: {exc}"


def classify_openai_error(exc: BaseException) -> UpstreamError | None:
    """Map an OpenAI SDK / transport exception to our upstream error classes."""
    if isinstance(exc, openai.APITimeoutError):
        return UpstreamTimeout("the model did not answer in time", provider="openai")
    if isinstance(exc, openai.APIConnectionError):
        return UpstreamUnavailable("could not reach the model server", provider="openai")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retry_after = parse_retry_after(exc.response.headers)
        if status == 429:
            return UpstreamRateLimited(
                "the model server rate-limited us", provider="openai", http_status=status, retry_after=retry_after
            )
        if status in _RETRYABLE_STATUS or status >= 500:
            return UpstreamUnavailable(
                f"the model server answered {status}", provider="openai", http_status=status, retry_after=retry_after
            )
        return UpstreamBadResponse(
            f"the model server refused the request ({status})", provider="openai", http_status=status
        )
    if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError | httpx2.HTTPError):
        # A truncated or garbled body is usually a transient transport fault: worth a retry.
        return UpstreamBadResponse("the model server sent a malformed response", provider="openai", retryable=True)
    return None


class ChatProvider:
    """Process-wide access to chat models; one gate shared by every workflow."""

    def __init__(self, config: OpenAIConfig) -> None:
        self.config = config
        self.gate = ProviderGate("openai", max_concurrency=config.max_concurrency, rpm=config.rpm)
        self.policy = RetryPolicy(
            max_attempts=config.max_retries + 1,
            base_delay=config.retry_base_delay,
            max_delay=config.retry_max_delay,
            deadline=config.call_deadline,
        )
        self._models: dict[str, ChatOpenAI] = {}
        self._structured: dict[str, dict[str, Any]] = {}
        self._http: httpx2.AsyncClient | None = None

    @property
    def configured(self) -> bool:
        return bool(self.config.api_key)

    def require_configured(self) -> None:
        if not self.configured:
            raise ProviderNotConfigured(
                "OPENAI_API_KEY is not set: the server cannot call a chat model.", variable="OPENAI_API_KEY"
            )

    def model(self, name: str) -> ChatOpenAI:
        """A cached ``ChatOpenAI`` for ``name`` (the SDK's own retries are off: we retry)."""
        self.require_configured()
        chat = self._models.get(name)
        if chat is None:
            chat = ChatOpenAI(
                model=name,
                api_key=SecretStr(self.config.api_key or ""),
                base_url=self.config.base_url,
                timeout=httpx2.Timeout(self.config.timeout, connect=self.config.connect_timeout),
                max_retries=0,
                temperature=self.config.temperature,
                stream_usage=True,
                http_async_client=self._http_client(),
            )
            self._models[name] = chat
        return chat

    def _http_client(self) -> httpx2.AsyncClient:
        """One connection pool for every model, on the SDK's aiohttp transport.

        The SDK's default httpx2 transport spends about as much CPU per call as the rest of the
        call together; aiohttp is the SDK's own faster option. Created on first use, inside the
        running loop, as aiohttp requires.
        """
        if self._http is None:
            self._http = DefaultAioHttpClient(
                timeout=httpx2.Timeout(self.config.timeout, connect=self.config.connect_timeout),
                limits=httpx2.Limits(
                    max_connections=self.config.max_concurrency * 2,
                    max_keepalive_connections=self.config.max_concurrency,
                ),
            )
        return self._http

    async def aclose(self) -> None:
        """Close the shared connection pool."""
        self._models.clear()
        self._structured.clear()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def complete(self, *, model: str, messages: list[BaseMessage]) -> ChatResult:
        """Plain text completion."""
        chat = self.model(model)
        started = time.perf_counter()
        message = await call_with_retries(
            lambda: chat.ainvoke(messages), gate=self.gate, policy=self.policy, classify=classify_openai_error
        )
        usage = self._usage(model, message)
        self._log_call(model, usage, started, kind="text")
        text = message.content if isinstance(message.content, str) else message.text
        return ChatResult(text=text, usage=usage)

    async def structured(
        self, *, model: str, messages: list[BaseMessage], schema: type[SchemaT]
    ) -> StructuredResult[SchemaT]:
        """Structured output validated against ``schema``; a parse failure is returned, not raised.

        The model gets the schema as plain JSON Schema (``json_schema`` response format, or one
        forced tool call for servers without it) and we validate the answer ourselves, so an
        invalid answer still reports its token usage and never aborts the call.
        """
        chat = self.model(model)
        request = self._structured_request(schema)
        started = time.perf_counter()
        message = await call_with_retries(
            lambda: chat.ainvoke(messages, **request),
            gate=self.gate,
            policy=self.policy,
            classify=classify_openai_error,
        )
        usage = self._usage(model, message)
        self._log_call(model, usage, started, kind="structured")
        try:
            value = schema.model_validate(self._structured_answer(message))
            return StructuredResult(value=value, error=None, usage=usage)
        except (ValueError, ValidationError) as exc:
            error = _describe_invalid(exc)
        logger.warning(
            "structured output did not validate",
            extra={"event": "structured_output_invalid", "model": model, "schema": schema.__name__, "reason": error},
        )
        return StructuredResult(value=None, error=error, usage=usage)

    def _structured_request(self, schema: type[BaseModel]) -> dict[str, Any]:
        """The call options that ask for ``schema`` (built once per schema)."""
        request = self._structured.get(schema.__name__)
        if request is None:
            json_schema = schema.model_json_schema()
            description = (schema.__doc__ or schema.__name__).strip()
            if self.config.structured_output_method == "function_calling":
                tool = {"name": schema.__name__, "description": description, "parameters": json_schema}
                request = {
                    "tools": [{"type": "function", "function": tool}],
                    "tool_choice": {"type": "function", "function": {"name": schema.__name__}},
                    "parallel_tool_calls": False,
                }
            else:
                # Sent as extra_body, not response_format: langchain would route response_format
                # through the SDK's parse helper, which walks the whole schema client-side on every
                # call (a third of a structured call's CPU) to validate what we validate anyway.
                response_format = {
                    "type": "json_schema",
                    "json_schema": {"name": schema.__name__, "description": description, "schema": json_schema},
                }
                request = {"extra_body": {"response_format": response_format}}
            self._structured[schema.__name__] = request
        return request

    def _structured_answer(self, message: AIMessage) -> Any:
        if self.config.structured_output_method == "function_calling":
            if not message.tool_calls:
                raise ValueError("the model did not call the requested function")
            return message.tool_calls[0]["args"]
        text = message.content if isinstance(message.content, str) else message.text
        return json.loads(text)

    @staticmethod
    def _usage(model: str, message: AIMessage | None) -> LLMUsage:
        metadata = message.usage_metadata if message is not None else None
        input_tokens = int(metadata["input_tokens"]) if metadata else 0
        output_tokens = int(metadata["output_tokens"]) if metadata else 0
        return LLMUsage(input_tokens, output_tokens, 1, estimate_cost(model, input_tokens, output_tokens))

    @staticmethod
    def _log_call(model: str, usage: LLMUsage, started: float, *, kind: str) -> None:
        logger.info(
            "llm call %s",
            model,
            extra={
                "event": "llm_call",
                "model": model,
                "kind": kind,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
