"""The one table that turns every provider library's exceptions into ours."""

from __future__ import annotations

import itertools
import json

import arxiv
import httpx
import httpx2
import openai
import pytest
import requests
from tavily.errors import BadRequestError, ForbiddenError, InvalidAPIKeyError, UsageLimitExceededError
from tavily.errors import TimeoutError as TavilyTimeout

from agents.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from agents.providers.error_map import (
    UPSTREAM_EXC_MAP,
    MalformedResponse,
    classify_upstream_error,
    error_for_status,
)

OPENAI_REQUEST = httpx2.Request("POST", "http://model.test/v1/chat/completions")
HTTPX_REQUEST = httpx.Request("POST", "http://tavily.test/search")


def openai_status(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    response = httpx2.Response(status, headers=headers, request=OPENAI_REQUEST)
    return openai.APIStatusError(f"status {status}", response=response, body=None)


def httpx_status(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    response = httpx.Response(status, headers=headers, request=HTTPX_REQUEST)
    return httpx.HTTPStatusError(f"status {status}", request=HTTPX_REQUEST, response=response)


def requests_status(status: int, headers: dict[str, str] | None = None) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    return requests.HTTPError(f"status {status}", response=response)


def classify(exc: BaseException, provider: str) -> UpstreamError:
    error = classify_upstream_error(exc, provider=provider)
    assert error is not None
    assert error.provider == provider
    return error


def test_no_entry_is_shadowed_by_an_earlier_one() -> None:
    # First match wins, so an entry below its own base class could never be reached.
    for (earlier, _), (later, _) in itertools.combinations(UPSTREAM_EXC_MAP, 2):
        assert not issubclass(later, earlier), f"{later.__name__} is unreachable below {earlier.__name__}"


@pytest.mark.parametrize(
    ("status", "expected", "retryable"),
    [
        (429, UpstreamRateLimited, True),
        (408, UpstreamUnavailable, True),
        (409, UpstreamUnavailable, True),
        (500, UpstreamUnavailable, True),
        (503, UpstreamUnavailable, True),
        (400, UpstreamBadResponse, False),
        (401, UpstreamBadResponse, False),
        (404, UpstreamBadResponse, False),
    ],
)
def test_one_status_rule_for_every_status_carrying_error(
    status: int, expected: type[UpstreamError], retryable: bool
) -> None:
    for exc, provider in (
        (openai_status(status), "openai"),
        (httpx_status(status), "tavily"),
        (requests_status(status), "arxiv"),
        (arxiv.HTTPError("http://arxiv.test", 0, status), "arxiv"),
    ):
        error = classify(exc, provider)
        assert type(error) is expected
        assert error.http_status == status
        assert error.retryable is retryable


@pytest.mark.parametrize(
    ("exc", "provider"),
    [
        (openai_status(429, {"retry-after-ms": "1500"}), "openai"),
        (httpx_status(429, {"retry-after": "1.5"}), "tavily"),
        (requests_status(429, {"Retry-After": "1.5"}), "arxiv"),
    ],
)
def test_retry_after_travels_with_the_rate_limit(exc: BaseException, provider: str) -> None:
    error = classify(exc, provider)
    assert isinstance(error, UpstreamRateLimited)
    assert error.retry_after == 1.5


def test_only_retryable_statuses_keep_retry_after() -> None:
    assert error_for_status(503, provider="openai", retry_after=2.0).retry_after == 2.0
    assert error_for_status(400, provider="openai", retry_after=2.0).retry_after is None


@pytest.mark.parametrize(
    ("exc", "provider", "expected", "retryable"),
    [
        (openai.APITimeoutError(request=OPENAI_REQUEST), "openai", UpstreamTimeout, True),
        (openai.APIConnectionError(request=OPENAI_REQUEST), "openai", UpstreamUnavailable, True),
        (
            openai.APIResponseValidationError(httpx2.Response(200, request=OPENAI_REQUEST), None),
            "openai",
            UpstreamBadResponse,
            True,
        ),
        (httpx2.RemoteProtocolError("cut short"), "openai", UpstreamBadResponse, True),
        (json.JSONDecodeError("garbled", "{", 0), "openai", UpstreamBadResponse, True),
        (TavilyTimeout(20), "tavily", UpstreamTimeout, True),
        (httpx.ConnectTimeout("slow"), "tavily", UpstreamTimeout, True),
        (httpx.ConnectError("refused"), "tavily", UpstreamUnavailable, True),
        (httpx.ReadError("reset"), "tavily", UpstreamBadResponse, True),
        (requests.exceptions.ConnectTimeout("slow"), "arxiv", UpstreamTimeout, True),
        (requests.exceptions.ReadTimeout("slow"), "arxiv", UpstreamTimeout, True),
        (requests.exceptions.ConnectionError("refused"), "arxiv", UpstreamUnavailable, True),
        (requests.exceptions.HTTPError("no response attached"), "arxiv", UpstreamBadResponse, True),
        (requests.exceptions.ChunkedEncodingError("cut short"), "arxiv", UpstreamBadResponse, True),
        (arxiv.UnexpectedEmptyPageError("http://arxiv.test", 0, "raw"), "arxiv", UpstreamBadResponse, True),
        (MalformedResponse("not an Atom feed"), "arxiv", UpstreamBadResponse, True),
    ],
)
def test_transport_faults_map_to_our_classes(
    exc: BaseException, provider: str, expected: type[UpstreamError], retryable: bool
) -> None:
    error = classify(exc, provider)
    assert type(error) is expected
    assert error.retryable is retryable


@pytest.mark.parametrize(
    ("exc", "expected", "status", "detail"),
    [
        (UsageLimitExceededError("plan exhausted"), UpstreamRateLimited, 429, "Tavily rate-limited us: plan exhausted"),
        (InvalidAPIKeyError("bad key"), UpstreamBadResponse, 401, "Tavily rejected TAVILY_API_KEY"),
        (ForbiddenError("nope"), UpstreamBadResponse, 403, "Tavily refused the request: nope"),
        (BadRequestError("too long"), UpstreamBadResponse, 400, "Tavily refused the query: too long"),
    ],
)
def test_tavily_errors_without_a_response_keep_their_status(
    exc: BaseException, expected: type[UpstreamError], status: int, detail: str
) -> None:
    error = classify(exc, "tavily")
    assert type(error) is expected
    assert error.http_status == status
    assert error.detail == detail


def test_messages_name_the_provider() -> None:
    assert classify(openai_status(503), "openai").detail == "the model server answered 503"
    assert classify(requests.exceptions.ConnectionError(), "arxiv").detail == "could not reach arXiv"
    assert classify(httpx.ReadError("reset"), "tavily").detail == "Tavily sent a malformed response"


@pytest.mark.parametrize("exc", [ValueError("ours"), KeyError("x"), RuntimeError("bug")])
def test_other_exceptions_are_not_upstream_faults(exc: BaseException) -> None:
    assert classify_upstream_error(exc, provider="openai") is None
