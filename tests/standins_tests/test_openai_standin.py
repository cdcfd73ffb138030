"""The OpenAI stand-in driven through the real ``openai`` SDK."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam
from pydantic import BaseModel

from tests.standins import ChatReply, ChatRequest, ChatRule, OpenAIConfig, StandinServer

MODEL = "gpt-4o-mini"


def _client(s: StandinServer, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=s.openai_base_url, api_key="sk-test", **{"max_retries": 0, **kwargs})


def _user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": text}]


class Plan(BaseModel):
    queries: list[str]
    rationale: str | None


def test_plain_text_completion_has_the_real_shape(standins: StandinServer) -> None:
    with _client(standins) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=_user("Compare Rust and Go for network services")
        )
    completion = raw.parse()
    assert raw.headers["x-request-id"].startswith("req_")
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.id.startswith("chatcmpl-")
    assert completion.system_fingerprint
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    text = choice.message.content or ""
    assert text.startswith("## ")
    assert "rust" in text.lower()
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens >= 1
    assert usage.completion_tokens >= 1
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    (entry,) = standins.requests("openai")
    assert entry["status"] == 200
    assert entry["model"] == MODEL
    assert entry["last_user_message"] == "Compare Rust and Go for network services"
    assert "You are helpful." in entry["messages_text"]


def test_synthesis_text_cites_source_ids(standins: StandinServer) -> None:
    prompt = "Write a synthesis.\n[S1] Attention is all you need\n[S2] BERT\n[S3] GPT-3"
    with _client(standins) as client:
        text = client.chat.completions.create(model=MODEL, messages=_user(prompt))
    content = text.choices[0].message.content or ""
    assert "[S1]" in content
    assert "[S2]" in content


def test_json_schema_answer_parses_into_the_model(standins: StandinServer) -> None:
    with _client(standins) as client:
        completion = client.chat.completions.parse(
            model=MODEL,
            messages=_user("Plan research on sparse autoencoders"),
            response_format=Plan,
        )
    plan = completion.choices[0].message.parsed
    assert plan is not None
    assert len(plan.queries) == 2
    assert any("sparse" in q for q in plan.queries)
    assert standins.requests("openai")[0]["schema_name"] == "Plan"


def test_tool_call_arguments_follow_the_parameters_schema(standins: StandinServer) -> None:
    tool: ChatCompletionFunctionToolParam = {
        "type": "function",
        "function": {
            "name": "record_review",
            "parameters": {
                "type": "object",
                "properties": {"score": {"type": "integer"}, "approved": {"type": "boolean"}},
                "required": ["score", "approved"],
            },
        },
    }
    with _client(standins) as client:
        completion = client.chat.completions.create(
            model=MODEL,
            messages=_user("Review this Revised, Revised essay"),
            tools=[tool],
            tool_choice={"type": "function", "function": {"name": "record_review"}},
        )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "record_review"
    assert json.loads(call.function.arguments) == {"score": 10, "approved": True}


def test_auto_tool_choice_answers_text_after_a_tool_result(standins: StandinServer) -> None:
    tool: ChatCompletionFunctionToolParam = {
        "type": "function",
        "function": {"name": "search", "parameters": {"type": "object"}},
    }
    messages: list[ChatCompletionMessageParam] = [
        *_user("Look up the weather"),
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "search", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    with _client(standins) as client:
        first = client.chat.completions.create(model=MODEL, messages=_user("hi"), tools=[tool])
        second = client.chat.completions.create(model=MODEL, messages=messages, tools=[tool])
    assert first.choices[0].message.tool_calls
    assert second.choices[0].message.tool_calls is None
    assert second.choices[0].message.content


def test_streaming_ends_with_usage_chunk(standins: StandinServer) -> None:
    with _client(standins) as client:
        stream = client.chat.completions.create(
            model=MODEL,
            messages=_user("Stream an answer about tides"),
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "tides" in text.lower()
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens >= 1


def test_missing_authorization_is_401_in_openai_shape(standins: StandinServer) -> None:
    response = httpx.post(
        f"{standins.openai_base_url}/chat/completions",
        json={"model": MODEL, "messages": _user("hi")},
    )
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_models_endpoint(standins: StandinServer) -> None:
    with _client(standins) as client:
        ids = [m.id for m in client.models.list()]
    assert MODEL in ids


def test_responder_and_rules_script_answers(standins: StandinServer) -> None:
    seen: list[ChatRequest] = []

    def responder(request: ChatRequest) -> ChatReply | None:
        seen.append(request)
        if "scripted" in request.last_user_message:
            return ChatReply(json={"queries": ["a", "b"], "rationale": None})
        return None

    standins.configure(
        openai=OpenAIConfig(
            responder=responder,
            rules=[ChatRule(when_contains="PING", content="pong")],
        )
    )
    with _client(standins) as client:
        plan = client.chat.completions.parse(model=MODEL, messages=_user("scripted plan"), response_format=Plan)
        pong = client.chat.completions.create(model=MODEL, messages=_user("ping please"))
    assert plan.choices[0].message.parsed == Plan(queries=["a", "b"], rationale=None)
    assert pong.choices[0].message.content == "pong"
    assert seen[0].schema_name == "Plan"
    assert seen[0].schema is not None
    assert not seen[0].is_tool_call


def test_injected_503_then_success_with_sdk_retry(standins: StandinServer) -> None:
    standins.configure(openai=OpenAIConfig(fail_first_n=1, fail_first_fault="503"))
    with _client(standins) as client, pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model=MODEL, messages=_user("hi"))
    assert err.value.status_code == 503
    standins.configure(openai=OpenAIConfig(fail_first_n=1, fail_first_fault="429", retry_after_seconds=0.05))
    standins.reset()
    with _client(standins, max_retries=1) as client:
        completion = client.chat.completions.create(model=MODEL, messages=_user("hi"))
    assert completion.choices[0].message.content
    assert [e["status"] for e in standins.requests("openai")] == [429, 200]
    assert standins.stats()["upstreams"]["openai"]["faults"] == {"429": 1}


def test_injected_429_carries_retry_after(standins: StandinServer) -> None:
    standins.configure(openai=OpenAIConfig(fault_rate=1.0, faults=["429"], retry_after_seconds=2.5))
    with _client(standins) as client, pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model=MODEL, messages=_user("hi"))
    headers = err.value.response.headers
    assert headers["retry-after"] == "3"
    assert headers["retry-after-ms"] == "2500"
    assert err.value.code == "rate_limit_exceeded"


def test_truncated_body_is_a_connection_error(standins: StandinServer) -> None:
    standins.configure(openai=OpenAIConfig(fault_rate=1.0, faults=["truncated"]))
    with _client(standins) as client, pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model=MODEL, messages=_user("hi"))
    assert standins.requests("openai")[0]["fault"] == "truncated"


def test_timeout_fault_hangs_past_the_client_timeout(standins: StandinServer) -> None:
    standins.configure(openai=OpenAIConfig(fault_rate=1.0, faults=["timeout"], hang_seconds=5))
    with _client(standins, timeout=0.3) as client, pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model=MODEL, messages=_user("hi"))
    deadline = time.monotonic() + 3
    while standins.requests("openai")[0]["finished_at"] is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert standins.requests("openai")[0]["status"] == 499  # the stand-in saw the client leave


def test_rpm_limits_requests_in_a_sliding_window(standins: StandinServer) -> None:
    standins.configure(openai=OpenAIConfig(rpm=2))
    with _client(standins) as client:
        for _ in range(2):
            client.chat.completions.create(model=MODEL, messages=_user("hi"))
        with pytest.raises(openai.RateLimitError) as err:
            client.chat.completions.create(model=MODEL, messages=_user("hi"))
    retry_after = int(err.value.response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert [e["status"] for e in standins.requests("openai")] == [200, 200, 429]


@pytest.mark.asyncio
async def test_latency_overlaps_for_concurrent_requests(standins: StandinServer) -> None:
    standins.configure(openai=OpenAIConfig(latency=0.3))
    async with openai.AsyncOpenAI(base_url=standins.openai_base_url, api_key="sk-test", max_retries=0) as client:
        started = time.monotonic()
        await asyncio.gather(*(client.chat.completions.create(model=MODEL, messages=_user(f"q{i}")) for i in range(4)))
        elapsed = time.monotonic() - started
    assert elapsed >= 0.3  # overlap itself is shown by max_in_flight, not by a wall-clock bound
    assert standins.stats()["upstreams"]["openai"]["max_in_flight"] == 4
    assert all(e["duration"] >= 0.3 for e in standins.requests("openai"))
