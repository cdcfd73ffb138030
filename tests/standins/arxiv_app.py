"""arXiv stand-in route: ``GET /api/query`` answering an Atom feed like export.arxiv.org."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape, quoteattr

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from .config import ArxivConfig
from .faults import TruncatedResponse, gate
from .state import get_state, journal_entry
from .text_gen import keywords, stable_hash, title_case

__all__ = ["Paper", "arxiv_routes", "papers_for", "render_feed"]

ATOM = "application/atom+xml; charset=utf-8"
_CATEGORIES = ("cs.AI", "cs.CL", "cs.LG", "cs.IR", "cs.MA", "cs.SE")
_AUTHORS = (
    "Ada Lovelace",
    "Alan Turing",
    "Grace Hopper",
    "Claude Shannon",
    "Barbara Liskov",
    "Donald Knuth",
    "Frances Allen",
    "John McCarthy",
    "Leslie Lamport",
    "Margaret Hamilton",
)
_TITLES = (
    "{t}: A Survey",
    "Towards Robust {t}",
    "Scaling {t} with Language Agents",
    "On the Limits of {t}",
    "{t} in Practice: Lessons Learned",
    "Benchmarking {t}",
    "A Unified Framework for {t}",
    "Rethinking {t}",
)
_FIELD_RE = re.compile(r"\b(?:all|ti|abs|au|co|jr|rn|id):")
_CAT_RE = re.compile(r"\bcat:\s*\"?([A-Za-z\-]+(?:\.[A-Za-z\-]+)?)\"?")
_OPERATOR_RE = re.compile(r"\b(?:AND|OR|ANDNOT)\b")
_ID_RE = re.compile(r"^(.*?)(v\d+)?$")


@dataclass(frozen=True)
class Paper:
    """One generated arXiv entry."""

    short_id: str
    version: str
    title: str
    summary: str
    authors: tuple[str, ...]
    published: datetime
    updated: datetime
    primary_category: str
    categories: tuple[str, ...]
    comment: str | None

    @property
    def entry_id(self) -> str:
        """``http://arxiv.org/abs/<id>v<n>``, as in arXiv's feed."""
        return f"http://arxiv.org/abs/{self.short_id}{self.version}"


def _query_words(search_query: str) -> tuple[list[str], str | None]:
    cat_match = _CAT_RE.search(search_query)
    text = _CAT_RE.sub(" ", search_query)
    text = _OPERATOR_RE.sub(" ", _FIELD_RE.sub(" ", text))
    return keywords(text, 6, prompt=False), cat_match.group(1) if cat_match else None


def _paper(key: str, short_id: str, version: str, words: list[str], cat: str | None) -> Paper:
    h = stable_hash(key)
    topic = title_case(words[:3]) if words else "Machine Learning Systems"
    month = int(short_id[2:4]) if short_id[:4].isdigit() and 1 <= int(short_id[2:4]) <= 12 else 1
    published = datetime(2024, month, 1 + h % 28, h % 24, (h >> 5) % 60, (h >> 11) % 60, tzinfo=UTC)
    primary = cat or _CATEGORIES[h % len(_CATEGORIES)]
    phrase = " ".join(words[:4]) if words else "machine learning systems"
    summary = (
        f"We study {phrase}. Building on prior work, we propose a method that improves "
        f"{words[0] if words else 'performance'} by combining retrieval, planning and "
        f"verification. Experiments on {3 + h % 5} benchmarks show consistent gains, and we "
        f"discuss limitations and open problems for {phrase}."
    )
    n_authors = 2 + h % 3
    authors = tuple(_AUTHORS[(h >> (4 * k)) % len(_AUTHORS)] for k in range(n_authors))
    return Paper(
        short_id=short_id,
        version=version,
        title=_TITLES[(h >> 3) % len(_TITLES)].format(t=topic),
        summary=summary,
        authors=tuple(dict.fromkeys(authors)),
        published=published,
        updated=published + timedelta(days=h % 9),
        primary_category=primary,
        categories=tuple(dict.fromkeys((primary, "cs.AI"))),
        comment=f"{8 + h % 20} pages, {1 + h % 9} figures" if h % 3 else None,
    )


def papers_for(search_query: str, id_list: list[str], total: int) -> list[Paper]:
    """All papers a query matches, in relevance order (``id_list`` wins when given)."""
    words, cat = _query_words(search_query)
    if id_list:
        papers = []
        for raw in id_list:
            match = _ID_RE.match(raw.strip())
            assert match is not None
            short_id, version = match.group(1), match.group(2) or "v1"
            papers.append(_paper(short_id, short_id, version, words, cat))
        return papers
    if not search_query.strip():
        return []
    base = stable_hash(search_query)
    out = []
    for i in range(total):
        short_id = f"{2401 + (base + i) % 12}.{(base + i * 7919) % 100000:05d}"
        out.append(_paper(f"{search_query}:{i}", short_id, "v1", words, cat))
    return out


def _sorted(papers: list[Paper], sort_by: str, sort_order: str) -> list[Paper]:
    key = {"submittedDate": "published", "lastUpdatedDate": "updated"}.get(sort_by)
    if key is None:
        return papers
    return sorted(papers, key=lambda p: getattr(p, key), reverse=sort_order != "ascending")


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _entry(p: Paper) -> str:
    arxiv_ns = 'xmlns:arxiv="http://arxiv.org/schemas/atom"'
    authors = "".join(f"\n    <author>\n      <name>{escape(a)}</name>\n    </author>" for a in p.authors)
    comment = f"\n    <arxiv:comment {arxiv_ns}>{escape(p.comment)}</arxiv:comment>" if p.comment else ""
    cats = "".join(f'\n    <category term="{c}" scheme="http://arxiv.org/schemas/atom"/>' for c in p.categories)
    vid = f"{p.short_id}{p.version}"
    return (
        f"  <entry>\n    <id>{p.entry_id}</id>\n    <updated>{_ts(p.updated)}</updated>"
        f"\n    <published>{_ts(p.published)}</published>\n    <title>{escape(p.title)}</title>"
        f"\n    <summary>  {escape(p.summary)}\n</summary>{authors}{comment}"
        f'\n    <link href="http://arxiv.org/abs/{vid}" rel="alternate" type="text/html"/>'
        f'\n    <link title="pdf" href="http://arxiv.org/pdf/{vid}" rel="related"'
        f' type="application/pdf"/>'
        f'\n    <arxiv:primary_category {arxiv_ns} term="{p.primary_category}"'
        f' scheme="http://arxiv.org/schemas/atom"/>{cats}\n  </entry>\n'
    )


def render_feed(params: dict[str, str], total: int, start: int, page: list[Paper]) -> str:
    """The Atom document for one page of results."""
    query = urlencode(params)
    os_ns = 'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"'
    feed_id = f"http://arxiv.org/api/{stable_hash(query):x}"
    today = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00-05:00")
    title = "ArXiv Query: " + "&".join(f"{k}={v}" for k, v in params.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n'
        f'  <link href={quoteattr("http://arxiv.org/api/query?" + query)} rel="self"'
        ' type="application/atom+xml"/>\n'
        f'  <title type="html">{escape(title)}</title>\n  <id>{feed_id}</id>\n'
        f"  <updated>{today}</updated>\n"
        f"  <opensearch:totalResults {os_ns}>{total}</opensearch:totalResults>\n"
        f"  <opensearch:startIndex {os_ns}>{start}</opensearch:startIndex>\n"
        f"  <opensearch:itemsPerPage {os_ns}>{len(page)}</opensearch:itemsPerPage>\n"
        + "".join(_entry(p) for p in page)
        + "</feed>\n"
    )


def _arxiv_error(status: int, message: str, headers: dict[str, str]) -> Response:
    return PlainTextResponse(message, status_code=status, headers=headers)


def _int_param(value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    number = int(value)
    if number < 0:
        raise ValueError(value)
    return number


async def query(request: Request) -> Response:
    """``GET /api/query``."""
    state = get_state(request)
    config = state.upstream("arxiv")
    assert isinstance(config, ArxivConfig)
    qp = request.query_params
    search_query = qp.get("search_query", "")
    id_list = [i for i in qp.get("id_list", "").split(",") if i.strip()]
    sort_by = qp.get("sortBy", "relevance")
    sort_order = qp.get("sortOrder", "descending")
    details: dict[str, Any] = {"search_query": search_query, "id_list": id_list}
    state.journal.annotate(journal_entry(request), **details)
    try:
        start = _int_param(qp.get("start"), 0)
        max_results = min(_int_param(qp.get("max_results"), 10), 2000)
    except ValueError:
        return _arxiv_error(400, "start and max_results must be non-negative integers", {})
    state.journal.annotate(journal_entry(request), start=start, max_results=max_results)
    verdict = await gate(request, "arxiv", _arxiv_error)
    if verdict.response is not None:
        return verdict.response
    papers = _sorted(papers_for(search_query, id_list, config.total_results), sort_by, sort_order)
    page = [] if verdict.fault == "empty" else papers[start : start + max_results]
    params = {
        "search_query": search_query,
        "id_list": ",".join(id_list),
        "start": str(start),
        "max_results": str(max_results),
    }
    feed = render_feed(params, len(papers), start, page).encode()
    if verdict.fault == "truncated":
        return TruncatedResponse(feed, media_type=ATOM)
    return Response(feed, media_type=ATOM)


arxiv_routes = [Route("/api/query", query, methods=["GET"])]
