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
and answers the decoded JSON. A whole answer goes out through the SDK's own HTTP client (its
connection pool and aiohttp transport) with the SDK's own headers (computed once: user agent,
platform, bearer key), and errors come back as the SDK's exceptions, mapped as
``AsyncAPIClient.request`` maps them (``APITimeoutError``, ``APIConnectionError``, the status
classes from ``_make_status_error_from_response``), so ``ChatOpenAI`` and our retry layer see
exactly what they would see from the SDK. Streams, and any client whose authentication the SDK
must run per request (an API-key provider, workload identity, a provider runtime), still take
the SDK's ``_post``. ``ChatProvider`` installs this as each model's ``async_client``.
"""

from __future__ import annotations

import asyncio
from functools import cached_property
from typing import Any

import httpx2
import orjson
from openai import APIConnectionError, APITimeoutError, AsyncOpenAI, AsyncStream, NotGiven, not_given
from openai._base_client import make_request_options
from openai._httpx2 import request_exceptions, timeout_exceptions
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
        #: Whether whole answers skip the SDK's request pipeline: only for a client without
        #: per-request authentication (fixed when the client is built).
        self.sends_directly = (
            client.custom_auth is None
            and getattr(client, "_api_key_provider", None) is None
            and getattr(client, "_provider_runtime", None) is None
        )

    def goes_direct(self, options: dict[str, Any]) -> bool:
        """Whether a call with these ``create`` keyword arguments is sent by ``send``: a whole
        answer, no extra query, a client without per-request authentication."""
        return not options.get("stream") and not options.get("extra_query") and self.sends_directly

    async def create(self, **options: Any) -> Any:
        """POST ``/chat/completions`` with the body as given (``create``'s keyword arguments:
        the body's fields, ``extra_body``, ``extra_headers``, ``extra_query``, ``timeout``); the
        decoded JSON answer, or an ``AsyncStream`` of decoded chunks when ``stream`` is set."""
        if self.goes_direct(options):
            return RawAnswer(await self.send(**options)).parse()
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
    ) -> httpx2.Response:
        """One POST of a whole-answer request through the SDK's HTTP client; a 4xx/5xx raises
        the SDK's status error. (``extra_query`` must be empty: see ``goes_direct``.)"""
        if extra_query:
            raise ValueError("a direct chat completion takes no query parameters")
        client = self._owner
        if self._headers is None:
            # The SDK's platform lookup reads files: run it off the loop once (the SDK caches it).
            await asyncio.to_thread(client.platform_headers)
            self._headers = _sdk_headers(client)
        headers = self._headers if not extra_headers else {**self._headers, **extra_headers}
        http = client._client
        request = http.build_request(
            "POST",
            self._url,
            content=orjson.dumps(body if not extra_body else {**body, **extra_body}),
            headers=headers,
            timeout=client.timeout if isinstance(timeout, NotGiven) else timeout,
        )
        try:
            response = await http.send(request)
        except timeout_exceptions() as error:
            raise APITimeoutError(request=request) from error
        except request_exceptions() as error:
            raise APIConnectionError(request=request) from error
        if response.is_error:
            raise client._make_status_error_from_response(response) from None
        return response


class RawAnswer:
    """A whole answer as ``with_raw_response.create`` returns it: ``parse()`` is the decoded JSON
    (the text when the server answered something else, as the SDK does), ``headers`` the
    response's, ``http_response`` the response."""

    def __init__(self, response: httpx2.Response) -> None:
        self.http_response = response
        self.headers = response.headers

    def parse(self) -> Any:
        content_type = self.headers.get("content-type", "*").split(";")[0]
        if not content_type.endswith("json"):
            return self.http_response.text
        return orjson.loads(self.http_response.content)


class _RawCompletions:
    """``PlainCompletions.with_raw_response``: whole answers sent directly, the rest as the SDK does."""

    def __init__(self, completions: PlainCompletions) -> None:
        self._completions = completions

    async def create(self, **options: Any) -> Any:
        completions = self._completions
        if completions.goes_direct(options):
            return RawAnswer(await completions.send(**options))
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
