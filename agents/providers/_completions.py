"""The OpenAI SDK's ``chat.completions`` resource, minus the per-call work ``ChatOpenAI`` never uses.

``ChatOpenAI`` calls ``async_client.with_raw_response.create(**payload)`` for a whole answer (and
``async_client.create`` to stream). Under the bench (issue 16) the SDK's path cost ~0.7 ms of CPU
per call, about what ``ChatOpenAI``, LangGraph and our store spend on the same call together:

1. ``AsyncCompletions.create`` walks the body against the SDK's TypedDicts
   (``async_maybe_transform``: every message and content part, resolving unions and
   ``Annotated`` metadata at each level) to apply key aliases and base64 formats. A
   chat-completions body has none, and ``ChatOpenAI`` sends plain JSON types: ~0.4 ms, for
   nothing.
2. The answer becomes a ``ChatCompletion`` model (a ``ChatCompletionChunk`` per streamed chunk),
   which ``ChatOpenAI`` turns straight back into a dict (``model_dump``) before reading it; it
   reads a plain dict as well: ~0.2 ms.
3. ``AsyncAPIClient.request`` rebuilds the request each call: a copied options model, an
   idempotency key, URL and header merging through ``httpx2`` models, the body through the
   stdlib JSON encoder, the retry loop (our ``RetryPolicy`` retries: ``max_retries`` is 0), a
   raw-response wrapper: ~0.3 ms on top of the HTTP client itself.

``PlainCompletions`` is the SDK's resource class with a ``create`` that posts the body as given
and answers the decoded JSON. A whole answer goes out through the SDK's own HTTP client with the
SDK's own headers (computed once: user agent, platform, bearer key); on the SDK's aiohttp option
it goes straight to that client's aiohttp session, skipping the ``httpx2`` layer above it (see
``_AiohttpRoute``: another ~0.25 ms a call). Errors come back as the SDK's exceptions, mapped as
``AsyncAPIClient.request`` maps them (``APITimeoutError``, ``APIConnectionError``, the status
classes from ``_make_status_error_from_response``), so ``ChatOpenAI`` and our retry layer see
exactly what they would see from the SDK. Streams, and any client whose authentication the SDK
must run per request (an API-key provider, workload identity, a provider runtime), still take
the SDK's ``_post``. ``ChatProvider`` installs this as each model's ``async_client``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

import httpx2
import orjson
from aiohttp import ClientSession, ClientTimeout
from openai import APIConnectionError, APITimeoutError, AsyncOpenAI, AsyncStream, NotGiven, not_given
from openai._base_client import make_request_options
from openai._httpx2 import request_exceptions, timeout_exceptions
from openai._vendor.httpx_aiohttp.transport import AiohttpTransport, map_aiohttp_exceptions
from openai.resources.chat.completions import AsyncCompletions, AsyncCompletionsWithRawResponse

__all__ = ["PlainCompletions", "RawAnswer"]


class PlainCompletions(AsyncCompletions):
    """``AsyncCompletions`` whose ``create`` sends its keyword arguments as the JSON body and
    answers the response's JSON as plain dicts (one per chunk when streamed)."""

    def __init__(self, client: AsyncOpenAI) -> None:
        super().__init__(client)
        self._owner = client
        self._url = f"{client.base_url}chat/completions"  # the SDK keeps base_url's trailing slash
        self._headers: dict[str, str] | None = None
        self._aiohttp: _AiohttpRoute | None = None
        #: Whether whole answers skip the SDK's request pipeline: only for a client without
        #: per-request authentication (fixed when the client is built).
        self.sends_directly = (
            client.custom_auth is None
            and getattr(client, "_api_key_provider", None) is None
            and getattr(client, "_provider_runtime", None) is None
        )

    @property
    def uses_aiohttp_session(self) -> bool:
        """Whether whole answers go straight to the aiohttp session (known after the first one)."""
        return self._aiohttp is not None

    def goes_direct(self, options: dict[str, Any]) -> bool:
        """Whether a call with these ``create`` keyword arguments is sent by ``send``: a whole
        answer, no extra query, a client without per-request authentication."""
        return not options.get("stream") and not options.get("extra_query") and self.sends_directly

    async def create(self, **options: Any) -> Any:
        """POST ``/chat/completions`` with the body as given (``create``'s keyword arguments:
        the body's fields, ``extra_body``, ``extra_headers``, ``extra_query``, ``timeout``); the
        decoded JSON answer, or an ``AsyncStream`` of decoded chunks when ``stream`` is set."""
        if self.goes_direct(options):
            return (await self.send(**options)).parse()
        return await self._sdk_create(**options)

    @cached_property
    def with_raw_response(self) -> _RawCompletions:  # type: ignore[override]
        """What ``ChatOpenAI`` calls for a whole answer: ``create`` answering a ``RawAnswer``."""
        return _RawCompletions(self)

    async def _sdk_create(
        self,
        *,
        extra_headers: dict[str, str] | None = None,
        extra_query: dict[str, object] | None = None,
        extra_body: dict[str, object] | None = None,
        timeout: float | httpx2.Timeout | NotGiven | None = not_given,  # noqa: ASYNC109 - the SDK's signature
        **body: Any,
    ) -> Any:
        """The SDK's ``create`` minus its walk of the body, answering plain JSON."""
        return await self._post(
            "/chat/completions",
            body=body,
            options=make_request_options(
                extra_headers=extra_headers,
                extra_query=extra_query,
                extra_body=extra_body,
                timeout=timeout,
                security={"bearer_auth": True},
            ),
            # ``object``: the SDK hands the decoded JSON back as is (``_process_response_data``).
            cast_to=object,
            stream=bool(body.get("stream")),
            stream_cls=AsyncStream[object],
        )

    async def send(
        self,
        *,
        extra_headers: dict[str, str] | None = None,
        extra_query: dict[str, object] | None = None,
        extra_body: dict[str, object] | None = None,
        timeout: float | httpx2.Timeout | NotGiven | None = not_given,  # noqa: ASYNC109 - the SDK's signature
        **body: Any,
    ) -> RawAnswer:
        """One POST of a whole-answer request through the SDK's HTTP client; a 4xx/5xx raises
        the SDK's status error. (``extra_query`` must be empty: see ``goes_direct``.)"""
        if extra_query:
            raise ValueError("a direct chat completion takes no query parameters")
        client = self._owner
        if self._headers is None:
            # The SDK's platform lookup reads files: run it off the loop once (the SDK caches it).
            await asyncio.to_thread(client.platform_headers)
            self._headers = _sdk_headers(client)
            self._aiohttp = _AiohttpRoute.of(client._client, self._url, self._headers)
        headers = self._headers if not extra_headers else {**self._headers, **extra_headers}
        content = orjson.dumps(body if not extra_body else {**body, **extra_body})
        timeout = client.timeout if isinstance(timeout, NotGiven) else timeout
        http = client._client

        def request() -> httpx2.Request:  # what the SDK's errors carry; built when one is raised
            return http.build_request("POST", self._url, content=content, headers=headers, timeout=timeout)

        try:
            answer = None
            if self._aiohttp is not None and not extra_headers:
                answer = await self._aiohttp.post(content, timeout, request)
            if answer is None:  # not the aiohttp transport, or an answer httpx must handle (a redirect)
                answer = RawAnswer.of(await http.send(request()))
        except timeout_exceptions() as error:
            raise APITimeoutError(request=request()) from error
        except request_exceptions() as error:
            raise APIConnectionError(request=request()) from error
        if answer.status >= 400:
            raise client._make_status_error_from_response(answer.http_response) from None
        return answer


class RawAnswer:
    """A whole answer as ``with_raw_response.create`` returns it: ``parse()`` is the decoded JSON
    (the text when the server answered something else, as the SDK does), ``headers`` the
    response's, ``http_response`` the response as ``httpx2`` models it (built on first use)."""

    def __init__(
        self, status: int, headers: Mapping[str, str], content: bytes, response: Callable[[], httpx2.Response]
    ) -> None:
        self.status = status
        self.headers = headers
        self.content = content
        self._response = response

    @classmethod
    def of(cls, response: httpx2.Response) -> RawAnswer:
        """The answer an ``httpx2`` response holds (its body read)."""
        return cls(response.status_code, response.headers, response.content, lambda: response)

    @cached_property
    def http_response(self) -> httpx2.Response:
        return self._response()

    def parse(self) -> Any:
        content_type = self.headers.get("content-type", "*").split(";")[0]
        if not content_type.endswith("json"):
            return self.http_response.text
        return orjson.loads(self.content)


class _AiohttpRoute:
    """Whole answers straight through the aiohttp session under the SDK's ``httpx2`` client.

    The SDK's aiohttp option is an ``httpx2.AsyncClient`` whose transport forwards each request to
    an ``aiohttp.ClientSession``; the ``httpx2`` layer on top (request and response models,
    header merging, the auth and redirect loops, the body stream) cost ~0.25 ms of CPU a call,
    about what aiohttp itself costs. This posts to that same session with the headers ``httpx2``
    would send (merged once), the same timeouts and the same exception mapping as the
    transport, so the wire and the errors are unchanged. Only when the client's transport for
    the URL is that transport without a proxy, and the client runs no auth flow or event hooks.
    A redirect, or an encoded body, is handed back to ``httpx2`` (it follows and decodes them).
    """

    def __init__(self, transport: AiohttpTransport, url: str, headers: list[tuple[str, str]]) -> None:
        self._transport = transport
        self._url = url
        self._headers = headers
        self._last_timeout: tuple[object, ClientTimeout | None] = (None, None)

    @classmethod
    def of(cls, http: httpx2.AsyncClient, url: str, headers: dict[str, str]) -> _AiohttpRoute | None:
        transport = http._transport_for_url(httpx2.URL(url))
        if (
            not isinstance(transport, AiohttpTransport)
            or transport.proxy is not None
            or http.auth is not None
            or any(http.event_hooks.values())
        ):
            return None
        merged = http.build_request("POST", url, content=b"{}", headers=headers).headers
        sent = [(name, value) for name, value in merged.multi_items() if name not in ("host", "content-length")]
        return cls(transport, url, sent)

    async def post(
        self, content: bytes, limits: float | httpx2.Timeout | None, request: Callable[[], httpx2.Request]
    ) -> RawAnswer | None:
        """The answer, or None when ``httpx2`` must take the request (see the class)."""
        transport = self._transport
        if not isinstance(transport.client, ClientSession):
            transport.client = transport.get_client()  # as the transport makes it on first use
        with map_aiohttp_exceptions():  # aiohttp's errors as httpx2's, as the transport raises them
            async with transport.client.request(
                "POST",
                self._url,
                headers=self._headers,
                data=content,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=self._timeout(limits),
            ) as response:
                body = await response.read()
        status, headers = response.status, response.headers
        if 300 <= status < 400 or headers.get("content-encoding", "identity") != "identity":
            return None
        return RawAnswer(
            status,
            headers,
            body,
            lambda: httpx2.Response(status, headers=response.raw_headers, content=body, request=request()),
        )

    def _timeout(self, limits: float | httpx2.Timeout | None) -> ClientTimeout:
        """The transport's mapping of an ``httpx2`` timeout to aiohttp's (the last one kept: a
        client passes its own on every call)."""
        last, mapped = self._last_timeout
        if limits is not last or mapped is None:
            timeout = httpx2.Timeout(limits)
            mapped = ClientTimeout(sock_connect=timeout.connect, sock_read=timeout.read, connect=timeout.pool)
            self._last_timeout = (limits, mapped)
        return mapped


class _RawCompletions:
    """``PlainCompletions.with_raw_response``: whole answers sent directly, the rest as the SDK does."""

    def __init__(self, completions: PlainCompletions) -> None:
        self._completions = completions

    async def create(self, **options: Any) -> Any:
        completions = self._completions
        if completions.goes_direct(options):
            return await completions.send(**options)
        return await AsyncCompletionsWithRawResponse(completions).create(**options)


def _sdk_headers(client: AsyncOpenAI) -> dict[str, str]:
    """The headers the SDK sends with a chat completion, as it builds them (``_build_headers``)."""
    headers = {key: value for key, value in client.default_headers.items() if isinstance(value, str)}
    headers.update(client.auth_headers)
    headers["X-Stainless-Retry-Count"] = "0"
    read_timeout = client.timeout.read if isinstance(client.timeout, httpx2.Timeout) else client.timeout
    if read_timeout is not None:
        headers["X-Stainless-Read-Timeout"] = str(read_timeout)
    return headers
