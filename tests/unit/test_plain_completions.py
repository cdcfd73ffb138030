"""``PlainCompletions`` answers and fails exactly as the OpenAI SDK's own resource does.

Both are driven against the OpenAI stand-in over HTTP, side by side: the same request must give
the same answer (as plain JSON instead of the SDK's models) or the same SDK exception, status and
error body, for every failure the stand-in can produce.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai
import orjson
import pytest
from openai import AsyncOpenAI, DefaultAioHttpClient, DefaultAsyncHttpxClient
from openai.resources.chat.completions import AsyncCompletions

from agents.providers._completions import PlainCompletions, RawAnswer
from tests.standins import OpenAIConfig as StandinOpenAI
from tests.standins import StandinServer

MESSAGES = [
    {"role": "system", "content": "You write short essays."},
    {"role": "user", "content": "Why is the sky blue?"},
]
SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "Verdict",
        "schema": {
            "type": "object",
            "properties": {"score": {"type": "number"}},
            "required": ["score"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture
async def client(standin: StandinServer) -> AsyncIterator[AsyncOpenAI]:
    sdk = AsyncOpenAI(
        api_key="sk-test",
        base_url=standin.openai_base_url,
        max_retries=0,
        timeout=httpx2.Timeout(5.0, connect=2.0),
        http_client=DefaultAioHttpClient(),
    )
    async with sdk:
        yield sdk


def _comparable(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without the fields the stand-in makes up per response."""
    return {key: value for key, value in answer.items() if key not in {"id", "created"}}


async def test_a_whole_answer_is_the_sdks_answer_as_plain_json(client: AsyncOpenAI, standin: StandinServer) -> None:
    plain = PlainCompletions(client)
    assert plain.sends_directly
    sdk_raw = await AsyncCompletions(client).with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    raw = await plain.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)

    assert isinstance(raw, RawAnswer)
    answer = raw.parse()
    assert isinstance(answer, dict)
    assert _comparable(answer) == _comparable(sdk_raw.parse().model_dump(exclude_unset=True))
    assert raw.headers["x-request-id"].startswith("req_")
    assert _comparable(await plain.create(model="gpt-4o-mini", messages=MESSAGES)) == _comparable(answer)
    sent = [entry for entry in standin.requests("openai") if entry["path"].endswith("/chat/completions")]
    assert len(sent) == 3
    assert all(entry["status"] == 200 and entry["stream"] is False for entry in sent)


async def test_the_aiohttp_route_sends_what_the_sdk_sends() -> None:
    """Header for header and byte for byte, the request the SDK's own resource sends (less its
    raw-response marker, which ``with_raw_response`` adds and this never did)."""
    requests: list[tuple[dict[str, str], bytes]] = []
    answer = orjson.dumps({"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": []})

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.closing(writer), contextlib.suppress(asyncio.IncompleteReadError):  # the client hung up
            while True:  # one keep-alive connection carries both requests
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")[1:-2]
                headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
                requests.append((headers, await reader.readexactly(int(headers["content-length"]))))
                status = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
                writer.write(status % len(answer) + answer)
                await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with (
        server,
        AsyncOpenAI(
            api_key="sk-test", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0, http_client=DefaultAioHttpClient()
        ) as client,
    ):
        await AsyncCompletions(client).with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
        plain = PlainCompletions(client)
        assert (await plain.create(model="gpt-4o-mini", messages=MESSAGES))["id"] == "x"
        assert plain.uses_aiohttp_session
    (sdk_headers, sdk_body), (headers, body) = requests
    assert sdk_headers.pop("x-stainless-raw-response") == "true"
    assert (headers, body) == (sdk_headers, sdk_body)


async def test_a_client_on_httpx_alone_sends_through_httpx(standin: StandinServer) -> None:
    async with AsyncOpenAI(
        api_key="sk-test", base_url=standin.openai_base_url, max_retries=0, http_client=DefaultAsyncHttpxClient()
    ) as client:
        plain = PlainCompletions(client)
        answer = await plain.create(model="gpt-4o-mini", messages=MESSAGES)
        assert not plain.uses_aiohttp_session
    assert answer["choices"][0]["message"]["content"]


async def test_extra_body_is_merged_into_the_body(client: AsyncOpenAI, standin: StandinServer) -> None:
    raw = await PlainCompletions(client).with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_body={"response_format": SCHEMA_FORMAT}
    )
    assert isinstance(raw.parse()["choices"][0]["message"]["content"], str)
    (entry,) = standin.requests("openai")
    assert entry["schema_name"] == "Verdict"


async def test_a_stream_still_goes_through_the_sdk_and_yields_plain_chunks(client: AsyncOpenAI) -> None:
    plain = PlainCompletions(client)
    whole = (await plain.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)).parse()
    stream = await plain.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.AsyncStream)
    chunks = [chunk async for chunk in stream]
    assert chunks and all(isinstance(chunk, dict) for chunk in chunks)
    text = "".join((chunk["choices"][0]["delta"].get("content") or "") for chunk in chunks if chunk["choices"])
    assert text == whole["choices"][0]["message"]["content"]


async def _failure(call: Any) -> BaseException:
    with pytest.raises(openai.OpenAIError) as caught:
        await call
    return caught.value


@pytest.mark.parametrize("fault", ["400", "401", "404", "429", "500", "503", "truncated"])
async def test_a_failure_raises_what_the_sdk_raises(client: AsyncOpenAI, standin: StandinServer, fault: str) -> None:
    failures = []
    for completions in (AsyncCompletions(client), PlainCompletions(client)):
        standin.configure(openai=StandinOpenAI(fail_first_n=1, fail_first_fault=fault, retry_after_seconds=2))
        failures.append(await _failure(completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)))
    sdk, plain = failures
    assert type(plain) is type(sdk)
    if isinstance(sdk, openai.APIStatusError):
        assert isinstance(plain, openai.APIStatusError)
        assert (plain.status_code, plain.body, plain.message) == (sdk.status_code, sdk.body, sdk.message)
        assert plain.response.headers.get("retry-after") == sdk.response.headers.get("retry-after")


async def test_a_timeout_raises_the_sdks_timeout_error(standin: StandinServer) -> None:
    standin.configure(openai=StandinOpenAI(latency=5.0))
    async with AsyncOpenAI(
        api_key="sk-test",
        base_url=standin.openai_base_url,
        max_retries=0,
        timeout=0.2,
        http_client=DefaultAioHttpClient(),
    ) as client:
        error = await _failure(PlainCompletions(client).create(model="gpt-4o-mini", messages=MESSAGES))
    assert isinstance(error, openai.APITimeoutError)


async def test_an_unreachable_server_raises_what_the_sdk_raises(unused_tcp_port: int) -> None:
    async with AsyncOpenAI(
        api_key="sk-test",
        base_url=f"http://127.0.0.1:{unused_tcp_port}/v1",
        max_retries=0,
        http_client=DefaultAioHttpClient(),
    ) as client:
        sdk = await _failure(AsyncCompletions(client).create(model="gpt-4o-mini", messages=MESSAGES))
        plain = await _failure(PlainCompletions(client).create(model="gpt-4o-mini", messages=MESSAGES))
    assert isinstance(sdk, openai.APIConnectionError)  # (the aiohttp transport reports a refusal as a timeout)
    assert type(plain) is type(sdk)


async def test_a_client_with_per_request_authentication_keeps_the_sdks_path(standin: StandinServer) -> None:
    async def key() -> str:
        return "sk-rotated"

    async with AsyncOpenAI(
        api_key=key, base_url=standin.openai_base_url, max_retries=0, http_client=DefaultAioHttpClient()
    ) as client:
        plain = PlainCompletions(client)
        assert not plain.sends_directly
        raw = await plain.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
        assert isinstance(raw, openai._legacy_response.LegacyAPIResponse)
        assert isinstance(raw.parse(), dict)
