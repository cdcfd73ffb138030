"""What a search provider returns (``SearchHit``) and offers (``SearchProvider``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = ["SearchHit", "SearchKind", "SearchProvider"]

SearchKind = Literal["arxiv", "web"]


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One retrieved document, the same shape whichever provider found it.

    Attributes:
        kind: ``arxiv`` for a paper, ``web`` for a web page.
        title: the document title, whitespace collapsed.
        url: canonical address (``https://arxiv.org/abs/<id>`` for papers).
        snippet: abstract or page extract, already cut to a prompt-friendly length.
        authors: author names, in order (empty for web pages).
        published: ISO date of publication when the provider gives one.
    """

    kind: SearchKind
    title: str
    url: str
    snippet: str
    authors: tuple[str, ...] = ()
    published: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (workflow state is checkpointed as plain data)."""
        return {
            "kind": self.kind,
            "title": self.title,
            "url": self.url,
            "snippet": self.snippet,
            "authors": list(self.authors),
            "published": self.published,
        }


class SearchProvider(Protocol):
    """A search backend the research workflow can fan out to."""

    name: str

    async def search(self, query: str, *, max_results: int) -> list[SearchHit]: ...

    async def aclose(self) -> None: ...
