"""The chat-model provider: langchain-openai ``ChatOpenAI`` behind our gate and retry layer.

Works with any OpenAI-compatible server (``OPENAI_BASE_URL``). Structured output uses
``json_schema`` or, for servers without it, ``function_calling``. Every call reports its token
usage (cached prompt tokens included, priced by the process's ``PriceTable``), counts its tokens
and cost per model in the Prometheus metrics, and logs one ``event=llm_call`` line with model,
tokens and duration. The concurrency cap
is per process; the optional RPM cap holds across processes when ``redis_url`` is set.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import httpx2
from langchain_core.messages import AIMessage, BaseMessage
from langchain_openai import ChatOpenAI
from openai import DefaultAioHttpClient
from pydantic import BaseModel, SecretStr, ValidationError

from agents import context
from agents.errors import ProviderNotConfigured
from agents.metrics import metrics, model_label
from agents.providers._completions import PlainCompletions
from agents.providers._redis_keys import KEY_PREFIX
from agents.providers.gate import ProviderGate
from agents.providers.pricing import ModelPrice, PriceTable
from agents.providers.retry import RetryPolicy, call_with_retries
from agents.providers.usage import Usage

__all__ = ["ChatProvider", "ChatResult", "OpenAIConfig", "StructuredResult"]

logger = logging.getLogger("agentflow.llm")
SchemaT = TypeVar("SchemaT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class OpenAIConfig:
    """How to reach the chat-model server and how hard to push it.

    ``max_concurrency`` is per process. ``rpm`` (calls started per minute) is per process too,
    unless ``redis_url`` is set: then it also holds across every process sharing that Redis,
    under keys that start with ``redis_key_prefix``. ``model_prices`` override or extend the
    built-in price list (``AGENTFLOW_MODEL_PRICES``).
    """

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
    redis_url: str | None = None
    redis_key_prefix: str = KEY_PREFIX
    model_prices: Mapping[str, ModelPrice] | None = None


@dataclass(frozen=True, slots=True)
class ChatResult:
    text: str
    usage: Usage


@dataclass(frozen=True, slots=True)
class StructuredResult(Generic[SchemaT]):
    """A structured answer; ``value`` is None when the model's output did not validate."""

    value: SchemaT | None
    error: str | None
    usage: Usage


def _token_counts(message: AIMessage | None) -> tuple[int, int, int]:
    """(input, cached input, output) tokens from langchain's ``usage_metadata``.

    The cached part is OpenAI's ``prompt_tokens_details.cached_tokens``, which langchain-openai
    reports as ``input_token_details.cache_read``.
    """
    metadata = message.usage_metadata if message is not None else None
    if not metadata:
        return 0, 0, 0
    details = metadata.get("input_token_details") or {}
    return int(metadata["input_tokens"]), int(details.get("cache_read") or 0), int(metadata["output_tokens"])


def _call_attributes(model: str) -> dict[str, Any]:
    return {"gen_ai.system": "openai", "gen_ai.request.model": model}


def _answer_attributes(message: AIMessage) -> dict[str, Any]:
    input_tokens, cached_tokens, output_tokens = _token_counts(message)
    return {
        "gen_ai.response.model": (message.response_metadata or {}).get("model_name"),
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.cached_input_tokens": cached_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
    }


def _describe_invalid(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return f"{exc.error_count()} validation error(s): " + "; ".join(
            f"{'.'.join(map(str, item['loc'])) or 'answer'}: {item['msg']}" for item in exc.errors()
        )
    return f"unreadable answer: {exc}"


class ChatProvider:
    """Process-wide access to chat models; one gate shared by every workflow."""

    def __init__(self, config: OpenAIConfig) -> None:
        self.config = config
        self.gate = ProviderGate(
            "openai",
            max_concurrency=config.max_concurrency,
            rpm=config.rpm,
            redis_url=config.redis_url,
            redis_key_prefix=config.redis_key_prefix,
        )
        self.policy = RetryPolicy(
            max_attempts=config.max_retries + 1,
            base_delay=config.retry_base_delay,
            max_delay=config.retry_max_delay,
            deadline=config.call_deadline,
        )
        self.prices = PriceTable(config.model_prices)
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
        """A cached ``ChatOpenAI`` for ``name`` (the SDK's own retries are off: we retry; its
        ``async_client`` is ``PlainCompletions``, see ``agents.providers._completions``)."""
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
            # The SDK's chat.completions minus per-call work ChatOpenAI never uses (~0.7 ms of CPU a call).
            chat.async_client = PlainCompletions(chat.root_async_client)
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
        """Close the shared connection pool and the gate's Redis connections."""
        self._models.clear()
        self._structured.clear()
        try:
            if self._http is not None:
                await self._http.aclose()
                self._http = None
        finally:
            await self.gate.aclose()

    async def complete(self, *, model: str, messages: list[BaseMessage]) -> ChatResult:
        """Plain text completion (streamed token by token when a watched graph run asks for it)."""
        chat = self.model(model)
        # Streamed when a graph streams ``messages`` (LangGraph attaches its handler) and someone
        # watches the run; else made whole: a streamed answer costs CPU per chunk.
        options: dict[str, Any] = {} if context.tokens_wanted() else {"stream": False}
        started = time.perf_counter()
        message = await call_with_retries(
            lambda: chat.ainvoke(messages, **options),
            gate=self.gate,
            policy=self.policy,
            attributes=_call_attributes(model),
            describe=_answer_attributes,
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
            # Not streamed even when a graph streams ``messages``: a partial JSON answer is no
            # use to a reader, and streaming costs CPU per chunk. Plain-text calls do stream.
            lambda: chat.ainvoke(messages, stream=False, **request),
            gate=self.gate,
            policy=self.policy,
            attributes=_call_attributes(model),
            describe=_answer_attributes,
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

    def _usage(self, model: str, message: AIMessage | None) -> Usage:
        """The call's usage, priced; its tokens and cost are also counted in the metrics."""
        input_tokens, cached_tokens, output_tokens = _token_counts(message)
        cost = self.prices.cost(model, input_tokens, output_tokens, cached_tokens)
        instruments = metrics()
        label = model_label(model, self.prices.family(model))
        instruments.child(instruments.llm_tokens, label, "input").inc(input_tokens)
        instruments.child(instruments.llm_tokens, label, "cached_input").inc(cached_tokens)
        instruments.child(instruments.llm_tokens, label, "output").inc(output_tokens)
        if cost is None:
            instruments.child(instruments.llm_unpriced_calls, label).inc()
        else:
            instruments.child(instruments.llm_cost, label).inc(cost)
        return Usage(
            input_tokens=input_tokens,
            cached_input_tokens=cached_tokens,
            output_tokens=output_tokens,
            llm_calls=1,
            est_cost_usd=cost,
        )

    @staticmethod
    def _log_call(model: str, usage: Usage, started: float, *, kind: str) -> None:
        logger.info(
            "llm call %s",
            model,
            extra={
                "event": "llm_call",
                "model": model,
                "kind": kind,
                "input_tokens": usage.input_tokens,
                "cached_input_tokens": usage.cached_input_tokens,
                "output_tokens": usage.output_tokens,
                "est_cost_usd": usage.est_cost_usd,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
