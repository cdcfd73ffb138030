"""Tavily stand-in route: ``POST /search`` answering tavily-python's request shape."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .config import TavilyConfig
from .faults import TruncatedResponse, gate
from .state import get_state, journal_entry
from .text_gen import keywords, slugify, stable_hash, title_case

__all__ = ["search_results", "tavily_error", "tavily_routes"]

DOMAINS = (
    "example.org",
    "docs.example.com",
    "research.example.edu",
    "blog.example.net",
    "news.example.io",
    "wiki.example.org",
)
_KINDS = ("Overview", "Guide", "Survey", "Case Study", "Benchmark", "Tutorial", "Analysis")
MAX_RESULTS_CAP = 20


def tavily_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error in Tavily's shape: ``{"detail": {"error": message}}``."""
    return JSONResponse({"detail": {"error": message}}, status_code=status, headers=headers)


def search_results(
    query: str,
    max_results: int,
    include_domains: list[str] | None = None,
    exclude_domains: list[str] | None = None,
    include_raw_content: bool = False,
    topic: str | None = None,
) -> list[dict[str, Any]]:
    """Deterministic results for ``query``: same query, same titles, URLs and scores."""
    words = keywords(query, 6, prompt=False) or ["search"]
    slug = slugify(" ".join(words[:5]))
    domains = list(include_domains or DOMAINS)
    domains = [d for d in domains if d not in set(exclude_domains or ())] or ["example.org"]
    seed = stable_hash(query)
    topic_title = title_case(words[:4])
    results = []
    for i in range(max_results):
        domain = domains[(seed + i) % len(domains)]
        kind = _KINDS[(seed // 7 + i) % len(_KINDS)]
        content = (
            f"{kind} of {' '.join(words[:4])}: this page discusses {', '.join(words[:3])} "
            f"and related practice. Key point {i + 1}: {words[i % len(words)]} matters for "
            f"reliable results."
        )
        result: dict[str, Any] = {
            "url": f"https://{domain}/{slug}/{i + 1}",
            "title": f"{topic_title} - {kind}",
            "content": content,
            "score": round(0.95 - 0.07 * i - (seed % 5) / 100, 4),
            "raw_content": content + "\n\n" + content if include_raw_content else None,
        }
        if topic == "news":
            result["published_date"] = f"Mon, {1 + i:02d} Apr 2024 09:00:00 GMT"
        results.append(result)
    return results


def _api_key(request: Request, body: dict[str, Any]) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return str(body.get("api_key") or "")


async def search(request: Request) -> Response:
    """``POST /search``."""
    started = time.monotonic()
    state = get_state(request)
    config = state.upstream("tavily")
    assert isinstance(config, TavilyConfig)
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError:
        return tavily_error(400, "Invalid JSON body.")
    if not isinstance(body, dict):
        return tavily_error(400, "Invalid JSON body.")
    if config.require_auth and not _api_key(request, body).startswith("tvly-"):
        return tavily_error(401, "Unauthorized: missing or invalid API key.")
    query = body.get("query")
    max_results = body.get("max_results") or config.default_max_results
    state.journal.annotate(journal_entry(request), search_query=query, max_results=max_results)
    if not isinstance(query, str) or not query.strip():
        return tavily_error(400, "Query is missing or empty.")
    if not isinstance(max_results, int) or max_results < 0:
        return tavily_error(400, "max_results must be a non-negative integer.")
    verdict = await gate(request, "tavily", tavily_error)
    if verdict.response is not None:
        return verdict.response
    results = []
    if verdict.fault != "empty":
        results = search_results(
            query,
            min(max_results, MAX_RESULTS_CAP),
            include_domains=body.get("include_domains"),
            exclude_domains=body.get("exclude_domains"),
            include_raw_content=bool(body.get("include_raw_content")),
            topic=body.get("topic"),
        )
    answer = None
    if body.get("include_answer"):
        answer = f"Stand-in answer: {query.strip()} is covered by {len(results)} sources."
    payload: dict[str, Any] = {
        "query": query,
        "follow_up_questions": None,
        "answer": answer,
        "images": [],
        "results": results,
        "response_time": round(time.monotonic() - started, 2),
        "request_id": str(uuid.uuid4()),
    }
    if body.get("include_usage"):
        payload["usage"] = {"credits": 2 if body.get("search_depth") == "advanced" else 1}
    if verdict.fault == "truncated":
        return TruncatedResponse(json.dumps(payload).encode(), media_type="application/json")
    return JSONResponse(payload)


tavily_routes = [Route("/search", search, methods=["POST"])]
